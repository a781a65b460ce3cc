"""What trains a fresh network with one loss on a worker: taylorglo's own loop on a dataset, or
the user's objective (:mod:`.objective`).

A worker asks its :class:`Trainer` for the data to hold (:meth:`Trainer.load_data`), the facts
the host needs before it dispatches (:meth:`Trainer.facts`) and a fresh run of a loss
(:meth:`Trainer.fresh`); the recipes, the evaluators and every kind above them never ask which
trainer it is. :func:`trainer_for` is the one place that reads the choice from the config.

Torch-free at import (the host imports :mod:`.facts`, which reaches this): the trainers import
torch where they train.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .facts import TrainingFacts

if TYPE_CHECKING:
    from torch import nn

    from .config import TrainConfig
    from .data import DataSplits
    from .trainer import TrainResult


class Trainer(ABC):
    """How a worker trains (see the module docstring)."""

    #: Whether it can continue a saved training state (EPBT stretches, ``final --from-pretrained``).
    continues: bool = True

    def __init__(self, training: TrainConfig) -> None:
        self.training = training

    @abstractmethod
    def load_data(self) -> DataSplits | None:
        """The data a worker loads once and trains every job on (None: the trainer brings its own)."""

    @abstractmethod
    def facts(self, data: DataSplits | None) -> TrainingFacts:
        """The host's facts, after the checks that fail a bad config in one line."""

    @abstractmethod
    def fresh(
        self,
        loss: nn.Module,
        seed: int,
        data: DataSplits | None,
        keep_model: bool,
        phase: str,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[TrainResult, dict[str, Any]]:
        """A fresh network trained with ``loss`` from ``seed`` for the config's (partial)
        schedule; ``phase`` is ``"search"`` or ``"final"``; ``progress(step, total)`` is called
        as training goes, where the trainer can tell. Returns the result and the metrics to record
        beside it."""

    @abstractmethod
    def save_model(self, result: TrainResult, path: str, data: DataSplits | None, loss: str, seed: int) -> str | None:
        """Write ``result`` 's network to ``path`` for ``taylorglo robustness``; None when written,
        else why it could not be (the run is kept either way)."""


class BuiltInTrainer(Trainer):
    """:func:`taylorglo.training.train` on the config's dataset and model."""

    def load_data(self) -> DataSplits:
        from .data import load_training_data

        t = self.training
        return load_training_data(t)

    def facts(self, data: DataSplits | None) -> TrainingFacts:
        from .cost import network_macs
        from .heads import aux_heads
        from .trainer import check_network, resolve_device

        data = self.load_data() if data is None else data
        network = check_network(self.training, data)
        return TrainingFacts(
            summary=data.summary(),
            num_classes=data.num_classes,
            train_size=len(data.train_y),
            step_macs=network_macs(self.training, data, network),  # counted on the network just checked
            device=resolve_device(self.training.device).type,
            aux_heads=aux_heads(network),
        )

    def fresh(
        self,
        loss: nn.Module,
        seed: int,
        data: DataSplits | None,
        keep_model: bool,
        phase: str,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[TrainResult, dict[str, Any]]:
        from .trainer import train

        return train(self.training, loss, seed=seed, data=data, keep_model=keep_model, progress=progress), {}

    def save_model(self, result: TrainResult, path: str, data: DataSplits | None, loss: str, seed: int) -> str | None:
        from .checkpoint import save_network

        assert result.model is not None and data is not None
        t = self.training
        save_network(
            result.model, path, model_name=t.model, model_options=t.model_options, data=data, loss=loss, seed=seed
        )
        return None


class ObjectiveTrainer(Trainer):
    """The user's ``objective(loss_fn, trial)`` (:func:`.objective.run_objective`): it brings its
    own data and model, so there is nothing to load and no state taylorglo could continue."""

    continues = False

    def load_data(self) -> None:
        return None

    def facts(self, data: DataSplits | None) -> TrainingFacts:
        from .objective import load_objective
        from .trainer import resolve_device

        t = self.training
        load_objective(str(t.objective))  # importable here, or one line now
        return TrainingFacts(
            summary=f"objective {t.objective}: {t.num_classes} classes (the objective trains on its own data)",
            num_classes=int(t.num_classes or 0),
            train_size=0,
            step_macs=0,
            device=resolve_device(t.device).type,
        )

    def fresh(
        self,
        loss: nn.Module,
        seed: int,
        data: DataSplits | None,
        keep_model: bool,
        phase: str,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[TrainResult, dict[str, Any]]:
        import torch

        from .objective import run_objective

        return run_objective(self.training, loss, seed, phase, torch.get_num_threads())

    def save_model(self, result: TrainResult, path: str, data: DataSplits | None, loss: str, seed: int) -> str | None:
        import pickle

        from ..errors import one_line
        from .checkpoint import save_module

        if result.model is None:
            return "the objective did not call trial.save_model(model, inputs, targets)"
        try:
            save_module(
                result.model,
                path,
                num_classes=int(self.training.num_classes or 0),
                loss=loss,
                attack_data=result.model_data,
                seed=seed,
            )
        except (pickle.PicklingError, TypeError, AttributeError) as exc:  # a lambda or local class inside
            return (
                f"its module cannot be pickled ({type(exc).__name__}: {one_line(exc)}); "
                "keep lambdas and local classes out of it"
            )
        return None


def probe(training: TrainConfig, data: DataSplits | None = None) -> TrainingFacts:
    """The facts of ``training`` on ``data`` (loaded when None), after the checks a host makes
    before training anything (the dataset loads, the network takes its inputs and gives one logit
    per class, the device exists; or the objective imports), each a one-line
    :class:`~taylorglo.errors.TaylorGLOError`."""
    return trainer_for(training).facts(data)


def trainer_for(training: TrainConfig) -> Trainer:
    """The trainer ``training`` names: its ``objective`` when set, else the built-in loop."""
    return ObjectiveTrainer(training) if training.objective is not None else BuiltInTrainer(training)
