"""Evaluate candidates in parallel worker processes on this machine (the default evaluator).

Each worker is a fresh ``spawn`` ed process (never ``fork``: forking a process that has started
PyTorch's thread pools can deadlock) that loads the dataset *once*, at start-up, and then trains
candidate after candidate on it, one at a time, over a pipe of its own. Threads per worker are
chosen so that workers × threads = cores, which keeps two workers on two cores from fighting over
them.

Failure handling, for runs that last days:

* A candidate that diverges is a ``failed`` result (see :func:`.worker.evaluate_job`).
* A worker that dies (killed by the OOM killer, a segfault in a native library, ``kill -9``) is
  replaced, and since each worker holds exactly one job, only *that* job is charged: it is run
  again, up to ``retries`` times, and then recorded as ``failed`` with the reason. Every death is
  reported (pid, exit code or signal, the job it held) to the host's log, and a re-run job
  carries its count in its metrics (``worker_deaths``).
* A worker whose parent dies (``kill -9`` of ``taylorglo start``) notices within a second and
  exits, so no orphan keeps training for nobody.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

from ..errors import TaylorGLOError, one_line
from ..records import Result
from ..training.config import TrainConfig
from ..training.facts import TrainingFacts
from .base import Evaluator, Job, Unit
from .lending import Lending

if TYPE_CHECKING:
    from .config import EvaluatorConfig
    from .worker import WorkerState

#: What the host sends a worker to ask for its :class:`TrainingFacts` instead of a job.
FACTS = "facts"


def cpu_count() -> int:
    """Cores this process may use (the affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS
        return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    return max(1, (cores or cpu_count()) // max(1, workers))


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(0)


def _worker_main(
    conn: Connection, training: dict[str, Any], threads: int, parent_pid: int, requested_at: float
) -> None:
    """A worker's life: start up once, then train each job the pipe brings until it brings None
    (or answer :data:`FACTS`). A configuration problem (:class:`TaylorGLOError`, the dataset
    failing to load) goes back as an error for the host to raise; a candidate's own failure is a
    ``failed`` result. Torch is imported here, not by this module, which the host imports."""
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the host's to handle; it ends us
    try:
        from .worker import WorkerState

        state: WorkerState | None = WorkerState(training, threads, requested_at)
        failure = None
    except Exception as exc:  # told with the first job, in one line, instead of a traceback
        state, failure = (
            None,
            TaylorGLOError(f"evaluator: a worker process could not start: {type(exc).__name__}: {one_line(exc)}"),
        )
    while True:
        try:
            job = conn.recv()
        except EOFError:
            job = None
        if job is None:  # done: exit at once; an interpreter holding torch takes a while to tear down
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        if state is None:
            conn.send(("error", failure))
            continue
        try:
            conn.send(("facts", state.facts()) if job == FACTS else ("result", state.run(job)))
        except TaylorGLOError as exc:
            conn.send(("error", TaylorGLOError(str(exc))))
        except Exception as exc:  # the dataset failed to load: the configuration, not a candidate
            conn.send(("error", TaylorGLOError(f"training.dataset: {type(exc).__name__}: {one_line(exc)}")))


class _Worker:
    """One worker process, its end of the pipe, and the job it holds (None: idle)."""

    def __init__(self, context: Any, args: tuple[Any, ...]) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, *args), daemon=True)
        self.process.start()
        child.close()
        self.job: Unit | None = None
        self._told = False

    def give(self, job: Unit) -> None:
        self.job = job
        self.conn.send(job)

    def death(self) -> str:
        """How the process ended, in words."""
        code = self.process.exitcode
        if code is not None and code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exited with code {code}"

    def tell_to_stop(self, kill: bool = False) -> None:
        """Ask it to exit (None down its pipe), or kill it; returns at once."""
        if self.process.is_alive() and not self._told:
            self._told = True
            if kill:
                self.process.kill()
            else:
                try:
                    self.conn.send(None)
                except OSError:
                    self.process.kill()

    def stop(self, kill: bool = False) -> None:
        self.tell_to_stop(kill)
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class LocalEvaluator(Evaluator):
    """A pool of ``workers`` processes, started on first use and kept for the whole search."""

    def __init__(
        self, training: TrainConfig, workers: int | None = None, threads: int | None = None, retries: int = 2
    ) -> None:
        self.training = training
        self.workers = max(1, workers or cpu_count())
        self.threads = training.threads or threads or threads_per_worker(self.workers)
        #: Re-runs of a job whose worker died, before it is recorded as failed.
        self.retries = retries
        self._pool: list[_Worker] = []
        self._context = multiprocessing.get_context("spawn")

    def lending(self) -> Lending | None:
        """The pool's workers share this machine's cores: on 2 cores, the last of an odd number
        of trainings can run on 2 threads instead of leaving a core idle. Not where the user
        pinned ``training.threads``, nor on a GPU (where CPU threads hardly matter)."""
        if self.training.threads is not None or self.workers < 2 or self.facts().device != "cpu":
            return None
        return Lending(self.workers, self.threads, self.workers * self.threads)

    def _probe(self) -> TrainingFacts:
        """Asked of the first worker, which loads the data anyway; all the workers start now, so
        they import torch while the host prepares the first generation."""
        self._grow(self.workers)
        worker = self._pool[0]
        try:
            worker.conn.send(FACTS)
            kind, value = worker.conn.recv()
        except (EOFError, OSError):
            self._pool.remove(worker)
            worker.stop(kill=True)
            raise TaylorGLOError(
                f"evaluator: worker process {worker.process.pid} {worker.death()} while it "
                "loaded the dataset and checked the network"
            ) from None
        if kind == "error":
            raise value
        return value

    def _grow(self, wanted: int) -> None:
        """Start workers until there are ``wanted`` (at most :attr:`workers`)."""
        while len(self._pool) < min(self.workers, wanted):
            self._pool.append(_Worker(self._context, (self.training.to_dict(), self.threads, os.getpid(), time.time())))

    def evaluate(self, jobs: Sequence[Job]) -> Iterator[Result]:
        todo = deque(self.units(jobs))
        deaths: dict[Unit, int] = {}
        while todo or any(w.job is not None for w in self._pool):
            self._grow(len(todo) + sum(w.job is not None for w in self._pool))
            for worker in self._pool:
                if worker.job is None and todo:
                    try:
                        worker.give(todo.popleft())
                    except OSError:  # its pipe broke: it died; the job goes back below
                        pass
            busy = [w.conn for w in self._pool if w.job is not None]
            ready = set(wait(busy + [w.process.sentinel for w in self._pool]))
            for worker in list(self._pool):
                if worker.conn not in ready and worker.process.sentinel not in ready:
                    continue
                message = _receive(worker)
                if message is not None:
                    kind, value = message
                    if kind == "error":
                        raise value
                    job, worker.job = worker.job, None
                    if job is not None and deaths.get(job):
                        for result in value:
                            result.metrics = {**(result.metrics or {}), "worker_deaths": deaths[job]}
                    if todo:  # its next job goes out before the host records this result, not after
                        try:
                            worker.give(todo.popleft())
                        except OSError:  # it died: the job goes back when it is buried
                            pass
                    yield from value
                    continue
                if worker.process.is_alive():
                    continue
                job = self._bury(worker)
                if job is None:
                    continue
                deaths[job] = deaths.get(job, 0) + 1
                if deaths[job] > self.retries:
                    yield from _crashed(job, deaths[job], self.retries, worker)
                else:
                    todo.appendleft(job)

    def _bury(self, worker: _Worker) -> Unit | None:
        """A worker found dead: report it, remove it (a new one starts when needed) and return
        the job it held, the only one its death is charged to."""
        self._pool.remove(worker)
        worker.stop(kill=True)
        job = worker.job
        held = "while idle" if job is None else f"while training {job.label}"
        self.note(
            f"worker process {worker.process.pid} {worker.death()} {held}"
            + ("" if job is None else "; it is run again on a new worker")
        )
        return job

    def close(self) -> None:
        """Stop the workers: idle ones are told to exit, busy ones (a job nobody will read) killed;
        all are told before any is waited for."""
        pool, self._pool = self._pool, []
        for worker in pool:
            worker.tell_to_stop(kill=worker.job is not None)
        for worker in pool:
            worker.stop(kill=worker.job is not None)


def _receive(worker: _Worker) -> tuple[str, Any] | None:
    """The message waiting on ``worker`` 's pipe, or None (nothing, or the pipe closed by its death)."""
    try:
        if worker.job is not None and worker.conn.poll():
            return worker.conn.recv()
    except (EOFError, OSError):
        worker.process.join(timeout=5)
    return None


def _crashed(job: Unit, deaths: int, retries: int, worker: _Worker) -> list[Result]:
    how = worker.death()
    hint = " (out of memory?)" if "SIGKILL" in how else ""
    return job.fail(
        f"its worker process died {deaths} times while training it, the last one (pid "
        f"{worker.process.pid}) {how}{hint}; evaluator.retries = {retries}",
        metrics={"worker_deaths": deaths},
    )


def from_config(training: TrainConfig, config: EvaluatorConfig, workers: int | None, most: int) -> LocalEvaluator:
    """The ``[evaluator] kind = "local"`` evaluator: ``workers`` (or the config's, or one per
    core) processes, never more than ``most``."""
    n = workers or config.workers
    return LocalEvaluator(training, workers=max(1, min(n or cpu_count(), most)), retries=config.retries)
