"""Benchmark: where a search's wall time goes, per dataset and evaluator (training share >= 0.9).

A search is worth running in parallel only if its workers spend their time inside training steps.
This runs real searches with :func:`taylorglo.experiment.start` (CMA-ES, the ``reference``
invariant, the SQLite store) for each dataset and evaluator asked for, and splits the search's
``wall × workers`` worker-slot-seconds into a flame-style table:

* **training steps**: the candidates' ``step_time`` (forward, backward, optimiser): *the share*;
* **evaluation**: their ``eval_time`` (the validation pass that gives the fitness);
* **model build, rest of train()**: ``wall_time − step_time − eval_time`` of each candidate;
* **worker start-up**, from the timings each worker reports with its first result
  (:class:`taylorglo.evaluators.worker.WorkerState`): *process start* (spawn or Ray actor start,
  interpreter, imports), *data loading*, and the rest until its first candidate begins (the
  facts the first worker reports to the host, receiving the job; for Ray, connecting to the
  cluster and scheduling the actor);
* **generation barrier**: a worker done with its share of a generation waits for the slowest
  candidate of that generation (CMA-ES's ``tell`` needs them all). The evaluators lend those idle
  cores to the generation's last trainings (``taylorglo.experiment.threads``: the local pool, and Ray
  when all its actors share one node) where the network's count of multiply-accumulates per step
  says it trains faster on more threads (``taylorglo.evaluators.lending``: MNIST's CNN yes, the
  digits MLP no); a run on
  ``t`` threads where a worker has ``b`` fills ``t / b`` slots, and the borrowed slots count as
  training ("of which on cores lent ...") instead of barrier;
* **host between generations / between candidates**: the driver's work while workers wait
  (``tell``, the store, the CSV/JSON export, ``ask``, the invariant, dispatch; results in flight);
* **host set-up** (lock, loading the data, checking the model, counting its multiply-accumulates
  to decide on lending) before the first generation opens,
  and **host tail** after the last result (export, status, shutting the workers down).

The driver's own time in **database writes** (every ``BEGIN IMMEDIATE … COMMIT``), the **export**
and **CMA-ES** (ask, tell, invariant) is measured by wrapping those functions, and printed as the
worker-slots left idle while it ran (the part of the rows above it explains).

The timeline comes from the store: a candidate ran from ``finished_at − wall_time`` to
``finished_at`` on ``worker``; generation 0's ``opened_at`` is the moment before the workers start.

Sizes. *digits*: the bundled MLP, 4,000 steps per candidate (about 2.5 s), λ = 20, 3 generations.
*mnist*: the protocol of ``benchmarks/reproduce_mnist.py`` (10% of MNIST, ``mnist-cnn`` at width
0.25, 1,200 steps per candidate, about 13 s), λ = 12, 4 generations. A short search pays its
once-per-``start`` costs (worker start-up) over few candidates; the *steady-state share* leaves
them out, which is what a search of hours converges to.

Run it on an idle machine (for the local searches, the load of other processes is measured from
``/proc/stat`` and printed, with a warning above 5% of the cores):

    python benchmarks/throughput.py --data-dir ../shared/data/mnist              # ~20 min on 2 cores
    python benchmarks/throughput.py --datasets digits --evaluators local --quick  # ~1 min

Baseline, measured in the same run: each search runs a second time with ``[training] threads``
pinned to the worker's own, so no core is lent; the last line gives wall(lent) / wall(pinned).

The last line holds the figures: the training share of every search run, and those wall ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

TARGET = 0.9


def config(dataset: str, evaluator: str, args: argparse.Namespace, pinned: bool = False) -> dict[str, Any]:
    """The search benchmarked for ``dataset`` (see the module docstring for the sizes); ``pinned``:
    every training on its worker's own threads (``[training] threads``), so no core is lent."""
    if dataset == "digits":
        steps = 1000 if args.quick else 4000
        training = {"dataset": "digits", "model": "mlp", "steps": steps * 10, "batch_size": 64, "lr": 0.01}
        search = {"population": 8 if args.quick else 20, "generations": 3, "partial_fraction": 0.1}
    else:
        steps = 300 if args.quick else 1200
        training = {
            "dataset": "mnist",
            "data_dir": str(Path(args.data_dir).resolve()),
            "data_fraction": 0.1,
            "model": "mnist-cnn",
            "model_options": {"width": 0.25},
            "steps": steps * 5,
            "batch_size": 100,
            "lr": 0.01,
            "momentum": 0.9,
        }
        search = {"population": 6 if args.quick else 12, "generations": 2 if args.quick else 4, "partial_fraction": 0.2}
    if pinned:
        from taylorglo.evaluators.local import threads_per_worker

        training["threads"] = threads_per_worker(args.workers)
    return {
        "name": f"throughput-{dataset}-{evaluator}",
        "kind": "taylorglo",
        "seed": args.seed,
        "training": training,
        "search": {"order": 3, "sigma": 1.2, "invariant": "reference", "seeds": "generation", **search},
        "evaluator": {"kind": evaluator, "workers": args.workers},
    }


