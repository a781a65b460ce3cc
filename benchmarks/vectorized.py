"""Benchmark: a generation trained as vectorized populations vs one training at a time (issue 19).

For each case, every round trains the same λ candidates (losses drawn as CMA-ES's first
generation draws them, those the invariant accepts) twice on the local evaluator with the same
workers and cores, interleaved: ``vectorize = 1`` (today's pool: each worker trains one candidate
after another) and ``vectorize = λ`` (each worker trains its share as one stacked population).
Printed per case: the median wall time of each over the rounds, the ratio pool / vectorized, the
largest peak RSS of a worker process in each mode, and whether the fitnesses agreed.

    python benchmarks/vectorized.py                         # digits and the small MNIST CNN
    python benchmarks/vectorized.py --cases all --rounds 2  # also full-width mnist-cnn and resnet20
    python benchmarks/vectorized.py --cases all --only CIFAR  # one case
    python benchmarks/vectorized.py --device cuda --workers 1  # on a GPU

MNIST and CIFAR-10 are read from ``--data-dir`` (default ``../shared/data``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from taylorglo.evaluators.base import Job
from taylorglo.evaluators.local import FACTS, LocalEvaluator
from taylorglo.evaluators.recipes import FreshRun
from taylorglo.invariant import invariant_holds
from taylorglo.training.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Case:
    name: str
    population: int
    training: dict[str, Any]
    heavy: bool = False  # minutes on 2 cores: only with --cases all


CASES = [
    Case(
        "digits mlp",
        20,
        {"dataset": "digits", "model": "mlp", "steps": 2000, "partial_fraction": 0.1, "batch_size": 64},
    ),
    Case(
        "mnist-cnn width 0.25, 10% MNIST",
        12,
        {"dataset": "mnist", "model": "mnist-cnn", "model_options": {"width": 0.25}, "steps": 2000,
         "partial_fraction": 0.1, "batch_size": 100, "data_fraction": 0.1},
    ),
    Case(
        "mnist-cnn, 10% MNIST",
        12,
        {"dataset": "mnist", "model": "mnist-cnn", "steps": 1000, "partial_fraction": 0.1, "batch_size": 100,
         "data_fraction": 0.1},
        heavy=True,
    ),
    Case(
        "resnet20, CIFAR-10",
        8,
        {"dataset": "cifar10", "model": "resnet20", "steps": 500, "partial_fraction": 0.1, "batch_size": 128,
         "data_fraction": 0.1},
        heavy=True,
    ),
]  # fmt: skip


def _losses(population: int, seed: int = 0) -> list[tuple[float, ...]]:
    """``population`` losses the invariant accepts, drawn N(0, 1.2²) per parameter."""
    rng = np.random.RandomState(seed)
    out: list[tuple[float, ...]] = []
    while len(out) < population:
        params = tuple(float(v) for v in rng.normal(0.0, 1.2, 8))
        if invariant_holds(list(params), 10):
            out.append(params)
    return out


def _peak_rss_mib(evaluator: LocalEvaluator) -> float:
    """The largest peak resident set (VmHWM) of the evaluator's worker processes, in MiB."""
    peaks = []
    for worker in evaluator._pool:
        try:
            status = Path(f"/proc/{worker.process.pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks, default=float("nan"))


def _round(training: TrainConfig, jobs: list[Job], workers: int, vectorize: int) -> tuple[float, float, list[float]]:
    """(wall seconds of the generation, peak worker RSS, fitnesses) on a fresh pool; the pool's
    start-up (processes, imports, the data) is outside the timing."""
    with LocalEvaluator(training, workers=workers) as evaluator:
        evaluator.vectorize = vectorize
        evaluator.facts()  # every worker started and holding the data
        for worker in evaluator._pool:  # the rest of the pool loads its data before the clock starts
            if worker is not evaluator._pool[0]:
                worker.conn.send(FACTS)
                worker.conn.recv()
        started = time.perf_counter()
        results = sorted(evaluator.evaluate(jobs), key=lambda r: r.index)
        wall = time.perf_counter() - started
        return wall, _peak_rss_mib(evaluator), [r.fitness or 0.0 for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cases", choices=("light", "all"), default="light")
    parser.add_argument("--only", default=None, help="Only the cases whose name contains this text.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--json", dest="json_path", default=None, help="Also write the rows to this file.")
    args = parser.parse_args()
    os.environ.setdefault("TAYLORGLO_DATA", args.data_dir)
    rows = []
    for case in CASES:
        if (case.heavy and args.cases != "all") or (args.only and args.only not in case.name):
            continue
        training = TrainConfig(**case.training, device=args.device)
        losses = _losses(case.population)
        jobs = [Job(0, i, FreshRun(params), seed=12345) for i, params in enumerate(losses)]
        walls: dict[int, list[float]] = {1: [], case.population: []}
        peaks: dict[int, float] = {1: 0.0, case.population: 0.0}
        fitness: dict[int, list[float]] = {}
        for _ in range(args.rounds):
            for vectorize in (1, case.population):  # interleaved: the same load for both
                wall, peak, fit = _round(training, jobs, args.workers, vectorize)
                walls[vectorize].append(wall)
                peaks[vectorize] = max(peaks[vectorize], peak)
                fitness[vectorize] = fit
        pool, stacked = statistics.median(walls[1]), statistics.median(walls[case.population])
        diff = max(abs(a - b) for a, b in zip(fitness[1], fitness[case.population]))
        row = {
            "case": case.name,
            "population": case.population,
            "steps": training.schedule(1 << 30).run_steps,
            "pool_s": round(pool, 3),
            "vectorized_s": round(stacked, 3),
            "ratio": round(pool / stacked, 2),
            "pool_peak_rss_mib": round(peaks[1]),
            "vectorized_peak_rss_mib": round(peaks[case.population]),
            "max_fitness_difference": diff,
        }
        rows.append(row)
        print(
            f"{case.name}: lambda {case.population}, {row['steps']} steps, {args.workers} workers: pool {pool:.2f} s, "
            f"vectorized {stacked:.2f} s, ratio {pool / stacked:.2f}; peak worker RSS {row['pool_peak_rss_mib']} / "
            f"{row['vectorized_peak_rss_mib']} MiB; largest fitness difference {diff:.4g}",
            flush=True,
        )
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
