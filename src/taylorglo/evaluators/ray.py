"""Evaluate candidates on a Ray cluster: ``[evaluator] kind = "ray"``.

The search, the store and the progress display stay on the driver (the machine running
``taylorglo start``); only trainings go to the cluster. Each worker is a Ray *actor* holding one
evaluation's resources (``cpus_per_candidate``, ``gpus_per_candidate``, ``memory``), so Ray places
it wherever those are free, and it trains candidate after candidate for the whole ``start``:

* The dataset reaches a worker once. By default the driver, which has loaded it anyway, puts it in
  Ray's object store and every worker receives it from there, so no node needs a copy of the data
  (``ship_data = false``: each worker reads it from its own node's data directory or cache).
* Jobs go only to workers that are up (each first answers ``ready``), so a worker still waiting
  for resources on a busy or autoscaling cluster holds no candidate hostage.
* Results stream back one at a time (``ray.wait``), in whatever order they finish, exactly as the
  local evaluator yields them; the host records each the moment it arrives.
* A worker or node that dies (:class:`ray.exceptions.RayActorError`) is replaced, and the candidate
  it was training runs again on another worker, at most ``retries`` times; then it is recorded as
  ``failed`` with the reason and the search goes on. The number of re-runs a result needed is kept
  in its metrics (``evaluator_retries``).
* The actors belong to the driver: if ``start`` is killed, Ray ends them, and ``start`` again
  resumes from the store like with the local evaluator (in-flight candidates were never recorded,
  so they are simply submitted again).

Files a job reads or writes (:meth:`Job.reads`/:meth:`Job.writes`: the networks ``final`` keeps,
EPBT's checkpoints) travel as bytes: the driver sends what the job reads, the worker runs it in a
temporary directory and sends back what it wrote, and the driver writes that into the experiment
directory. Workers on other machines need no shared filesystem.

Ray is optional (``pip install 'taylorglo[ray]'``); it is imported only when this evaluator is used.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..atomic import write_atomic
from ..errors import TaylorGLOError, one_line
from ..records import Result
from ..training.config import TrainConfig
from ..training.data import DataSplits
from ..training.facts import TrainingFacts
from ..training.trainers import probe
from .base import Evaluator, Job, Unit, worker_name
from .config import EvaluatorConfig, memory_bytes
from .lending import Lending
from .worker import WorkerState

INSTALL_HINT = "pip install 'taylorglo[ray]'"


def import_ray() -> Any:
    """``import ray``, or a one-line error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise TaylorGLOError(
            f'evaluator.kind: "ray" needs the ray package, which is not installed: {INSTALL_HINT}'
        ) from None
    return ray


class TrainingWorker:
    """One worker's state: the training config and the dataset, loaded once. Made a Ray actor class
    by :meth:`RayEvaluator._actor_class`; kept a plain class so it can be tested without Ray."""

    def __init__(
        self, training: dict[str, Any], threads: int, data: DataSplits | None, requested_at: float | None = None
    ) -> None:
        self.worker = WorkerState(training, threads, requested_at, data)

    def ready(self) -> str:
        """Where this worker runs (``host:pid``); answering means it is up and holds its resources."""
        return worker_name()

    def evaluate(self, job: Unit, inputs: dict[str, bytes] | None = None) -> tuple[list[Result], dict[str, bytes]]:
        """:func:`evaluate_job` on this node's disk: the files the job reads arrive as ``inputs``
        (bytes by driver path), and the files it writes go back the same way, so workers need no
        shared filesystem with the driver."""
        if not job.reads() and not job.writes():
            return self.worker.run(job), {}
        with tempfile.TemporaryDirectory(prefix="taylorglo-") as tmp:
            paths = {
                path: str(Path(tmp) / f"{i}-{Path(path).name}") for i, path in enumerate([*job.reads(), *job.writes()])
            }
            for path, blob in (inputs or {}).items():
                Path(paths[path]).write_bytes(blob)
            results = self.worker.run(job.relocated(paths))
            outputs = {path: Path(paths[path]).read_bytes() for path in job.writes() if Path(paths[path]).is_file()}
        back = {local: path for path, local in paths.items()}
        for result in results:
            for key in ("model_path", "checkpoint"):
                if result.metrics and key in result.metrics:
                    result.metrics[key] = back.get(result.metrics[key], result.metrics[key])
        return results, outputs


