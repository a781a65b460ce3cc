"""taylorglo: loss-function metalearning for PyTorch classifiers.

The names most users need::

    from taylorglo import TaylorGLOLoss, invariant_holds, TrainConfig, train
    from taylorglo import init_experiment, start, status     # the experiment host
    from taylorglo import run_final, compare, robustness_sweep, write_report   # the evidence

``TaylorGLOLoss(params)`` is a drop-in for ``nn.CrossEntropyLoss``; ``invariant_holds`` rejects
untrainable parameter vectors before any training; ``train`` trains a fresh network with a loss and
returns its metrics; ``init_experiment`` / ``start`` / ``status`` run a crash-safe CMA-ES search
over TaylorGLO losses in a directory, as ``taylorglo init|start|status`` do; ``run_final``,
``compare``, ``robustness_sweep`` and ``write_report`` are ``taylorglo final|compare|robustness|analyze``.
The last four are imported on first use: they pull in scipy and matplotlib, which a search's
worker processes (which import this package) never need.
"""

import importlib
from typing import Any

from .errors import TaylorGLOError
from .invariant import invariant_holds
from .loss import TaylorGLOLoss, format_formula, from_paper_layout, num_params, to_paper_layout
from .training import TrainConfig, TrainResult, build_model, load_dataset, train
from .search import CMAESSearch
from .experiment import ExperimentConfig, init_experiment, start, status

__version__ = "0.1.0"

#: Names imported on first access (module, attribute): see the module docstring.
_LAZY = {
    "run_final": ("taylorglo.experiment.final", "run_final"),
    "compare": ("taylorglo.analysis.stats", "compare"),
    "robustness_sweep": ("taylorglo.analysis.sweep", "robustness_sweep"),
    "write_report": ("taylorglo.analysis.report", "write_report"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'taylorglo' has no attribute {name!r}")

__all__ = [
    "CMAESSearch",
    "ExperimentConfig",
    "init_experiment",
    "start",
    "status",
    "TaylorGLOError",
    "TaylorGLOLoss",
    "TrainConfig",
    "TrainResult",
    "format_formula",
    "from_paper_layout",
    "invariant_holds",
    "load_dataset",
    "build_model",
    "num_params",
    "to_paper_layout",
    "train",
    *_LAZY,
]

