"""Recipes: what one job trains, each kind of training work one small type that knows how.

A :class:`~.base.Job` is where its result belongs, its seed, what to measure and keep, and a
recipe: a fresh run of a loss (a search candidate, a ``final`` repeat), a run that continues a
candidate's partial run (``final --from-pretrained``), an EPBT member's stretch from its saved
state, or a lineage's schedule replayed from scratch. The one function every worker runs
(:func:`~.worker.evaluate_job`) asks the recipe to train and measures the result the same way
for all of them; a new kind of training work (a user's own training function, a population
trained at once) is a new recipe, not a branch there.

This module imports no torch (the host builds recipes); :meth:`Recipe.train` imports it where
it runs, in a worker.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..training.config import TrainConfig
    from ..training.data import DataSplits
    from ..training.trainer import ScheduleStep, TrainResult


class Recipe(ABC):
    """One kind of training work (see the module docstring)."""

    #: The loss the trained network ends with (TaylorGLO parameters; None: cross-entropy): what an
    #: FGSM fitness attacks through, and what a saved network records.
    params: tuple[float, ...] | None
    #: Whether jobs of this recipe may train together as one vectorized population: a fresh run
    #: of the built-in trainer from the job's seed (:func:`~taylorglo.training.population.train_population`).
    stackable: bool = False

    @abstractmethod
    def train(
        self, training: TrainConfig, seed: int, data: DataSplits, keep_model: bool, key: tuple[int, int]
    ) -> tuple[TrainResult, dict[str, Any]]:
        """Train for ``training`` 's schedule from ``seed`` (the job's; ``key`` is where its result
        belongs); return the result and the metrics this recipe adds to it. May raise: an
        exception is the job's failure."""

    def reads(self) -> list[str]:
        """Files the training reads: an evaluator whose workers do not share this disk ships them."""
        return []

    def writes(self) -> list[str]:
        """Files the training writes, to be brought back by such an evaluator."""
        return []

    def relocated(self, paths: dict[str, str]) -> Recipe:
        """This recipe with the files of :meth:`reads` / :meth:`writes` renamed by ``paths``."""
        return self


def _loss(params: tuple[float, ...] | None, training: TrainConfig) -> Any:
    from ..training.trainer import as_loss

    return as_loss(None if params is None else list(params), training.round_params)


@dataclass(frozen=True)
class FreshRun(Recipe):
    """A fresh network trained with one loss from the job's seed, by the config's trainer
    (taylorglo's loop, or the user's objective: :mod:`taylorglo.training.trainers`); ``phase``
    tells an objective whether it is a search's candidate or a ``final`` run."""

    params: tuple[float, ...] | None
    phase: str = "search"
    stackable = True  # a class attribute, not a field: every fresh run may be stacked

    def train(
        self, training: TrainConfig, seed: int, data: DataSplits, keep_model: bool, key: tuple[int, int]
    ) -> tuple[TrainResult, dict[str, Any]]:
        from ..training.trainers import trainer_for

        return trainer_for(training).fresh(_loss(self.params, training), seed, data, keep_model, self.phase)


@dataclass(frozen=True)
class ContinuedRun(Recipe):
    """The run seed ``from_seed`` makes for the first ``partial_fraction`` of the schedule (a
    candidate's partial run, replayed rather than stored: training is deterministic for a seed),
    then on to the end of the schedule with the job's seed ("from pretrained", SPEC §4). The steps
    that share takes are counted on the worker's data, where the data is."""

    params: tuple[float, ...] | None
    from_seed: int
    partial_fraction: float

    def train(
        self, training: TrainConfig, seed: int, data: DataSplits, keep_model: bool, key: tuple[int, int]
    ) -> tuple[TrainResult, dict[str, Any]]:
        from ..training.trainer import train

        steps = training.replace(partial_fraction=self.partial_fraction).schedule(len(data.train_y)).run_steps
        loss = _loss(self.params, training)
        result = train(training, loss, seed=self.from_seed, data=data, keep_model=keep_model, reseed=(steps, seed))
        return result, {}


@dataclass(frozen=True)
class Stretch(Recipe):
    """An EPBT member's next stretch of training (its steps, loss, hyperparameters and
    distillation), continuing the state in ``resume_from`` (None: a fresh network) and saving the
    state reached to ``save_to``. Only the stretch that ends the schedule is measured on the test
    set."""

    stretch: ScheduleStep
    save_to: str
    resume_from: str | None = None

    @property
    def params(self) -> tuple[float, ...] | None:  # type: ignore[override]
        return self.stretch.params

    def train(
        self, training: TrainConfig, seed: int, data: DataSplits, keep_model: bool, key: tuple[int, int]
    ) -> tuple[TrainResult, dict[str, Any]]:
        from ..training.checkpoint import load_state, save_state
        from ..training.trainer import train

        total = training.schedule(len(data.train_y)).total_steps
        state = load_state(self.resume_from) if self.resume_from else None
        run = self.stretch.config_for(training, self.stretch.stop >= total)
        params = None if self.params is None else list(self.params)
        result = train(
            run,
            _loss(self.params, training),
            seed=seed,
            data=data,
            keep_model=keep_model,
            segment=self.stretch.segment(state),
            keep_state=True,
        )
        metrics: dict[str, Any] = {}
        if result.ok and result.state is not None:
            save_state(
                result.state,
                self.save_to,
                params=params,
                lr=run.lr,
                weight_decay=run.weight_decay,
                seed=seed,
                generation=key[0],
                index=key[1],
            )
            metrics["checkpoint"] = self.save_to
        metrics["lr"], metrics["weight_decay"] = run.lr, run.weight_decay
        return result, metrics

    def reads(self) -> list[str]:
        return [self.resume_from] if self.resume_from else []

    def writes(self) -> list[str]:
        return [self.save_to]

    def relocated(self, paths: dict[str, str]) -> Stretch:
        resume = paths.get(self.resume_from or "", self.resume_from)
        return replace(self, save_to=paths.get(self.save_to, self.save_to), resume_from=resume)


@dataclass(frozen=True)
class Replay(Recipe):
    """One fresh network trained through a schedule of losses and hyperparameters (an EPBT
    lineage replayed from scratch); ``params`` is the schedule's last loss, the network's own."""

    params: tuple[float, ...] | None
    schedule: tuple[ScheduleStep, ...]

    def train(
        self, training: TrainConfig, seed: int, data: DataSplits, keep_model: bool, key: tuple[int, int]
    ) -> tuple[TrainResult, dict[str, Any]]:
        from ..training.trainer import train_schedule

        return train_schedule(training, self.schedule, seed, data, keep_model=keep_model), {}
