"""Evaluate candidates in parallel worker processes on this machine (the default evaluator).

Each worker is a fresh ``spawn`` ed process (never ``fork``: forking a process that has started
PyTorch's thread pools can deadlock) that loads the dataset *once*, at start-up, and then trains
candidate after candidate on it. Threads per worker are chosen so that workers × threads = cores,
which keeps two workers on two cores from fighting over them.

Failure handling, for runs that last days:

* A candidate that diverges is a ``failed`` result (see :func:`.base.evaluate_job`).
* A worker that dies (killed by the OOM killer, a segfault in a native library) breaks the pool;
  the pool is rebuilt and the unfinished jobs are run again, up to :attr:`LocalEvaluator.crash_retries`
  times each, after which a job is recorded as ``failed`` with the reason.
* A worker whose parent dies (``kill -9`` of ``taylorglo start``) notices within a second and
  exits, so no orphan keeps training for nobody.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Iterator, Sequence

from ..experiment.store import Candidate
from ..training.config import TrainConfig
from ..training.trainer import resolve_device
from .base import Evaluator, Job, WorkerState
from .lending import Lending

# The worker process's state, set once by _init_worker.
_WORKER: WorkerState | None = None


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


def _init_worker(training: dict[str, Any], threads: int, parent_pid: int, requested_at: float) -> None:
    global _WORKER
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    _WORKER = WorkerState(training, threads, requested_at)


def _run_job(job: Job) -> Candidate:
    assert _WORKER is not None
    return _WORKER.run(job)


class LocalEvaluator(Evaluator):
    """A pool of ``workers`` processes, started on first use and kept for the whole search."""

    crash_retries = 2

    def __init__(self, training: TrainConfig, workers: int | None = None, threads: int | None = None) -> None:
        self.training = training
        self.workers = max(1, workers or cpu_count())
        self.threads = training.threads or threads or threads_per_worker(self.workers)
        self._pool: ProcessPoolExecutor | None = None

    def lending(self) -> Lending | None:
        """The pool's workers share this machine's cores: on 2 cores, the last of an odd number
        of trainings can run on 2 threads instead of leaving a core idle. Not where the user
        pinned ``training.threads``, nor on a GPU (where CPU threads hardly matter)."""
        if self.training.threads is not None or self.workers < 2 or resolve_device(self.training.device).type != "cpu":
            return None
        return Lending(self.workers, self.threads, self.workers * self.threads)

    def _start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.training.to_dict(), self.threads, os.getpid(), time.time()),
            )
        return self._pool

    def evaluate(self, jobs: Sequence[Job]) -> Iterator[Candidate]:
        crashes: dict[Job, int] = {}
        todo = list(jobs)
        while todo:
            pool = self._start()
            futures: dict[Future[Candidate], Job] = {pool.submit(_run_job, job): job for job in todo}
            todo = []
            broken = False
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    job = futures[future]
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        broken = True
                        crashes[job] = crashes.get(job, 0) + 1
                        if crashes[job] > self.crash_retries:
                            yield _crashed(job, crashes[job])
                        else:
                            todo.append(job)
                        continue
                    yield result
            if broken:
                self._kill()
        return

    def _kill(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        # Terminate rather than wait: a worker may be minutes into a job nobody will read.
        for process in list(getattr(pool, "_processes", {}).values()):
            if process.is_alive():
                process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        self._kill()


def _crashed(job: Job, crashes: int) -> Candidate:
    return Candidate(
        generation=job.generation, index=job.index, params=list(job.params or []), seed=job.seed,
        status="failed", fitness=0.0,
        reason=f"worker process died {crashes} times while this candidate was running (out of memory?)",
    )
