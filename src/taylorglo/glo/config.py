"""The ``[search]`` table of a TaylorGLO search (SPEC §2, §3, §5), validated field by field: each
problem is one line naming the field (``search.population``) and what to write instead."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import TaylorGLOError
from ..invariant import RULES
from ..polynomial import DEFAULT_INPUTS, MAX_MAGNITUDE, SUPPORTED_ORDERS, check_inputs, inputs_words, num_params
from ..training.config import _is_int, _is_number, check_fields

if TYPE_CHECKING:
    from ..cmaes import CMAESSearch

SEED_MODES = ("generation", "candidate")
FITNESSES = ("accuracy", "fgsm")
VIOLATORS = ("reject", "train")
#: The CMA-ES strategy constants (:class:`~taylorglo.cmaes.CMAESSearch`'s ``constants``).
CMA_CONSTANTS = ("pycma", "swiftcma")
#: Where a trained invariant violator's metrics say so.
INVARIANT_TAG = "invariant"


@dataclass
class SearchConfig:
    """The ``[search]`` table: CMA-ES over TaylorGLO parameters (SPEC §2, §3, §5)."""

    order: int = 3
    #: λ, candidates per generation (SPEC: 20; 28 for MNIST).
    population: int = 20
    #: σ₀, the initial step size (SPEC: 1.2).
    sigma: float = 1.2
    generations: int = 50
    #: A candidate's fitness is its validation accuracy after this share of the full schedule.
    partial_fraction: float = 0.1
    #: Trainability check before training: "reference" | "gradient" | "off" (SPEC §5).
    invariant: str = "reference"
    #: What happens to a candidate that fails the invariant: "reject" (never trained, fitness 0)
    #: or "train" (trained all the same, and tagged in its metrics: the reference's
    #: ``ignoreInvariantCheck``, which still checked every candidate).
    invariant_violators: str = "reject"
    #: Training seeds: "generation" (all candidates of a generation share one seed, so they are
    #: ranked on the same initialisation and batch order: common random numbers, less noise in
    #: what CMA-ES sees) or "candidate" (a fresh seed per candidate). [SPEC: unknown; our choice.]
    seeds: str = "generation"
    #: Initial mean (default: zeros, SPEC §2), in the code layout.
    mean: list[float] | None = None
    #: What a candidate is scored on: "accuracy" (clean validation accuracy, SPEC §2) or "fgsm"
    #: (validation accuracy under a one-step FGSM attack of size ``fgsm_epsilon``, SPEC §6).
    fitness: str = "accuracy"
    #: The attack size for ``fitness = "fgsm"``, in pixel units of [0, 1] images (SPEC §6: 0.1).
    fgsm_epsilon: float = 0.1
    #: What the fitness is called where it is shown (a user objective's, e.g. "validation AUC");
    #: default: what ``fitness`` measures.
    fitness_name: str | None = None
    #: CMA-ES's strategy constants: "pycma" (pycma's defaults: active CMA, its c_σ, c_μ, d_σ) or
    #: "swiftcma" (those of SwiftCMA, the CMA-ES the reference's experiments ran: no active update,
    #: its weights, c_σ, c_μ and d_σ, σ adapted from the squared path length, capped at e¹).
    cma: str = "pycma"

    @property
    def fitness_meaning(self) -> str:
        """What a fitness number is, in words, for every place that prints one (CLI, report)."""
        if self.fitness_name:
            return self.fitness_name
        if self.fitness == "fgsm":
            return f"validation accuracy under FGSM (eps {self.fgsm_epsilon:g})"
        return "validation accuracy"

    def new_search(self, seed: int, inputs: Sequence[str] = DEFAULT_INPUTS) -> CMAESSearch:
        """The CMA-ES search this table describes, before its first ``ask`` (deterministic: a
        function of the table, ``seed`` and the losses' ``inputs``, ``training.loss_inputs``)."""
        from ..cmaes import CMAESSearch

        n = num_params(self.order, check_inputs(inputs))
        return CMAESSearch(n, self.population, self.sigma, seed=seed, mean=self.mean, constants=self.cma)

    def validate(self, prefix: str = "search.", inputs: Sequence[str] = DEFAULT_INPUTS) -> SearchConfig:
        def bad(name: str, why: str) -> TaylorGLOError:
            return TaylorGLOError(f"{prefix}{name}: {why}")

        if not _is_int(self.order) or self.order not in SUPPORTED_ORDERS:
            raise bad("order", f"must be one of {', '.join(map(str, SUPPORTED_ORDERS))}, got {self.order!r}")
        if not _is_int(self.population) or self.population < 2:
            raise bad(
                "population", f"must be an integer >= 2 (CMA-ES needs at least two candidates), got {self.population!r}"
            )
        if not (_is_number(self.sigma) and 0 < self.sigma <= MAX_MAGNITUDE):
            raise bad(
                "sigma",
                f"must be a positive number up to {MAX_MAGNITUDE:g} (larger steps sample parameters "
                f"that overflow), got {self.sigma!r}",
            )
        if not _is_int(self.generations) or self.generations < 1:
            raise bad("generations", f"must be a positive integer, got {self.generations!r}")
        if not (_is_number(self.partial_fraction) and 0 < self.partial_fraction <= 1):
            raise bad("partial_fraction", f"must be a number in (0, 1], got {self.partial_fraction!r}")
        if self.invariant not in RULES:
            raise bad("invariant", f"must be one of {', '.join(map(repr, RULES))}, got {self.invariant!r}")
        if self.invariant_violators not in VIOLATORS:
            raise bad(
                "invariant_violators",
                f"must be one of {', '.join(map(repr, VIOLATORS))}, got {self.invariant_violators!r}",
            )
        if self.seeds not in SEED_MODES:
            raise bad("seeds", f"must be one of {', '.join(map(repr, SEED_MODES))}, got {self.seeds!r}")
        if self.cma not in CMA_CONSTANTS:
            raise bad("cma", f"must be one of {', '.join(map(repr, CMA_CONSTANTS))}, got {self.cma!r}")
        if self.fitness not in FITNESSES:
            raise bad("fitness", f"must be one of {', '.join(map(repr, FITNESSES))}, got {self.fitness!r}")
        if not (_is_number(self.fgsm_epsilon) and 0 < self.fgsm_epsilon <= 1):
            raise bad("fgsm_epsilon", f"must be a number in (0, 1] (pixel units), got {self.fgsm_epsilon!r}")
        if self.mean is not None:
            n = num_params(self.order, check_inputs(inputs))
            if (
                not isinstance(self.mean, list)
                or len(self.mean) != n
                or not all(_is_number(v) and abs(v) <= MAX_MAGNITUDE for v in self.mean)
            ):
                raise bad(
                    "mean",
                    f"must be a list of {n} numbers (order {self.order}{inputs_words(inputs)}), each of size at most "
                    f"{MAX_MAGNITUDE:g}, got {self.mean!r}",
                )
        return self

    @property
    def candidate_fgsm_epsilon(self) -> float | None:
        """The FGSM size a candidate's fitness is measured at; None for clean accuracy."""
        return self.fgsm_epsilon if self.fitness == "fgsm" else None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_table(
        cls, table: dict[str, Any], prefix: str = "search.", inputs: Sequence[str] = DEFAULT_INPUTS
    ) -> SearchConfig:
        """The table as parsed from the file: unknown fields and bad values are one line each."""
        check_fields(cls, table, prefix)
        return cls(**table).validate(prefix, inputs)
