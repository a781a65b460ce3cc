"""What a training run is: dataset, model, schedule, optimiser — everything but the loss and seed.

One :class:`TrainConfig` describes the *full* schedule of a run. A search's fitness evaluation,
``final``'s full re-training and EPBT all train from the same object; a partial run only sets
``partial_fraction`` so that it keeps the full run's learning-rate schedule (SPEC §3: no decay
happens inside a 10% window) instead of a compressed copy of it.

The field names are the keys of an experiment config's ``[training]`` table.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import TaylorGLOError

AUGMENTATIONS = ("none", "crop-flip")
#: Which examples ``data_fraction`` keeps (:func:`~.data.load_dataset`'s ``subset``).
SUBSETS = ("random", "first")
#: What an early-aborted run's fitness is: 0, or the accuracy it was aborted with (the reference's).
ABORT_FITNESSES = ("zero", "measured")
#: What the random crop pads with: the dataset's mean colour, or black (the reference's).
CROP_FILLS = ("mean", "black")
#: Which input normalisation constants: the dataset's own, or the ones the reference used
#: (:data:`~.data.REFERENCE_NORMALIZATION`).
NORMALIZATIONS = ("dataset", "reference")
#: Where FGSM steps and clips: pixel space, or the reference's normalised space (a quirk, opt-in).
ATTACK_SPACES = ("pixels", "normalized")


@dataclass
class TrainConfig:
    """The full training schedule of one network (SPEC §3 defaults where the SPEC gives them)."""

    dataset: str = "digits"
    model: str = "mlp"
    data_dir: str | None = None
    data_fraction: float = 1.0
    #: Which ``data_fraction`` of the training split: "random" (a fixed random subset) or
    #: "first" (its first examples: the reference's, a prefix of the same split permutation).
    data_subset: str = "random"
    #: Length of the full schedule: exactly one of ``steps`` and ``epochs`` (steps when neither).
    steps: int | None = None
    epochs: float | None = None
    #: Train only this share of the full schedule (a search's fitness evaluation uses 0.1).
    partial_fraction: float = 1.0
    batch_size: int = 128
    eval_batch_size: int = 100
    lr: float = 0.01
    #: "sgd" (momentum, nesterov below are its) or "adam" (:mod:`.optimizers`).
    optimizer: str = "sgd"
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    #: Learning-rate milestones, in the schedule's unit (steps or epochs); lr ×= lr_gamma at each.
    lr_decay: list[float] = field(default_factory=list)
    lr_gamma: float = 0.1
    #: None: the dataset's default ("crop-flip" for CIFAR-10 and SVHN, "none" otherwise).
    augment: str | None = None
    cutout: int = 0
    #: The random crop's padding: "mean" (the dataset's mean colour) or "black" (the reference's).
    crop_fill: str = "mean"
    #: Input normalisation: "dataset" (its published constants, else the train split's statistics)
    #: or "reference" (the reference's constants: SVHN's, CIFAR-10's also for CIFAR-100, none for
    #: MNIST; a dataset the reference did not have keeps its own).
    normalization: str = "dataset"
    #: CutMix (SPEC §3: probability 0.5, alpha 1): the share of batches mixed; 0 is off.
    cutmix: float = 0.0
    cutmix_alpha: float = 1.0
    #: Early abort (SPEC §3): at this point of the schedule (its unit), validation accuracy below
    #: ``abort_below`` stops the attempt; up to ``attempts`` attempts with fresh seeds.
    abort_at: float | None = None
    abort_below: float = 0.15
    attempts: int = 3
    #: The fitness of a run whose every attempt aborted: "zero" or "measured" (the validation
    #: accuracy it was aborted with, as the reference scored it).
    abort_fitness: str = "zero"
    #: Where FGSM attacks this run's networks (fitness and sweeps): "pixels" (ε a share of the
    #: pixel range, clipped to valid images) or "normalized" (the reference's: ε in normalised
    #: units, and the *normalised* image clipped to [0, 1]).
    attack_space: str = "pixels"
    #: Evaluate on the test split at the end (a search's fitness needs only validation).
    eval_test: bool = True
    #: Training log and the NaN check every this many steps.
    log_every: int = 100
    #: What a TaylorGLO parameter vector is a polynomial of: x (label) and y (softmax output),
    #: and optionally "logits" (unscaled) and "t" (the share of the full schedule done).
    loss_inputs: list[str] = field(default_factory=lambda: ["x", "y"])
    #: The losses of the network's auxiliary classifier heads (model option ``aux_heads``,
    #: :mod:`.heads`), one spec per head; empty: each head trains on the run's own loss.
    aux_losses: list[str] = field(default_factory=list)
    #: Each head's weight in the training objective (``loss + Σ weight·aux_loss``); empty: 1 each.
    aux_weights: list[float] = field(default_factory=list)
    #: Round TaylorGLO parameters to this many decimals before training, as the reference did.
    round_params: int | None = None
    device: str = "cpu"
    threads: int | None = None
    model_options: dict[str, Any] = field(default_factory=dict)
    #: The user's own training as the fitness, ``"package.module:function"``
    #: (:mod:`taylorglo.training.objective`): it replaces dataset, model and schedule.
    objective: str | None = None
    #: Keyword options handed to the objective as ``trial.options``.
    objective_options: dict[str, Any] = field(default_factory=dict)
    #: Classes of the objective's task: the invariant needs them, and there is no dataset to count.
    num_classes: int | None = None

    DEFAULT_STEPS = 1000
    #: What an objective still takes from ``[training]``; every other field is the built-in trainer's.
    OBJECTIVE_FIELDS = (
        "partial_fraction", "abort_at", "abort_below", "attempts", "abort_fitness", "round_params", "device", "threads",
        "eval_test", "objective", "objective_options", "num_classes",
    )  # fmt: skip

    @property
    def unit(self) -> str:
        """``"epochs"`` when the schedule is given in epochs, else ``"steps"``."""
        return "epochs" if self.epochs is not None else "steps"

    def validate(self, prefix: str = "") -> TrainConfig:
        """Raise a one-line :class:`TaylorGLOError` naming the first bad field; return self."""

        def bad(name: str, why: str) -> TaylorGLOError:
            return TaylorGLOError(f"{prefix}{name}: {why}")

        if self.steps is not None and self.epochs is not None:
            raise bad("steps", "give either steps or epochs, not both")
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise bad("steps", f"must be a positive integer, got {self.steps!r}")
        if self.epochs is not None and not (_is_number(self.epochs) and self.epochs > 0):
            raise bad("epochs", f"must be a positive number, got {self.epochs!r}")
        for name in ("data_fraction", "partial_fraction"):
            value = getattr(self, name)
            if not (_is_number(value) and 0 < value <= 1):
                raise bad(name, f"must be a number in (0, 1], got {value!r}")
        for name in ("batch_size", "eval_batch_size", "attempts", "log_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad(name, f"must be a positive integer, got {value!r}")
        for name in ("lr", "lr_gamma"):
            value = getattr(self, name)
            if not (_is_number(value) and value > 0):
                raise bad(name, f"must be a positive number, got {value!r}")
        for name in ("momentum", "weight_decay", "abort_below"):
            value = getattr(self, name)
            if not (_is_number(value) and value >= 0):
                raise bad(name, f"must be a number >= 0, got {value!r}")
        if not isinstance(self.lr_decay, (list, tuple)) or not all(_is_number(m) and m > 0 for m in self.lr_decay):
            raise bad("lr_decay", f"must be a list of positive milestones, got {self.lr_decay!r}")
        if self.augment is not None and self.augment not in AUGMENTATIONS:
            raise bad("augment", f"must be one of {', '.join(AUGMENTATIONS)}, got {self.augment!r}")
        for name, choices in (
            ("data_subset", SUBSETS),
            ("abort_fitness", ABORT_FITNESSES),
            ("crop_fill", CROP_FILLS),
            ("normalization", NORMALIZATIONS),
            ("attack_space", ATTACK_SPACES),
        ):
            if getattr(self, name) not in choices:
                raise bad(name, f"must be one of {', '.join(map(repr, choices))}, got {getattr(self, name)!r}")
        if not isinstance(self.cutout, int) or self.cutout < 0:
            raise bad("cutout", f"must be an integer >= 0 (hole size in pixels), got {self.cutout!r}")
        from .optimizers import OPTIMIZERS

        if self.optimizer not in OPTIMIZERS:
            raise bad("optimizer", f"must be one of {', '.join(map(repr, OPTIMIZERS))}, got {self.optimizer!r}")
        if not (_is_number(self.cutmix) and 0 <= self.cutmix <= 1):
            raise bad(
                "cutmix", f"must be a probability in [0, 1] (the share of batches mixed; 0: off), got {self.cutmix!r}"
            )
        if not (_is_number(self.cutmix_alpha) and self.cutmix_alpha > 0):
            raise bad(
                "cutmix_alpha",
                f"must be a positive number (Beta(alpha, alpha) draws the box), got {self.cutmix_alpha!r}",
            )
        if self.abort_at is not None and not (_is_number(self.abort_at) and self.abort_at > 0):
            raise bad("abort_at", f"must be a positive number, got {self.abort_at!r}")
        from ..polynomial import check_inputs

        check_inputs(self.loss_inputs, f"{prefix}loss_inputs")
        self._validate_aux(bad, prefix)
        if self.round_params is not None and (not isinstance(self.round_params, int) or self.round_params < 0):
            raise bad("round_params", f"must be an integer >= 0, got {self.round_params!r}")
        if self.device not in ("cpu", "cuda", "auto") and not str(self.device).startswith("cuda:"):
            raise bad("device", f"must be cpu, cuda, cuda:N or auto, got {self.device!r}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise bad("threads", f"must be a positive integer, got {self.threads!r}")
        if not isinstance(self.model_options, dict):
            raise bad("model_options", "must be a table of keyword arguments for the model factory")
        self._validate_objective(bad)
        return self

    def _validate_aux(self, bad: Callable[[str, str], TaylorGLOError], prefix: str) -> None:
        """The heads' losses are specs a config can hold (no torch here); the weights numbers."""
        from ..polynomial import spec_params

        if not isinstance(self.aux_losses, (list, tuple)):
            raise bad("aux_losses", f"must be a list of loss specs, one per auxiliary head, got {self.aux_losses!r}")
        for i, spec in enumerate(self.aux_losses):
            spec_params(spec, f"{prefix}aux_losses[{i}]", self.loss_inputs)
        weights = self.aux_weights
        if not isinstance(weights, (list, tuple)) or not all(_is_number(w) and w >= 0 for w in weights):
            raise bad("aux_weights", f"must be a list of numbers >= 0, one per auxiliary head, got {weights!r}")
        if self.aux_losses and weights and len(weights) != len(self.aux_losses):
            raise bad(
                "aux_weights",
                f"gives {len(weights)} weights for {len(self.aux_losses)} aux_losses: give one per auxiliary head",
            )

    def heads(self, count: int) -> list[tuple[str | None, float]]:
        """Each of a network's ``count`` auxiliary heads' loss spec (None: the run's own) and
        weight; one line when the config's lists do not fit the network it built."""
        for name, given in (("aux_losses", self.aux_losses), ("aux_weights", self.aux_weights)):
            if given and len(given) != count:
                has = f"has {count} auxiliary heads" if count else "has no auxiliary heads (model option aux_heads)"
                raise TaylorGLOError(f"training.{name}: gives {len(given)} for {self.model!r}, which {has}")
        specs: list[str | None] = list(self.aux_losses) or [None] * count
        weights = [float(w) for w in self.aux_weights] or [1.0] * count
        return list(zip(specs, weights))

    def _validate_objective(self, bad: Callable[[str, str], TaylorGLOError]) -> None:
        """With ``objective`` the user's code trains: the built-in trainer's fields would be
        silently ignored, so a value given for one is refused; ``num_classes`` is required."""
        if self.objective is None:
            if self.num_classes is not None:
                raise bad("num_classes", "is read from the dataset; give it only with training.objective")
            if self.objective_options:
                raise bad("objective_options", "given without training.objective")
            return
        if not isinstance(self.objective, str) or ":" not in self.objective:
            raise bad("objective", f"must name a function as 'package.module:function', got {self.objective!r}")
        if not _is_int(self.num_classes) or self.num_classes < 2:
            raise bad(
                "num_classes",
                f"must be an integer >= 2 with training.objective (the invariant needs it), got {self.num_classes!r}",
            )
        if not isinstance(self.objective_options, dict):
            raise bad("objective_options", "must be a table of options for the objective (trial.options)")
        defaults = TrainConfig()
        for f in dataclasses.fields(self):
            if f.name not in self.OBJECTIVE_FIELDS and getattr(self, f.name) != getattr(defaults, f.name):
                raise bad(f.name, "is the built-in trainer's; training.objective trains with its own code: remove it")

    def describe(self) -> str:
        """What trains, in a few words, for a log line or a page: ``"mlp on digits"``."""
        if self.objective is not None:
            return f"objective {self.objective} ({self.num_classes} classes)"
        return f"{self.model} on {self.dataset}"

    def schedule_words(self) -> str:
        """The full schedule, as a sentence names it: ``"the 1000-step training schedule"``."""
        if self.objective is not None:
            return "the objective's full budget"
        full = self.epochs if self.unit == "epochs" else (self.steps or self.DEFAULT_STEPS)
        return f"the {full:g}-{self.unit[:-1]} training schedule"

    def schedule(self, train_size: int) -> Schedule:
        """Resolve the schedule into steps for a training split of ``train_size`` examples."""
        batch = min(self.batch_size, train_size)
        steps_per_epoch = max(1, train_size // batch)
        to_steps = (lambda v: int(round(v * steps_per_epoch))) if self.unit == "epochs" else (lambda v: int(round(v)))
        total = to_steps(self.epochs) if self.epochs is not None else (self.steps or self.DEFAULT_STEPS)
        total = max(1, total)
        return Schedule(
            batch_size=batch,
            steps_per_epoch=steps_per_epoch,
            total_steps=total,
            run_steps=max(1, int(math.ceil(total * self.partial_fraction - 1e-9))),
            milestones=sorted(to_steps(m) for m in self.lr_decay),
            abort_step=to_steps(self.abort_at) if self.abort_at is not None else None,
        )

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], prefix: str = "") -> TrainConfig:
        """Build from a config table; unknown keys are a one-line error that lists the known ones."""
        check_fields(cls, data, prefix)
        values = dict(data)
        if "lr_decay" in values and _is_number(values["lr_decay"]):
            values["lr_decay"] = [values["lr_decay"]]
        return cls(**values).validate(prefix)


@dataclass(frozen=True)
class Schedule:
    """A :class:`TrainConfig`'s schedule in steps, for one dataset size."""

    batch_size: int
    steps_per_epoch: int
    total_steps: int
    run_steps: int
    milestones: list[int]
    abort_step: int | None

    def lr_at(self, base_lr: float, gamma: float, step: int) -> float:
        """Learning rate used for step ``step`` (0-based) of the full schedule."""
        return base_lr * gamma ** sum(1 for m in self.milestones if step >= m)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_fields(cls: type, table: Any, prefix: str) -> None:
    """Every key of a config ``table`` must be a field of the dataclass ``cls``: an unknown one
    (a typo) is one line naming it and listing the known ones."""
    known = [f.name for f in dataclasses.fields(cls)]
    for key in table:
        if key not in known:
            raise TaylorGLOError(f"{prefix}{key}: unknown field; known fields are {', '.join(known)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
