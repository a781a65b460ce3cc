"""The ``[epbt]`` table of an experiment with ``kind = "epbt"`` (SPEC §7).

Every constant the SPEC marks unknown is a field here with a default taken from PBT (Jaderberg et
al. 2017) where PBT has one, and said so: the population, the ready interval, the exploit rule
and fraction, the mutation scales, the novelty-pulsation constants and the distillation form.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..errors import TaylorGLOError
from ..invariant import RULES
from ..polynomial import MAX_MAGNITUDE, SUPPORTED_ORDERS, num_params
from ..training.config import _is_int, _is_number, check_fields

EXPLOITS = ("truncation", "tournament")
GENES = ("loss", "lr", "weight_decay")
BEHAVIOURS = ("class_accuracy", "genome")
INITIAL_HYPERPARAMETERS = ("config", "random")


@dataclass
class NoveltyConfig:
    """Novelty pulsation: every ``cycle`` evolution steps, parents are chosen for diversity.

    The best member is kept; from the ``round(N·(1 − remove_fraction)·multiplier)`` fittest, the
    parents that maximise the minimum pairwise distance of their behaviour vectors are kept
    greedily until ``N − round(N·remove_fraction)`` survive (filled by fitness if the pool runs
    out); the removed members become mutated copies of the survivors. ``behaviour``:
    ``"class_accuracy"`` (per-class validation accuracy) or ``"genome"`` (the genes).
    """

    cycle: int = 4
    multiplier: float = 2.0
    remove_fraction: float = 0.5
    behaviour: str = "class_accuracy"

    def validate(self, prefix: str) -> NoveltyConfig:
        if not _is_int(self.cycle) or self.cycle < 1:
            raise TaylorGLOError(f"{prefix}cycle: must be a positive integer (evolution steps), got {self.cycle!r}")
        if not (_is_number(self.multiplier) and self.multiplier >= 1):
            raise TaylorGLOError(f"{prefix}multiplier: must be a number >= 1, got {self.multiplier!r}")
        if not (_is_number(self.remove_fraction) and 0 < self.remove_fraction < 1):
            raise TaylorGLOError(f"{prefix}remove_fraction: must be a number in (0, 1), got {self.remove_fraction!r}")
        if self.behaviour not in BEHAVIOURS:
            raise TaylorGLOError(
                f"{prefix}behaviour: must be one of {', '.join(map(repr, BEHAVIOURS))}, got {self.behaviour!r}"
            )
        return self


@dataclass
class DistillationConfig:
    """Knowledge distillation after an exploit [SPEC: form unknown; our choice]: for the first
    ``steps`` steps of its new stretch, a child minimises ``(1 − weight)·loss + weight·T²·KL``
    towards the soft outputs (temperature ``T``) of the network it inherited, frozen."""

    weight: float = 0.5
    temperature: float = 2.0
    steps: int = 200

    def validate(self, prefix: str) -> DistillationConfig:
        if not (_is_number(self.weight) and 0 < self.weight <= 1):
            raise TaylorGLOError(f"{prefix}weight: must be a number in (0, 1], got {self.weight!r}")
        if not (_is_number(self.temperature) and self.temperature > 0):
            raise TaylorGLOError(f"{prefix}temperature: must be a positive number, got {self.temperature!r}")
        if not _is_int(self.steps) or self.steps < 1:
            raise TaylorGLOError(f"{prefix}steps: must be a positive integer, got {self.steps!r}")
        return self


@dataclass
class EPBTConfig:
    """The ``[epbt]`` table. ``[training]`` is the full schedule every member trains once."""

    #: Members trained at once [SPEC: unknown; PBT used 10–80].
    population: int = 16
    #: Train this long between evolution steps: give at most one of the two (in steps, or epochs of
    #: the training split). Neither: a tenth of the schedule (10 evolution steps) [SPEC: unknown].
    ready_steps: int | None = None
    ready_epochs: float | None = None
    #: "truncation": the worst ``fraction`` copy a random member of the best ``fraction``;
    #: "tournament": each member meets a random other and copies it if that one is fitter.
    exploit: str = "truncation"
    fraction: float = 0.25
    #: Standard deviation of the Gaussian noise added to every TaylorGLO gene of a child.
    mutate_sigma: float = 0.3
    #: A child's hyperparameter is its parent's times one of these, or, with
    #: ``resample_probability``, drawn log-uniformly from its range (PBT's explore).
    perturb: list[float] = field(default_factory=lambda: [0.8, 1.2])
    resample_probability: float = 0.25
    #: Ranges for resampling and clipping; None: [lr/10, lr·10] around ``training.lr``, and
    #: [1e-6, 1e-2] for weight decay.
    lr_range: list[float] | None = None
    weight_decay_range: list[float] | None = None
    #: Which genes evolve: any of "loss", "lr", "weight_decay". Without "loss" every member keeps
    #: its initial loss: with ``initial_loss = "cross-entropy"`` that is plain PBT.
    evolve: list[str] = field(default_factory=lambda: list(GENES))
    #: "random" (N(0, initial_sigma²) per gene, redrawn until the invariant holds), "cross-entropy"
    #: (evolving the loss: the TaylorGLO polynomial closest to cross-entropy, see
    #: :func:`~taylorglo.epbt.population.cross_entropy_like`; not evolving it: cross-entropy itself),
    #: or a list of parameters (code layout).
    initial_loss: str | list[float] = "random"
    initial_sigma: float = 1.2
    #: "config": every member starts with ``training.lr`` / ``training.weight_decay``; "random":
    #: drawn log-uniformly from the ranges (evolved genes only).
    initial_hyperparameters: str = "config"
    order: int = 3
    #: Trainability check on every loss a member would train with (SPEC §5); a child that fails it
    #: is mutated again, never trained.
    invariant: str = "reference"
    #: Switched off by leaving them out (or ``false``).
    novelty_pulsation: NoveltyConfig | None = None
    distillation: DistillationConfig | None = None

    @property
    def evolves_loss(self) -> bool:
        return "loss" in self.evolve

    @property
    def uses_cross_entropy(self) -> bool:
        """Plain PBT: every member trains with true cross-entropy, only hyperparameters evolve."""
        return not self.evolves_loss and self.initial_loss == "cross-entropy"

    def ready_interval(self, steps_per_epoch: int, total_steps: int) -> int:
        """Steps between evolution steps, for a schedule of ``total_steps``."""
        if self.ready_steps is not None:
            return min(self.ready_steps, total_steps)
        if self.ready_epochs is not None:
            return max(1, min(int(round(self.ready_epochs * steps_per_epoch)), total_steps))
        return max(1, -(-total_steps // 10))

    def lr_bounds(self, base_lr: float) -> tuple[float, float]:
        lo, hi = self.lr_range or [base_lr / 10, base_lr * 10]
        return float(lo), float(hi)

    def weight_decay_bounds(self) -> tuple[float, float]:
        lo, hi = self.weight_decay_range or [1e-6, 1e-2]
        return float(lo), float(hi)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, table: dict[str, Any], prefix: str = "epbt.") -> EPBTConfig:
        check_fields(cls, table, prefix)
        values = dict(table)
        for name, sub in (("novelty_pulsation", NoveltyConfig), ("distillation", DistillationConfig)):
            value = values.get(name)
            if value is False or value is None:
                values[name] = None
            elif value is True:
                values[name] = sub()
            elif isinstance(value, dict):
                check_fields(sub, value, f"{prefix}{name}.")
                values[name] = sub(**value).validate(f"{prefix}{name}.")
            else:
                raise TaylorGLOError(
                    f"{prefix}{name}: must be a table such as {{ cycle = 4 }}, true, or false; got {value!r}"
                )
        return cls(**values).validate(prefix)

    def validate(self, prefix: str = "epbt.") -> EPBTConfig:
        def bad(name: str, why: str) -> TaylorGLOError:
            return TaylorGLOError(f"{prefix}{name}: {why}")

        if not _is_int(self.population) or self.population < 2:
            raise bad("population", f"must be an integer >= 2, got {self.population!r}")
        if self.ready_steps is not None and self.ready_epochs is not None:
            raise bad("ready_steps", "give either ready_steps or ready_epochs, not both")
        if self.ready_steps is not None and (not _is_int(self.ready_steps) or self.ready_steps < 1):
            raise bad("ready_steps", f"must be a positive integer, got {self.ready_steps!r}")
        if self.ready_epochs is not None and not (_is_number(self.ready_epochs) and self.ready_epochs > 0):
            raise bad("ready_epochs", f"must be a positive number, got {self.ready_epochs!r}")
        if self.exploit not in EXPLOITS:
            raise bad("exploit", f"must be one of {', '.join(map(repr, EXPLOITS))}, got {self.exploit!r}")
        if not (_is_number(self.fraction) and 0 < self.fraction <= 0.5):
            raise bad("fraction", f"must be a number in (0, 0.5], got {self.fraction!r}")
        if not (_is_number(self.mutate_sigma) and 0 <= self.mutate_sigma <= MAX_MAGNITUDE):
            raise bad("mutate_sigma", f"must be a number from 0 to {MAX_MAGNITUDE:g}, got {self.mutate_sigma!r}")
        if not (isinstance(self.perturb, list) and self.perturb and all(_is_number(v) and v > 0 for v in self.perturb)):
            raise bad("perturb", f"must be a list of positive factors such as [0.8, 1.2], got {self.perturb!r}")
        if not (_is_number(self.resample_probability) and 0 <= self.resample_probability <= 1):
            raise bad("resample_probability", f"must be a number in [0, 1], got {self.resample_probability!r}")
        for name in ("lr_range", "weight_decay_range"):
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, list)
                and len(value) == 2
                and all(_is_number(v) and v > 0 for v in value)
                and value[0] <= value[1]
            ):
                raise bad(name, f"must be [low, high] with 0 < low <= high, got {value!r}")
        if not (isinstance(self.evolve, list) and all(g in GENES for g in self.evolve)):
            raise bad("evolve", f"must be a list of {', '.join(map(repr, GENES))}, got {self.evolve!r}")
        if not _is_int(self.order) or self.order not in SUPPORTED_ORDERS:
            raise bad("order", f"must be one of {', '.join(map(str, SUPPORTED_ORDERS))}, got {self.order!r}")
        n = num_params(self.order)
        if isinstance(self.initial_loss, list):
            if len(self.initial_loss) != n or not all(_is_number(v) for v in self.initial_loss):
                raise bad(
                    "initial_loss",
                    f'must be "random", "cross-entropy" or a list of {n} numbers '
                    f"(order {self.order}), got {self.initial_loss!r}",
                )
        elif self.initial_loss not in ("random", "cross-entropy"):
            raise bad(
                "initial_loss", f'must be "random", "cross-entropy" or a list of {n} numbers, got {self.initial_loss!r}'
            )
        if not (_is_number(self.initial_sigma) and 0 < self.initial_sigma <= MAX_MAGNITUDE):
            raise bad("initial_sigma", f"must be a positive number up to {MAX_MAGNITUDE:g}, got {self.initial_sigma!r}")
        if self.initial_hyperparameters not in INITIAL_HYPERPARAMETERS:
            raise bad(
                "initial_hyperparameters",
                f"must be one of {', '.join(map(repr, INITIAL_HYPERPARAMETERS))}, got {self.initial_hyperparameters!r}",
            )
        if self.invariant not in RULES:
            raise bad("invariant", f"must be one of {', '.join(map(repr, RULES))}, got {self.invariant!r}")
        if self.novelty_pulsation is not None:
            self.novelty_pulsation.validate(f"{prefix}novelty_pulsation.")
        if self.distillation is not None:
            self.distillation.validate(f"{prefix}distillation.")
        return self
