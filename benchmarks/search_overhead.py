"""Benchmark: how much of a local search's wall time is spent training (the host's overhead).

A TaylorGLO search is worth running in parallel only if the workers spend their time inside
training steps. This runs one real search with :func:`taylorglo.experiment.start` (CMA-ES, the
``reference`` invariant, a ``spawn`` ed :class:`~taylorglo.evaluators.local.LocalEvaluator` pool,
the SQLite store) on the bundled digits data, then splits ``wall time × workers`` — the CPU slots
the search held — into:

* **training steps**: the candidates' ``step_time`` (the figure; project target >= 0.9);
* **host set-up**: ``start()`` before the pool exists (lock, dataset load and model check);
* **worker start-up**: pool created → a worker's first candidate begins (spawn, importing torch
  and taylorglo, loading the dataset);
* **overhead inside train()**: ``wall_time − step_time`` of each candidate (model build, the
  validation pass), with each worker's *first* candidate shown apart, since one-off warm-up costs
  of a fresh process land there;
* **host between candidates** of one generation (result IPC, the SQLite write, dispatch);
* **generation barrier**: a worker done with its share of a generation idles until the slowest
  candidate of that generation ends (``tell`` needs them all);
* **host between generations**: ``tell``, ``close_generation``, the CSV/JSON export, ``ask``,
  the invariant, ``open_generation``, and dispatching the new jobs;
* **host tail**: the last result → ``start()`` returns (export, ``status``, pool shutdown).

The timeline comes from the store itself: a candidate ran from ``finished_at − wall_time`` to
``finished_at`` on ``worker``; generation 0's ``opened_at`` is the moment before the pool starts.
(``finished_at`` is stamped when the host records the result, so the result's trip back through
the pool counts as host time before that candidate, never as training. The pool hands a worker its
next job before the host has recorded the last one, so "host between candidates" can come out a
few ms below zero.)

It also reports how many trainings the invariant saved, and a **baseline measured in the same
run**: the very same candidates (parameters and seeds, hence the very same steps) trained one
after another in this process with :func:`taylorglo.train`, no host and no pool, with the threads a
worker gets. ``sequential time ÷ workers`` is the best a perfect host could do;
``parallel efficiency = (sequential ÷ workers) ÷ search wall`` is how close this one gets. The step
speed of the two is compared too, which separates "workers slow each other down" (shared cores,
caches, memory bandwidth) from host overhead.

Sizes. The example config (``examples/digits.toml``) trains 200 steps per candidate, about 0.1 s,
which is a toy: there, any fixed cost of a few hundred ms dominates. A real search trains each
candidate for minutes (MNIST, CIFAR-10), so per-candidate fixed costs are small next to training,
while what does not shrink is the idle time at each generation's barrier. This benchmark keeps
digits' MLP but gives each candidate 4,000 steps (the partial 10% of a 40,000-step schedule,
about 2.3 s on one core of a 2-core EPYC VM) and uses the SPEC's population of 20: a generation
is then 10-17 trainings (the invariant rejects a third to a half) in 5-9 rounds on 2 workers, as
in a real search. Three generations keep the whole run, baseline included, at about 2.5 minutes.
What a 40 s search cannot show is a search of hours, where the once-per-``start()`` costs (worker
start-up, first-candidate warm-up) vanish; the *steady-state share*, printed after the figure,
leaves exactly those out. ``--quick`` (population 8, 3 generations, 1,000 steps) is a ~30 s smoke
test whose share is dominated by those fixed costs; do not read it as the figure.

Run it on an idle machine: the load of other processes during each phase is measured from
``/proc/stat`` and printed, with a warning when it exceeds 5% of the cores.

    python benchmarks/search_overhead.py                 # the figure, ~2.5 min on 2 cores
    python benchmarks/search_overhead.py --quick         # ~30 s
    python benchmarks/search_overhead.py --population 8  # the example's population

The figure is the line ``share of wall × workers inside training steps = …`` (target >= 0.9).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

CONFIG = """\
name = "search-overhead"
kind = "taylorglo"
seed = {seed}

