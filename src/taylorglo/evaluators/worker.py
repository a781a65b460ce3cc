"""What runs inside a worker (a local process, a Ray actor): its state, and the one function that
turns a job into a result.

Every evaluator runs :func:`evaluate_job`, so a candidate's fitness is computed the same way
everywhere, and by the same :func:`~taylorglo.training.train` that ``taylorglo train``, ``final``
and EPBT use. This module imports torch; :mod:`.base`, which the host imports, does not.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from ..errors import TaylorGLOError, one_line
from ..polynomial import loss_spec
from ..records import Result
from ..training.config import TrainConfig
from ..training.data import DataSplits
from ..training.facts import TrainingFacts
from ..training.trainer import TrainResult, as_loss
from ..training.trainers import probe, trainer_for
from .base import Job, JobStack, Unit, worker_name


class WorkerState:
    """What every worker (a local process, a Ray actor) holds for its whole life, and runs jobs on.

    Made once, before the first job, and timed: it loads the dataset (unless ``data`` arrived with
    the worker), so that a candidate's recorded time is its own. The timings go out once, in the
    metrics of the worker's first result (``worker_startup``): ``process_start`` (from
    ``requested_at``, the driver's clock when it asked for the worker, to this code running:
    interpreter start, imports, receiving the arguments; meaningful where both clocks agree) and
    ``data_load``, in seconds. That is how ``benchmarks/throughput.py`` tells start-up from
    training, and how a user sees why a search's first candidates take longer. (No warm-up is
    needed: the trainer's optimizer, :mod:`taylorglo.training.sgd`, has no one-off cost.)
    """

    def __init__(
        self, training: dict[str, Any], threads: int, requested_at: float | None, data: DataSplits | None = None
    ) -> None:
        entered = time.time()
        self.threads = threads
        torch.set_num_threads(threads)
        self.training = TrainConfig(**training)
        t = time.perf_counter()
        self.data: DataSplits | BaseException | None = data
        if data is None:
            try:
                self.data = trainer_for(self.training).load_data()
            except Exception as exc:  # reported with the first job, as a configuration error
                self.data = exc
        self.marks: dict[str, float] | None = {
            "process_start": max(0.0, entered - requested_at) if requested_at is not None else 0.0,
            "data_load": time.perf_counter() - t,
        }

    def facts(self) -> TrainingFacts:
        """:func:`~taylorglo.training.facts.probe` on this worker's data (raising the dataset's
        error, if loading failed): what the host asks before it dispatches."""
        if isinstance(self.data, BaseException):
            raise self.data
        return probe(self.training, self.data)

    def run(self, unit: Unit) -> list[Result]:
        """:func:`evaluate_job` (:func:`evaluate_stack` for a stack) on this worker's data (raising
        the dataset's error, if loading failed), with the unit's threads if it has its own; the
        threads used go in each result's metrics."""
        if isinstance(self.data, BaseException):
            raise self.data
        threads = unit.threads or self.threads
        torch.set_num_threads(threads)
        try:
            if isinstance(unit, JobStack):
                results = evaluate_stack(self.training, unit, self.data)
            else:
                results = [evaluate_job(self.training, unit, self.data)]
        finally:
            torch.set_num_threads(self.threads)
        for result in results:
            result.metrics = {**(result.metrics or {}), "threads": threads}
        if self.marks is not None:  # the start-up timings go out with the worker's first result
            results[0].metrics = {**(results[0].metrics or {}), "worker_startup": self.marks}
            self.marks = None
        return results


