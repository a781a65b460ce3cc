"""The ``taylorglo train ...`` command that reproduces one candidate's training by hand.

A search trains thousands of candidates inside worker processes; when one of them behaves oddly,
the fastest way to look at it is to run exactly that training in a terminal. This module turns a
:class:`~taylorglo.training.TrainConfig`, a parameter vector and a seed into that command line.
Only fields that differ from the CLI's defaults are written, so the command stays readable.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from typing import Any

from ..polynomial import check_inputs, loss_spec
from ..training.config import TrainConfig

# Fields the train command does not take: the test pass is always run by hand (it does not change
# the validation accuracy the fitness is), and a search's worker chooses its own threads.
# The losses' inputs travel in the --loss spec itself (taylorglo[x,y,t]:...).
_SKIPPED = {"eval_test", "threads", "loss_inputs"}


def train_argv(
    training: TrainConfig, params: Sequence[float] | None, seed: int, threads: int | None = None
) -> list[str]:
    """argv of ``taylorglo train`` for ``training`` with ``params`` (None: cross-entropy).
    ``threads``: the torch threads a recorded candidate trained with, which the floating-point
    result depends on (``--threads``), for a bit-exact reproduction."""
    defaults = TrainConfig()
    argv = ["taylorglo", "train"]
    for name, value in training.to_dict().items():
        if name in _SKIPPED or value == getattr(defaults, name):
            continue
        flag = "--" + name.replace("_", "-")
        if name in ("lr_decay", "aux_weights"):
            argv += [flag, ",".join(_num(v) for v in value)]
        elif name == "aux_losses":
            for spec in value:
                argv += [flag, spec]
        elif name == "nesterov":
            argv.append("--nesterov" if value else "--no-nesterov")
        elif name in ("model_options", "objective_options"):
            for key, option in value.items():
                argv += [flag[:-1], f"{key}={json.dumps(option)}"]
        elif name in ("dataset", "model"):
            argv += [flag, str(value)]
        else:
            argv += [flag, _num(value) if isinstance(value, float) else str(value)]
    if "--dataset" not in argv and training.objective is None:
        argv[2:2] = ["--dataset", training.dataset]
    if "--model" not in argv and training.objective is None:
        argv[4:4] = ["--model", training.model]
    loss = loss_spec(None if params is None else list(params), check_inputs(training.loss_inputs))
    argv += ["--loss", loss, "--seed", str(seed)]
    if threads is not None:
        argv += ["--threads", str(threads)]
    return argv


def train_command(training: TrainConfig, params: Sequence[float] | None, seed: int, threads: int | None = None) -> str:
    """:func:`train_argv` as one shell-quoted line."""
    return shlex.join(train_argv(training, params, seed, threads))


def _num(value: Any) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)
