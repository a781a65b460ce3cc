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
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ..training.config import TrainConfig
    from ..training.data import DataSplits
    from ..training.trainer import ScheduleStep, TrainResult


R = TypeVar("R", bound="Recipe")


class Recipe(ABC):
    """One kind of training work (see the module docstring)."""

    #: The loss the trained network ends with (TaylorGLO parameters; None: cross-entropy): what an
    #: FGSM fitness attacks through, and what a saved network records.
    params: tuple[float, ...] | None

    @abstractmethod
    def train(
        self, training: TrainConfig, seed: int, data: DataSplits, keep_model: bool, key: tuple[int, int]
    ) -> tuple[TrainResult, dict[str, Any]]:
        """Train for ``training`` 's schedule from ``seed`` (the job's; ``key`` is where its result
        belongs); return the result and the metrics this recipe adds to it. May raise: an
        exception is the job's failure."""

    def stack_key(self) -> tuple[Any, ...] | None:
        """Jobs whose recipes have equal keys may train together as one vectorized population
        (:meth:`train_stack`, :mod:`taylorglo.training.population`): the same kind of work over
        the same steps. None (the default): this job trains alone."""
        return None

    @classmethod
    def train_stack(
        cls,
        training: TrainConfig,
        recipes: Sequence[Recipe],
        seeds: Sequence[int],
        data: DataSplits,
        keep_model: bool,
        keys: Sequence[tuple[int, int]],
    ) -> list[tuple[TrainResult, dict[str, Any]]]:
        """:meth:`train` for recipes of one :meth:`stack_key`, trained at once; one result and its
        metrics per recipe, in order. Only recipes that have a stack key implement it."""
        raise NotImplementedError(f"{cls.__name__} does not train in stacks")

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

    return as_loss(None if params is None else list(params), training.round_params, training.loss_inputs)


def _of_type(recipes: Sequence[Recipe], kind: type[R]) -> list[R]:
    """``recipes``, which :meth:`Recipe.train_stack` was handed because they share a stack key,
    as the ``kind`` they must all be."""
    wrong = [type(r).__name__ for r in recipes if not isinstance(r, kind)]
    if wrong:
        raise TypeError(f"{kind.__name__}.train_stack got {', '.join(sorted(set(wrong)))} recipes")
    return [r for r in recipes if isinstance(r, kind)]


@dataclass(frozen=True)
class FreshRun(Recipe):
    """A fresh network trained with one loss from the job's seed, by the config's trainer
    (taylorglo's loop, or the user's objective: :mod:`taylorglo.training.trainers`); ``phase``
    tells an objective whether it is a search's candidate or a ``final`` run."""

    params: tuple[float, ...] | None
    phase: str = "search"

    def train(
        self, training: TrainConfig, seed: int, data: DataSplits, keep_model: bool, key: tuple[int, int]
    ) -> tuple[TrainResult, dict[str, Any]]:
        from ..training.trainers import trainer_for

        return trainer_for(training).fresh(_loss(self.params, training), seed, data, keep_model, self.phase)

    def stack_key(self) -> tuple[Any, ...]:
        return ("fresh",)

    @classmethod
    def train_stack(
        cls,
        training: TrainConfig,
        recipes: Sequence[Recipe],
        seeds: Sequence[int],
        data: DataSplits,
        keep_model: bool,
        keys: Sequence[tuple[int, int]],
    ) -> list[tuple[TrainResult, dict[str, Any]]]:
        from ..training.population import train_population

        losses = [_loss(r.params, training) for r in recipes]
        return [(result, {}) for result in train_population(training, losses, seeds, data, keep_model)]


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
        from ..training.trainer import train

        run = self._run(training, data)
        result = train(
            run,
            _loss(self.params, training),
            seed=seed,
            data=data,
            keep_model=keep_model,
            segment=self.stretch.segment(self._state()),
            keep_state=True,
        )
        return result, self._saved(result, run, seed, key)

    def stack_key(self) -> tuple[Any, ...]:
        return ("stretch", self.stretch.start, self.stretch.stop)

    @classmethod
    def train_stack(
        cls,
        training: TrainConfig,
        recipes: Sequence[Recipe],
        seeds: Sequence[int],
        data: DataSplits,
        keep_model: bool,
        keys: Sequence[tuple[int, int]],
    ) -> list[tuple[TrainResult, dict[str, Any]]]:
        from ..training.population import train_population

        stretches = _of_type(recipes, Stretch)
        runs = [r._run(training, data) for r in stretches]
        results = train_population(
            runs[0],  # the members' configs differ in their hyperparameters only
            [_loss(r.params, training) for r in stretches],
            seeds,
            data,
            keep_model,
            segments=[r.stretch.segment(r._state()) for r in stretches],
            hyper=[(run.lr, run.weight_decay) for run in runs],
            keep_state=True,
        )
        return [
            (result, r._saved(result, run, seed, key))
            for r, run, result, seed, key in zip(stretches, runs, results, seeds, keys)
        ]

    def _run(self, training: TrainConfig, data: DataSplits) -> TrainConfig:
        """The config this stretch trains with (its hyperparameters; the test set measured only
        by the stretch that ends the schedule)."""
        total = training.schedule(len(data.train_y)).total_steps
        return self.stretch.config_for(training, self.stretch.stop >= total)

    def _state(self) -> dict[str, Any] | None:
        from ..training.checkpoint import load_state

        return load_state(self.resume_from) if self.resume_from else None

    def _saved(self, result: TrainResult, run: TrainConfig, seed: int, key: tuple[int, int]) -> dict[str, Any]:
        """Save the state a stretch reached to :attr:`save_to`; the metrics that say so."""
        from ..training.checkpoint import save_state

        metrics: dict[str, Any] = {}
        if result.ok and result.state is not None:
            save_state(
                result.state,
                self.save_to,
                params=None if self.params is None else list(self.params),
                lr=run.lr,
                weight_decay=run.weight_decay,
                seed=seed,
                generation=key[0],
                index=key[1],
            )
            metrics["checkpoint"] = self.save_to
        metrics["lr"], metrics["weight_decay"] = run.lr, run.weight_decay
        return metrics

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

    def stack_key(self) -> tuple[Any, ...]:
        return ("replay", tuple((s.start, s.stop) for s in self.schedule))

    @classmethod
    def train_stack(
        cls,
        training: TrainConfig,
        recipes: Sequence[Recipe],
        seeds: Sequence[int],
        data: DataSplits,
        keep_model: bool,
        keys: Sequence[tuple[int, int]],
    ) -> list[tuple[TrainResult, dict[str, Any]]]:
        from ..training.population import train_schedule_population

        schedules = [r.schedule for r in _of_type(recipes, Replay)]
        return [(result, {}) for result in train_schedule_population(training, schedules, seeds, data, keep_model)]
