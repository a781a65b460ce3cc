"""Exploit: which members continue and which restart from a fitter one's network (SPEC §7).

Pure functions of fitnesses, behaviours and a seeded generator, so a selection can be recomputed
after a crash and tested on hand-made populations. A member that *failed* (NaN loss: it has no
network to continue) is always replaced, and is never anybody's parent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .config import EPBTConfig


@dataclass(frozen=True)
class Choice:
    """What member ``index`` does next: ``continue`` its own network (``parent == index``), or
    ``exploit``/``novelty``: restart from ``parent``'s network with mutated genes."""

    index: int
    parent: int
    action: str


def ranking(fitness: Sequence[float]) -> list[int]:
    """Member indices, fittest first; ties go to the lower index (stable, so reproducible)."""
    return sorted(range(len(fitness)), key=lambda i: (-fitness[i], i))


def truncation(
    fitness: Sequence[float], fraction: float, rng: np.random.Generator, failed: Sequence[bool]
) -> list[Choice]:
    """The worst ``round(N·fraction)`` (at least one) and every failed member copy a random member
    of the best ``round(N·fraction)`` that did not fail."""
    n = len(fitness)
    k = max(1, int(round(n * fraction)))
    order = ranking(fitness)
    healthy = [i for i in order if not failed[i]]
    top = healthy[:k]
    replaced = set(order[n - k :]) | {i for i in range(n) if failed[i]}
    replaced -= set(top)
    return [
        Choice(i, int(top[rng.integers(len(top))]), "exploit") if i in replaced else Choice(i, i, "continue")
        for i in range(n)
    ]


def tournament(fitness: Sequence[float], rng: np.random.Generator, failed: Sequence[bool]) -> list[Choice]:
    """Each member meets one other at random and copies it when that one is fitter (a failed
    member meets healthy ones only, and always copies)."""
    n = len(fitness)
    healthy = [i for i in range(n) if not failed[i]]
    out = []
    for i in range(n):
        others = [j for j in (healthy if failed[i] else range(n)) if j != i]
        j = int(others[rng.integers(len(others))])
        if failed[i] or (fitness[j] > fitness[i] and not failed[j]):
            out.append(Choice(i, j, "exploit"))
        else:
            out.append(Choice(i, i, "continue"))
    return out


def novelty_select(
    fitness: Sequence[float],
    behaviours: Sequence[Sequence[float]],
    keep: int,
    pool: int,
    eligible: Sequence[bool] | None = None,
) -> list[int]:
    """Survivors chosen for diversity (novelty pulsation), in the order they were chosen.

    The fittest member first; then, from the ``pool`` fittest, repeatedly the one whose *nearest*
    already-chosen member is farthest away (Euclidean distance of behaviour vectors; ties to the
    fitter), until ``keep`` are chosen; if the pool runs out, the rest by fitness.
    """
    ok = list(eligible) if eligible is not None else [True] * len(fitness)
    order = [i for i in ranking(fitness) if ok[i]]
    keep = min(keep, len(order))
    if keep <= 0:
        return []
    points = np.asarray(behaviours, dtype=float)
    chosen = [order[0]]
    candidates = order[1 : max(pool, 1)]
    while len(chosen) < keep and candidates:
        nearest = [min(float(np.linalg.norm(points[c] - points[s])) for s in chosen) for c in candidates]
        best = max(range(len(candidates)), key=lambda k: (nearest[k], -k))
        chosen.append(candidates.pop(best))
    for i in order:
        if len(chosen) >= keep:
            break
        if i not in chosen:
            chosen.append(i)
    return chosen


def novelty_pulse(
    fitness: Sequence[float],
    behaviours: Sequence[Sequence[float]],
    config: EPBTConfig,
    rng: np.random.Generator,
    failed: Sequence[bool],
) -> list[Choice]:
    """A novelty-pulsation step: survivors by :func:`novelty_select`, the removed members copy a
    random survivor."""
    assert config.novelty_pulsation is not None
    nov = config.novelty_pulsation
    n = len(fitness)
    keep = max(1, n - int(round(n * nov.remove_fraction)))
    pool = int(round(n * (1 - nov.remove_fraction) * nov.multiplier))
    survivors = novelty_select(fitness, behaviours, keep, pool, [not f for f in failed])
    alive = set(survivors)
    return [
        Choice(i, i, "continue") if i in alive else Choice(i, int(survivors[rng.integers(len(survivors))]), "novelty")
        for i in range(n)
    ]


def is_novelty_step(step: int, config: EPBTConfig) -> bool:
    """Evolution step ``step`` (1 = the first one, after the first ready interval) pulses novelty
    every ``cycle`` steps."""
    nov = config.novelty_pulsation
    return nov is not None and step >= 1 and step % nov.cycle == 0


def select(
    step: int,
    fitness: Sequence[float],
    behaviours: Sequence[Sequence[float]],
    failed: Sequence[bool],
    config: EPBTConfig,
    rng: np.random.Generator,
) -> list[Choice]:
    """Evolution step ``step``'s exploit: novelty pulsation on its cycle, else ``config.exploit``."""
    if not any(not f for f in failed):
        raise ValueError("every member failed")
    if is_novelty_step(step, config):
        return novelty_pulse(fitness, behaviours, config, rng, failed)
    if config.exploit == "tournament":
        return tournament(fitness, rng, failed)
    return truncation(fitness, config.fraction, rng, failed)
