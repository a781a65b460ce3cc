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
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, Sequence

from ..errors import TaylorGLOError, one_line
from ..experiment.store import Candidate
from ..training.config import TrainConfig
from ..polynomial import loss_spec
from ..training.checkpoint import load_state, save_network, save_state
from ..training.data import DataSplits, load_dataset
from ..training.trainer import ScheduleStep, Segment, as_loss, train, train_schedule
from .lending import Lending


@dataclass(frozen=True)
class SegmentSpec:
    """An EPBT member's next stretch of training (its steps, loss, hyperparameters and
    distillation), continuing the state in ``resume_from`` (None: a fresh network) and saving the
    state reached to ``save_to``. The job's ``params`` are the stretch's."""

    stretch: ScheduleStep
    save_to: str
    resume_from: str | None = None


@dataclass(frozen=True)
class Job:
    """One training to run: where its result belongs, the loss, the seed, and what to measure.

    A search's candidates and ``final`` 's repeats are both jobs: ``generation``/``index`` place the
    result (for ``final``, the final loss's id and the repeat). ``params`` None trains with
    cross-entropy, the baseline. ``fgsm_epsilon`` makes the fitness the validation accuracy under an
    FGSM attack of that size instead of the clean one; ``save_model`` keeps the trained network.
    ``pretrained = (seed0, steps)`` replays the first ``steps`` steps of the run ``seed0`` makes (a
    candidate's partial run) and continues from there with ``seed`` ("from pretrained", SPEC §4).
    """

    generation: int
    index: int
    params: tuple[float, ...] | None
    seed: int
    fgsm_epsilon: float | None = None
    save_model: str | None = None
    pretrained: tuple[int, int] | None = None
    segment: SegmentSpec | None = None
    #: Train through this loss/hyperparameter schedule instead of one loss (an EPBT lineage
    #: replayed by ``final``); ``params`` is then the schedule's last loss, the network's own.
    schedule: tuple[ScheduleStep, ...] | None = None
    #: Torch threads for this job instead of the worker's own: the host sets them from the
    #: experiment's recorded layout, so that a result never depends on who runs it.
    threads: int | None = None

    def reads(self) -> list[str]:
        """Files the job reads: an evaluator whose workers do not share this disk ships them."""
        return [self.segment.resume_from] if self.segment and self.segment.resume_from else []

    def writes(self) -> list[str]:
        """Files the job writes, to be brought back by such an evaluator."""
        out = [self.save_model] if self.save_model else []
        return out + ([self.segment.save_to] if self.segment else [])

    def relocated(self, paths: dict[str, str]) -> "Job":
        """This job with the files of :meth:`reads`/:meth:`writes` renamed by ``paths``."""
        segment = self.segment
        if segment is not None:
            segment = replace(segment, save_to=paths.get(segment.save_to, segment.save_to),
                              resume_from=paths.get(segment.resume_from or "", segment.resume_from))
        save_model = paths.get(self.save_model, self.save_model) if self.save_model else None
        return replace(self, segment=segment, save_model=save_model)


class Evaluator(ABC):
    """Runs fitness evaluations; see the module docstring."""

    #: How many evaluations run at once (for progress estimates).
    workers: int = 1

    @abstractmethod
    def evaluate(self, jobs: Sequence[Job]) -> Iterator[Candidate]:
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

    def lending(self) -> "Lending | None":
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

    def close(self) -> None:
        """Release workers. Idempotent."""

    def __enter__(self) -> "Evaluator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class WorkerState:
    """What every worker (a local process, a Ray actor) holds for its whole life, and runs jobs on.

    Made once, before the first job, and timed: it loads the dataset (unless ``data`` arrived with
    the worker) and pays PyTorch's one-off costs, so that a candidate's recorded time is its own.
    The timings go out once, in the metrics of the worker's first result (``worker_startup``):
    ``process_start`` (from ``requested_at``, the driver's clock when it asked for the worker, to
    this code running: interpreter start, imports, receiving the arguments; meaningful where both
    clocks agree), ``warm_up`` and ``data_load``, in seconds. That is how ``benchmarks/throughput.py`` tells start-up from training, and how a
    user sees why a search's first candidates take longer.
    """

    def __init__(self, training: dict[str, Any], threads: int, requested_at: float | None,
                 data: DataSplits | None = None) -> None:
        entered = time.time()
        import torch

        self.threads = threads
        torch.set_num_threads(threads)
        t = time.perf_counter()
        # The first optimizer built in a process lazily imports torch._dynamo (~1 s); pay it here,
        # not inside the first candidate's recorded wall time.
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        warm_up = time.perf_counter() - t
        self.training = TrainConfig(**training)
        t = time.perf_counter()
        self.data: DataSplits | BaseException | None = data
        if data is None:
            try:
                self.data = load_dataset(self.training.dataset, self.training.data_dir, self.training.data_fraction,
                                         field="training.dataset")
            except Exception as exc:  # reported with the first job, as a configuration error
                self.data = exc
        self.marks: dict[str, float] | None = {
            "process_start": max(0.0, entered - requested_at) if requested_at is not None else 0.0,
            "warm_up": warm_up, "data_load": time.perf_counter() - t,
        }

    def run(self, job: "Job") -> Candidate:
        """:func:`evaluate_job` on this worker's data (raising the dataset's error, if loading
        failed), with the job's threads if it has its own; the threads used go in its metrics."""
        import torch

        if isinstance(self.data, BaseException):
            raise self.data
        threads = job.threads or self.threads
        torch.set_num_threads(threads)
        try:
            result = evaluate_job(self.training, job, self.data)
        finally:
            torch.set_num_threads(self.threads)
        result.metrics = {**(result.metrics or {}), "threads": threads}
        if self.marks is not None:  # the start-up timings go out with the worker's first result
            result.metrics["worker_startup"] = self.marks
            self.marks = None
        return result