class HostTimer:
    """Intervals (start, end) the driver spent in a few functions, recorded by wrapping them."""

    def __init__(self) -> None:
        self.intervals: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, name: str, label: str, context: bool = False) -> None:
        original = getattr(owner, name)
        intervals = self.intervals[label]

        if context:  # a context manager: time from enter to exit
            from contextlib import contextmanager

            @contextmanager
            def timed(*a: Any, **k: Any) -> Any:
                t = time.time()
                try:
                    with original(*a, **k) as value:
                        yield value
                finally:
                    intervals.append((t, time.time()))
        else:

            def timed(*a: Any, **k: Any) -> Any:
                t = time.time()
                try:
                    return original(*a, **k)
                finally:
                    intervals.append((t, time.time()))

        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original))

    def __enter__(self) -> HostTimer:
        from taylorglo.cmaes import CMAESSearch
        from taylorglo.experiment import host
        from taylorglo.experiment.store import Store

        self.wrap(Store, "transaction", "database writes", context=True)
        self.wrap(host, "export", "export (CSV, JSON)")
        self.wrap(CMAESSearch, "ask", "CMA-ES ask/tell, invariant")
        self.wrap(CMAESSearch, "tell", "CMA-ES ask/tell, invariant")
        self.wrap(host, "invariant_holds", "CMA-ES ask/tell, invariant")
        return self

    def __exit__(self, *exc: Any) -> None:
        for undo in reversed(self._undo):
            undo()


def _overlap(a: float, b: float, c: float, d: float) -> float:
    return max(0.0, min(b, d) - max(a, c))


def _idle(busy: list[tuple[float, float]], a: float, b: float, last_result: float) -> float:
    """Seconds of ``[a, b]`` a worker with these busy intervals (sorted) was up and not training."""
    active = _overlap(a, b, busy[0][0], last_result)
    return max(0.0, active - sum(_overlap(a, b, s, e) for s, e in busy))


def timeline(
    candidates: list[Any],
    opened0: float,
    t0: float,
    t1: float,
    workers: int,
    base_threads: int,
    host: dict[str, list[tuple[float, float]]],
) -> dict[str, Any]:
    """Split ``(t1 − t0) × workers`` slot-seconds into the rows of the module docstring."""
    trained = [c for c in candidates if c.wall_time is not None and c.finished_at is not None and c.worker]
    gen_end: dict[int, float] = {}
    for c in trained:
        gen_end[c.generation] = max(gen_end.get(c.generation, 0.0), c.finished_at)
    last_result = max(c.finished_at for c in trained)
    by_worker: dict[str, list[Any]] = defaultdict(list)
    for c in trained:
        by_worker[c.worker].append(c)

    out: dict[str, float] = defaultdict(float)
    out["host set-up"] = (opened0 - t0) * workers
    out["host tail"] = (t1 - last_result) * workers
    out["worker never used"] = (last_result - opened0) * max(0, workers - len(by_worker))
    busy: dict[str, list[tuple[float, float]]] = {}
    for name, runs in by_worker.items():
        runs.sort(key=lambda c: c.finished_at)
        busy[name] = [(c.finished_at - c.wall_time, c.finished_at) for c in runs]
    lent = lent_steps = 0.0
    for name, runs in by_worker.items():
        start_up = busy[name][0][0] - opened0
        marks = next((c.metrics["worker_startup"] for c in runs if "worker_startup" in (c.metrics or {})), {})
        parts = {
            "worker start-up: process start, imports": marks.get("process_start", 0.0),
            "worker start-up: data loading": marks.get("data_load", 0.0),
        }
        for key, value in parts.items():
            out[key] += value
        out["worker start-up: rest, until its first job"] += start_up - sum(parts.values())
        for c in runs:
            step = c.step_time or 0.0
            evaluation = (c.metrics or {}).get("eval_time", 0.0)
            # A generation's last trainings may run on the cores of workers idle at the barrier
            # (taylorglo.experiment.threads). What such a run borrowed is the other workers' idle
            # time while it ran (at most threads / base − 1 slots): counted as this run's, in
            # proportion to its own rows, and taken off the barrier below.
            scale = (c.metrics or {}).get("threads", base_threads) / base_threads
            borrowed = 0.0
            if scale > 1:
                begin, end = c.finished_at - c.wall_time, c.finished_at
                others = sum(_idle(intervals, begin, end, last_result) for w, intervals in busy.items() if w != name)
                borrowed = min((scale - 1) * c.wall_time, others)
            extra = 1 + borrowed / c.wall_time if c.wall_time else 1.0
            out["training steps"] += step * extra
            out["evaluation (validation pass)"] += evaluation * extra
            out["model build, rest of train()"] += (c.wall_time - step - evaluation) * extra
            lent += borrowed
            lent_steps += step * (extra - 1)
        for prev, nxt in zip(runs, runs[1:]):
            gap = (nxt.finished_at - nxt.wall_time) - prev.finished_at
            if nxt.generation == prev.generation:
                out["host between candidates"] += gap
            else:
                barrier = gen_end[prev.generation] - prev.finished_at
                out["generation barrier"] += barrier
                out["host between generations"] += gap - barrier
        out["generation barrier"] += last_result - runs[-1].finished_at  # the final generation's
    out["generation barrier"] -= lent
    total = (t1 - t0) * workers
    out["unaccounted"] = total - sum(out.values())

    # Worker slots left idle while the driver was inside each instrumented function.
    idle: dict[str, float] = {}
    for label, intervals in host.items():
        slots = 0.0
        for a, b in intervals:
            for runs in busy.values():
                slots += _idle(runs, a, b, last_result)
            slots += _overlap(a, b, opened0, last_result) * max(0, workers - len(busy))
        idle[label] = slots
    per_gen: dict[int, int] = defaultdict(int)
    for c in trained:
        per_gen[c.generation] += 1
    host_seconds = {label: sum(b - a for a, b in intervals) for label, intervals in host.items()}
    return {
        "parts": dict(out),
        "total": total,
        "per_gen": dict(per_gen),
        "idle": idle,
        "host": host_seconds,
        "trained": len(trained),
        "workers_used": len(by_worker),
        "lent_steps": lent_steps,
    }


