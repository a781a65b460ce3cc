"""The TaylorGLO search's part of the host's one generation loop
(:class:`~taylorglo.experiment.generations.GenerationKind`): CMA-ES over the loss's parameters,
one generation of λ candidates at a time, a candidate's fitness its partial training's
validation accuracy (SPEC §2):

* **open** asks CMA-ES for λ candidates (from the previous generation's told state, or a new
  search), rejects those the invariant fails, and records them with the state after ``ask``;
* **resume** restores that state, so a restarted generation is told exactly what it asked;
* **close** tells CMA-ES the generation's fitnesses and records the state after ``tell``.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import write_atomic
from ..cmaes import CMAESSearch
from ..errors import TaylorGLOError
from ..evaluators.base import Job
from ..evaluators.recipes import FreshRun
from ..experiment.generations import GenerationKind
from ..experiment.invocation import train_command
from ..experiment.store import Store
from ..experiment.threads import search_plan
from ..invariant import invariant_holds
from ..polynomial import check_inputs, format_formula, loss_spec
from ..records import Candidate, Result
from ..seeds import candidate_seed
from .config import INVARIANT_TAG, SearchConfig
from .tables import candidates_csv

if TYPE_CHECKING:
    from ..experiment.config import ExperimentConfig
    from ..experiment.contenders import Contender, FinalOptions
    from ..training.config import TrainConfig


class SearchKind(GenerationKind):
    """See the module docstring."""

    table = "search"
    report = "taylorglo.glo.page:write_search_report"
    settings: SearchConfig
    search: CMAESSearch | None = None
    plan: Callable[[int], list[int]] | None = None
    #: The indices of the open generation's pending candidates that fail the invariant and are
    #: trained all the same (``search.invariant_violators = "train"``), tagged when recorded.
    violators: frozenset[int] | set[int] = frozenset()

    @classmethod
    def status_fields(cls, store: Store, config: ExperimentConfig) -> dict[str, Any]:
        fields = super().status_fields(store, config)
        if config.search.invariant_violators == "train":
            fields["invariant_violators_trained"] = store.tagged(INVARIANT_TAG)
        return fields

    @classmethod
    def parse_settings(cls, table: dict[str, Any], training: TrainConfig) -> SearchConfig:
        settings = SearchConfig.from_table(table, inputs=training.loss_inputs)
        if training.objective is None:
            return settings
        if settings.fitness == "fgsm":
            raise TaylorGLOError(
                'search.fitness: "fgsm" attacks the built-in trainer\'s network on its data; with '
                "training.objective, return the accuracy under attack as the objective's fitness"
            )
        return dataclasses.replace(settings, fitness_name=settings.fitness_name or "the objective's fitness")

    @staticmethod
    def training(config: ExperimentConfig) -> TrainConfig:
        """A candidate trains the partial schedule, scored on validation data only."""
        return config.training.replace(partial_fraction=config.search.partial_fraction, eval_test=False)

    def generations(self) -> int:
        return self.settings.generations

    def begin(self) -> None:
        _fill_summaries(self.store)
        self.plan = search_plan(self.store, self.config.evaluator.lend_idle_cores, self.runner, self.log)

    def resume(self, generation: int) -> None:
        row = self.store.generation(generation)
        assert row is not None
        self.search = CMAESSearch.from_state(row.asked_state)

    def open(self, generation: int) -> None:
        settings, num_classes = self.settings, self.facts.num_classes
        previous = self.store.generation(generation - 1) if generation else None
        search = (
            settings.new_search(self.config.seed, self.config.training.loss_inputs)
            if previous is None
            else CMAESSearch.from_state(previous.told_state or b"")
        )
        rule, inputs = settings.invariant, check_inputs(self.config.training.loss_inputs)
        candidates = []
        for index, params in enumerate(search.ask()):
            seed = candidate_seed(self.config.seed, generation, index, settings.seeds)
            if settings.invariant_violators == "train" or invariant_holds(params, num_classes, rule, inputs):
                candidates.append(Candidate(generation, index, params, seed, "pending"))
            else:
                reason = f"fails the {rule} invariant for {num_classes} classes"
                candidates.append(
                    Candidate(generation, index, params, seed, "rejected-invariant", fitness=0.0, reason=reason)
                )
        self.store.open_generation(generation, search.state(), candidates, asked_summary=search.summary())
        self.search = search

    def jobs(self, generation: int) -> list[Job]:
        assert self.plan is not None
        rows = self.store.candidates(generation)
        settings, inputs = self.settings, check_inputs(self.config.training.loss_inputs)
        if settings.invariant_violators == "train":  # trained all the same; tagged when recorded
            self.violators = {
                c.index
                for c in rows
                if c.status == "pending"
                and not invariant_holds(c.params, self.facts.num_classes, settings.invariant, inputs)
            }
        return _jobs(rows, settings.candidate_fgsm_epsilon, self.plan)

    def recorded(self, result: Result) -> Result:
        if result.index not in self.violators:
            return result
        tag = f"fails the {self.settings.invariant} invariant; trained as search.invariant_violators = 'train' asks"
        return dataclasses.replace(result, metrics={**(result.metrics or {}), INVARIANT_TAG: tag})

    def close(self, generation: int) -> None:
        assert self.search is not None
        rows = self.store.candidates(generation)
        self.search.tell([c.params for c in rows], [c.fitness or 0.0 for c in rows])
        self.store.close_generation(generation, self.search.state(), self.search.sigma, self.search.summary())

    def export(self) -> None:
        export(self.directory, self.store, self.config)

    @classmethod
    def generation_detail(cls, row: dict[str, Any]) -> str:
        return f" sigma {row['sigma']:.3g}"

    def finished_text(self, status: dict[str, Any]) -> str:
        return f"best fitness {status['best']['fitness'] if status['best'] else None}"

    @classmethod
    def summary(cls, directory: str, status: dict[str, Any], config: ExperimentConfig) -> list[str]:
        lines = [cls.standing(status)]
        best = status["best"]
        if best is None:
            return [*lines, "no candidate has been evaluated yet"]
        t = config.training
        return [
            *lines,
            f"best loss: fitness {best['fitness']:.4f} = {best.get('fitness_name') or config.search.fitness_meaning} "
            "after "
            f"{config.search.partial_fraction:.0%} of {t.schedule_words()} "
            f"(candidate {best['generation']}:{best['index']})",
            f"  {best['formula']}",
            f"results in {directory}/: best.json (the best loss), generations.csv, candidates.csv, "
            f"experiment.sqlite (everything), host.log",
            "train the best loss on the full schedule, and cross-entropy the same way to compare:",
            "  " + train_command(t, best["params"], config.seed),
            "  " + train_command(t, None, config.seed),
            f"or all of it, repeated, with t-tests: taylorglo final {directory} --repeats 10; "
            f"then taylorglo analyze {directory} (HTML report)",
        ]

    @classmethod
    def final_contenders(
        cls, store: Store, directory: Path, config: ExperimentConfig, options: FinalOptions
    ) -> tuple[list[Contender], str]:
        from .final import search_contenders

        return search_contenders(store, directory, config, options)

    @classmethod
    def invocation(
        cls,
        directory: Path | None,
        config: ExperimentConfig,
        generation: int,
        index: int,
        params: list[float] | None,
        full: bool,
    ) -> str:
        """A candidate's training as one command: its parameters from the store (or, before the
        search runs, the first generation CMA-ES will ask), its seed and thread count."""
        settings: SearchConfig = config.search
        if index >= settings.population or generation >= settings.generations:
            raise TaylorGLOError(
                f"--candidate: {generation}:{index} is outside {settings.generations} "
                f"generations x {settings.population} candidates"
            )
        threads = None
        if params is not None:
            values = params
        elif directory is not None:
            with Store(directory / Store.FILENAME, readonly=True) as store:
                rows = [c for c in store.candidates(generation) if c.index == index]
            if not rows:
                raise TaylorGLOError(f"--candidate: generation {generation} has not been asked yet")
            values = rows[0].params
            threads = None if full else (rows[0].metrics or {}).get("threads")
        elif generation == 0:
            values = settings.new_search(config.seed).ask()[index]  # CMA-ES (pycma), not torch
        else:
            raise TaylorGLOError(
                "--candidate: only generation 0 is known before a search runs; pass an experiment DIR or --params"
            )
        training = config.training if full else cls.training(config)
        return train_command(training, values, candidate_seed(config.seed, generation, index, settings.seeds), threads)


def _fill_summaries(store: Store) -> None:
    """Give generations an older version recorded the plain-data summaries readers use. The
    pickles are this experiment's own, which ``start`` unpickles anyway to resume."""
    for g in store.missing_summaries():
        asked = CMAESSearch.from_state(g.asked_state).summary()
        told = CMAESSearch.from_state(g.told_state).summary() if g.told_state else None
        store.set_summaries(g.generation, asked, told)


