"""The evaluator interface: what a host hands jobs to.

A host hands an :class:`Evaluator` a batch of :class:`Job` s and receives each one's
:class:`~taylorglo.records.Result` the moment it ends, in any order, keyed by its job. Where the jobs run
(worker processes on this machine, a Ray cluster) is the evaluator's business alone; the search and
the host never change when another evaluator slots in.

Every evaluator's workers run :func:`.worker.evaluate_job`, so a candidate's fitness is computed
the same way everywhere. This module imports no torch: a search's host imports it, and never
needs torch itself (it asks :meth:`Evaluator.facts` instead).
"""

from __future__ import annotations

import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..records import Result
from ..training.facts import TrainingFacts
from ..training.trainers import probe
from .lending import Lending
from .recipes import Recipe

if TYPE_CHECKING:
    from ..training.config import TrainConfig


@dataclass(frozen=True)
class Job:
    """One training to run: where its result belongs, its seed, what it trains (its
    :class:`~.recipes.Recipe`) and what to measure and keep.

    ``generation``/``index`` are the result's key, whatever its owner keeps there (a search
    candidate's or an EPBT member's row; a final run's loss id and repeat). ``fgsm_epsilon``
    makes the fitness the validation accuracy under an FGSM attack of that size instead of the
    clean one; ``save_model`` keeps the trained network there.
    """

    generation: int
    index: int
    recipe: Recipe
    seed: int
    fgsm_epsilon: float | None = None
    save_model: str | None = None
    #: Torch threads for this job instead of the worker's own: the host sets them from the
    #: experiment's recorded layout, so that a result never depends on who runs it.
    threads: int | None = None

    def failed(self, reason: str, worker: str | None = None, metrics: dict[str, Any] | None = None) -> Result:
        """The result of this job when it could not train (its worker died, the training raised):
        fitness 0 and the reason, in at most 500 characters."""
        return Result(
            generation=self.generation,
            index=self.index,
            status="failed",
            fitness=0.0,
            reason=reason[:500],
            worker=worker,
            metrics=metrics,
        )

    def fail(self, reason: str, worker: str | None = None, metrics: dict[str, Any] | None = None) -> list[Result]:
        """:meth:`failed` as a list: what an evaluator yields for a unit of work that could not
        run (a job, or a :class:`JobStack` of them)."""
        return [self.failed(reason, worker, metrics)]

    @property
    def jobs(self) -> tuple[Job, ...]:
        """The jobs this unit of work holds: itself (a :class:`JobStack` holds several)."""
        return (self,)

    @property
    def label(self) -> str:
        """What a log line calls it: ``job 3:1``."""
        return f"job {self.generation}:{self.index}"

    def reads(self) -> list[str]:
        """Files the job reads: an evaluator whose workers do not share this disk ships them."""
        return self.recipe.reads()

    def writes(self) -> list[str]:
        """Files the job writes, to be brought back by such an evaluator."""
        return ([self.save_model] if self.save_model else []) + self.recipe.writes()

    def relocated(self, paths: dict[str, str]) -> Job:
        """This job with the files of :meth:`reads`/:meth:`writes` renamed by ``paths``."""
        save_model = paths.get(self.save_model, self.save_model) if self.save_model else None
        return replace(self, recipe=self.recipe.relocated(paths), save_model=save_model)


@dataclass(frozen=True)
class JobStack:
    """Jobs one worker trains at once as a vectorized population (their recipe's
    :meth:`~.recipes.Recipe.train_stack`); an evaluator dispatches it like a job and gets one
    result per job back. Formed by :meth:`Evaluator.units`."""

    jobs: tuple[Job, ...]

    @property
    def generation(self) -> int:
        return self.jobs[0].generation

    @property
    def index(self) -> int:
        return self.jobs[0].index

    @property
    def threads(self) -> int | None:
        return self.jobs[0].threads

    def fail(self, reason: str, worker: str | None = None, metrics: dict[str, Any] | None = None) -> list[Result]:
        return [job.failed(reason, worker, metrics) for job in self.jobs]

    def reads(self) -> list[str]:
        return [path for job in self.jobs for path in job.reads()]

    def writes(self) -> list[str]:
        return [path for job in self.jobs for path in job.writes()]

    def relocated(self, paths: dict[str, str]) -> JobStack:
        return JobStack(tuple(job.relocated(paths) for job in self.jobs))

    @property
    def label(self) -> str:
        """``jobs 3:0, 3:1, ...``."""
        return f"jobs {', '.join(f'{j.generation}:{j.index}' for j in self.jobs)}"


#: What an evaluator hands one worker: a job, or a stack of them.
Unit = Job | JobStack


#: ``vectorize = "auto"`` stacks where a training step on a CPU does fewer multiply-accumulates
#: than this: such a step is mostly the per-call overhead a stack shares among its members, a
#: costlier one is compute-bound and stacking it only adds the cost of batched kernels (the
#: README's Performance has the measurements). Lending's threshold, seen from the other side.
AUTO_BELOW_MACS = 10_000_000
#: The stack size ``"auto"`` asks for where it stacks: a whole batch of jobs, split over the workers.
AUTO_STACK = 1024


