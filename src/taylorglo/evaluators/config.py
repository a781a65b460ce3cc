"""The ``[evaluator]`` table of an experiment's config: where its trainings run.

It lives with the evaluators, which read it; the experiment's config
(:mod:`taylorglo.experiment.config`) parses it as one of its tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import TaylorGLOError
from ..training.config import _is_int, _is_number

#: The evaluators a config may name, and the ``module:function`` that makes each from the
#: experiment's settings: ``make(training, config, workers, most) -> Evaluator`` (``workers``:
#: ``start --workers``, or None; never more than ``most`` workers). Imported only when used.
EVALUATORS = {
    "local": "taylorglo.evaluators.local:from_config",
    "ray": "taylorglo.evaluators.ray:from_config",
}


def register_evaluator(name: str, factory: str) -> None:
    """Make ``[evaluator] kind = "NAME"`` run the evaluator ``factory`` (``"module:function"``) makes."""
    EVALUATORS[name] = factory


@dataclass
class EvaluatorConfig:
    """The ``[evaluator]`` table: where candidates train. Results never depend on it (every evaluator
    runs the same :func:`~taylorglo.evaluators.worker.evaluate_job`), so ``start --evaluator`` may
    override it for one run."""

    kind: str = "local"
    #: Parallel evaluations; None: one per CPU core (local), ``max_in_flight`` (Ray); never more
    #: than the population.
    workers: int | None = None
    #: Ray only: the cluster to join ("auto": the one ``ray start`` runs on this machine;
    #: "ray://host:10001": a remote head over Ray Client). None: start a private local instance.
    address: str | None = None
    #: Ray only: resources one evaluation reserves; Ray places each worker where they are free.
    cpus_per_candidate: float = 1.0
    gpus_per_candidate: float = 0.0
    #: Ray only: memory one evaluation reserves, in bytes or as "4GiB" / "512MB" (None: none).
    memory: int | str | None = None
    #: Ray only: at most this many evaluations at once, i.e. workers (actors) kept alive.
    max_in_flight: int | None = None
    #: How often a candidate whose worker process (or Ray node) died is run again on another
    #: before it is recorded as failed; only the job that worker held is charged.
    retries: int = 2
    #: Ray only: load the dataset once on the driver and hand it to the workers through Ray's
    #: object store (nodes need no copy of the data); false: every worker reads it from its own
    #: node's data directory or download cache.
    ship_data: bool = True
    #: Give a generation's last trainings the cores of workers idle at its barrier (where the
    #: workers share one machine): "auto" lends where the network's training step does enough
    #: multiply-accumulates, counted from its shapes (see :mod:`taylorglo.evaluators.lending`);
    #: true / false decide instead; "measure" times it once (results then depend on the load).
    lend_idle_cores: bool | str = "auto"
    #: How many fresh trainings (a generation's candidates, final's repeats) a worker trains at
    #: once as one vectorized population (:mod:`taylorglo.training.population`); 1: one at a time;
    #: "auto": a rule on the network's shapes (:func:`~.base.auto_vectorize`). Recorded by an
    #: experiment's first run, like its thread layout.
    vectorize: int | str = 1

    def validate(self, prefix: str = "evaluator.") -> EvaluatorConfig:
        def bad(name: str, why: str) -> TaylorGLOError:
            return TaylorGLOError(f"{prefix}{name}: {why}")

        if self.kind not in EVALUATORS:
            raise bad("kind", f"must be one of {', '.join(map(repr, EVALUATORS))}, got {self.kind!r}")
        if self.workers is not None and (not _is_int(self.workers) or self.workers < 1):
            raise bad("workers", f"must be a positive integer, got {self.workers!r}")
        if self.address is not None and not (isinstance(self.address, str) and self.address.strip()):
            raise bad("address", "must be a string such as 'auto' or 'ray://host:10001'")
        if not (_is_number(self.cpus_per_candidate) and self.cpus_per_candidate > 0):
            raise bad("cpus_per_candidate", f"must be a positive number, got {self.cpus_per_candidate!r}")
        if not (_is_number(self.gpus_per_candidate) and self.gpus_per_candidate >= 0):
            raise bad("gpus_per_candidate", f"must be a number >= 0, got {self.gpus_per_candidate!r}")
        if self.memory is not None:
            memory_bytes(self.memory, f"{prefix}memory")
        if self.max_in_flight is not None and (not _is_int(self.max_in_flight) or self.max_in_flight < 1):
            raise bad("max_in_flight", f"must be a positive integer, got {self.max_in_flight!r}")
        if not _is_int(self.retries) or self.retries < 0:
            raise bad("retries", f"must be an integer >= 0, got {self.retries!r}")
        if not isinstance(self.ship_data, bool):
            raise bad("ship_data", f"must be true or false, got {self.ship_data!r}")
        if not (isinstance(self.lend_idle_cores, bool) or self.lend_idle_cores in ("auto", "measure")):
            raise bad("lend_idle_cores", f'must be "auto", "measure", true or false, got {self.lend_idle_cores!r}')
        if self.vectorize != "auto" and (not _is_int(self.vectorize) or int(self.vectorize) < 1):
            raise bad(
                "vectorize", f'must be a positive integer (1: one training at a time) or "auto", got {self.vectorize!r}'
            )
        if self.kind != "ray":
            defaults = EvaluatorConfig()
            for name in RAY_ONLY:
                if getattr(self, name) != getattr(defaults, name):
                    raise bad(name, f'is a Ray setting; set kind = "ray" or remove it (kind is {self.kind!r})')
        return self


#: Fields of ``[evaluator]`` that only the Ray evaluator reads.
RAY_ONLY = ("address", "cpus_per_candidate", "gpus_per_candidate", "memory", "max_in_flight", "retries", "ship_data")

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def memory_bytes(value: int | str, field: str = "evaluator.memory") -> int:
    """``4294967296``, ``"4GiB"``, ``"512MB"``, ``"2.5G"`` → bytes; anything else is a one-line error."""
    if _is_int(value) and value > 0:
        return int(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", value)
        if match and match.group(2).lower() in _UNITS and float(match.group(1)) > 0:
            return int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    raise TaylorGLOError(
        f'{field}: must be a positive number of bytes or a size such as "4GiB" or "512MB", got {value!r}'
    )