ROWS = [
    ("training steps", 0),
    ("evaluation (validation pass)", 0),
    ("model build, rest of train()", 0),
    ("worker start-up: process start, imports", 0),
    ("worker start-up: data loading", 0),
    ("worker start-up: rest, until its first job", 0),
    ("generation barrier", 0),
    ("host between generations", 0),
    ("host between candidates", 0),
    ("host set-up", 0),
    ("host tail", 0),
    ("worker never used", 0),
    ("unaccounted", 0),
]
ONE_OFF = (
    "host set-up",
    "host tail",
    "worker start-up: process start, imports",
    "worker start-up: data loading",
    "worker start-up: rest, until its first job",
)


def print_table(name: str, wall: float, workers: int, tl: dict[str, Any]) -> None:
    total, parts = tl["total"], tl["parts"]
    print(
        f"\n{name}: wall {wall:.1f} s x {workers} workers = {total:.1f} worker-slot-seconds; "
        f"{tl['trained']} trainings, per generation {[tl['per_gen'][g] for g in sorted(tl['per_gen'])]}"
    )
    print(f"  {'where':<46} {'slot-s':>8} {'share':>7}  bar")
    for key, _ in ROWS:
        value = parts.get(key, 0.0)
        if key in ("worker never used", "unaccounted") and abs(value) < 0.005 * total:
            continue
        share = value / total
        print(f"  {key:<46} {value:8.2f} {share:7.1%}  {'#' * max(0, round(share * 50))}")
        if key == "training steps" and tl["lent_steps"]:
            print(
                f"    of which on cores lent by workers idle at the barrier {tl['lent_steps']:8.2f} "
                f"{tl['lent_steps'] / total:7.1%}"
            )
    for label in sorted(tl["idle"]):
        print(
            f"    idle slots while the host ran {label:<30} {tl['idle'][label]:8.2f} {tl['idle'][label] / total:7.1%}"
            f"  (host thread: {tl['host'][label]:.2f} s)"
        )


class CpuMeter:
    """Core-seconds the whole machine spent busy vs. this process tree, over a stretch of time.

    The figures here only mean something on an otherwise idle machine: another process on one of
    the cores slows a worker's steps and shows up as "slower steps", not as host overhead. Linux
    only (``/proc/stat``); elsewhere nothing is measured.
    """

    def __init__(self) -> None:
        self.busy0, self.steal0 = _machine_busy()
        self.own0 = _own_cpu()
        self.t0 = time.time()

    def report(self, what: str) -> str:
        busy, steal = _machine_busy()
        if busy is None or self.busy0 is None:
            return ""
        wall = time.time() - self.t0
        cores = os.cpu_count() or 1
        other = max(0.0, (busy - self.busy0) - (_own_cpu() - self.own0))
        stolen = steal - self.steal0
        share = (other + stolen) / (wall * cores)
        text = (
            f"{what}: other processes used {other:.1f} core-s, hypervisor steal {stolen:.1f} core-s "
            f"= {share:.1%} of {wall:.0f} s x {cores} cores"
        )
        if share > 0.05:
            text += "  ** machine was busy: the figures below are not reliable; re-run on an idle machine **"
        return text


