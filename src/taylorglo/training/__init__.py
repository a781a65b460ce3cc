"""Training: configuration, datasets, models and the one training loop every caller shares.

Names are imported on first use (:mod:`taylorglo.lazy`): :mod:`.config` needs no torch, and a
command that only reads an experiment's config should not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import exports

_EXPORTS = {
    "DATASET_NAMES": ".names",
    "MODEL_NAMES": ".names",
    "DataSplits": ".data",
    "Schedule": ".config",
    "TrainConfig": ".config",
    "TrainResult": ".trainer",
    "build_model": ".models",
    "evaluate": ".trainer",
    "load_dataset": ".data",
    "train": ".trainer",
}

__getattr__, __dir__ = exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .config import Schedule, TrainConfig
    from .data import DataSplits, load_dataset
    from .models import build_model
    from .names import DATASET_NAMES, MODEL_NAMES
    from .trainer import TrainResult, evaluate, train
