"""Training: configuration, datasets, models and the one training loop every caller shares."""

from .config import Schedule, TrainConfig
from .data import DATASET_NAMES, DataSplits, load_dataset
from .models import MODEL_NAMES, build_model
from .trainer import TrainResult, evaluate, train

__all__ = [
    "DATASET_NAMES",
    "MODEL_NAMES",
    "DataSplits",
    "Schedule",
    "TrainConfig",
    "TrainResult",
    "build_model",
    "evaluate",
    "load_dataset",
    "train",
]
