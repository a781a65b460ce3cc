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

Trained by the one final loop (:mod:`taylorglo.experiment.final`): rows are planned first and
filled as runs end; running it again re-runs only what is missing.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import TaylorGLOError
from ..evaluators.recipes import Replay
from ..experiment.contenders import FINAL_DIR, Contender, FinalOptions, baseline, final_seed
from ..experiment.progress import Reporter
from ..experiment.store import Store
from ..records import PBT_LABEL, FinalRun
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
        config, name=f"{config.name}-pbt-{repeat}", seed=final_seed(config.seed, repeat), settings=epbt
    ).to_dict()
    return data


def epbt_contenders(store: Store, root: Path, config: Any, options: FinalOptions) -> tuple[list[Contender], str]:
    """Cross-entropy, the best member's schedule replayed and (``options.pbt``) plain PBT, for the
    one final loop; refuses the search's options and a run not yet finished."""
    options.refuse_choices("not for an EPBT experiment, whose final replays its best member's schedule")
    total = (store.get_meta("epbt_plan") or {}).get("generations")
    completed = sum(1 for g in store.generations() if g.closed)
    best = best_member(store)
    if best is None or total is None or completed < total:
        raise TaylorGLOError(
            f"DIR: {str(root)!r} has not finished its EPBT run ({completed} of {total or '?'} "
            f"generations); run `taylorglo start {root}` first"
        )
    c, _ = best
    steps = replay_steps(schedule_of(store, c.generation, c.index), config)
    contenders = [
        baseline(),
        Contender(
            schedule_label(c.generation, c.index),
            c.params or None,
            f"schedule of EPBT's best member {c.generation}:{c.index}, replayed from scratch",
            c.generation,
            c.index,
            recipe=Replay(None if not c.params else tuple(c.params), steps),
        ),
    ]
    if options.pbt:

        def alone(run: FinalRun) -> FinalRun:
            reporter = options.reporter or Reporter()
            return _pbt_run(root, config, run, options.workers, reporter, options.evaluator)

        contenders.append(
            Contender(
                PBT_LABEL, None, "plain PBT: cross-entropy, hyperparameters evolved, same population", alone=alone
            )
        )
    what = (
        f"EPBT schedule of {c.generation}:{c.index} ({len(steps)} stretches), "
        f"cross-entropy{' and plain PBT' if options.pbt else ''}"
    )
    return contenders, what


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
