"""An experiment's configuration file: TOML (or JSON, or YAML), validated field by field.

Validation happens at ``taylorglo init`` so that a typo costs a second, not a day: every problem
is a one-line :class:`~taylorglo.errors.TaylorGLOError` naming the field (``search.population``,
``training.dataset``) and what to write instead. The fields every experiment has are checked
here: ``[training]`` is exactly :class:`~taylorglo.training.TrainConfig` (one definition and one
validator for every kind), ``[evaluator]`` is :class:`~taylorglo.evaluators.config.EvaluatorConfig`;
the one table that is the kind's own (``[search]``, ``[epbt]``, ``[oneshot]``) is parsed by the
kind (:meth:`~taylorglo.experiment.kind.ExperimentKind.parse_settings`), found by name.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import TaylorGLOError, one_line
from ..evaluators.config import EvaluatorConfig
from ..plugins import is_plugin_ref
from ..reference.translate import Translation, is_reference_config, read_reference_json, translate
from ..training.config import TrainConfig, _is_int, check_fields
from ..training.names import DATASET_NAMES
from .kinds import kind_class, kind_tables
from .profiles import apply_profile

if TYPE_CHECKING:
    from .kind import ExperimentKind

#: Fields every experiment has, whatever its kind.
COMMON_FIELDS = ("name", "kind", "seed", "profile", "training", "evaluator")
#: The largest seed: numpy's and CMA-ES's generators take 32-bit seeds.
MAX_SEED = 2**32 - 1


@dataclass
class ExperimentConfig:
    """A whole experiment file. ``training`` is the *full* schedule; ``settings`` is the kind's
    own table (a search's :class:`~taylorglo.glo.config.SearchConfig`), named ``table`` in the
    file and readable by that name too: ``config.search.population``."""

    name: str
    kind: str
    seed: int
    training: TrainConfig
    evaluator: EvaluatorConfig
    #: The kind's table, as the kind parsed it.
    settings: Any
    #: The set of defaults the file opted into (:mod:`.profiles`): "default" or "reference".
    profile: str = "default"

    def __getattr__(self, name: str) -> Any:
        # Only called for names not found otherwise: the kind's table by its name (never a
        # dunder, which pickle and copy probe before the fields exist).
        if not name.startswith("__") and "kind" in self.__dict__ and name == kind_class(self.__dict__["kind"]).table:
            return self.__dict__["settings"]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def table(self) -> str:
        """The name of the kind's table in the file (``"search"`` for ``[search]``)."""
        return self.kind_class().table

    def kind_class(self) -> type[ExperimentKind]:
        """The class that runs this experiment's kind."""
        return kind_class(self.kind)

    @property
    def population(self) -> int:
        """Trainings at once: CMA-ES's λ, EPBT's population."""
        return self.settings.population

    def final_training(self) -> TrainConfig:
        """The training config of ``final``: the full schedule, measured on the test set."""
        return self.training.replace(eval_test=True)

    def candidate_training(self) -> TrainConfig:
        """The training config of one of the kind's jobs (a search candidate's: the partial
        schedule, no test pass)."""
        return self.kind_class().training(self)

    def with_evaluator(self, overrides: dict[str, Any] | None) -> ExperimentConfig:
        """This config with ``[evaluator]`` fields replaced for one run (``start --evaluator ray``):
        where candidates train never changes their results. Switching ``kind`` drops the other
        kind's settings; the result is validated like the file."""
        if not overrides:
            return self
        base = self.evaluator
        if overrides.get("kind", base.kind) != base.kind:
            base = EvaluatorConfig(kind=overrides["kind"], workers=base.workers)
        evaluator = _from_table(EvaluatorConfig, {**dataclasses.asdict(base), **overrides}, "evaluator.").validate()
        return dataclasses.replace(self, evaluator=evaluator)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "seed": self.seed,
            "profile": self.profile,
            "training": {k: v for k, v in self.training.to_dict().items() if k != "partial_fraction"},
            self.table: self.settings.to_dict(),
            "evaluator": dataclasses.asdict(self.evaluator),
        }

    @classmethod
    def from_dict(
        cls, data: Any, default_name: str = "experiment", check_network: bool = True, recorded: bool = False
    ) -> ExperimentConfig:
        """Validate a parsed config; the first problem is raised as one line naming its field.
        ``check_network=False`` skips building the network on a nominal input (for the config an
        experiment's store holds, checked in full when it was recorded). ``recorded=True`` reads
        such a stored config: it lists every field its version had, so its profile is not applied
        again, and a field added since keeps the plain default, which is what that version ran."""
        if not isinstance(data, dict):
            raise TaylorGLOError("config: the file must hold a table of fields (name, kind, seed, [training], ...)")
        name = data.get("name", default_name)
        if not isinstance(name, str) or not name.strip():
            raise TaylorGLOError(f"name: must be a non-empty string, got {name!r}")
        kind = data.get("kind", "taylorglo")
        if not isinstance(kind, str):
            raise TaylorGLOError(f'kind: must be a string such as "taylorglo", got {kind!r}')
        kind_cls = kind_class(kind)
        table = kind_cls.table
        for key in data:
            if key not in COMMON_FIELDS and key != table:
                raise _unexpected_table(key, kind, table)
        if recorded:
            profile = data.get("profile", "default")
            apply_profile({"profile": profile}, table)  # an unknown name is still refused
        else:
            profile, data = apply_profile(data, table)
        seed = data.get("seed", 0)
        if not _is_int(seed) or not 0 <= seed <= MAX_SEED:
            raise TaylorGLOError(
                f"seed: must be an integer from 0 to 2**32 - 1 = {MAX_SEED} (what the random "
                f"generators take), got {seed!r}"
            )

        training_table = _table(data, "training")
        if training_table.get("partial_fraction", 1.0) != 1.0:
            raise TaylorGLOError(
                "training.partial_fraction: [training] is the full schedule; set search.partial_fraction "
                "for the share candidates train"
            )
        try:
            training = TrainConfig.from_dict(training_table, prefix="training.")
        except TypeError as exc:  # a wrongly typed value that the dataclass itself rejected
            raise TaylorGLOError(f"training: {one_line(exc)}") from None
        _check_dataset_and_model(training, check_network)
        try:
            settings = kind_cls.parse_settings(_table(data, table), training)
        except TypeError as exc:
            raise TaylorGLOError(f"{table}: {one_line(exc)}") from None
        evaluator = _from_table(EvaluatorConfig, _table(data, "evaluator"), "evaluator.").validate()
        if evaluator.gpus_per_candidate > 0 and training.device == "cpu":
            raise TaylorGLOError(
                'evaluator.gpus_per_candidate: GPUs are reserved but training.device is "cpu"; '
                'set training.device = "cuda" (or "auto"), or gpus_per_candidate = 0'
            )
        stacked = _is_int(evaluator.vectorize) and int(evaluator.vectorize) > 1
        if stacked and training.optimizer != "sgd":
            raise TaylorGLOError(
                f"evaluator.vectorize: a stacked population steps with SGD; training.optimizer = "
                f"{training.optimizer!r} trains one network at a time: remove vectorize (or set it to 1)"
            )
        if stacked and training.objective is not None:
            raise TaylorGLOError(
                "evaluator.vectorize: stacks the built-in trainer's networks; training.objective trains its own, "
                "one call at a time: remove vectorize (or set it to 1)"
            )
        return cls(
            name=name.strip(),
            kind=kind,
            seed=seed,
            training=training,
            evaluator=evaluator,
            settings=settings,
            profile=profile,
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], check_network: bool = True) -> ExperimentConfig:
        """Read and validate a ``.toml``, ``.json``, ``.yaml`` or ``.yml`` file (a reference
        config is translated first: :func:`read_experiment_file`)."""
        data, _ = read_experiment_file(path)
        return cls.from_dict(data, default_name=Path(path).stem, check_network=check_network)


