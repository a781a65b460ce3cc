"""What every experiment kind is to the host: the interface the host, ``status``, ``final``,
``analyze`` and the CLI call, and behind which everything kind-specific lives: how its config
table is parsed, what ``start`` runs, what ``status`` adds, what ``final`` trains, its report and
its words. A kind that runs generations implements :class:`~.generations.GenerationKind`; one
that only trains given losses (:mod:`taylorglo.oneshot`) implements :meth:`ExperimentKind.run`
with the one ``final`` loop (:mod:`.final`). Kinds are found by name (:mod:`.kinds`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import TaylorGLOError
from ..polynomial import check_inputs, format_formula
from .progress import Wording
from .store import Store

if TYPE_CHECKING:
    from ..evaluators.base import Evaluator
    from ..evaluators.config import EvaluatorConfig
    from ..training.config import TrainConfig
    from ..training.facts import TrainingFacts
    from .contenders import Contender, FinalOptions
    from .progress import Reporter


class KindConfig(Protocol):
    """What a kind is given of its experiment's configuration (an
    :class:`~.config.ExperimentConfig`): the fields every experiment has, and its own table's
    settings as :meth:`ExperimentKind.parse_settings` made them."""

    name: str
    kind: str
    seed: int
    training: TrainConfig
    evaluator: EvaluatorConfig
    table: str
    settings: Any

    @property
    def population(self) -> int: ...

    def final_training(self) -> TrainConfig: ...

    def candidate_training(self) -> TrainConfig: ...


class ExperimentKind(ABC):
    """One experiment kind. Its class methods read (``status``, ``init``, the CLI's words: no
    torch); an instance is made once per ``start``, after the workers reported the training's
    facts, and :meth:`run` is what ``start`` does."""

    def __init__(
        self,
        directory: Path,
        store: Store,
        config: KindConfig,
        facts: TrainingFacts,
        runner: Evaluator,
        log: Callable[[str], None],
    ) -> None:
        self.directory, self.store, self.config = directory, store, config
        self.settings = config.settings
        self.facts, self.runner, self.log = facts, runner, log

    #: The config table holding the kind's settings (``"search"`` for ``[search]``): parsed by
    #: :meth:`parse_settings` into ``config.settings``, also readable as ``config.<table>``.
    table: str
    #: How its progress is spoken of (the log's and the display's words).
    wording: Wording = Wording()
    #: ``module:function`` writing its HTML report (``taylorglo analyze``), imported only then;
    #: None: the kind has none.
    report: str | None = None

    @classmethod
    @abstractmethod
    def parse_settings(cls, table: dict[str, Any], training: TrainConfig) -> Any:
        """Validate the kind's table (``{}`` where the file has none) into its settings: an
        object with ``population`` (trainings at once, which sizes the evaluator) and
        ``to_dict()`` (what the store records, parsed again by this method when read). Each
        problem is one :class:`~taylorglo.errors.TaylorGLOError` line naming the field as
        ``<table>.<field>``."""

    @staticmethod
    def training(config: KindConfig) -> TrainConfig:
        """What the experiment's workers train: by default the full schedule, validation only."""
        return config.training.replace(eval_test=False)

    @classmethod
    def status_fields(cls, store: Store, config: KindConfig) -> dict[str, Any]:
        """The kind's part of ``taylorglo status`` (read-only, no torch): at least
        ``generations_total`` (None while unknown), ``best`` (a dict, or None) and ``invariant``.
        By default: the settings' ``generations`` and ``invariant`` where it has them, and the
        fittest result recorded."""
        best = store.best()
        return {
            "generations_total": getattr(config.settings, "generations", None),
            "invariant": getattr(config.settings, "invariant", None),
            "best": None
            if best is None
            else {
                "params": best.params,
                "fitness": best.fitness,
                "generation": best.generation,
                "index": best.index,
                "formula": format_formula(best.params, "code", check_inputs(config.training.loss_inputs)),
                # What a user objective called its fitness ("validation AUC"), when it did.
                "fitness_name": (best.metrics or {}).get("fitness_name"),
            },
        }

    def describe(self) -> str:
        """The experiment's shape for the ``start:`` log line (``"8 generations x 10 candidates"``);
        by default :meth:`outline`'s, which knows only the config."""
        return self.outline(self.config)

    @abstractmethod
    def position(self) -> str:
        """Where a ``start`` picks up, for the end of its ``start:`` log line."""

    @abstractmethod
    def run(self, log: Any, reporter: Reporter) -> None:
        """Run (or resume) what remains of the experiment; ``log`` is the host's event log."""

    @abstractmethod
    def finished_text(self, status: dict[str, Any]) -> str:
        """The ``finished:`` log line's end, from the experiment's status."""

    # What ``final`` trains.

    @classmethod
    def final_repeats(cls, config: KindConfig) -> int:
        """Repeats per contender when ``final`` is not told (the reference's ten)."""
        return 10

    @classmethod
    def final_contenders(
        cls, store: Store, directory: Path, config: KindConfig, options: FinalOptions
    ) -> tuple[list[Contender], str]:
        """What ``taylorglo final`` trains, the cross-entropy baseline first, and how the log
        names them; a :class:`~taylorglo.errors.TaylorGLOError` names an option the kind has no
        use for, or what must run first."""
        raise TaylorGLOError(f"DIR: a kind = {config.kind!r} experiment has no final evaluation")

    # What the CLI says of an experiment of this kind (read-only, no torch).

    @classmethod
    def outline(cls, config: KindConfig) -> str:
        """The experiment's shape from its config alone, for ``taylorglo init``'s line."""
        generations = getattr(config.settings, "generations", None)
        shape = f"{generations} generations x " if generations is not None else ""
        return f"{shape}{config.population} {cls.wording.noun}s"

    @classmethod
    def standing(cls, status: dict[str, Any]) -> str:
        """Where the experiment stands, in one line: its generations and how its rows ended."""
        c, noun = status["candidates"], cls.wording.noun
        despite = status.get("invariant_violators_trained")
        return (
            f"{status['name']}: {status['state']}, {status['generations_completed']}/"
            f"{status['generations_total'] or '?'} generations, {c['total']} {noun}s: {c['evaluated']} trained, "
            f"{c['rejected_invariant']} rejected by the {status['invariant']} invariant (never trained), "
            + (f"{despite} trained despite failing it, " if despite is not None else "")
            + f"{c['failed']} failed, {c['aborted']} aborted"
        )

    @classmethod
    def summary(cls, directory: str, status: dict[str, Any], config: KindConfig) -> list[str]:
        """The lines ``taylorglo start`` and ``status`` end with: where the experiment stands,
        its best result, and where its files are."""
        best, noun = status["best"], cls.wording.noun
        if best is None:
            return [cls.standing(status), f"no {noun} has been evaluated yet"]
        return [
            cls.standing(status),
            f"best: fitness {best['fitness']:.4f} ({noun} {best['generation']}:{best['index']})",
            f"  {best['formula']}",
            f"results in {directory}/: experiment.sqlite (everything), host.log",
        ]

    @classmethod
    def invocation(
        cls,
        directory: Path | None,
        config: KindConfig,
        generation: int,
        index: int,
        params: list[float] | None,
        full: bool,
    ) -> str:
        """The ``taylorglo train`` command that trains job ``generation:index`` of the experiment
        in ``directory`` (None: of a config not yet run), with ``params`` instead of its loss
        where given; for ``taylorglo getinvocation``."""
        raise TaylorGLOError(
            f"CONFIG|DIR: the trainings of a kind = {config.kind!r} experiment cannot be printed as one "
            "`taylorglo train` command"
        )
