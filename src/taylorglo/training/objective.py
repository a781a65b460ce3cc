"""The user's own training as a candidate's fitness: ``[training] objective = "pkg.mod:fn"``.

The objective is a plain callable, as pycma's objectives and Optuna's are: ``objective(loss_fn,
trial) -> fitness`` (a float, higher is better) or a dict with ``"fitness"`` and any other numbers
to record. ``loss_fn`` is the candidate's loss as a module called like ``nn.CrossEntropyLoss``;
:class:`Trial` says what to train (``seed``, ``phase``, ``budget``, ``options``, ``device``,
``threads``) and carries the two ways back into taylorglo: :meth:`Trial.report` (early abort, under
the config's ``abort_at`` / ``abort_below``) and :meth:`Trial.save_model`.

Whatever goes wrong inside the user's code is that candidate's failure, recorded with the first
line of the exception and where it was raised, and the search goes on: the same promise the
built-in trainer keeps for a diverging loss.
"""

from __future__ import annotations

import math
import numbers
import os
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import TaylorGLOError, one_line
from ..plugins import resolve_plugin
from .config import TrainConfig
from .trainer import RETRY_SEED_STRIDE, TrainResult, resolve_device

#: The numbers a returned dict may carry that are the columns every candidate and final run has.
KNOWN = ("val_accuracy", "val_loss", "test_accuracy", "test_loss", "train_accuracy", "train_loss")
PHASES = ("search", "final")


class Aborted(Exception):
    """Raised by :meth:`Trial.report` to stop the objective when the abort rule says so. An
    objective that catches every exception should re-raise this one."""


@dataclass
class Trial:
    """What one evaluation of the objective is asked to do, and its way to report back.

    ``budget`` is the share of the full schedule to train: ``search.partial_fraction`` in a search,
    1.0 in ``final`` (scale epochs or steps by it). ``seed`` changes with every candidate and
    repeat; the objective should seed its model and data order from it, which is what makes a
    resumed search give the results an uninterrupted one would.
    """

    seed: int
    phase: str
    budget: float
    options: dict[str, Any]
    device: torch.device
    threads: int
    num_classes: int
    attempt: int = 1
    _abort_at: float | None = None
    _abort_below: float = 0.0
    reports: list[dict[str, float]] = field(default_factory=list)
    model: nn.Module | None = field(default=None, repr=False)
    model_data: dict[str, Any] | None = field(default=None, repr=False)

    def report(self, step: float, value: float) -> None:
        """Record an intermediate value (validation accuracy, say) at ``step`` (the objective's
        own unit: epochs or steps). At the first report at or past ``abort_at``, a value below
        ``abort_below`` aborts this attempt (raises :class:`Aborted`); the candidate is retried
        with a fresh seed up to ``attempts`` times, like the built-in trainer's early abort."""
        self.reports.append({"step": float(step), "value": float(value)})
        at = self._abort_at
        if at is None or float(step) < at or sum(1 for r in self.reports if r["step"] >= at) > 1:
            return
        if float(value) < self._abort_below:
            raise Aborted(f"early abort: {value:.4g} < {self._abort_below:g} at step {step:g}")

    def save_model(
        self,
        module: nn.Module,
        inputs: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
        input_range: tuple[float, float] | None = None,
    ) -> None:
        """Keep the trained network: ``final`` saves it with the run. ``taylorglo robustness``
        attacks it on ``inputs`` / ``targets`` (a test split: the objective's data is its own, so
        the file carries what to attack) and clips perturbed inputs to ``input_range`` (``(0, 1)``
        for images; None for features, which have no valid range). The module is pickled whole, so
        its class must be importable where ``robustness`` runs."""
        if not isinstance(module, nn.Module):
            raise TypeError(f"trial.save_model takes a torch.nn.Module, got {type(module).__name__}")
        if (inputs is None) != (targets is None):
            raise TypeError("trial.save_model: give inputs and targets together (a test split to attack), or neither")
        if inputs is not None and targets is not None:
            if not isinstance(inputs, torch.Tensor) or not isinstance(targets, torch.Tensor):
                raise TypeError("trial.save_model: inputs and targets must be tensors")
            if len(inputs) != len(targets):
                raise TypeError(f"trial.save_model: {len(inputs)} inputs but {len(targets)} targets")
        if input_range is not None:
            lo, hi = (float(v) for v in input_range)
            if not lo < hi:
                raise TypeError(f"trial.save_model: input_range must be (low, high) with low < high, got {input_range}")
            input_range = (lo, hi)
        self.model = module
        self.model_data = None
        if inputs is not None and targets is not None:
            self.model_data = {
                "inputs": inputs.detach().cpu(),
                "targets": targets.detach().cpu(),
                "input_range": input_range,
            }