[training]
dataset = "digits"
model = "mlp"
steps = {full_steps}          # the full schedule; candidates train search.partial_fraction of it
batch_size = 64
lr = 0.01

[search]
order = 3
population = {population}
sigma = 1.2
generations = {generations}
partial_fraction = 0.1
invariant = "reference"
seeds = "generation"

[evaluator]
kind = "local"
workers = {workers}
"""


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
        text = (f"{what}: other processes used {other:.1f} core-s, hypervisor steal {stolen:.1f} core-s "
                f"= {share:.1%} of {wall:.0f} s x {cores} cores")
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


def _startup_probe(queue: Any, t_parent: float) -> None:
    """In a fresh ``spawn`` ed process: time what a worker does before its first step."""
    marks = {"bootstrap": time.time() - t_parent}  # spawn: new interpreter, unpickling, __main__ import
    t = time.perf_counter()
    import torch

    marks["import torch"] = time.perf_counter() - t
    t = time.perf_counter()
    from taylorglo.evaluators import local  # noqa: F401  (what the pool's initializer imports)
    from taylorglo.training import TrainConfig, load_dataset, train

    marks["import taylorglo"] = time.perf_counter() - t
    torch.set_num_threads(1)
    t = time.perf_counter()
    data = load_dataset("digits")
    marks["load digits"] = time.perf_counter() - t
    config = TrainConfig(dataset="digits", model="mlp", steps=20, batch_size=64, eval_test=False)
    t = time.perf_counter()
    first = train(config, "cross-entropy", data=data)
    marks["first train() warm-up"] = time.perf_counter() - t - first.step_time
    t = time.perf_counter()
    second = train(config, "cross-entropy", data=data)
    marks["second train() overhead"] = time.perf_counter() - t - second.step_time
    queue.put(marks)


def startup_components() -> dict[str, float]:
    """Seconds of each start-up stage of one fresh spawned process (run alone, no contention)."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_startup_probe, args=(queue, time.time()))
    process.start()
    marks = queue.get(timeout=120)
    process.join()
    return marks


def timeline(store: Any, t0: float, t1: float, workers: int) -> dict[str, Any]:
    """Split ``(t1 − t0) × workers`` slot-seconds into the categories of the module docstring."""
    gens = {g.generation: g for g in store.generations()}
    rows = store.candidates()
    trained = [c for c in rows if c.wall_time is not None and c.finished_at is not None and c.worker]
    opened0 = gens[0].opened_at
    gen_end = {}
    for c in trained:
        gen_end[c.generation] = max(gen_end.get(c.generation, 0.0), c.finished_at)
    last_result = max(c.finished_at for c in trained)
    by_worker: dict[str, list[Any]] = defaultdict(list)
    for c in trained:
        by_worker[c.worker].append(c)

    out = defaultdict(float)
    out["host set-up"] = (opened0 - t0) * workers
    out["host tail"] = (t1 - last_result) * workers
    out["worker never used"] = (last_result - opened0) * max(0, workers - len(by_worker))
    for runs in by_worker.values():
        runs.sort(key=lambda c: c.finished_at)
        first = runs[0]
        out["worker start-up"] += (first.finished_at - first.wall_time) - opened0
        out["steps"] += sum(c.step_time or 0.0 for c in runs)
        out["train() overhead, first candidate per worker"] += first.wall_time - (first.step_time or 0.0)
        out["train() overhead, other candidates"] += sum(c.wall_time - (c.step_time or 0.0) for c in runs[1:])
        for prev, nxt in zip(runs, runs[1:]):
            gap = (nxt.finished_at - nxt.wall_time) - prev.finished_at
            if nxt.generation == prev.generation:
                out["host between candidates"] += gap
            else:
                barrier = gen_end[prev.generation] - prev.finished_at
                out["generation barrier"] += barrier
                out["host between generations"] += gap - barrier
        out["generation barrier"] += last_result - runs[-1].finished_at  # the final generation's
    total = (t1 - t0) * workers
    out["unaccounted"] = total - sum(out.values())
    # How the barrier arises: generations whose number of trainings is not a multiple of workers.
    per_gen = defaultdict(int)
    for c in trained:
        per_gen[c.generation] += 1
    uneven = sum(1 for n in per_gen.values() if n % workers)
    return {"parts": dict(out), "total": total, "uneven": uneven, "per_gen": dict(per_gen)}


