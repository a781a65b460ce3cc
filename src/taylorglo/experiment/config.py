"""An experiment's configuration file: TOML (or JSON, or YAML), validated field by field.

Validation happens at ``taylorglo init`` so that a typo costs a second, not a day: every problem
is a one-line :class:`~taylorglo.errors.TaylorGLOError` naming the field (``search.population``,
``training.dataset``) and what to write instead. The ``[training]`` table is exactly
:class:`~taylorglo.training.TrainConfig`, so the training fields have one definition and one
validator for the CLI, the host and EPBT.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..epbt.config import EPBTConfig
from ..errors import TaylorGLOError, one_line
from ..evaluators.config import EvaluatorConfig
from ..invariant import RULES
from ..plugins import is_plugin_ref
from ..polynomial import MAX_MAGNITUDE, SUPPORTED_ORDERS, num_params
from ..training.config import TrainConfig, _is_int, _is_number
from ..training.names import DATASET_NAMES

if TYPE_CHECKING:
    from ..search import CMAESSearch

KINDS = ("taylorglo", "epbt")
FUTURE_KINDS = ("oneshot",)
SEED_MODES = ("generation", "candidate")
FITNESSES = ("accuracy", "fgsm")
#: The largest seed: numpy's and CMA-ES's generators take 32-bit seeds.
MAX_SEED = 2**32 - 1


@dataclass
class SearchConfig:
    """The ``[search]`` table: CMA-ES over TaylorGLO parameters (SPEC §2, §3, §5)."""

    order: int = 3
    #: λ, candidates per generation (SPEC: 20; 28 for MNIST).
    population: int = 20
    #: σ₀, the initial step size (SPEC: 1.2).
    sigma: float = 1.2
    generations: int = 50
    #: A candidate's fitness is its validation accuracy after this share of the full schedule.
    partial_fraction: float = 0.1
    #: Trainability check before training: "reference" | "gradient" | "off" (SPEC §5).
    invariant: str = "reference"
    #: Training seeds: "generation" (all candidates of a generation share one seed, so they are
    #: ranked on the same initialisation and batch order: common random numbers, less noise in
    #: what CMA-ES sees) or "candidate" (a fresh seed per candidate). [SPEC: unknown; our choice.]
    seeds: str = "generation"
    #: Initial mean (default: zeros, SPEC §2), in the code layout.
    mean: list[float] | None = None
    #: What a candidate is scored on: "accuracy" (clean validation accuracy, SPEC §2) or "fgsm"
    #: (validation accuracy under a one-step FGSM attack of size ``fgsm_epsilon``, SPEC §6).
    fitness: str = "accuracy"
    #: The attack size for ``fitness = "fgsm"``, in pixel units of [0, 1] images (SPEC §6: 0.1).
    fgsm_epsilon: float = 0.1

    @property
    def fitness_meaning(self) -> str:
        """What a fitness number is, in words, for every place that prints one (CLI, report)."""
        if self.fitness == "fgsm":
            return f"validation accuracy under FGSM (eps {self.fgsm_epsilon:g})"
        return "validation accuracy"

    def new_search(self, seed: int) -> CMAESSearch:
        """The CMA-ES search this table describes, before its first ``ask`` (deterministic: a
        function of the table and ``seed``)."""
        from ..search import CMAESSearch

        return CMAESSearch(num_params(self.order), self.population, self.sigma, seed=seed, mean=self.mean)

    def validate(self, prefix: str = "search.") -> SearchConfig:
        def bad(name: str, why: str) -> TaylorGLOError:
            return TaylorGLOError(f"{prefix}{name}: {why}")

        if not _is_int(self.order) or self.order not in SUPPORTED_ORDERS:
            raise bad("order", f"must be one of {', '.join(map(str, SUPPORTED_ORDERS))}, got {self.order!r}")
        if not _is_int(self.population) or self.population < 2:
            raise bad(
                "population", f"must be an integer >= 2 (CMA-ES needs at least two candidates), got {self.population!r}"
            )
        if not (_is_number(self.sigma) and 0 < self.sigma <= MAX_MAGNITUDE):
            raise bad(
                "sigma",
                f"must be a positive number up to {MAX_MAGNITUDE:g} (larger steps sample parameters "
                f"that overflow), got {self.sigma!r}",
            )
        if not _is_int(self.generations) or self.generations < 1:
            raise bad("generations", f"must be a positive integer, got {self.generations!r}")
        if not (_is_number(self.partial_fraction) and 0 < self.partial_fraction <= 1):
            raise bad("partial_fraction", f"must be a number in (0, 1], got {self.partial_fraction!r}")
        if self.invariant not in RULES:
            raise bad("invariant", f"must be one of {', '.join(map(repr, RULES))}, got {self.invariant!r}")
        if self.seeds not in SEED_MODES:
            raise bad("seeds", f"must be one of {', '.join(map(repr, SEED_MODES))}, got {self.seeds!r}")
        if self.fitness not in FITNESSES:
            raise bad("fitness", f"must be one of {', '.join(map(repr, FITNESSES))}, got {self.fitness!r}")
        if not (_is_number(self.fgsm_epsilon) and 0 < self.fgsm_epsilon <= 1):
            raise bad("fgsm_epsilon", f"must be a number in (0, 1] (pixel units), got {self.fgsm_epsilon!r}")
        if self.mean is not None:
            n = num_params(self.order)
            if (
                not isinstance(self.mean, list)
                or len(self.mean) != n
                or not all(_is_number(v) and abs(v) <= MAX_MAGNITUDE for v in self.mean)
            ):
                raise bad(
                    "mean",
                    f"must be a list of {n} numbers (order {self.order}), each of size at most "
                    f"{MAX_MAGNITUDE:g}, got {self.mean!r}",
                )
        return self


@dataclass
class ExperimentConfig:
    """A whole experiment file. ``training`` is the *full* schedule; candidates train
    ``search.partial_fraction`` of it."""

    name: str
    kind: str = "taylorglo"
    seed: int = 0
    training: TrainConfig = field(default_factory=TrainConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    #: The ``[epbt]`` table; set exactly when ``kind == "epbt"``.
    epbt: EPBTConfig | None = None

    @property
    def population(self) -> int:
        """Trainings at once: CMA-ES's λ, or EPBT's population."""
        return self.epbt.population if self.epbt is not None else self.search.population

    @property
    def candidate_fgsm_epsilon(self) -> float | None:
        """The FGSM size a candidate's fitness is measured at; None for clean accuracy."""
        return self.search.fgsm_epsilon if self.search.fitness == "fgsm" else None

    def final_training(self) -> TrainConfig:
        """The training config of ``final``: the full schedule, measured on the test set."""
        return self.training.replace(eval_test=True)

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

    def candidate_training(self) -> TrainConfig:
        """The training config of one fitness evaluation: the partial schedule, no test pass."""
        return self.training.replace(partial_fraction=self.search.partial_fraction, eval_test=False)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "kind": self.kind,
            "seed": self.seed,
            "training": {k: v for k, v in self.training.to_dict().items() if k != "partial_fraction"},
            "search": dataclasses.asdict(self.search),
            "evaluator": dataclasses.asdict(self.evaluator),
        }
        if self.epbt is not None:
            del out["search"]
            out["epbt"] = self.epbt.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Any, default_name: str = "experiment", check_network: bool = True) -> ExperimentConfig:
        """Validate a parsed config; the first problem is raised as one line naming its field.
        ``check_network=False`` skips building the network on a nominal input (for the config an
        experiment's store holds, checked in full when it was recorded)."""
        if not isinstance(data, dict):
            raise TaylorGLOError("config: the file must hold a table of fields (name, kind, seed, [training], ...)")
        known = {"name", "kind", "seed", "training", "search", "evaluator", "epbt"}
        for key in data:
            if key not in known:
                raise TaylorGLOError(f"{key}: unknown field; known top-level fields are {', '.join(sorted(known))}")
        name = data.get("name", default_name)
        if not isinstance(name, str) or not name.strip():
            raise TaylorGLOError(f"name: must be a non-empty string, got {name!r}")
        kind = data.get("kind", "taylorglo")
        if kind in FUTURE_KINDS:
            raise TaylorGLOError(f'kind: {kind!r} experiments are not supported yet; use kind = "taylorglo"')
        if kind not in KINDS:
            raise TaylorGLOError(f"kind: must be one of {', '.join(map(repr, KINDS))}, got {kind!r}")
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
        search = _from_table(SearchConfig, _table(data, "search"), "search.").validate()
        epbt = None
        if kind == "epbt":
            if "search" in data:
                raise TaylorGLOError("search: an EPBT experiment has no [search] table; its settings go in [epbt]")
            epbt = EPBTConfig.from_dict(_table(data, "epbt"))
        elif "epbt" in data:
            raise TaylorGLOError('epbt: the [epbt] table is for kind = "epbt"; set kind = "epbt" or remove it')
        evaluator = _from_table(EvaluatorConfig, _table(data, "evaluator"), "evaluator.").validate()
        if evaluator.gpus_per_candidate > 0 and training.device == "cpu":
            raise TaylorGLOError(
                'evaluator.gpus_per_candidate: GPUs are reserved but training.device is "cpu"; '
                'set training.device = "cuda" (or "auto"), or gpus_per_candidate = 0'
            )
        return cls(
            name=name.strip(), kind=kind, seed=seed, training=training, search=search, evaluator=evaluator, epbt=epbt
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], check_network: bool = True) -> ExperimentConfig:
        """Read and validate a ``.toml``, ``.json``, ``.yaml`` or ``.yml`` file."""
        return cls.from_dict(read_config_file(path), default_name=Path(path).stem, check_network=check_network)


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
            return json.loads(text)
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


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise TaylorGLOError(f"{key}: must be a table ([{key}] in TOML), got {type(value).__name__}")
    return value


def _from_table(cls: type, table: dict[str, Any], prefix: str) -> Any:
    known = [f.name for f in dataclasses.fields(cls)]
    for key in table:
        if key not in known:
            raise TaylorGLOError(f"{prefix}{key}: unknown field; known fields are {', '.join(known)}")
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