def evaluate_job(training: TrainConfig, job: Job, data: DataSplits | None = None) -> Result:
    """Train what ``job`` 's recipe trains for ``training`` 's schedule; fitness = final
    validation accuracy (under FGSM at ``job.fgsm_epsilon`` when set).

    Fitness is 0 for a run that failed (NaN/inf loss, an exception inside training) or was
    early-aborted on every attempt (SPEC §2); the reason and all metrics are kept.
    """
    if data is None:
        data = trainer_for(training).load_data()
    try:
        result, added = job.recipe.train(training, job.seed, data, _keeps(job), (job.generation, job.index))
    except TaylorGLOError:
        raise
    except Exception as exc:  # a numerical blow-up deep inside torch is the candidate's fault
        return job.failed(f"{type(exc).__name__}: {one_line(exc)}", worker=worker_name())
    return _measured(training, job, result, added, data)


def evaluate_stack(training: TrainConfig, stack: JobStack, data: DataSplits | None = None) -> list[Result]:
    """:func:`evaluate_job` for every job of ``stack`` (jobs whose recipes share a stack key),
    trained at once by their recipe's :meth:`~.recipes.Recipe.train_stack` and measured one by
    one the same way."""
    if data is None:
        data = trainer_for(training).load_data()
    jobs = stack.jobs
    recipe = type(jobs[0].recipe)
    keys = [(job.generation, job.index) for job in jobs]
    try:
        trained = recipe.train_stack(
            training, [job.recipe for job in jobs], [job.seed for job in jobs], data, any(map(_keeps, jobs)), keys
        )
    except TaylorGLOError:
        raise
    except Exception as exc:  # as in evaluate_job: charged to the candidates, not the search
        return stack.fail(f"{type(exc).__name__}: {one_line(exc)}", worker=worker_name())
    return [
        _measured(training, job, result, {**added, "stack_size": len(jobs)}, data)
        for job, (result, added) in zip(jobs, trained)
    ]


def _keeps(job: Job) -> bool:
    """Whether ``job`` needs its trained network after training (to attack or to save it)."""
    return job.fgsm_epsilon is not None or job.save_model is not None


def _measured(training: TrainConfig, job: Job, result: TrainResult, added: dict[str, Any], data: DataSplits) -> Result:
    """``job`` 's result from its training's: the FGSM fitness where asked, the network saved
    where asked, the metrics the recipe added."""
    params = None if job.recipe.params is None else list(job.recipe.params)
    fgsm_accuracy = None
    try:
        if result.ok and job.fgsm_epsilon is not None and result.model is not None and data is not None:
            from ..training.fgsm import bounds_of
            from ..training.fgsm import fgsm_accuracy as attack

            device = next(result.model.parameters()).device
            fgsm_accuracy = attack(
                result.model,
                data.val_x.to(device),
                data.val_y.to(device),
                as_loss(params, training.round_params, training.loss_inputs),
                job.fgsm_epsilon,
                training.eval_batch_size,
                bounds_of(data, training.attack_space),
            )
    except TaylorGLOError:
        raise
    except Exception as exc:  # a numerical blow-up deep inside torch is the candidate's fault
        return job.failed(f"{type(exc).__name__}: {one_line(exc)}", worker=worker_name())
    status = {"ok": "evaluated", "aborted": "aborted", "failed": "failed"}[result.status]
    metrics = result.to_dict(history=True)
    if job.save_model is not None and result.ok:
        why_not = trainer_for(training).save_model(result, job.save_model, data, loss_spec(params), job.seed)
        if why_not is None:
            metrics["model_path"] = job.save_model
        else:
            metrics["model_not_saved"] = why_not
    metrics.update(added)
    if fgsm_accuracy is not None:
        metrics["fgsm_epsilon"] = job.fgsm_epsilon
        metrics["fgsm_accuracy"] = fgsm_accuracy
    fitness = fgsm_accuracy if fgsm_accuracy is not None else result.fitness
    fitness = result.val_accuracy if fitness is None else fitness
    if status != "evaluated":
        # An aborted run scores its measured accuracy where the config asks (the reference did).
        measured = status == "aborted" and training.abort_fitness == "measured" and result.val_accuracy is not None
        fitness = float(result.val_accuracy) if measured else 0.0
    return Result(
        generation=job.generation,
        index=job.index,
        status=status,
        fitness=fitness,
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
