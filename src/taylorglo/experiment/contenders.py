"""What ``final`` trains, as the kinds name it (:meth:`~.kind.ExperimentKind.final_contenders`)
and the one final loop (:mod:`.final`) trains it: plain data, importing neither the host nor torch."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import TaylorGLOError
from ..evaluators.recipes import Recipe
from ..polynomial import loss_spec
from ..records import CROSS_ENTROPY_LABEL, FinalRun
from ..seeds import derived_seed

if TYPE_CHECKING:
    from .progress import Reporter

FINAL_DIR = "final"
#: Mixed into the seed sequence so final seeds never coincide with the search's training seeds.
_FINAL_SEED_TAG = 0x46494E41


def final_seed(seed: int, repeat: int) -> int:
    """The training seed of repeat ``repeat``, the same for every loss of an experiment."""
    return derived_seed(seed, _FINAL_SEED_TAG, repeat)


@dataclass
class Contender:
    """A loss to train ``repeats`` times: its label (stable: derived from where it came from, so a
    second ``final`` finds and extends the same runs), params (None: cross-entropy) and origin."""

    label: str
    params: list[float] | None
    source: str
    generation: int | None = None
    index: int | None = None
    #: Recorded with the loss: its runs continue a candidate's partial run (``--from-pretrained``).
    pretrained: bool = False
    #: What each repeat trains (None: a fresh run of ``params``; a candidate's partial run
    #: continued, an EPBT schedule replayed); a repeat differs from another by its seed only.
    recipe: Recipe | None = None
    #: Trains a repeat itself instead of on the evaluator (plain PBT: an experiment per repeat).
    alone: Callable[[FinalRun], FinalRun] | None = None


@dataclass(frozen=True)
class FinalOptions:
    """What ``taylorglo final`` was asked for, for the kind to choose its contenders by; an option
    a kind has no use for is refused by it, in one line naming the flag."""

    generation_best: bool = False
    params: Sequence[float] | None = None
    from_pretrained: bool = False
    pbt: bool = True
    #: Where a contender that runs alone (plain PBT) trains: as ``final`` itself.
    workers: int | None = None
    reporter: Reporter | None = None
    evaluator: dict[str, Any] | None = None

    def refuse_choices(self, why: str) -> None:
        """For a kind that does not choose among candidates: ``--params``, ``--generation-best``
        and ``--from-pretrained`` are refused in one line, ``why`` saying what it trains instead."""
        for flag, value in (
            ("--params", self.params),
            ("--generation-best", self.generation_best),
            ("--from-pretrained", self.from_pretrained),
        ):
            if value:
                raise TaylorGLOError(f"{flag}: {why}; drop it")


def baseline() -> Contender:
    """Cross-entropy, the baseline every TaylorGLO loss is tested against."""
    return Contender(CROSS_ENTROPY_LABEL, None, "baseline")


def params_label(params: Sequence[float]) -> str:
    """The label of a loss given by its parameters: a digest of its exact values."""
    return "params-" + hashlib.sha1(loss_spec(params).encode()).hexdigest()[:8]
