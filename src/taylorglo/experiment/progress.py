"""Progress of a running search, and the two ways of showing it.

:class:`SearchProgress` is the numbers (generation, candidates done/rejected/failed, best so far,
ETA); a :class:`Reporter` shows them. :class:`PlainReporter` writes one line per event, what a log
file or ``nohup`` wants; :class:`LiveReporter` draws a live display on a terminal. The host only
talks to the base class, so a notebook or a web page can bring its own.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from ..records import Candidate, Result
from .store import Store


def _search_counts(c: dict[str, int]) -> str:
    return (
        f"candidates ({c['evaluated']} evaluated, {c['rejected-invariant']} rejected by the invariant, "
        f"{c['failed']} failed, {c['aborted']} aborted)"
    )


def _search_bar(c: dict[str, int]) -> str:
    return f"evaluated {c['evaluated']}  rejected {c['rejected-invariant']}  failed {c['failed'] + c['aborted']}"


@dataclass(frozen=True)
class Wording:
    """How a kind's progress is spoken of: the overall bar's ``label``, the ``noun`` of one row,
    the ``counts`` after "done/total" in the log, and the generation bar's ``bar`` text (both
    from the status counts). The defaults are the search's."""

    label: str = "search"
    noun: str = "candidate"
    counts: Callable[[dict[str, int]], str] = _search_counts
    bar: Callable[[dict[str, int]], str] = _search_bar


@dataclass
class SearchProgress:
    generations_total: int
    population: int
    workers: int
    generation: int = 0
    generations_completed: int = 0
    counts: dict[str, int] = field(
        default_factory=lambda: {"evaluated": 0, "rejected-invariant": 0, "failed": 0, "aborted": 0}
    )
    generation_done: int = 0
    best_fitness: float | None = None
    #: Wall seconds of the trainings finished by this process (for the ETA).
    trained_seconds: float = 0.0
    trained_runs: int = 0
    started_at: float = field(default_factory=time.time)
    #: How the kind's rows are spoken of (a search's candidates, EPBT's member segments).
    wording: Wording = field(default_factory=Wording)

    @classmethod
    def from_store(
        cls, store: Store, config: Any, workers: int, generations: int, wording: Wording | None = None
    ) -> SearchProgress:
        """Progress so far, of ``generations`` in all (the kind's count)."""
        progress = cls(generations, config.population, workers, wording=wording or Wording())
        counts = store.counts()
        for key in progress.counts:
            progress.counts[key] = counts[key]
        gens = store.generations()
        progress.generations_completed = sum(1 for g in gens if g.closed)
        progress.generation = progress.generations_completed
        best = store.best()
        progress.best_fitness = None if best is None else best.fitness
        return progress

    def begin_generation(self, generation: int, candidates: list[Candidate], fresh: bool) -> None:
        """A generation starts; ``fresh`` when just asked (its rejections are not counted yet)."""
        self.generation = generation
        self.generation_done = sum(1 for c in candidates if c.status != "pending")
        if fresh:
            self.counts["rejected-invariant"] += sum(1 for c in candidates if c.status == "rejected-invariant")

    def record(self, c: Result | Candidate) -> None:
        self.counts[c.status] = self.counts.get(c.status, 0) + 1
        self.generation_done += 1
        if c.wall_time:
            self.trained_seconds += c.wall_time
            self.trained_runs += 1
        if c.status == "evaluated" and c.fitness is not None:
            if self.best_fitness is None or c.fitness > self.best_fitness:
                self.best_fitness = c.fitness

    def end_generation(self) -> None:
        self.generations_completed = self.generation + 1
        self.generation_done = self.population

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    @property
    def total(self) -> int:
        return self.generations_total * self.population

    def eta_seconds(self) -> float | None:
        """Remaining trainings (at the rejection rate seen so far) × mean training time / workers."""
        if not self.trained_runs:
            return None
        done = max(1, self.done)
        trained_share = 1.0 - self.counts["rejected-invariant"] / done
        remaining = (self.total - self.done) * trained_share
        return remaining * (self.trained_seconds / self.trained_runs) / max(1, self.workers)

    def eta_text(self) -> str:
        eta = self.eta_seconds()
        return "-" if eta is None else format_duration(eta)

    def best_text(self) -> str:
        return "-" if self.best_fitness is None else f"{self.best_fitness:.4f}"

    def counts_text(self) -> str:
        return f"{self.done}/{self.total} {self.wording.counts(self.counts)}"


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Reporter:
    """Shows a search's progress; the base class shows nothing."""

    def begin(self, progress: SearchProgress) -> None: ...

    def update(self, progress: SearchProgress) -> None: ...

    def log(self, line: str, detail: bool = False) -> None:
        """An event line; ``detail`` marks per-candidate lines a compact display may skip."""

    def end(self, progress: SearchProgress) -> None: ...


class PlainReporter(Reporter):
    """One line per event on a stream (stderr by default): for logs, pipes and ``nohup``."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def log(self, line: str, detail: bool = False) -> None:
        stream = self.stream or sys.stderr
        print(line, file=stream, flush=True)


class LiveReporter(Reporter):
    """A live display on a terminal: overall and per-generation bars, counts, best, ETA."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self._bar: Any = None

    def begin(self, progress: SearchProgress) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
        )
        self._all = self._bar.add_task(progress.wording.label, total=progress.total, info="")
        self._gen = self._bar.add_task("generation", total=progress.population, info="")
        self._bar.start()
        self.update(progress)

    def update(self, progress: SearchProgress) -> None:
        if self._bar is None:
            return
        c = progress.counts
        self._bar.update(
            self._all, completed=progress.done, info=f"best {progress.best_text()}  ETA {progress.eta_text()}"
        )
        self._bar.update(
            self._gen,
            completed=progress.generation_done,
            description=f"generation {progress.generation + 1}/{progress.generations_total}",
            info=progress.wording.bar(c),
        )

    def log(self, line: str, detail: bool = False) -> None:
        # Generation summaries stay on screen above the bars; per-candidate lines go to host.log only.
        if not detail:
            self.console.print(line, highlight=False, markup=False)

    def end(self, progress: SearchProgress) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