def read_experiment_file(path: str | os.PathLike[str]) -> tuple[Any, Translation | None]:
    """A config file's fields, and, for one in the reference's schema (its published JSON
    configs), how it was translated into taylorglo's (:mod:`taylorglo.reference.translate`);
    one whose fields cannot all be translated is refused, one line per field."""
    data = read_config_file(path)
    if not is_reference_config(data):
        return data, None
    translation = translate(data, Path(path).name)
    if not translation.ok:
        raise translation.error()
    return translation.config, translation


def read_config_file(path: str | os.PathLike[str]) -> Any:
    """Parse a config file by its extension; syntax errors are one line with the position."""
    path = Path(path)
    if not path.is_file():
        raise TaylorGLOError(f"CONFIG: no such file {str(path)!r}")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix == ".json":
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                lenient = _reference_json(text)  # the reference's configs: trailing commas, notes after
                if lenient is None:
                    raise
                return lenient
        if suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise TaylorGLOError("CONFIG: reading YAML needs PyYAML: pip install pyyaml") from None
            return yaml.safe_load(text)
    except TaylorGLOError:
        raise
    except Exception as exc:  # tomllib.TOMLDecodeError, json.JSONDecodeError, yaml.YAMLError
        raise TaylorGLOError(f"CONFIG: {path.name} is not valid {suffix[1:].upper()}: {one_line(exc)}") from None
    raise TaylorGLOError(f"CONFIG: {path.name}: use a .toml, .json, .yaml or .yml file")