def run_objective(
    training: TrainConfig, loss_fn: nn.Module, seed: int, phase: str, threads: int
) -> tuple[TrainResult, dict[str, Any]]:
    """Call ``training.objective`` for one candidate (or final repeat) and turn what it returns,
    raises or reports into a :class:`TrainResult` and the extra metrics to record."""
    assert training.objective is not None
    objective = load_objective(training.objective)
    device = resolve_device(training.device)
    started = time.perf_counter()
    metrics: dict[str, Any] = {}
    status, reason, fitness, known, trial = "failed", None, None, {}, None
    for attempt in range(training.attempts):
        trial = Trial(
            seed=seed + attempt * RETRY_SEED_STRIDE,
            phase=phase,
            budget=training.partial_fraction,
            options=dict(training.objective_options),
            device=device,
            threads=threads,
            num_classes=int(training.num_classes or 0),
            attempt=attempt + 1,
            _abort_at=training.abort_at,
            _abort_below=training.abort_below,
        )
        try:
            returned = objective(loss_fn, trial)
        except Aborted as exc:
            status, reason = "aborted", str(exc)
            continue
        except TaylorGLOError:
            raise
        except Exception as exc:  # the user's code failed: this candidate's failure, not the search's
            status, reason = "failed", _where(exc)
            break
        status, reason, fitness, known, metrics = _read(returned)
        break
    assert trial is not None
    wall = time.perf_counter() - started
    if trial.reports:
        metrics["reports"] = trial.reports
    result = TrainResult(
        status=status,
        reason=reason,
        val_accuracy=known.get("val_accuracy"),  # type: ignore[arg-type]
        val_loss=known.get("val_loss"),  # type: ignore[arg-type]
        test_accuracy=known.get("test_accuracy"),
        test_loss=known.get("test_loss"),
        train_accuracy=known.get("train_accuracy"),
        train_loss=known.get("train_loss"),
        steps=len(trial.reports),
        total_steps=len(trial.reports),
        attempts=trial.attempt,
        seed=trial.seed,
        wall_time=wall,
        step_time=wall,
        fitness=fitness,
        model=trial.model,
        model_data=trial.model_data,
    )
    return result, metrics


def load_objective(ref: str) -> Any:
    """The function ``ref`` names; one line when this process cannot import it."""
    try:
        return resolve_plugin(ref, "training.objective")
    except TaylorGLOError:
        if ref.startswith("__main__:"):
            raise TaylorGLOError(
                f"training.objective: {ref!r} was defined in the script that started the experiment, which "
                "this process cannot import; resume it by running that script again (taylorglo.search "
                "resumes), or move the function into an importable module and name it there"
            ) from None
        raise


def _read(returned: Any) -> tuple[str, str | None, float | None, dict[str, float], dict[str, Any]]:
    """(status, reason, fitness, known columns, other metrics) from what the objective returned."""
    expected = "expected a number (the fitness, higher is better) or a dict with a 'fitness' number"
    if isinstance(returned, dict):
        if "fitness" not in returned:
            keys = ", ".join(map(str, returned)) or "none"
            return "failed", f"objective returned a dict without 'fitness' (keys: {keys}); {expected}", None, {}, {}
        value, rest = returned["fitness"], {k: v for k, v in returned.items() if k != "fitness"}
    else:
        value, rest = returned, {}
    if not _is_number(value):
        return (
            "failed",
            f"objective returned {type(value).__name__} {value!r:.60} as the fitness; {expected}",
            None,
            {},
            {},
        )
    fitness = float(value)
    if not math.isfinite(fitness):
        return "failed", f"objective returned a non-finite fitness ({fitness})", None, {}, {}
    name = rest.pop("fitness_name", None)
    # The names it returned, so candidates.csv gives each its column (records.tables).
    metrics: dict[str, Any] = {"objective_fitness": fitness, "objective_metrics": [str(k) for k in rest]}
    if name is not None:
        metrics["fitness_name"] = str(name)
    known: dict[str, float] = {}
    for key, v in rest.items():
        if _is_number(v):
            metrics[str(key)] = float(v)
            if key in KNOWN:
                known[key] = float(v)
        elif isinstance(v, (str, bool, list)) or v is None:
            metrics[str(key)] = v
        else:
            metrics[str(key)] = repr(v)[:200]
    return "ok", None, fitness, known, metrics


def _where(exc: BaseException) -> str:
    """``Type: first line (at file.py:123 in fn)``: the frame that raised, where the user looks."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno} in {frames[-1].name})" if frames else ""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {one_line(first) if first else type(exc).__name__}{where}"


def _is_number(value: Any) -> bool:
    """A real number: Python's, numpy's, or a one-element real tensor (``acc.item()`` forgotten)."""
    if isinstance(value, torch.Tensor):
        return value.numel() == 1 and not value.dtype.is_complex and value.dtype != torch.bool
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