def evaluate_job(training: TrainConfig, job: Job, data: DataSplits | None = None) -> Candidate:
    """Train ``job``'s loss for ``training``'s schedule; fitness = final validation accuracy
    (under FGSM at ``job.fgsm_epsilon`` when set).

    Fitness is 0 for a run that failed (NaN/inf loss, an exception inside training) or was
    early-aborted on every attempt (SPEC §2); the reason and all metrics are kept.
    """
    params = None if job.params is None else list(job.params)
    if data is None:
        data = load_dataset(training.dataset, training.data_dir, training.data_fraction, field="training.dataset")
    keep = job.fgsm_epsilon is not None or job.save_model is not None
    fgsm_accuracy = None
    try:
        loss_fn = as_loss(params, training.round_params)
        seed, reseed = job.seed, None
        if job.pretrained is not None:
            seed, reseed = job.pretrained[0], (job.pretrained[1], job.seed)
        run, segment = _segment(training, job.segment, data)
        if job.schedule:
            result = train_schedule(training, job.schedule, seed, data, keep_model=keep)
        else:
            result = train(run, loss_fn, seed=seed, data=data, keep_model=keep, reseed=reseed, segment=segment,
                           keep_state=segment is not None)
        if result.ok and job.fgsm_epsilon is not None and result.model is not None:
            from ..analysis.robustness import fgsm_accuracy as attack

            device = next(result.model.parameters()).device
            fgsm_accuracy = attack(result.model, data.val_x.to(device), data.val_y.to(device), loss_fn,
                                   job.fgsm_epsilon, training.eval_batch_size)
    except TaylorGLOError:
        raise
    except Exception as exc:  # a numerical blow-up deep inside torch is the candidate's fault
        return Candidate(
            generation=job.generation, index=job.index, params=params or [], seed=job.seed,
            status="failed", fitness=0.0, reason=f"{type(exc).__name__}: {one_line(exc)}"[:500],
            worker=worker_name(),
        )
    status = {"ok": "evaluated", "aborted": "aborted", "failed": "failed"}[result.status]
    metrics = result.to_dict(history=True)
    if job.save_model is not None and result.ok and result.model is not None:
        save_network(result.model, job.save_model, model_name=training.model,
                     model_options=training.model_options, data=data, loss=loss_spec(params), seed=job.seed)
        metrics["model_path"] = job.save_model
    if job.segment is not None and result.ok and result.state is not None:
        spec = job.segment
        save_state(result.state, spec.save_to, params=params, lr=run.lr, weight_decay=run.weight_decay,
                   seed=job.seed, generation=job.generation, index=job.index)
        metrics["checkpoint"] = spec.save_to
    if job.segment is not None:
        metrics["lr"], metrics["weight_decay"] = run.lr, run.weight_decay
    if fgsm_accuracy is not None:
        metrics["fgsm_epsilon"] = job.fgsm_epsilon
        metrics["fgsm_accuracy"] = fgsm_accuracy
    fitness = result.val_accuracy if fgsm_accuracy is None else fgsm_accuracy
    return Candidate(
        generation=job.generation,
        index=job.index,
        params=params or [],
        seed=job.seed,
        status=status,
        fitness=fitness if status == "evaluated" else 0.0,
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
        metrics=metrics,
    )


def _segment(training: TrainConfig, spec: SegmentSpec | None,
             data: DataSplits) -> tuple[TrainConfig, Segment | None]:
    """The training config and :class:`Segment` of an EPBT job (``training`` itself otherwise).
    Only the segment that ends the schedule is measured on the test set."""
    if spec is None:
        return training, None
    total = training.schedule(len(data.train_y)).total_steps
    state = load_state(spec.resume_from) if spec.resume_from else None
    return spec.stretch.config_for(training, spec.stretch.stop >= total), spec.stretch.segment(state)