def auto_vectorize(facts: TrainingFacts, optimizer: str = "sgd") -> tuple[int, str]:
    """What ``vectorize = "auto"`` chooses for a training with these facts and optimizer, and
    why, in words."""
    if not facts.step_macs:
        return 1, "the objective trains its own networks"
    if facts.aux_heads:
        return 1, "a stack trains no auxiliary heads, and this network has them"
    if optimizer != "sgd":
        return 1, f"a stack steps with SGD, and this training uses {optimizer}"
    if facts.device != "cpu":
        return 1, f"no rule for {facts.device} yet; set vectorize = N to stack there"
    if facts.step_macs < AUTO_BELOW_MACS:
        return AUTO_STACK, f"a step does {facts.step_macs:.3g} multiply-accumulates, below {AUTO_BELOW_MACS:.0e}"
    return 1, f"a step does {facts.step_macs:.3g} multiply-accumulates, compute-bound from {AUTO_BELOW_MACS:.0e}"


def plan_stacks(jobs: Sequence[Job], size: int, workers: int = 1) -> list[Unit]:
    """``jobs`` as units of work: jobs whose recipes share a stack key
    (:meth:`~.recipes.Recipe.stack_key`: fresh runs of the built-in trainer; EPBT stretches over
    the same steps; replays of schedules over the same stretches) and threads, in
    :class:`JobStack` s of at most ``size``, in the order given, split evenly enough that
    ``workers`` workers all get one; every other job alone.

    A member's result does not depend on its stack's size or mates
    (:mod:`taylorglo.training.population`), so how the jobs happen to be split (a generation
    resumed with fewer jobs pending, another number of workers) never changes what they compute;
    for that, a stackable job left over alone still trains as a stack (of one), never as a lone
    ``train``, whose floating-point order differs."""
    if size <= 1:
        return list(jobs)
    stackable = sum(1 for job in jobs if job.recipe.stack_key() is not None)
    size = min(size, max(1, -(-stackable // max(1, workers))))
    units: list[Unit] = []
    open_stacks: dict[tuple[Any, ...], list[Job]] = {}
    for job in jobs:
        key = job.recipe.stack_key()
        if key is None:
            units.append(job)
            continue
        stack = open_stacks.setdefault((job.threads, type(job.recipe), key), [])
        stack.append(job)
        if len(stack) == size:
            units.append(JobStack(tuple(stack)))
            stack.clear()
    units += [JobStack(tuple(stack)) for stack in open_stacks.values() if stack]
    return units


class Evaluator(ABC):
    """Runs fitness evaluations; see the module docstring."""

    #: How many evaluations run at once (for progress estimates).
    workers: int = 1
    #: How many of a batch's fresh runs a worker trains at once as one vectorized population
    #: (``[evaluator] vectorize``; 1: one at a time). The host sets it from the experiment's record.
    vectorize: int = 1

    def units(self, jobs: Sequence[Job]) -> list[Unit]:
        """``jobs`` as the units each worker is handed (:func:`plan_stacks` by :attr:`vectorize`)."""
        return plan_stacks(jobs, self.vectorize, self.workers)

    #: The training every job runs (its schedule, network, data).
    training: TrainConfig
    _facts: TrainingFacts | None = None

    @abstractmethod
    def evaluate(self, jobs: Sequence[Job]) -> Iterator[Result]:
        """Yield one result per job as each finishes. A problem with the *configuration*
        (missing dataset, bad plug-in) raises :class:`TaylorGLOError`; a bad *candidate* is a
        ``failed`` result, never an exception."""

    #: Torch threads a training gets on this evaluator by default (jobs may carry their own).
    threads: int = 1
    #: Where the evaluator reports what the host's log should say (a worker that died, and the
    #: job it held); ``start`` and ``final`` point it at ``host.log``.
    log: Callable[[str], None] | None = None

    def note(self, line: str) -> None:
        if self.log is not None:
            self.log(line)

    def facts(self) -> TrainingFacts:
        """What the host needs to know about :attr:`training` before it dispatches (the data's
        size and classes, a step's cost, the device), after the checks that fail a bad config
        in one line (:func:`~taylorglo.training.facts.probe`). Found once; here, by default,
        which imports torch and loads the data: an evaluator whose workers load it anyway asks
        one of them instead (:class:`~.local.LocalEvaluator`)."""
        if self._facts is None:
            self._facts = self._probe()
        return self._facts

    def _probe(self) -> TrainingFacts:
        return probe(self.training)

    def lending(self) -> Lending | None:
        """The workers, threads and shared cores this evaluator could lend at a generation's
        barrier (:meth:`Lending.plan`: when ``n`` trainings are not a multiple of the workers,
        the last ``n mod workers`` run while the other workers have nothing left to do, and
        can get their cores); None where its workers share no cores (the default)."""
        return None

    def layout(self) -> Lending:
        """How this evaluator would train now: workers at once, threads each, cores they span.
        An experiment records the layout of its first run and keeps to it
        (:mod:`taylorglo.experiment.threads`)."""
        return self.lending() or Lending(self.workers, self.threads, self.workers * self.threads)

    def close(self) -> None:  # noqa: B027 (optional: an evaluator without workers has nothing to release)
        """Release workers. Idempotent."""

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"
