"""taylorglo: loss-function metalearning for PyTorch classifiers.

The names most users need::

    from taylorglo import TaylorGLOLoss, invariant_holds, TrainConfig, train
    from taylorglo import init_experiment, start, status     # the experiment host
    from taylorglo import search                              # a search over your own training
    from taylorglo import run_final, compare, robustness_sweep, write_report   # the evidence

``TaylorGLOLoss(params)`` is a drop-in for ``nn.CrossEntropyLoss``; ``invariant_holds`` rejects
untrainable parameter vectors before any training; ``train`` trains a fresh network with a loss and
returns its metrics; ``init_experiment`` / ``start`` / ``status`` run a crash-safe CMA-ES search
over TaylorGLO losses in a directory, as ``taylorglo init|start|status`` do; ``run_final``,
``compare``, ``robustness_sweep`` and ``write_report`` are ``taylorglo final|compare|robustness|analyze``.
Every name is imported on first use (:mod:`taylorglo.lazy`): reading an experiment needs neither
torch nor scipy nor matplotlib, and a search's worker processes never need the last two.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import exports

__version__ = "0.1.0"

#: Each name and the module it lives in.
_EXPORTS = {
    "TaylorGLOError": ".errors",
    "invariant_holds": ".invariant",
    "TaylorGLOLoss": ".loss",
    "format_formula": ".polynomial",
    "from_paper_layout": ".polynomial",
    "num_params": ".polynomial",
    "to_paper_layout": ".polynomial",
    "TrainConfig": ".training.config",
    "TrainResult": ".training.trainer",
    "Trial": ".training.objective",
    "build_model": ".training.models",
    "load_dataset": ".training.data",
    "train": ".training.trainer",
    "CMAESSearch": ".cmaes",
    "ExperimentConfig": ".experiment.config",
    "init_experiment": ".experiment.host",
    "start": ".experiment.host",
    "search": ".experiment.python_api",
    "status": ".experiment.reading",
    "run_final": ".experiment.final",
    "compare": ".analysis.stats",
    "robustness_sweep": ".analysis.sweep",
    "write_report": ".analysis.report",
}

__getattr__, __dir__ = exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # what type checkers and IDEs see
    from .analysis.report import write_report
    from .analysis.stats import compare
    from .analysis.sweep import robustness_sweep
    from .cmaes import CMAESSearch
    from .errors import TaylorGLOError
    from .experiment.config import ExperimentConfig
    from .experiment.final import run_final
    from .experiment.host import init_experiment, start
    from .experiment.python_api import search
    from .experiment.reading import status
    from .invariant import invariant_holds
    from .loss import TaylorGLOLoss
    from .polynomial import format_formula, from_paper_layout, num_params, to_paper_layout
    from .training.config import TrainConfig
    from .training.data import load_dataset
    from .training.models import build_model
    from .training.objective import Trial
    from .training.trainer import TrainResult, train
