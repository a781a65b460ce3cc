"""A fourth experiment kind, defined outside the package as a user would: a random search over
the 8 TaylorGLO parameters. It proves that a kind is one module plus one name: the host's
generation loop, store, evaluators, ``status`` and CLI run it without knowing it exists
(``kind = "random_kind:RandomSearchKind"`` in a config, with this directory importable)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from taylorglo.errors import TaylorGLOError
from taylorglo.evaluators import FreshRun, Job
from taylorglo.experiment.generations import GenerationKind
from taylorglo.records import Candidate
from taylorglo.training.config import check_fields


@dataclass
class RandomSettings:
    """The ``[random]`` table."""

    population: int = 4
    generations: int = 2
    #: Parameters are drawn from N(0, scale²).
    scale: float = 1.0
    partial_fraction: float = 0.05

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class RandomSearchKind(GenerationKind):
    table = "random"
    settings: RandomSettings

    @classmethod
    def parse_settings(cls, table: dict[str, Any], training: Any) -> RandomSettings:
        check_fields(RandomSettings, table, "random.")
        settings = RandomSettings(**table)
        if not isinstance(settings.population, int) or settings.population < 1:
            raise TaylorGLOError(f"random.population: must be a positive integer, got {settings.population!r}")
        return settings

    @staticmethod
    def training(config: Any) -> Any:
        return config.training.replace(partial_fraction=config.settings.partial_fraction, eval_test=False)

    def generations(self) -> int:
        return self.settings.generations

    def describe(self) -> str:
        return f"random search, {self.settings.generations} x {self.settings.population}"

    def open(self, generation: int) -> None:
        rng = np.random.default_rng([self.config.seed, generation])
        rows = [
            Candidate(
                generation,
                i,
                [float(v) for v in rng.normal(0, self.settings.scale, 8)],
                1000 * generation + i,
                "pending",
            )
            for i in range(self.settings.population)
        ]
        self.store.open_generation(generation, b"random", rows)

    def jobs(self, generation: int) -> list[Job]:
        rows = self.store.candidates(generation)
        return [
            Job(c.generation, c.index, FreshRun(tuple(c.params)), c.seed, threads=1)
            for c in rows
            if c.status == "pending"
        ]

    def close(self, generation: int) -> None:
        self.store.close_generation(generation, b"random", self.settings.scale)

    def export(self) -> None:
        pass

    def finished_text(self, status: dict[str, Any]) -> str:
        return f"best {status['best']['fitness'] if status['best'] else None}"
