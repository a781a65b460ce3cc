"""The evaluator interface, and the one function that turns a candidate into a result.

A search hands an :class:`Evaluator` a batch of :class:`Job` s and receives each finished
:class:`~taylorglo.experiment.store.Candidate` the moment it ends, in any order. Where the jobs run
(worker processes on this machine, a Ray cluster) is the evaluator's business alone; the search and
the host never change when another evaluator slots in.

Every evaluator runs :func:`evaluate_job`, so a candidate's fitness is computed the same way
everywhere, and by the same :func:`~taylorglo.training.train` that ``taylorglo train``, ``final``
and EPBT use.
"""

from __future__ import annotations

import os
import socket
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Iterator, Sequence

from ..errors import TaylorGLOError, one_line
from ..experiment.store import Candidate
from ..training.config import TrainConfig
from ..training.data import DataSplits
from ..training.trainer import train


@dataclass(frozen=True)
class Job:
    """One candidate to evaluate: where it belongs, its parameters and its training seed."""

    generation: int
    index: int
    params: tuple[float, ...]
    seed: int


class Evaluator(ABC):
    """Runs fitness evaluations; see the module docstring."""

    #: How many evaluations run at once (for progress estimates).
    workers: int = 1

    @abstractmethod
    def evaluate(self, jobs: Sequence[Job]) -> Iterator[Candidate]:
        """Yield one result per job as each finishes. A problem with the *configuration*
        (missing dataset, bad plug-in) raises :class:`TaylorGLOError`; a bad *candidate* is a
        ``failed`` result, never an exception."""

    def close(self) -> None:
        """Release workers. Idempotent."""

    def __enter__(self) -> "Evaluator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def evaluate_job(training: TrainConfig, job: Job, data: DataSplits | None = None) -> Candidate:
    """Train ``job``'s loss for ``training``'s schedule; fitness = final validation accuracy.

    Fitness is 0 for a run that failed (NaN/inf loss, an exception inside training) or was
    early-aborted on every attempt (SPEC §2); the reason and all metrics are kept.
    """
    try:
        result = train(training, list(job.params), seed=job.seed, data=data)
    except TaylorGLOError:
        raise
    except Exception as exc:  # a numerical blow-up deep inside torch is the candidate's fault
        return Candidate(
            generation=job.generation, index=job.index, params=list(job.params), seed=job.seed,
            status="failed", fitness=0.0, reason=f"{type(exc).__name__}: {one_line(exc)}"[:500],
            worker=worker_name(),
        )
    status = {"ok": "evaluated", "aborted": "aborted", "failed": "failed"}[result.status]
    return Candidate(
        generation=job.generation,
        index=job.index,
        params=list(job.params),
        seed=job.seed,
        status=status,
        fitness=result.val_accuracy if status == "evaluated" else 0.0,
        reason=result.reason,
        val_accuracy=result.val_accuracy,
        val_loss=result.val_loss,
        train_accuracy=result.train_accuracy,
        train_loss=result.train_loss,
        steps=result.steps,
        attempts=result.attempts,
        wall_time=result.wall_time,
        step_time=result.step_time,
        worker=worker_name(),
        metrics=result.to_dict(history=True),
    )