def _reference_json(text: str) -> Any:
    """``text`` read as the reference's reader read its JSON configs, if it is one; else None."""
    try:
        data = read_reference_json(text)
    except ValueError:
        return None
    return data if is_reference_config(data) else None


def _unexpected_table(key: str, kind: str, table: str) -> TaylorGLOError:
    """A top-level field this kind does not have: another kind's table, or a typo."""
    owners = [name for name, owned in kind_tables().items() if owned == key]
    if owners:
        return TaylorGLOError(
            f'{key}: the [{key}] table is for kind = "{owners[0]}"; set kind = "{owners[0]}" or remove it '
            f"(a kind = {kind!r} experiment's settings go in [{table}])"
        )
    known = ", ".join(sorted({*COMMON_FIELDS, table}))
    return TaylorGLOError(f"{key}: unknown field; known top-level fields are {known}")


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise TaylorGLOError(f"{key}: must be a table ([{key}] in TOML), got {type(value).__name__}")
    return value


def _from_table(cls: type, table: dict[str, Any], prefix: str) -> Any:
    check_fields(cls, table, prefix)
    return cls(**table)


def _check_dataset_and_model(training: TrainConfig, check_network: bool) -> None:
    """Names only (no data is read at init): built-in names or ``module:function`` plug-ins, and
    a built-in network built once on a nominal input where ``check_network`` (not for a config an
    experiment recorded, whose network was built when it was: reading must not import torch)."""
    if not isinstance(training.dataset, str) or not (
        training.dataset in DATASET_NAMES or is_plugin_ref(training.dataset)
    ):
        raise TaylorGLOError(
            f"training.dataset: unknown dataset {training.dataset!r}; choose one of "
            f"{', '.join(DATASET_NAMES)} or give 'package.module:function'"
        )
    if not isinstance(training.model, str):
        raise TaylorGLOError(f"training.model: must be a string, got {training.model!r}")
    if not is_plugin_ref(training.model) and check_network:
        # Building the network on a nominal input checks the name and its options in milliseconds;
        # the real input shape is checked again when the dataset is loaded at `start`.
        shape = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28)}.get(
            training.dataset, (3, 32, 32)
        )
        from ..training.models import build_model  # torch: only where a config is first checked

        build_model(training.model, shape, 10, field="training.model", **training.model_options)
