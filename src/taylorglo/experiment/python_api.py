"""``taylorglo.search(DIR, objective=fn, ...)``: a loss search over the user's own training from
Python, without a config file.

It writes the config a user would have written (kept in DIR beside the store, as ``init``
keeps one), makes the experiment or, called again with the same arguments, resumes it, and runs
it with :func:`~.host.start`: the same host, store, workers and resume as ``taylorglo start``.

Workers import the objective by name, so it must live where they can import it: a module, or a
script run as ``__main__`` (its worker processes re-import the script, so the call belongs under
``if __name__ == "__main__":``). A function from a notebook cell, a lambda or a nested function has
no importable name; that is said in one line, with what to do instead.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import TaylorGLOError
from .host import init_experiment, start

#: What ``taylorglo start`` from a shell, or a Ray worker, cannot import: the script that ran.
MAIN = "__main__"


def objective_ref(objective: Callable[..., Any] | str, evaluator: str = "local") -> str:
    """The ``"module:function"`` name workers import ``objective`` by; one line when there is none."""
    if isinstance(objective, str):
        return objective
    module, qualname = getattr(objective, "__module__", None), getattr(objective, "__qualname__", "")
    what = getattr(objective, "__name__", repr(objective))
    if not callable(objective) or not module or not qualname:
        raise TaylorGLOError(f"objective: expected a function or 'package.module:function', got {what!r}")
    if "<" in qualname:  # <lambda>, <locals>
        raise TaylorGLOError(
            f"objective: {qualname!r} has no name worker processes can import (a lambda or a function "
            "defined inside another); define it at the top level of a module"
        )
    if module == MAIN:
        main = sys.modules.get(MAIN)
        if getattr(main, "__file__", None) is None:
            raise TaylorGLOError(
                f"objective: {qualname!r} is defined in an interactive session (a notebook cell or the "
                "REPL), which worker processes cannot import; put it in a file beside the notebook "
                "(fit.py) and pass it from there: from fit import objective"
            )
        if evaluator != "local":
            raise TaylorGLOError(
                f"objective: {qualname!r} is defined in the script being run, which {evaluator} workers "
                "cannot import; move it into a module they can import (fit.py on PYTHONPATH)"
            )
    return f"{module}:{qualname}"


def search(
    directory: str | os.PathLike[str],
    objective: Callable[..., Any] | str | None = None,
    *,
    num_classes: int | None = None,
    options: dict[str, Any] | None = None,
    population: int = 12,
    generations: int = 20,
    partial_fraction: float = 0.1,
    seed: int = 0,
    workers: int | None = None,
    evaluator: str = "local",
    training: dict[str, Any] | None = None,
    name: str | None = None,
    **search_settings: Any,
) -> dict[str, Any]:
    """Search TaylorGLO losses in ``directory`` and return its :func:`~.reading.status`.

    ``objective(loss_fn, trial)`` is the user's training (see :mod:`taylorglo.training.objective`),
    with ``options`` as ``trial.options`` and ``num_classes`` for the invariant; without one,
    ``training`` is a ``[training]`` table for the built-in trainer. ``search_settings`` are further
    ``[search]`` fields (``sigma``, ``invariant``, ...). Called again on the same ``directory``
    with the same arguments, it resumes; with different ones, it refuses.
    """
    table: dict[str, Any] = dict(training or {})
    if objective is not None:
        table.update(objective=objective_ref(objective, evaluator), num_classes=num_classes)
        if options:
            table["objective_options"] = dict(options)
    elif num_classes is not None or options:
        raise TaylorGLOError("num_classes / options: given without an objective; pass objective=your_function")
    config = {
        "name": name or Path(directory).name,
        "kind": "taylorglo",
        "seed": seed,
        "training": table,
        "search": {
            "population": population,
            "generations": generations,
            "partial_fraction": partial_fraction,
            **search_settings,
        },
        "evaluator": {"kind": evaluator, **({"workers": workers} if workers is not None else {})},
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_text(json.dumps(config, indent=2) + "\n")
        init_experiment(directory, path, exist_ok=True)
    return start(directory)
