"""The final evaluation (SPEC §4): the chosen losses re-trained on the full schedule, beside cross-entropy.

A search scores candidates on a *partial* schedule and on validation data; what a paper reports is
the *test* accuracy after the *full* schedule, over repeated runs, against the baseline trained the
same way. :func:`run_final` does that:

* Each chosen loss (the best candidate by default; the best of every generation; any given params)
  and cross-entropy get the same N seeds, so repeat *r* of every loss starts from the same
  initialisation and batch order (a paired design; the t-tests in :mod:`taylorglo.analysis.stats`
  stay the unpaired ones SPEC §4 names).
* The runs live in the experiment's own database (tables ``final_losses``/``final_runs``). Their
  rows are planned first, as ``pending``, then filled in one by one as runs finish, exactly like a
  search's candidates: ``final`` cut short and run again re-runs only what is missing, and asking
  for more repeats later adds only the new ones.
* Trainings run on the experiment's evaluator (local processes or Ray), through the same
  :func:`~taylorglo.evaluators.worker.evaluate_job` as the search.
* Every trained network is saved under ``DIR/final/`` for ``taylorglo robustness``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TaylorGLOError
from ..polynomial import check_params, loss_spec
from ..records import CROSS_ENTROPY_LABEL, Candidate, FinalLoss, FinalRun
from ..seeds import derived_seed
from .host import LOG_FILE, _Log, make_evaluator, open_experiment
from .lock import ExperimentLock
from .progress import Reporter
from .store import Store
from .threads import final_jobs

FINAL_DIR = "final"
#: Mixed into the seed sequence so final seeds never coincide with the search's training seeds.
_FINAL_SEED_TAG = 0x46494E41


@dataclass(frozen=True)
class FinalChoice:
    """A loss to evaluate: its label (stable: derived from where it came from), params, origin."""

    label: str
    params: list[float] | None
    source: str
    generation: int | None = None
    index: int | None = None


def final_seed(seed: int, repeat: int) -> int:
    """The training seed of repeat ``repeat``, the same for every loss of an experiment."""
    return derived_seed(seed, _FINAL_SEED_TAG, repeat)


def candidate_label(generation: int, index: int) -> str:
    return f"candidate-{generation}:{index}"


def params_label(params: Sequence[float]) -> str:
    return "params-" + hashlib.sha1(loss_spec(params).encode()).hexdigest()[:8]


def choose_losses(
    store: Store, directory: Path, generation_best: bool = False, params: Sequence[float] | None = None
) -> list[FinalChoice]:
    """What ``final`` evaluates besides cross-entropy (see :func:`run_final`)."""
    if params is not None:
        values, _ = check_params(params)
        return [FinalChoice(params_label(values), values, "given with --params")]
    candidates = [c for c in store.candidates() if c.status == "evaluated"]
    if not candidates:
        raise TaylorGLOError(
            f"DIR: {str(directory)!r} has no evaluated candidate yet; run `taylorglo start {directory}` "
            "first, or give a loss with --params"
        )
    if not generation_best:
        best = store.best()
        assert best is not None
        return [_choice(best, "best of the search")]
    by_generation: dict[int, Candidate] = {}
    for c in candidates:  # in (generation, index) order, so ties go to the earliest
        current = by_generation.get(c.generation)
        if current is None or (c.fitness or 0.0) > (current.fitness or 0.0):
            by_generation[c.generation] = c
    return [_choice(c, f"best of generation {g}") for g, c in sorted(by_generation.items())]


def _choice(c: Candidate, source: str) -> FinalChoice:
    return FinalChoice(candidate_label(c.generation, c.index), list(c.params), source, c.generation, c.index)


FinalProgress = Callable[[FinalRun, FinalLoss, int, int], None]


def run_final(
    directory: str | os.PathLike[str],
    repeats: int = 10,
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
    """Train the chosen losses and cross-entropy ``repeats`` times each on the full schedule.

    For an EPBT experiment the contenders are the best member's schedule replayed, cross-entropy
    and (``pbt``) plain PBT: see :mod:`taylorglo.epbt.final`.

    ``evaluator`` overrides ``[evaluator]`` fields for this run, as for :func:`~.host.start`.
    ``retry_failed`` runs again the repeats recorded as failed (see :meth:`.Store.plan_final_runs`).

    Returns the final losses that took part (cross-entropy first). Runs already recorded are
    kept, not re-run. ``progress(run, loss, done, total)`` is called after each recorded run.

    ``from_pretrained`` (SPEC §4's variant): each candidate's run does not start from scratch but
    continues the candidate's own partial-schedule run to the full schedule, under the repeat's
    seed from the step where the partial run ended. The partial run is replayed from its recorded
    seed rather than stored, which gives the same network because training is deterministic for
    a seed on a given machine and thread count (elsewhere it is a statistically equivalent
    pre-training). Cross-entropy is trained from scratch as always: the same total budget.
    """
    if not isinstance(repeats, int) or repeats < 1:
        raise TaylorGLOError(f"--repeats: must be a positive integer, got {repeats!r}")
    experiment = open_experiment(directory)
    if experiment.config.kind == "epbt":
        for flag, value in (
            ("--params", params),
            ("--generation-best", generation_best),
            ("--from-pretrained", from_pretrained),
        ):
            if value:
                raise TaylorGLOError(
                    f"{flag}: not for an EPBT experiment, whose final replays its best member's schedule; drop it"
                )
        from ..epbt.final import run_epbt_final

        return run_epbt_final(
            directory, repeats, workers, save_models, pbt, progress, reporter, evaluator, retry_failed
        )
    config = experiment.config.with_evaluator(evaluator)
    root = experiment.directory
    with ExperimentLock(root), experiment.store() as store:
        log = _Log(root / LOG_FILE, reporter or Reporter())
        choices = [FinalChoice(CROSS_ENTROPY_LABEL, None, "baseline")]
        choices += choose_losses(store, root, generation_best, params)
        if from_pretrained:
            if params is not None:
                raise TaylorGLOError(
                    "--from-pretrained: only search candidates have a partial run to continue; "
                    "drop --params or --from-pretrained"
                )
            choices = [choices[0]] + [_pretrained(c) for c in choices[1:]]
        seeds = [final_seed(config.seed, r) for r in range(repeats)]
        losses = []
        retried = 0
        for choice in choices:
            loss = store.add_final_loss(
                choice.label,
                choice.params,
                choice.source,
                choice.generation,
                choice.index,
                pretrained=from_pretrained and choice.params is not None,
            )
            retried += store.plan_final_runs(loss.id, seeds, retry_failed)
            losses.append(loss)
        by_id = {loss.id: loss for loss in losses}
        wanted = [run for run in store.final_runs() if run.loss_id in by_id and run.repeat < repeats]
        todo = [run for run in wanted if run.status == "pending"]
        # Repeat by repeat (r0 of every loss, then r1, ...), so a run cut short leaves complete pairs.
        todo.sort(key=lambda run: (run.repeat, run.loss_id))
        done = len(wanted) - len(todo)
        log.info(
            f"final: {config.name}: {len(losses)} losses x {repeats} repeats on the full schedule; "
            f"{done} runs already recorded, {len(todo)} to run" + retried_text(retried)
        )
        if todo:
            pretrain = _pretrain_points(store, config, [loss for loss in losses if loss.pretrained])
            jobs = [_job(run, by_id[run.loss_id], root, save_models, pretrain.get(run.loss_id)) for run in todo]
            with make_evaluator(config, config.final_training(), workers, len(jobs), log.info) as evaluator:
                for result in evaluator.evaluate(final_jobs(store, evaluator, jobs, log.info)):
                    run = _final_run(result, root)
                    if store.record_final(run):
                        done += 1
                        loss = by_id[run.loss_id]
                        log.info(_run_line(run, loss, done, len(wanted)), detail=True)
                        if progress is not None:
                            progress(run, loss, done, len(wanted))
        log.info(f"final: {config.name}: {done} of {len(wanted)} runs recorded")
    return losses


def retried_text(retried: int) -> str:
    return f" ({retried} failed ones again)" if retried else ""


def _pretrained(choice: FinalChoice) -> FinalChoice:
    return FinalChoice(
        choice.label + "+pretrained",
        choice.params,
        choice.source + ", continued from its partial run",
        choice.generation,
        choice.index,
    )


def _pretrain_points(store: Store, config: Any, losses: Sequence[FinalLoss]) -> dict[int, tuple[int, int]]:
    """For each pretrained final loss: (seed of its candidate's partial run, steps that run took)."""
    if not losses:
        return {}
    from ..training.data import load_dataset

    training = config.candidate_training()
    data = load_dataset(training.dataset, training.data_dir, training.data_fraction, field="training.dataset")
    steps = training.schedule(len(data.train_y)).run_steps
    out = {}
    for loss in losses:
        (c,) = [c for c in store.candidates(loss.generation) if c.index == loss.index]
        # The seed of the attempt that produced the recorded result (retries after an abort reseed).
        out[loss.id] = (int((c.metrics or {}).get("seed", c.seed)), steps)
    return out


def _job(
    run: FinalRun, loss: FinalLoss, root: Path, save_models: bool, pretrained: tuple[int, int] | None = None
) -> Any:
    from ..evaluators.base import Job

    path = str(model_path(root, loss.label, run.repeat).resolve()) if save_models else None
    return Job(
        run.loss_id,
        run.repeat,
        None if loss.params is None else tuple(loss.params),
        run.seed,
        save_model=path,
        pretrained=pretrained,
    )


def model_path(root: Path, label: str, repeat: int) -> Path:
    """Where ``final`` saves repeat ``repeat`` of the loss ``label`` (labels are file-name safe
    but for the ':' and '+' of candidate labels)."""
    return root / FINAL_DIR / label.replace(":", "-").replace("+", "-") / f"repeat-{repeat}.pt"


def _final_run(c: Candidate, root: Path) -> FinalRun:
    m = c.metrics or {}
    saved = m.get("model_path")
    if saved is not None:  # recorded relative to DIR, so the experiment can move
        saved = os.path.relpath(saved, root.resolve())
    return FinalRun(
        loss_id=c.generation,
        repeat=c.index,
        seed=c.seed,
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
