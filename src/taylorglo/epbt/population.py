"""A member's genes, where the first generation's come from, and how a child's differ (explore).

All randomness goes through a ``numpy.random.Generator`` the caller seeds from the experiment seed
and the evolution step, so an EPBT run re-planned after a crash draws exactly the same genes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..invariant import invariant_holds
from ..polynomial import num_params, taylor_terms
from ..training.config import TrainConfig
from .config import EPBTConfig

#: Draws before giving up on a loss that satisfies the invariant (a child then keeps its parent's).
MAX_REDRAWS = 200


@dataclass(frozen=True)
class Genes:
    """What a member evolves: its loss (``None``: cross-entropy) and its hyperparameters."""

    params: tuple[float, ...] | None
    lr: float
    weight_decay: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": None if self.params is None else list(self.params),
            "lr": self.lr,
            "weight_decay": self.weight_decay,
        }


def cross_entropy_like(order: int = 3, centre: float = 0.5) -> list[float]:
    """The TaylorGLO parameters closest to cross-entropy's ``f = x·log y``: its Taylor expansion
    in ``Y = y − centre`` with the x-centre at 0, ``x·Σ_j (−1)^(j+1) Y^j / (j·centre^j)``, keeping
    the ``X·Y^j`` terms the family has (``j ≤ order − 1``; the constant ``x·log centre`` has no
    gradient). Order 3 about ½ gives ``f = x·(2Y − 2Y²)``: the target is always pushed up, the
    non-targets not at all, so it passes the invariant for every class count."""
    values = []
    for i, j in taylor_terms(order):
        values.append((-1) ** (j + 1) / (j * centre**j) if i == 1 else 0.0)
    return [*values, 0.0, centre]


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def random_loss(config: EPBTConfig, num_classes: int, rng: np.random.Generator) -> tuple[float, ...]:
    """``N(0, initial_sigma²)`` per gene, drawn again until the invariant holds."""
    n = num_params(config.order)
    for _ in range(MAX_REDRAWS):
        params = tuple(float(v) for v in rng.normal(0.0, config.initial_sigma, n))
        if invariant_holds(params, num_classes, config.invariant):
            return params
    raise RuntimeError(f"no loss out of {MAX_REDRAWS} draws satisfies the {config.invariant} invariant")


def initial_genes(config: EPBTConfig, training: TrainConfig, num_classes: int, rng: np.random.Generator) -> list[Genes]:
    """The genes of the first generation (``initial_loss``, ``initial_hyperparameters``)."""
    members = []
    for _ in range(config.population):
        params: tuple[float, ...] | None
        if config.uses_cross_entropy:
            params = None
        elif config.initial_loss == "random":
            params = random_loss(config, num_classes, rng)
        elif config.initial_loss == "cross-entropy":
            params = tuple(cross_entropy_like(config.order))
        else:
            params = tuple(float(v) for v in config.initial_loss)
        lr, wd = training.lr, training.weight_decay
        if config.initial_hyperparameters == "random":
            if "lr" in config.evolve:
                lr = _log_uniform(rng, *config.lr_bounds(training.lr))
            if "weight_decay" in config.evolve:
                wd = _log_uniform(rng, *config.weight_decay_bounds())
        members.append(Genes(params, lr, wd))
    return members


def _explore_hyper(value: float, bounds: tuple[float, float], config: EPBTConfig, rng: np.random.Generator) -> float:
    """PBT's explore: resample (log-uniform) with ``resample_probability``, else perturb by a factor."""
    lo, hi = bounds
    if rng.random() < config.resample_probability or value <= 0:
        return _log_uniform(rng, lo, hi)
    factor = float(config.perturb[int(rng.integers(len(config.perturb)))])
    return float(min(max(value * factor, lo), hi))


def mutate(
    genes: Genes, config: EPBTConfig, training: TrainConfig, num_classes: int, rng: np.random.Generator
) -> tuple[Genes, int]:
    """A child's genes: Gaussian noise on every loss gene (redrawn until the invariant holds; after
    :data:`MAX_REDRAWS` failures the parent's loss is kept), explored hyperparameters; and how many
    mutated losses the invariant rejected on the way (counted in the report)."""
    params = genes.params
    redraws = 0
    if config.evolves_loss and params is not None and config.mutate_sigma > 0:
        base = np.asarray(params, dtype=float)
        for _ in range(MAX_REDRAWS):
            child = tuple(float(v) for v in base + rng.normal(0.0, config.mutate_sigma, base.shape))
            if invariant_holds(child, num_classes, config.invariant):
                params = child
                break
            redraws += 1
    lr, wd = genes.lr, genes.weight_decay
    if "lr" in config.evolve:
        lr = _explore_hyper(lr, config.lr_bounds(training.lr), config, rng)
    if "weight_decay" in config.evolve:
        wd = _explore_hyper(wd, config.weight_decay_bounds(), config, rng)
    return Genes(params, lr, wd), redraws


def genome_vector(genes: Genes) -> list[float]:
    """The genes as one vector (novelty's ``"genome"`` behaviour): loss genes, log lr, log wd."""
    out = list(genes.params or [])
    out.append(math.log(genes.lr))
    out.append(math.log(genes.weight_decay) if genes.weight_decay > 0 else -30.0)
    return out


def genes_from(params: Sequence[float] | None, lr: float, weight_decay: float) -> Genes:
    return Genes(
        None if params is None or len(params) == 0 else tuple(float(v) for v in params), float(lr), float(weight_decay)
    )
