"""The experiment host: config files, the SQLite store, init / start / status."""

from .config import EvaluatorConfig, ExperimentConfig, SearchConfig
from .host import init_experiment, open_experiment, start, status
from .store import Candidate, Store

__all__ = [
    "Candidate",
    "EvaluatorConfig",
    "ExperimentConfig",
    "SearchConfig",
    "Store",
    "init_experiment",
    "open_experiment",
    "start",
    "status",
]
