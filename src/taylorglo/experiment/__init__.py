"""The experiment host: config files, the SQLite store, init / start / status.

Names are imported on first use (:mod:`taylorglo.lazy`): reading an experiment
(:mod:`.reading`) needs neither torch nor the search."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import exports

_EXPORTS = {
    "Candidate": "..records",
    "EvaluatorConfig": "..evaluators.config",
    "ExperimentConfig": ".config",
    "Store": ".store",
    "init_experiment": ".host",
    "open_experiment": ".reading",
    "search": ".python_api",
    "start": ".host",
    "status": ".reading",
}

__getattr__, __dir__ = exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from ..evaluators.config import EvaluatorConfig
    from ..records import Candidate
    from .config import ExperimentConfig
    from .host import init_experiment, start
    from .python_api import search
    from .reading import open_experiment, status
    from .store import Store
