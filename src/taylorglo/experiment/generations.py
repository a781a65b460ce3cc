"""The one crash-safe generation loop the kinds that run generations share, and the hooks such a
kind implements to run under it.

The host owns what every kind shares: the lock, the log, the evaluator, the progress display and
this loop. A generation is opened (its plan recorded in one transaction before anything trains),
its pending jobs trained, each result recorded the moment it ends, and then closed; a generation
found open at start is resumed where it stopped (see :mod:`.store`). What a generation *is* —
CMA-ES candidates, EPBT members' stretches — is the :class:`GenerationKind` 's business alone,
the way Optuna's samplers sit under one study loop: the loop never asks which kind it runs.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any

from ..records import Result
from .kind import ExperimentKind
from .progress import Reporter, SearchProgress

if TYPE_CHECKING:
    from ..evaluators.base import Job


class GenerationKind(ExperimentKind):
    """A kind that runs generations (the search, EPBT): :meth:`run` is :func:`run_generations`,
    which calls the hooks below."""

    def run(self, log: Any, reporter: Reporter) -> None:
        workers = self.runner.workers
        progress = SearchProgress.from_store(self.store, self.config, workers, self.generations(), self.wording)
        run_generations(self, progress, log, reporter)

    def position(self) -> str:
        closed = sum(1 for g in self.store.generations() if g.closed)
        return f"resuming at generation {closed}"

    @abstractmethod
    def generations(self) -> int:
        """How many generations the experiment has in all."""

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

    def recorded(self, result: Result) -> Result:
        """``result`` as the store keeps it: a kind may add to its metrics what only it knows
        (the search tags a candidate trained despite failing the invariant); by default as it is."""
        return result

    def result_detail(self, result: Result) -> str:
        """What the log line of one recorded result adds after its fitness (EPBT: the member's
        hyperparameters)."""
        return ""

    @classmethod
    def generation_detail(cls, row: dict[str, Any]) -> str:
        """What a closed generation's line (in the log, in ``status``) adds after its statistics;
        ``row`` is :meth:`~taylorglo.records.Generation.row` (the search adds σ)."""
        return ""


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
            result = kind.recorded(result)
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