def _jobs(candidates: list[Candidate], fgsm_epsilon: float | None, plan: Callable[[int], list[int]]) -> list[Any]:
    """The jobs of a generation's pending candidates. Threads are planned over every candidate
    that trains, recorded or not, so a resumed generation gets the plan it started with."""
    trained = [c for c in candidates if c.status != "rejected-invariant"]
    threads = dict(zip((c.index for c in trained), plan(len(trained))))
    return [
        Job(
            c.generation,
            c.index,
            FreshRun(tuple(c.params)),
            c.seed,
            fgsm_epsilon=fgsm_epsilon,
            threads=threads[c.index],
        )
        for c in candidates
        if c.status == "pending"
    ]


def export(directory: Any, store: Store, config: Any) -> None:
    """Rewrite the human-readable views (best.json, generations.csv, candidates.csv) atomically."""
    best = store.best()
    inputs = check_inputs(config.training.loss_inputs)
    if best is not None:
        write_atomic(
            directory / "best.json",
            json.dumps(
                {
                    "name": config.name,
                    "params": best.params,
                    "fitness": best.fitness,
                    "fitness_name": (best.metrics or {}).get("fitness_name") or config.search.fitness_meaning,
                    "generation": best.generation,
                    "index": best.index,
                    "seed": best.seed,
                    "formula": format_formula(best.params, "code", inputs),
                    "formula_paper": format_formula(best.params, "paper", inputs),
                    "loss": loss_spec(best.params, inputs),
                },
                indent=2,
            )
            + "\n",
        )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["generation", "best_fitness", "mean_fitness", "min_fitness", "sigma"])
    for g in store.generations():
        if g.closed:
            writer.writerow([g.generation, g.best_fitness, g.mean_fitness, g.min_fitness, g.sigma])
    write_atomic(directory / "generations.csv", out.getvalue())
    write_atomic(directory / "candidates.csv", candidates_csv(store.candidates()))
