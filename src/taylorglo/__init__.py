"""taylorglo: loss-function metalearning for PyTorch classifiers.

The names most users need::

    from taylorglo import TaylorGLOLoss, invariant_holds, TrainConfig, train

``TaylorGLOLoss(params)`` is a drop-in for ``nn.CrossEntropyLoss``; ``invariant_holds`` rejects
untrainable parameter vectors before any training; ``train`` trains a fresh network with a loss and
returns its metrics.
"""

from .errors import TaylorGLOError
from .invariant import invariant_holds
from .loss import TaylorGLOLoss, format_formula, from_paper_layout, num_params, to_paper_layout
from .training import TrainConfig, TrainResult, build_model, load_dataset, train

__version__ = "0.1.0"

__all__ = [
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

