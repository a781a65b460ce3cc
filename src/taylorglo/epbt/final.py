"""``taylorglo final DIR`` for an EPBT experiment: is the discovered *schedule* worth anything?

Three contenders, each ``repeats`` times, all measured by test accuracy at the end of the full
schedule (SPEC §4's statistics follow in ``compare``):

* ``epbt-schedule-G:I`` — one fresh network trained through the final best member's schedule:
  its lineage's losses and hyperparameters, stretch by stretch, distillation where the lineage had
  it (:func:`~taylorglo.training.trainer.train_schedule`). This is the schedule alone, without
  the population that found it.
* ``cross-entropy`` — one fresh network, the config's fixed hyperparameters (the same seeds).
* ``pbt`` — a plain PBT run per repeat: the same population, ready interval, exploit and explore
  settings, but cross-entropy throughout, only hyperparameters evolving, no novelty pulsation and
  no distillation; its best final member's test accuracy counts. Each is an EPBT experiment of its
  own under ``DIR/final/pbt/repeat-R/`` (crash-safe and resumable like any), run on the same
  evaluator. It costs ``population`` networks per repeat where the others cost one: that is the
  budget of the EPBT run it is compared with.

Rows are planned first and filled as runs end, as for a search's ``final``; running it again
re-runs only what is missing.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import TaylorGLOError
from ..experiment.final import FINAL_DIR, FinalProgress, _final_run, _run_line, final_seed
from ..experiment.host import LOG_FILE, _Log, make_evaluator, open_experiment
from ..experiment.lock import ExperimentLock
from ..experiment.progress import Reporter
from ..experiment.store import Store
from ..experiment.threads import final_jobs
from ..records import CROSS_ENTROPY_LABEL, PBT_LABEL, FinalLoss, FinalRun
from ..training.trainer import ScheduleStep
from .report import BEST_MODEL, best_member, schedule_of
from .runner import member_stretch


def schedule_label(generation: int, index: int) -> str:
    return f"epbt-schedule-{generation}:{index}"


def replay_steps(schedule: Sequence[dict[str, Any]], config: Any) -> tuple[ScheduleStep, ...]:
    """A lineage's schedule (:func:`~.report.schedule_of`) as trainer stretches."""
    return tuple(
        member_stretch(
            s["start_step"],
            s["stop_step"],
            s["params"],
            s["lr"],
            s["weight_decay"],
            bool(s["distill"]),
            config.epbt.distillation,
        )
        for s in schedule
    )


def pbt_config(config: Any, repeat: int) -> dict[str, Any]:
    """The plain-PBT experiment of ``repeat``: ``config`` with cross-entropy and hyperparameters only."""
    evolve = [g for g in config.epbt.evolve if g != "loss"] or ["lr", "weight_decay"]
    epbt = dataclasses.replace(
        config.epbt, evolve=evolve, initial_loss="cross-entropy", novelty_pulsation=None, distillation=None
    )
    data = dataclasses.replace(
        config, name=f"{config.name}-pbt-{repeat}", seed=final_seed(config.seed, repeat), epbt=epbt
    ).to_dict()
    return data