class RayEvaluator(Evaluator):
    """Trainings on Ray actors; see the module docstring. ``workers`` actors are started on first
    use and kept until :meth:`close`."""

    def __init__(
        self, training: TrainConfig, config: EvaluatorConfig, workers: int, data: DataSplits | None = None
    ) -> None:
        self.ray = import_ray()
        self.training = training
        self.config = config
        self.workers = max(1, workers)
        self.threads = training.threads or max(1, int(config.cpus_per_candidate))
        self.data = data if config.ship_data else None
        self._owns_ray = False
        self._actor_cls: Any = None
        self._data_ref: Any = None
        self._idle: deque[Any] = deque()
        self._starting: dict[Any, Any] = {}  # ready() ref -> actor
        self._names: dict[Any, str] = {}  # actor -> host:pid
        self._startup_deaths = 0
        self._lending: Lending | None = None  # what one node's actors share; fixed at connection

    # -- Ray and actors -------------------------------------------------------------------------

    def _connect(self) -> None:
        ray = self.ray
        if self._actor_cls is not None:
            return
        if not ray.is_initialized():
            # None → "local": a private instance even where `ray start` runs a cluster on this
            # machine (ray.init() with no address would join that one); "auto" joins it.
            address = self.config.address or "local"
            try:
                ray.init(
                    address=address,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                    configure_logging=True,
                )
            except ConnectionError as exc:
                raise TaylorGLOError(
                    f"evaluator.address: cannot reach a Ray cluster at {address!r}: "
                    f"{one_line(exc)}; start one with `ray start --head`"
                ) from None
            self._owns_ray = True
        self._check_resources()
        self._lending = self._one_node_lending()
        options: dict[str, Any] = {"num_cpus": self.config.cpus_per_candidate, "max_restarts": 0, "max_task_retries": 0}
        if self.config.gpus_per_candidate:
            options["num_gpus"] = self.config.gpus_per_candidate
        if self.config.memory is not None:
            options["memory"] = memory_bytes(self.config.memory)
        self._actor_cls = ray.remote(**options)(TrainingWorker)
        if self.data is not None:
            self._data_ref = ray.put(self.data)

    def _check_resources(self) -> None:
        """A private local instance never grows: refuse resources it can never offer. On a cluster
        (which may autoscale) only warn."""
        total = self.ray.cluster_resources()
        need = {"CPU": self.config.cpus_per_candidate, "GPU": self.config.gpus_per_candidate}
        if self.config.memory is not None:
            need["memory"] = memory_bytes(self.config.memory)
        short = [
            f"{k} {v:g} per candidate, the cluster has {total.get(k, 0):g}"
            for k, v in need.items()
            if v and total.get(k, 0) < v
        ]
        if not short:
            return
        message = f"evaluator: one evaluation needs more than Ray offers ({'; '.join(short)})"
        if self._owns_ray:
            raise TaylorGLOError(message + "; lower cpus_per_candidate / gpus_per_candidate / memory")
        print(f"warning: {message}; waiting for the cluster to grow", file=sys.stderr)

    def _spawn(self) -> None:
        actor = self._actor_cls.remote(self.training.to_dict(), self.threads, self._data_ref, time.time())
        self._starting[actor.ready.remote()] = actor

    def _discard(self, actor: Any) -> None:
        self._names.pop(actor, None)
        try:
            self.ray.kill(actor, no_restart=True)
        except Exception:  # already gone
            pass

    def _replace(self, actor: Any) -> None:
        self._discard(actor)
        self._spawn()

    # -- the interface ----------------------------------------------------------------------------

    def _probe(self) -> TrainingFacts:
        """Found here, on the data the driver ships (or loads for the purpose)."""
        return probe(self.training, self.data)

    def lending(self) -> Lending | None:
        """On a cluster of one node (the private instance ``start`` makes by default, or ``ray
        start --head`` on one machine) the actors share its cores, as the local pool's workers
        do. Across nodes the idle actors' cores are on other machines, so nothing is lent; nor
        where the user pinned ``training.threads`` or candidates use GPUs. Read from the cluster
        once, when connecting, so every generation of a ``start`` is planned alike."""
        if self.training.threads is not None or self.config.gpus_per_candidate:
            return None
        self._connect()
        return self._lending

    def _one_node_lending(self) -> Lending | None:
        nodes = [node for node in self.ray.nodes() if node.get("Alive")]
        if len(nodes) != 1:
            return None
        per_actor = self.config.cpus_per_candidate
        node_cpus = float(nodes[0].get("Resources", {}).get("CPU", 0.0))
        workers = max(1, min(self.workers, int(node_cpus // per_actor)))  # the actors that run at once
        if workers < 2:
            return None
        return Lending(workers, self.threads, int(workers * per_actor))

    def evaluate(self, jobs: Sequence[Job]) -> Iterator[Result]:
        if not jobs:
            return
        self._connect()
        ray = self.ray
        while len(self._idle) + len(self._starting) < self.workers:
            self._spawn()
        queue = deque(self.units(jobs))
        running: dict[Any, tuple[Any, Unit]] = {}
        reruns: dict[Unit, int] = {}
        while queue or running:
            while queue and self._idle:
                actor, job = self._idle.popleft(), queue.popleft()
                inputs = {path: Path(path).read_bytes() for path in job.reads()}
                running[actor.evaluate.remote(job, inputs)] = (actor, job)
            (ref,), _ = ray.wait([*running, *self._starting], num_returns=1)
            if ref in self._starting:
                self._worker_started(ref)
                continue
            actor, job = running.pop(ref)
            try:
                results, outputs = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                cause = getattr(exc, "cause", None) or exc
                if isinstance(cause, TaylorGLOError):  # the configuration, not the candidate
                    raise TaylorGLOError(str(cause)) from None
                self._idle.append(actor)
                yield from job.fail(f"{type(cause).__name__}: {one_line(cause)}")
                continue
            except ray.exceptions.RayError as exc:  # the worker, its node or the object died
                name = self._names.get(actor, "?")
                self._replace(actor)
                reruns[job] = reruns.get(job, 0) + 1
                self.note(
                    f"Ray worker {name} lost while training {job.label} "
                    f"({type(exc).__name__}); "
                    + (
                        "it is run again on another worker"
                        if reruns[job] <= self.config.retries
                        else "recorded as failed"
                    )
                )
                if reruns[job] > self.config.retries:
                    yield from job.fail(
                        f"Ray worker lost while training this candidate, {reruns[job]} time(s) "
                        f"(evaluator.retries = {self.config.retries}); last on {name}: "
                        f"{type(exc).__name__}: {one_line(exc)}",
                    )
                else:
                    queue.appendleft(job)
                continue
            self._idle.append(actor)
            for path, blob in outputs.items():
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                write_atomic(path, blob)
            for result in results:
                if reruns.get(job):
                    result.metrics = {**(result.metrics or {}), "evaluator_retries": reruns[job]}
                yield result

    def _worker_started(self, ref: Any) -> None:
        actor = self._starting.pop(ref)
        try:
            self._names[actor] = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            self._startup_deaths += 1
            self._discard(actor)
            if self._startup_deaths > 3 * self.workers + 3:
                raise TaylorGLOError(
                    f"evaluator: Ray workers keep dying while starting ({self._startup_deaths} so far): {one_line(exc)}"
                ) from None
            self._spawn()
            return
        self._idle.append(actor)

    def close(self) -> None:
        actors = [*self._idle, *self._starting.values(), *self._names]
        self._idle.clear()
        self._starting.clear()
        for actor in {id(a): a for a in actors}.values():
            self._discard(actor)
        self._names.clear()
        self._data_ref = None
        if self._owns_ray and self.ray.is_initialized():
            self.ray.shutdown()
        self._owns_ray = False
        self._actor_cls = None


def from_config(training: TrainConfig, config: EvaluatorConfig, workers: int | None, most: int) -> RayEvaluator:
    """The ``[evaluator] kind = "ray"`` evaluator; with ``ship_data`` the dataset is loaded here
    once and shipped to every actor through Ray's object store."""
    from ..training.trainers import trainer_for

    data = None
    if config.ship_data:
        data = trainer_for(training).load_data()
    n = workers or config.max_in_flight or config.workers or most
    return RayEvaluator(training, config, workers=max(1, min(n, most)), data=data)