def _machine_busy() -> tuple[float | None, float]:
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq) / tick, steal / tick


def _own_cpu() -> float:
    """CPU seconds of this process and its reaped children (the pool's workers, once shut down)."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_search(
    dataset: str, evaluator: str, args: argparse.Namespace, root: Path, pinned: bool = False
) -> dict[str, Any]:
    from taylorglo.evaluators.local import threads_per_worker
    from taylorglo.experiment import init_experiment, open_experiment, start

    path = root / f"{dataset}-{evaluator}{'-pinned' if pinned else ''}.json"
    path.write_text(json.dumps(config(dataset, evaluator, args, pinned)), encoding="utf-8")
    directory = root / path.stem
    init_experiment(directory, path)
    meter = CpuMeter()
    with HostTimer() as timer:
        t0 = time.time()
        result = start(directory, workers=args.workers)
        t1 = time.time()
    # Ray's workers are children of its raylet, not of this process: the meter would count their
    # training as "other processes". Only a local search is checked for a busy machine.
    busy = meter.report("machine during the search") if evaluator == "local" else ""
    with open_experiment(directory).reader() as store:
        opened0 = store.generation(0).opened_at
        tl = timeline(
            store.candidates(), opened0, t0, t1, args.workers, threads_per_worker(args.workers), timer.intervals
        )
    name = f"{dataset} / {evaluator}" + (" / threads pinned (baseline: no core lent)" if pinned else "")
    print_table(name, t1 - t0, args.workers, tl)
    counts = result["candidates"]
    print(
        f"  candidates: {counts['total']}, {counts['rejected_invariant']} rejected by the invariant; "
        f"best fitness {result['best']['fitness'] if result['best'] else None}"
    )
    if busy:
        print(f"  {busy}")
    parts, total = tl["parts"], tl["total"]
    one_off = sum(parts.get(k, 0.0) for k in ONE_OFF)
    return {
        "name": name,
        "share": parts["training steps"] / total,
        "steady": parts["training steps"] / (total - one_off),
        "wall": t1 - t0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="digits,mnist", help="comma-separated: digits, mnist")
    parser.add_argument("--evaluators", default="local,ray", help="comma-separated: local, ray")
    parser.add_argument("--data-dir", default="../shared/data/mnist", help="MNIST's IDX files")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny searches; one-off costs dominate: not the figure")
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="skip the second run of each search with its threads pinned (the wall-time baseline)",
    )
    args = parser.parse_args()
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    evaluators = [e.strip() for e in args.evaluators.split(",") if e.strip()]
    for value, allowed, flag in (
        (datasets, ("digits", "mnist"), "--datasets"),
        (evaluators, ("local", "ray"), "--evaluators"),
    ):
        bad = [v for v in value if v not in allowed]
        if bad or not value:
            raise SystemExit(f"error: {flag}: choose from {', '.join(allowed)}, got {bad or value}")
    from taylorglo.evaluators.local import cpu_count, threads_per_worker

    print(
        f"{args.workers} workers x {threads_per_worker(args.workers)} thread(s) on {cpu_count()} cores; "
        f"searches: {', '.join(f'{d}/{e}' for d in datasets for e in evaluators)}",
        flush=True,
    )
    from taylorglo.training.data import load_dataset

    results, ratios = [], []
    with tempfile.TemporaryDirectory(prefix="taylorglo-throughput-") as tmp:
        for dataset in datasets:
            # The host caches a loaded dataset in-process: load it before any search is timed, or
            # the first one run would pay for it and the pinned baseline after it would not.
            training = config(dataset, "local", args)["training"]
            load_dataset(training["dataset"], training.get("data_dir"), training.get("data_fraction", 1.0))
            for evaluator in evaluators:
                results.append(run_search(dataset, evaluator, args, Path(tmp)))
                if not args.no_baseline:
                    pinned = run_search(dataset, evaluator, args, Path(tmp), pinned=True)
                    ratios.append(
                        f"{dataset}/{evaluator} {results[-1]['wall'] / pinned['wall']:.3f} "
                        f"(share {pinned['share']:.3f})"
                    )
    print()
    print(
        "training share of wall x workers (steady state, one-off start-up left out): "
        + "; ".join(f"{r['name']} {r['share']:.3f} ({r['steady']:.3f})" for r in results)
        + f"  (target >= {TARGET} on MNIST)"
        + ("; wall with idle cores lent / wall with threads pinned, same run: " + "; ".join(ratios) if ratios else "")
    )


if __name__ == "__main__":
    main()
