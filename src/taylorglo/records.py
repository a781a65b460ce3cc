"""The rows an experiment keeps, as plain dataclasses: what a worker returns, the store writes and
readers read. No SQLite here (:mod:`taylorglo.experiment.store` maps them to tables), so the
evaluators, below the host, share them without importing it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: Final statuses of a candidate; "pending" means asked, not yet evaluated.
STATUSES = ("evaluated", "rejected-invariant", "failed", "aborted")


@dataclass
class Member:
    """One row of ``members``: EPBT member ``index`` during ``generation``.

    ``parent`` is the member of the previous generation whose network it continues (itself for
    ``action = "continue"``; None in generation 0, ``action = "init"``); ``"exploit"`` and
    ``"novelty"`` mark a copy with mutated genes. Paths are relative to the experiment directory.
    ``redraws`` counts the mutations the invariant rejected before this member's loss.
    """

    generation: int
    index: int
    parent: int | None
    action: str
    lr: float
    weight_decay: float
    start_step: int
    stop_step: int
    resume_from: str | None
    checkpoint: str
    distill: bool = False
    redraws: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Result:
    """What one training job came to, keyed by its job (:class:`~taylorglo.evaluators.base.Job`):
    ``generation``/``index`` are where it belongs (a candidate's or member's row, or a final
    run's loss id and repeat). The job's owner turns it into its own row (a store
    :class:`Candidate`, a :class:`FinalRun`); a worker never sees those."""

    generation: int
    index: int
    status: str
    fitness: float | None = None
    reason: str | None = None
    val_accuracy: float | None = None
    val_loss: float | None = None
    train_accuracy: float | None = None
    train_loss: float | None = None
    steps: int | None = None
    attempts: int | None = None
    wall_time: float | None = None
    step_time: float | None = None
    worker: str | None = None
    metrics: dict[str, Any] | None = None


@dataclass
class Candidate:
    """One row of the ``candidates`` table."""

    generation: int
    index: int
    params: list[float]
    seed: int
    status: str
    fitness: float | None = None
    reason: str | None = None
    val_accuracy: float | None = None
    val_loss: float | None = None
    train_accuracy: float | None = None
    train_loss: float | None = None
    steps: int | None = None
    attempts: int | None = None
    wall_time: float | None = None
    step_time: float | None = None
    worker: str | None = None
    finished_at: float | None = None
    metrics: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Generation:
    generation: int
    asked_state: bytes
    told_state: bytes | None
    opened_at: float
    closed_at: float | None
    sigma: float | None
    best_fitness: float | None
    mean_fitness: float | None
    min_fitness: float | None
    #: The search state after ``ask`` / after ``tell`` as plain data (``mean``, ``sigma``, ``C``),
    #: for readers; None where the kind keeps none or an older store has not been filled in.
    asked_summary: dict[str, Any] | None = None
    told_summary: dict[str, Any] | None = None

    @property
    def closed(self) -> bool:
        return self.told_state is not None

    def row(self) -> dict[str, Any]:
        """The generation's statistics as plain data (a row of ``taylorglo status``)."""
        return {
            "generation": self.generation,
            "best": self.best_fitness,
            "mean": self.mean_fitness,
            "min": self.min_fitness,
            "sigma": self.sigma,
        }

    @staticmethod
    def from_row(row: Sequence[Any]) -> Generation:
        values = list(row)
        for i in (9, 10):
            values[i] = None if values[i] is None else json.loads(values[i])
        return Generation(*values)


#: The label of the cross-entropy baseline among an experiment's final losses.
CROSS_ENTROPY_LABEL = "cross-entropy"
#: The plain-PBT baseline of an EPBT experiment's final (see :mod:`taylorglo.epbt.final`).
PBT_LABEL = "pbt"


@dataclass
class FinalLoss:
    """A loss chosen for the final evaluation; ``params`` None is the cross-entropy baseline."""

    id: int
    label: str
    params: list[float] | None
    source: str
    generation: int | None = None
    index: int | None = None
    pretrained: bool = False
    created_at: float | None = None


@dataclass
class FinalRun:
    """One full-schedule training of a final loss (one row of ``final_runs``)."""

    loss_id: int
    repeat: int
    seed: int
    status: str
    reason: str | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    val_accuracy: float | None = None
    val_loss: float | None = None
    steps: int | None = None
    attempts: int | None = None
    wall_time: float | None = None
    worker: str | None = None
    finished_at: float | None = None
    model_path: str | None = None
    metrics: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)
