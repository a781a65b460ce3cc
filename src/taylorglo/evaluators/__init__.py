"""Where trainings run: one interface (:class:`Evaluator`), local processes or Ray; a
:class:`Job` and the :class:`Recipe` of what it trains.

Names are imported on first use (:mod:`taylorglo.lazy`): :mod:`.lending`'s record is read by
``status`` without torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import exports

_EXPORTS = {
    "Evaluator": ".base",
    "Job": ".base",
    "Recipe": ".recipes",
    "FreshRun": ".recipes",
    "ContinuedRun": ".recipes",
    "Stretch": ".recipes",
    "Replay": ".recipes",
    "evaluate_job": ".worker",
    "LocalEvaluator": ".local",
}

__getattr__, __dir__ = exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from .base import Evaluator, Job
    from .local import LocalEvaluator
    from .recipes import ContinuedRun, FreshRun, Recipe, Replay, Stretch
    from .worker import evaluate_job
