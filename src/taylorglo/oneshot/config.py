"""The ``[oneshot]`` table: the losses to train and how many times.

A loss is ``"cross-entropy"`` or ``"taylorglo:P0,...,P7"`` (code layout, as ``taylorglo train
--loss`` and a search's ``best.json`` write it), or a table ``{ label = "found", loss = "..." }``
to name it in reports. Each is checked here, at ``init``, without torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import TaylorGLOError
from ..experiment.contenders import Contender, baseline, params_label
from ..polynomial import DEFAULT_INPUTS, check_inputs, loss_spec, spec_params
from ..training.config import _is_int, check_fields

_LABEL_CHARACTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.+:")


@dataclass(frozen=True)
class GivenLoss:
    """One of the losses: its label and parameters (None: cross-entropy)."""

    label: str
    params: tuple[float, ...] | None
    #: What the parameters are a polynomial of (``training.loss_inputs``).
    inputs: tuple[str, ...] = DEFAULT_INPUTS

    @property
    def spec(self) -> str:
        return loss_spec(None if self.params is None else list(self.params), self.inputs)

    def contender(self) -> Contender:
        if self.params is None and self.label == baseline().label:
            return baseline()
        return Contender(self.label, None if self.params is None else list(self.params), f"given: {self.spec}")


@dataclass
class OneShotConfig:
    """The ``[oneshot]`` table. ``[training]`` is the full schedule every run trains."""

    losses: list[GivenLoss] = field(default_factory=list)
    #: Runs per loss; repeat r of every loss shares one seed (a paired design).
    repeats: int = 10
    #: Keep every trained network under DIR/final/ (``taylorglo robustness`` needs them).
    save_models: bool = True

    @property
    def population(self) -> int:
        """Trainings that can run at once: every run of every loss."""
        return len(self.losses) * self.repeats

    def to_dict(self) -> dict[str, Any]:
        return {
            "losses": [{"label": g.label, "loss": g.spec} for g in self.losses],
            "repeats": self.repeats,
            "save_models": self.save_models,
        }

    @classmethod
    def from_table(
        cls, table: dict[str, Any], prefix: str = "oneshot.", inputs: Sequence[str] = DEFAULT_INPUTS
    ) -> OneShotConfig:
        """The table as parsed; each TaylorGLO loss is a polynomial of ``inputs``
        (``training.loss_inputs``), which a spec that names its inputs must match."""
        check_fields(cls, table, prefix)
        losses = table.get("losses")
        if not isinstance(losses, list) or not losses:
            raise TaylorGLOError(
                f'{prefix}losses: must be a non-empty list such as ["cross-entropy", "taylorglo:P0,...,P7"], '
                f"got {losses!r}"
            )
        given = [_given(entry, f"{prefix}losses[{i}]", check_inputs(inputs)) for i, entry in enumerate(losses)]
        seen: set[str] = set()
        for i, g in enumerate(given):
            if g.label in seen:
                raise TaylorGLOError(
                    f"{prefix}losses[{i}]: {g.label!r} is given twice; give each loss once (repeats sets the runs)"
                )
            seen.add(g.label)
        repeats = table.get("repeats", 10)
        if not _is_int(repeats) or repeats < 1:
            raise TaylorGLOError(f"{prefix}repeats: must be a positive integer, got {repeats!r}")
        save_models = table.get("save_models", True)
        if not isinstance(save_models, bool):
            raise TaylorGLOError(f"{prefix}save_models: must be true or false, got {save_models!r}")
        return cls(given, repeats, save_models)


def _given(entry: Any, where: str, inputs: tuple[str, ...] = DEFAULT_INPUTS) -> GivenLoss:
    label = None
    if isinstance(entry, dict):
        unknown = set(entry) - {"label", "loss"}
        if unknown or "loss" not in entry:
            raise TaylorGLOError(f'{where}: a table must be {{ label = "name", loss = "..." }}, got {entry!r}')
        label, entry = entry.get("label"), entry["loss"]
        if not (isinstance(label, str) and label and set(label) <= _LABEL_CHARACTERS):
            raise TaylorGLOError(
                f"{where}.label: must be a non-empty name of letters, digits and - _ . + :, got {label!r}"
            )
    values = spec_params(entry, where, inputs)
    if values is None:
        return GivenLoss(label or baseline().label, None)
    return GivenLoss(label or params_label(values), values, inputs)