def sequential_baseline(experiment: Any, candidates: list[Any], threads: int) -> dict[str, float]:
    """Train the same candidates (params, seeds) one by one in this process, as a worker would."""
    import torch

    from taylorglo.training import load_dataset, train

    torch.set_num_threads(threads)
    training = experiment.config.candidate_training()
    data = load_dataset(training.dataset, training.data_dir, training.data_fraction)
    t = time.perf_counter()
    train(training.replace(steps=20, partial_fraction=1.0), "cross-entropy", data=data)  # warm-up, excluded
    warmup = time.perf_counter() - t
    wall = steps = 0.0
    for c in candidates:
        t = time.perf_counter()
        result = train(training, list(c.params), seed=c.seed, data=data)
        wall += time.perf_counter() - t
        steps += result.step_time
    return {"wall": wall, "step_time": steps, "warmup": warmup, "runs": len(candidates)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--population", type=int, default=None, help="default 20 (8 with --quick)")
    parser.add_argument("--generations", type=int, default=None, help="default 3")
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps per candidate (the partial 10%%); default 4000 (1000 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a ~30 s smoke run (fixed costs dominate)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the sequential baseline")
    parser.add_argument("--keep", metavar="DIR", help="run the experiment in DIR (must not exist) and keep it")
    args = parser.parse_args()
    population = args.population or (8 if args.quick else 20)
    generations = args.generations or 3
    steps = args.steps or (1000 if args.quick else 4000)

    from taylorglo.evaluators.local import cpu_count, threads_per_worker
    from taylorglo.experiment import init_experiment, open_experiment, start, status

    tmp = None
    if args.keep:
        root = Path(args.keep)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="taylorglo-search-overhead-")
        root = Path(tmp.name) / "experiment"
    config_path = (Path(tmp.name) if tmp else root.parent) / "search-overhead.toml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(CONFIG.format(seed=args.seed, full_steps=steps * 10, population=population,
                                         generations=generations, workers=args.workers), encoding="utf-8")
    init_experiment(root, config_path)
    threads = threads_per_worker(args.workers)
    print(f"digits / mlp, {steps} steps per candidate (batch 64), population {population}, "
          f"{generations} generations, {args.workers} workers x {threads} thread(s) on {cpu_count()} cores")

    meter = CpuMeter()
    t0 = time.time()
    start(root, workers=args.workers)
    t1 = time.time()
    busy_search = meter.report("machine during the search")
    wall = t1 - t0
    st = status(root)
    experiment = open_experiment(root)
    with experiment.store() as store:
        tl = timeline(store, t0, t1, args.workers)
        rows = store.candidates()
    trained = [c for c in rows if c.status != "rejected-invariant"]
    counts = st["candidates"]
    total = tl["total"]
    parts = tl["parts"]
    print(f"search: {wall:.1f} s wall, {counts['total']} candidates: {counts['evaluated']} evaluated, "
          f"{counts['rejected_invariant']} rejected by the invariant, {counts['failed']} failed, "
          f"{counts['aborted']} aborted; best fitness {st['best']['fitness'] if st['best'] else None}")
    if busy_search:
        print(busy_search)
    print(f"trainings per generation: {[tl['per_gen'].get(g, 0) for g in range(generations)]} "
          f"({tl['uneven']} of {generations} not a multiple of {args.workers} workers)")

    print(f"\nwhere wall x workers = {wall:.1f} s x {args.workers} = {total:.1f} slot-seconds went:")
    order = ["steps", "host set-up", "worker start-up", "train() overhead, first candidate per worker",
             "train() overhead, other candidates", "host between candidates", "generation barrier",
             "host between generations", "host tail", "worker never used", "unaccounted"]
    for key in order:
        value = parts.get(key, 0.0)
        if key in ("worker never used", "unaccounted") and abs(value) < 0.005 * total:
            continue
        print(f"  {key:<46} {value:8.2f} s  {value / total:6.1%}")
    n_other = max(1, len(trained) - len(set(c.worker for c in trained if c.worker)))
    per_cand = parts.get("train() overhead, other candidates", 0.0) / n_other
    print(f"  (per candidate: train() overhead {per_cand * 1000:.0f} ms after warm-up, host between "
          f"candidates {parts.get('host between candidates', 0.0) / n_other * 1000:.0f} ms)")

    # The barrier depends on luck: a generation whose trainings are not a multiple of the workers
    # leaves workers idle for up to a whole candidate. Expected loss if the residue is uniform:
    # (W - 1) / 2 idle candidate-slots per generation of n trainings.
    n_mean = len(trained) / generations
    w = args.workers
    expected = (w - 1) / 2 / (n_mean + (w - 1) / 2)
    print(f"  (generation barrier to expect over a long search with ~{n_mean:.0f} trainings per generation on "
          f"{w} workers: ~{expected:.1%} of slots; this run: {parts.get('generation barrier', 0.0) / total:.1%})")

    evaluated = [c for c in rows if c.status == "evaluated" and c.wall_time]
    mean_train = statistics.mean(c.wall_time for c in evaluated) if evaluated else 0.0
    rejected = counts["rejected_invariant"]
    saved = rejected * mean_train
    print(f"\ninvariant: rejected {rejected} of {counts['total']} candidates ({rejected / max(1, counts['total']):.1%}); "
          f"saved {rejected} trainings x {mean_train:.2f} s = {saved:.1f} s of training, "
          f"{saved / args.workers:.1f} s of wall on {args.workers} workers "
          f"({saved / args.workers / wall:.0%} of this search's wall; without it the search would take "
          f"~{(wall + saved / args.workers) / wall:.2f}x as long)")

    probe = startup_components()
    print("\nstart-up of one fresh spawned worker, measured alone: "
          + ", ".join(f"{k} {v:.2f} s" for k, v in probe.items()))

    if not args.no_baseline:
        print(f"\nbaseline: re-training the same {len(trained)} candidates sequentially in-process ...", flush=True)
        meter = CpuMeter()
        base = sequential_baseline(experiment, trained, threads)
        busy_base = meter.report("machine during the baseline")
        if busy_base:
            print(busy_base)
        ideal = base["wall"] / args.workers
        search_steps = sum(c.step_time or 0.0 for c in trained)
        print(f"baseline: {base['wall']:.1f} s for {base['runs']} trainings (+{base['warmup']:.2f} s one-off "
              f"warm-up, excluded); / {args.workers} workers = {ideal:.1f} s ideal wall")
        print(f"step speed: the same steps took {search_steps:.1f} s in the search ({args.workers} workers at once) "
              f"vs {base['step_time']:.1f} s alone = {search_steps / max(1e-9, base['step_time']):.3f}x "
              f"(> 1: workers slow each other down)")
        print(f"parallel efficiency = (sequential / workers) / search wall = {ideal:.1f} / {wall:.1f} = "
              f"{ideal / wall:.3f}")

    share = parts["steps"] / total
    one_off = sum(parts.get(k, 0.0) for k in ("host set-up", "worker start-up",
                                              "train() overhead, first candidate per worker", "host tail"))
    print(f"\nshare of wall x workers inside training steps = {parts['steps']:.1f} / {total:.1f} = "
          f"{share:.3f} (target >= 0.9)")
    print(f"steady-state share (the {one_off:.1f} slot-s paid once per start() left out; what a search of "
          f"hours converges to) = {parts['steps']:.1f} / {total - one_off:.1f} = "
          f"{parts['steps'] / (total - one_off):.3f}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