def run_epbt_final(
    directory: str | os.PathLike[str],
    repeats: int = 10,
    workers: int | None = None,
    save_models: bool = True,
    pbt: bool = True,
    progress: FinalProgress | None = None,
    reporter: Reporter | None = None,
    evaluator: dict[str, Any] | None = None,
    retry_failed: bool = False,
) -> list[FinalLoss]:
    """Replay the best member's schedule, cross-entropy and (``pbt``) plain PBT ``repeats`` times."""
    from ..experiment.final import _job, retried_text

    if not isinstance(repeats, int) or repeats < 1:
        raise TaylorGLOError(f"--repeats: must be a positive integer, got {repeats!r}")
    experiment = open_experiment(directory)
    config = experiment.config.with_evaluator(evaluator)
    root = experiment.directory
    reporter = reporter or Reporter()
    with ExperimentLock(root), experiment.store() as store:
        log = _Log(root / LOG_FILE, reporter)
        total = (store.get_meta("epbt_plan") or {}).get("generations")
        completed = sum(1 for g in store.generations() if g.closed)
        best = best_member(store)
        if best is None or total is None or completed < total:
            raise TaylorGLOError(
                f"DIR: {str(root)!r} has not finished its EPBT run ({completed} of {total or '?'} "
                f"generations); run `taylorglo start {root}` first"
            )
        c, _ = best
        schedule = schedule_of(store, c.generation, c.index)
        steps = replay_steps(schedule, config)
        seeds = [final_seed(config.seed, r) for r in range(repeats)]
        plan = [
            (CROSS_ENTROPY_LABEL, None, "baseline"),
            (
                schedule_label(c.generation, c.index),
                c.params or None,
                f"schedule of EPBT's best member {c.generation}:{c.index}, replayed from scratch",
            ),
        ]
        if pbt:
            plan.append((PBT_LABEL, None, "plain PBT: cross-entropy, hyperparameters evolved, same population"))
        losses = []
        retried = 0
        for label, params, source in plan:
            loss = store.add_final_loss(
                label,
                params,
                source,
                c.generation if label.startswith("epbt") else None,
                c.index if label.startswith("epbt") else None,
            )
            retried += store.plan_final_runs(loss.id, seeds, retry_failed)
            losses.append(loss)
        by_id = {loss.id: loss for loss in losses}
        wanted = [run for run in store.final_runs() if run.loss_id in by_id and run.repeat < repeats]
        todo = sorted((run for run in wanted if run.status == "pending"), key=lambda run: (run.repeat, run.loss_id))
        done = len(wanted) - len(todo)
        log.info(
            f"final: {config.name}: EPBT schedule of {c.generation}:{c.index} ({len(steps)} stretches), "
            f"cross-entropy{' and plain PBT' if pbt else ''} x {repeats} repeats; {done} runs recorded, "
            f"{len(todo)} to run" + retried_text(retried)
        )

        def record(run: FinalRun) -> None:
            nonlocal done
            if store.record_final(run):
                done += 1
                log.info(_run_line(run, by_id[run.loss_id], done, len(wanted)), detail=True)
                if progress is not None:
                    progress(run, by_id[run.loss_id], done, len(wanted))

        single = [run for run in todo if by_id[run.loss_id].label != PBT_LABEL]
        if single:
            jobs = []
            for run in single:
                job = _job(run, by_id[run.loss_id], root, save_models)
                if by_id[run.loss_id].label != CROSS_ENTROPY_LABEL:
                    job = dataclasses.replace(job, schedule=steps)
                jobs.append(job)
            with make_evaluator(config, config.final_training(), workers, len(jobs), log.info) as runner:
                for result in runner.evaluate(final_jobs(store, runner, jobs, log.info)):
                    record(_final_run(result, root))
        for run in todo:
            if by_id[run.loss_id].label == PBT_LABEL:
                record(_pbt_run(root, config, run, workers, reporter, evaluator))
        log.info(f"final: {config.name}: {done} of {len(wanted)} runs recorded")
    return losses


def _pbt_run(
    root: Path, config: Any, run: FinalRun, workers: int | None, reporter: Reporter, evaluator: dict[str, Any] | None
) -> FinalRun:
    """Run (or resume) plain-PBT repeat ``run.repeat`` as an experiment of its own."""
    from ..experiment.host import init_experiment, start

    folder = root / FINAL_DIR / PBT_LABEL
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / f"repeat-{run.repeat}.json"
    config_path.write_text(json.dumps(pbt_config(config, run.repeat), indent=2) + "\n")
    sub = folder / f"repeat-{run.repeat}"
    init_experiment(sub, config_path, exist_ok=True)
    result = start(sub, workers=workers, reporter=reporter, evaluator=evaluator)
    with Store(sub / Store.FILENAME, readonly=True) as store:
        wall = store.totals()["wall_time"]
    best = result["best"]
    if best is None:
        return FinalRun(run.loss_id, run.repeat, run.seed, "failed", reason="every PBT member failed")
    saved = sub / BEST_MODEL
    return FinalRun(
        loss_id=run.loss_id,
        repeat=run.repeat,
        seed=run.seed,
        status="finished",
        test_accuracy=best["test_accuracy"],
        val_accuracy=best["fitness"],
        steps=result["total_steps"],
        attempts=1,
        wall_time=wall,
        worker=f"{result['population']} members",
        model_path=os.path.relpath(saved, root) if saved.is_file() else None,
        metrics={
            "experiment": os.path.relpath(sub, root),
            "member": [best["generation"], best["index"]],
            "lr": best["lr"],
            "weight_decay": best["weight_decay"],
        },
    )
