"""Where candidates are trained: one interface (:class:`Evaluator`), local processes or Ray."""

from .base import Evaluator, Job, evaluate_job
from .local import LocalEvaluator

__all__ = ["Evaluator", "Job", "LocalEvaluator", "evaluate_job"]
