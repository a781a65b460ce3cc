"""taylorglo: loss-function metalearning for PyTorch classifiers.

The names most users need::

    from taylorglo import TaylorGLOLoss, invariant_holds, TrainConfig, train
    from taylorglo import init_experiment, start, status     # the experiment host

``TaylorGLOLoss(params)`` is a drop-in for ``nn.CrossEntropyLoss``; ``invariant_holds`` rejects
untrainable parameter vectors before any training; ``train`` trains a fresh network with a loss and
returns its metrics; ``init_experiment`` / ``start`` / ``status`` run a crash-safe CMA-ES search
over TaylorGLO losses in a directory, as ``taylorglo init|start|status`` do.
"""

from .errors import TaylorGLOError
from .invariant import invariant_holds
from .loss import TaylorGLOLoss, format_formula, from_paper_layout, num_params, to_paper_layout
from .training import TrainConfig, TrainResult, build_model, load_dataset, train
from .search import CMAESSearch
from .experiment import ExperimentConfig, init_experiment, start, status

__version__ = "0.1.0"

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
]

