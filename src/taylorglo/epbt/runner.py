"""EPBT's generations (:mod:`.kind` runs them under the host's loop): crash-safe like the search.

A *generation* of EPBT is one ready interval: every member trains steps ``[start, stop)`` of the
full schedule from its checkpoint, is measured on validation data, and saves its new checkpoint.
The store's three writes keep the same meaning as for CMA-ES (see :mod:`~taylorglo.experiment.store`):

* ``open_generation`` records the generation's plan — every member's genes, parent, action and
  checkpoint paths — in one transaction, *before* anything trains;
* ``record`` stores one member's result the moment its segment ends;
* ``close_generation`` marks the generation complete.

The plan of generation ``g + 1`` is a function of generation ``g``'s recorded results and a
generator seeded with ``(seed, g + 1)``, so a restart re-plans exactly what the killed run would
have; a member's segment is a function of its starting checkpoint, genes and seed, so re-running
an interrupted segment gives the network the killed run would have saved. Checkpoints are written
atomically, and pruned once a generation is planned: only the previous generation's checkpoints
that the plan starts from survive, so at most ``population × 2`` exist at any time.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import TaylorGLOError
from ..evaluators.base import Job
from ..evaluators.recipes import Stretch
from ..experiment.store import Store
from ..records import Candidate, Member
from ..seeds import derived_seed
from .config import DistillationConfig, EPBTConfig
from .population import Genes, genes_from, genome_vector, initial_genes, mutate
from .selection import select

if TYPE_CHECKING:
    from ..training.trainer import ScheduleStep

CHECKPOINTS = "checkpoints"
#: Mixed into the seed of EPBT's selection generators so they never coincide with training seeds.
_SELECTION_TAG = 0xE9B7


def plan_meta(config: Any, train_size: int) -> dict[str, int]:
    """The run's shape in steps: the full schedule (over ``train_size`` examples) cut into ready
    intervals."""
    schedule = config.training.schedule(train_size)
    ready = config.epbt.ready_interval(schedule.steps_per_epoch, schedule.total_steps)
    return {
        "total_steps": schedule.total_steps,
        "ready_steps": ready,
        "generations": int(math.ceil(schedule.total_steps / ready)),
    }


def member_seed(seed: int, generation: int, index: int) -> int:
    """The training seed of member ``index``'s segment in ``generation``."""
    return derived_seed(seed, generation, index)


def checkpoint_name(generation: int, index: int) -> str:
    return f"{CHECKPOINTS}/g{generation:04d}-m{index:03d}.pt"


def member_genes(candidate: Candidate, member: Member) -> Genes:
    return genes_from(candidate.params, member.lr, member.weight_decay)


def behaviour(candidate: Candidate, member: Member, kind: str, num_classes: int) -> list[float]:
    """A member's behaviour vector for novelty pulsation."""
    if kind == "genome":
        return genome_vector(member_genes(candidate, member))
    classes = (candidate.metrics or {}).get("val_class_accuracy")
    return list(classes) if classes else [0.0] * num_classes


def plan_generation(
    store: Store, config: Any, generation: int, meta: dict[str, int], num_classes: int
) -> tuple[list[Candidate], list[Member]]:
    """Generation ``generation``'s members: the initial population, or exploit/explore of the
    previous generation's recorded results. Deterministic (see the module docstring)."""
    e: EPBTConfig = config.epbt
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, _SELECTION_TAG, generation]))
    start = generation * meta["ready_steps"]
    stop = min(meta["total_steps"], start + meta["ready_steps"])
    plans: list[tuple[Genes, int | None, str, int]] = []
    if generation == 0:
        plans = [(g, None, "init", 0) for g in initial_genes(e, config.training, num_classes, rng)]
    else:
        previous = store.candidates(generation - 1)
        members = store.members(generation - 1)
        fitness = [c.fitness or 0.0 for c in previous]
        failed = [c.status != "evaluated" for c in previous]
        kind = e.novelty_pulsation.behaviour if e.novelty_pulsation else "class_accuracy"
        behaviours = [behaviour(c, m, kind, num_classes) for c, m in zip(previous, members)]
        try:
            choices = select(generation, fitness, behaviours, failed, e, rng)
        except ValueError:
            reasons = "; ".join(sorted({c.reason or c.status for c in previous}))[:300]
            raise TaylorGLOError(
                f"epbt: every member failed in generation {generation - 1} ({reasons}); "
                "lower training.lr or epbt.mutate_sigma, or use the invariant"
            ) from None
        for choice in choices:
            parent = previous[choice.parent], members[choice.parent]
            if choice.action == "continue":
                plans.append((member_genes(*parent), choice.parent, "continue", 0))
            else:
                genes, redraws = mutate(member_genes(*parent), e, config.training, num_classes, rng)
                plans.append((genes, choice.parent, choice.action, redraws))
    candidates, out = [], []
    for index, (genes, parent, action, redraws) in enumerate(plans):
        seed = member_seed(config.seed, generation, index)
        candidates.append(Candidate(generation, index, list(genes.params or []), seed, "pending"))
        resume = None if parent is None else checkpoint_name(generation - 1, parent)
        distill = action in ("exploit", "novelty") and e.distillation is not None
        out.append(
            Member(
                generation,
                index,
                parent,
                action,
                genes.lr,
                genes.weight_decay,
                start,
                stop,
                resume,
                checkpoint_name(generation, index),
                distill,
                redraws,
            )
        )
    return candidates, out


def member_stretch(
    start: int,
    stop: int,
    params: Any,
    lr: float,
    weight_decay: float,
    distill: bool,
    distillation: DistillationConfig | None,
) -> ScheduleStep:
    """A member's stretch of training as the trainer takes it: shared by the EPBT run itself and
    ``final``'s replay of a lineage, so both train a stretch the same way."""
    d = distillation if distill else None
    from ..training.trainer import ScheduleStep  # torch: only where a member trains, not where one is read

    return ScheduleStep(
        start=start,
        stop=stop,
        params=tuple(params) if params else None,
        lr=lr,
        weight_decay=weight_decay,
        distill_weight=d.weight if d else 0.0,
        distill_temperature=distillation.temperature if distillation else 1.0,
        distill_steps=d.steps if d else 0,
    )


def job_for(directory: Path, config: Any, candidate: Candidate, member: Member) -> Job:
    """The evaluator job that trains ``member``'s next segment."""
    stretch = member_stretch(
        member.start_step,
        member.stop_step,
        candidate.params,
        member.lr,
        member.weight_decay,
        member.distill,
        config.epbt.distillation,
    )
    recipe = Stretch(
        stretch,
        save_to=str(directory / member.checkpoint),
        resume_from=None if member.resume_from is None else str(directory / member.resume_from),
    )
    return Job(candidate.generation, candidate.index, recipe, candidate.seed)


def prune_checkpoints(directory: Path, store: Store, generation: int, sources: bool = True) -> int:
    """Delete every checkpoint that neither ``generation`` starts from (with ``sources``) nor
    belongs to it, and leftover ``.tmp`` files; return how many files went."""
    keep = set()
    for m in store.members(generation):
        keep.add(m.checkpoint)
        if m.resume_from and sources:
            keep.add(m.resume_from)
    removed = 0
    folder = directory / CHECKPOINTS
    if not folder.is_dir():
        return 0
    for path in folder.iterdir():
        if f"{CHECKPOINTS}/{path.name}" not in keep:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
