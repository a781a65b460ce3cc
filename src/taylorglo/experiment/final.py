"""The one ``final`` loop (SPEC §4): given losses trained on the full schedule, N times each, on
the test set, crash-safe.

A search scores candidates on a *partial* schedule and on validation data; what a paper reports is
the *test* accuracy after the *full* schedule, over repeated runs, against the baseline trained the
same way. Every kind's ``final`` is this loop over the contenders its kind names
(:meth:`~.kind.ExperimentKind.final_contenders`: a search's best loss, an EPBT run's schedule and
plain PBT, a one-shot experiment's configured losses), and a one-shot experiment's ``start`` is
this loop too:

* Every contender gets the same N seeds, so repeat *r* of every loss starts from the same
  initialisation and batch order (a paired design; the t-tests in :mod:`taylorglo.analysis.stats`
  stay the unpaired ones SPEC §4 names).
* The runs live in the experiment's own database (tables ``final_losses``/``final_runs``). Their
  rows are planned first, as ``pending``, then filled in one by one as runs finish, exactly like a
  search's candidates: cut short and run again, it re-runs only what is missing, and asking for
  more repeats later adds only the new ones.
* Trainings run on the experiment's evaluator (local processes or Ray), through the same
  :func:`~taylorglo.evaluators.worker.evaluate_job` as the search; a contender that is a whole
  experiment per repeat (plain PBT) runs itself.
* Every trained network is saved under ``DIR/final/`` for ``taylorglo robustness``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import TaylorGLOError
from ..evaluators.base import Job
from ..evaluators.recipes import FreshRun
from ..records import FinalLoss, FinalRun, Result
from .contenders import FINAL_DIR, Contender, FinalOptions, final_seed
from .host import LOG_FILE, _Log, make_evaluator, open_experiment
from .lock import ExperimentLock
from .progress import Reporter
from .store import Store
from .threads import final_jobs

if TYPE_CHECKING:
    from ..evaluators.base import Evaluator
    from .config import ExperimentConfig

FinalProgress = Callable[[FinalRun, FinalLoss, int, int], None]


def model_path(root: Path, label: str, repeat: int) -> Path:
    """Where ``final`` saves repeat ``repeat`` of the loss ``label`` (labels are file-name safe
    but for the ':' and '+' of candidate labels)."""
    return root / FINAL_DIR / label.replace(":", "-").replace("+", "-") / f"repeat-{repeat}.pt"


def run_final(
    directory: str | os.PathLike[str],
    repeats: int | None = None,
    generation_best: bool = False,
    params: Sequence[float] | None = None,
    workers: int | None = None,
    save_models: bool = True,
    from_pretrained: bool = False,
    progress: FinalProgress | None = None,
    reporter: Reporter | None = None,
    evaluator: dict[str, Any] | None = None,
    pbt: bool = True,
    retry_failed: bool = False,
) -> list[FinalLoss]:
    """Train the experiment's contenders, cross-entropy among them, ``repeats`` times each on the
    full schedule (None: the kind's default, ten, or a one-shot experiment's own).

    What a search trains: its best candidate (``generation_best``: the best of every generation;
    ``params``: that loss instead), each from scratch or (``from_pretrained``, SPEC §4's variant)
    continuing the candidate's own partial run to the full schedule under the repeat's seed. The
    partial run is replayed from its recorded seed rather than stored, which gives the same
    network because training is deterministic for a seed on a given machine and thread count.
    What EPBT trains: the best member's schedule replayed and (``pbt``) plain PBT; see
    :mod:`taylorglo.epbt.final`. A one-shot experiment: its configured losses.

    ``evaluator`` overrides ``[evaluator]`` fields for this run, as for :func:`~.host.start`.
    ``retry_failed`` runs again the repeats recorded as failed (see :meth:`.Store.plan_final_runs`).
    Returns the final losses that took part (cross-entropy first). Runs already recorded are
    kept, not re-run. ``progress(run, loss, done, total)`` is called after each recorded run.
    """
    if repeats is not None and (not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1):
        raise TaylorGLOError(f"--repeats: must be a positive integer, got {repeats!r}")
    experiment = open_experiment(directory)
    config = experiment.config.with_evaluator(evaluator)
    kind = config.kind_class()
    root = experiment.directory
    reporter = reporter or Reporter()
    options = FinalOptions(generation_best, params, from_pretrained, pbt, workers, reporter, evaluator)
    with ExperimentLock(root), experiment.store() as store:
        log = _Log(root / LOG_FILE, reporter)
        contenders, what = kind.final_contenders(store, root, config, options)

        @contextlib.contextmanager
        def evaluator_for(jobs: int) -> Iterator[Evaluator]:
            with make_evaluator(config, config.final_training(), workers, jobs, log.info) as runner:
                yield runner

        return run_contest(
            store,
            root,
            config,
            contenders,
            repeats or kind.final_repeats(config),
            log,
            what,
            evaluator_for,
            save_models=save_models,
            retry_failed=retry_failed,
            progress=progress,
        )


def run_contest(
    store: Store,
    root: Path,
    config: ExperimentConfig,
    contenders: Sequence[Contender],
    repeats: int,
    log: _Log,
    what: str,
    evaluator: Callable[[int], contextlib.AbstractContextManager[Evaluator]],
    save_models: bool = True,
    retry_failed: bool = False,
    progress: FinalProgress | None = None,
) -> list[FinalLoss]:
    """Plan ``repeats`` runs of every contender, then train the pending ones and record each as it
    ends; ``evaluator(n)`` gives the evaluator for ``n`` jobs (made only where one is needed).
    ``what`` names the contenders in the log. The caller holds the experiment's lock."""
    seeds = [final_seed(config.seed, r) for r in range(repeats)]
    losses, retried = [], 0
    for c in contenders:
        loss = store.add_final_loss(c.label, c.params, c.source, c.generation, c.index, pretrained=c.pretrained)
        retried += store.plan_final_runs(loss.id, seeds, retry_failed)
        losses.append(loss)
    by_id = {loss.id: loss for loss in losses}
    contender_of = {loss.id: c for loss, c in zip(losses, contenders)}
    wanted = [run for run in store.final_runs() if run.loss_id in by_id and run.repeat < repeats]
    # Repeat by repeat (r0 of every loss, then r1, ...), so a run cut short leaves complete pairs.
    todo = sorted((run for run in wanted if run.status == "pending"), key=lambda run: (run.repeat, run.loss_id))
    done = len(wanted) - len(todo)
    again = f" ({retried} failed ones again)" if retried else ""
    log.info(
        f"final: {config.name}: {what} x {repeats} repeats on the full schedule; "
        f"{done} runs already recorded, {len(todo)} to run{again}"
    )

    def record(run: FinalRun) -> None:
        nonlocal done
        if store.record_final(run):
            done += 1
            log.info(_run_line(run, by_id[run.loss_id], done, len(wanted)), detail=True)
            if progress is not None:
                progress(run, by_id[run.loss_id], done, len(wanted))

    jobs = [
        _job(run, contender_of[run.loss_id], root, save_models) for run in todo if not contender_of[run.loss_id].alone
    ]
    if jobs:
        with evaluator(len(jobs)) as runner:
            seeds = {(job.generation, job.index): job.seed for job in jobs}
            for result in runner.evaluate(final_jobs(store, runner, jobs, log.info)):
                record(_final_run(result, root, seeds[result.generation, result.index]))
    for run in todo:
        alone = contender_of[run.loss_id].alone
        if alone is not None:
            record(alone(run))
    log.info(f"final: {config.name}: {done} of {len(wanted)} runs recorded")
    return losses


def _job(run: FinalRun, contender: Contender, root: Path, save_models: bool) -> Job:
    path = str(model_path(root, contender.label, run.repeat).resolve()) if save_models else None
    recipe = contender.recipe or FreshRun(None if contender.params is None else tuple(contender.params), "final")
    return Job(run.loss_id, run.repeat, recipe, run.seed, save_model=path)


def _final_run(c: Result, root: Path, seed: int) -> FinalRun:
    m = c.metrics or {}
    saved = m.get("model_path")
    if saved is not None:  # recorded relative to DIR, so the experiment can move
        saved = os.path.relpath(saved, root.resolve())
    return FinalRun(
        loss_id=c.generation,
        repeat=c.index,
        seed=seed,
        status="finished" if c.status == "evaluated" else c.status,
        reason=c.reason,
        test_accuracy=m.get("test_accuracy"),
        test_loss=m.get("test_loss"),
        val_accuracy=c.val_accuracy,
        val_loss=c.val_loss,
        steps=c.steps,
        attempts=c.attempts,
        wall_time=c.wall_time,
        worker=c.worker,
        model_path=saved,
        metrics=c.metrics,
    )


def _run_line(run: FinalRun, loss: FinalLoss, done: int, total: int) -> str:
    what = (
        f"test accuracy {run.test_accuracy:.4f}"
        if run.status == "finished" and run.test_accuracy is not None
        else f"{run.status} ({run.reason})"
    )
    wall = f" {run.wall_time:.1f}s" if run.wall_time is not None else ""
    return f"final {loss.label} repeat {run.repeat}: {what}{wall}; {done}/{total} runs done"
