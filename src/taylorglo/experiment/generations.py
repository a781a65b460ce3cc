"""The one crash-safe generation loop every experiment kind runs under, and the interface a kind
implements to run under it.

The host owns what every kind shares: the lock, the log, the evaluator, the progress display and
this loop. A generation is opened (its plan recorded in one transaction before anything trains),
its pending jobs trained, each result recorded the moment it ends, and then closed; a generation
found open at start is resumed where it stopped (see :mod:`.store`). What a generation *is* —
CMA-ES candidates, EPBT members' stretches — is the :class:`GenerationKind` 's business alone,
the way Optuna's samplers sit under one study loop: the loop never asks which kind it runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..polynomial import format_formula
from ..records import Candidate, Generation
from .progress import Wording
from .store import Store

if TYPE_CHECKING:
    from ..evaluators.base import Evaluator, Job
    from ..training.config import TrainConfig
    from ..training.facts import TrainingFacts
    from .config import ExperimentConfig
    from .progress import Reporter, SearchProgress


class GenerationKind(ABC):
    """One experiment kind's part of ``start``, made once per ``start`` (after the workers have
    reported the training's facts) and driven by :func:`run_generations`."""

    def __init__(
        self,
        directory: Path,
        store: Store,
        config: ExperimentConfig,
        facts: TrainingFacts,
        runner: Evaluator,
        log: Callable[[str], None],
    ) -> None:
        self.directory, self.store, self.config = directory, store, config
        self.facts, self.runner, self.log = facts, runner, log

    #: How its progress is spoken of (the log's and the display's words).
    wording: Wording = Wording()
    #: ``module:function`` writing its HTML report (``taylorglo analyze``), imported only then.
    report: str = "taylorglo.analysis.report:write_search_report"

    @staticmethod
    def training(config: ExperimentConfig) -> TrainConfig:
        """What the experiment's workers train (by default a search candidate's partial schedule)."""
        return config.candidate_training()

    @classmethod
    def status_fields(cls, store: Store, config: ExperimentConfig) -> dict[str, Any]:
        """The kind's part of ``taylorglo status`` (read-only, no torch): at least
        ``generations_total`` (None while unknown), ``best`` (a dict, or None) and ``invariant``.
        The default is a search's: its best candidate."""
        best = store.best()
        return {
            "generations_total": config.search.generations,
            "invariant": config.search.invariant,
            "best": None
            if best is None
            else {
                "params": best.params,
                "fitness": best.fitness,
                "generation": best.generation,
                "index": best.index,
                "formula": format_formula(best.params),
            },
        }

    @abstractmethod
    def generations(self) -> int:
        """How many generations the experiment has in all."""

    @abstractmethod
    def describe(self) -> str:
        """The experiment's shape for the ``start:`` log line (``"8 generations x 10 candidates"``)."""

    def begin(self) -> None:  # noqa: B027 (a kind may have nothing to prepare)
        """Before the first generation of this ``start``: bring older records up to date, decide
        and record what the generations need (the search's thread plan)."""

    @abstractmethod
    def open(self, generation: int) -> None:
        """Plan ``generation`` and record the plan (``store.open_generation``), before it trains."""

    def resume(self, generation: int) -> None:  # noqa: B027 (a kind may keep no state between steps)
        """``generation`` was found open: restore what :meth:`close` will need."""

    @abstractmethod
    def jobs(self, generation: int) -> list[Job]:
        """The jobs of ``generation`` 's rows still pending."""

    @abstractmethod
    def close(self, generation: int) -> None:
        """Every result of ``generation`` is recorded: update the kind's state and record it
        (``store.close_generation``)."""

    @abstractmethod
    def export(self) -> None:
        """Rewrite the experiment's human-readable views after a generation."""

    def end(self) -> None:  # noqa: B027 (a kind may have nothing to finish)
        """After the last generation (also when a resumed ``start`` finds nothing left to run)."""

    def result_detail(self, result: Candidate) -> str:
        """What the log line of one recorded result adds after its fitness (EPBT: the member's
        hyperparameters)."""
        return ""

    def generation_detail(self, generation: Generation) -> str:
        """What a closed generation's log line adds after its statistics (the search: σ)."""
        return ""

    @abstractmethod
    def finished_text(self, status: dict[str, Any]) -> str:
        """The ``finished:`` log line's end, from the experiment's status."""


def run_generations(kind: GenerationKind, progress: SearchProgress, log: Any, reporter: Reporter) -> None:
    """Run (or resume) every generation that remains, on the kind's store and evaluator; ``log``
    is the host's (``candidate`` and ``generation`` lines), ``reporter`` the display."""
    store, runner = kind.store, kind.runner
    reporter.begin(progress)
    kind.begin()
    while True:
        latest = store.latest_generation()
        if latest is not None and not latest.closed:
            generation, fresh = latest.generation, False
            kind.resume(generation)
        else:
            generation = 0 if latest is None else latest.generation + 1
            if generation >= kind.generations():
                break
            kind.open(generation)
            fresh = True
        progress.begin_generation(generation, store.candidates(generation), fresh)
        reporter.update(progress)
        for result in runner.evaluate(kind.jobs(generation)):
            if store.record(result):
                progress.record(result)
                log.candidate(progress, result, kind)
                reporter.update(progress)
        still = [c.index for c in store.candidates(generation) if c.status == "pending"]
        if still:  # cannot happen unless an evaluator drops jobs; never close a partial generation
            raise RuntimeError(f"generation {generation}: {still} were not trained")
        kind.close(generation)
        kind.export()
        progress.end_generation()
        log.generation(progress, store.generation(generation), kind)
        reporter.update(progress)
    kind.end()
    reporter.end(progress)
