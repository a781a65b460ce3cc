"""Benchmark: the evidence behind the ``"auto"`` lending rule (issue 23).

``[evaluator] lend_idle_cores = "auto"`` gives a generation's last trainings the idle cores where a
training step does at least ``MIN_STEP_MACS`` multiply-accumulates, a count taken from the
network's shapes (``taylorglo.training.cost``), so that the decision, and with it every result, is
the same however busy the machine is. This prints, for the built-in networks at the sizes the
examples train them, that count, the rule's decision, and the measured speed-up of a training step
on all cores over one thread (interleaved: 1 thread, then all, round after round, the median of the
rounds' ratios), with the decision a measurement would make (lend from ``MIN_SPEEDUP``). Run it
on a quiet machine: a speed-up is a timing and load changes it, which is why no result depends on
one.

    python benchmarks/lending.py                   # every row
    python benchmarks/lending.py --only mlp --rounds 3

Inputs are random tensors of each dataset's shape: a step's time depends on shapes, not on values.
"""

from __future__ import annotations

import argparse
import os
import statistics

import torch

from taylorglo.evaluators.lending import MIN_SPEEDUP, MIN_STEP_MACS
from taylorglo.training import build_model
from taylorglo.training.cost import step_macs
from taylorglo.training.step_timing import step_seconds

#: (label, model, options, input shape, batch size): the examples' networks and a few between.
ROWS = [
    ("digits mlp (examples/digits.toml)", "mlp", {}, (1, 8, 8), 64),
    ("digits mlp, hidden 512", "mlp", {"hidden": 512}, (1, 8, 8), 64),
    ("digits mlp, hidden 1024", "mlp", {"hidden": 1024}, (1, 8, 8), 64),
    ("MNIST mlp", "mlp", {}, (1, 28, 28), 100),
    ("digits mnist-cnn", "mnist-cnn", {}, (1, 8, 8), 64),
    ("MNIST mnist-cnn width 0.25 (10%-MNIST protocol)", "mnist-cnn", {"width": 0.25}, (1, 28, 28), 100),
    ("MNIST mnist-cnn (examples/mnist.toml)", "mnist-cnn", {}, (1, 28, 28), 100),
    ("CIFAR-10 alexnet", "alexnet", {}, (3, 32, 32), 128),
    ("CIFAR-10 resnet20 (examples/cifar10-resnet20.toml)", "resnet20", {}, (3, 32, 32), 128),
    ("CIFAR-10 allcnnc (examples/cifar10-allcnnc.toml)", "allcnnc", {}, (3, 32, 32), 128),
]


def speedup(
    model: torch.nn.Module, shape: tuple[int, ...], batch: int, cores: int, rounds: int, seconds: float
) -> float:
    """Median over ``rounds`` of (seconds per step on 1 thread) / (on ``cores`` threads)."""
    torch.manual_seed(0)
    xb, yb = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))
    ratios = []
    for _ in range(rounds):
        one = step_seconds(model, xb, yb, 1, seconds)
        lent = step_seconds(model, xb, yb, cores, seconds)
        ratios.append(one / lent)
    return statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.3, help="per measurement (at least 5 steps)")
    parser.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--only", default=None, help="rows whose model name is this")
    args = parser.parse_args()
    print(f"{args.cores} cores, torch {torch.__version__}")
    print(
        f"rule: lend from {MIN_STEP_MACS:.3g} multiply-accumulates per step; a measurement would lend from "
        f"{MIN_SPEEDUP}x\n"
    )
    print(f"| network | batch | MACs per step | rule | speed-up on {args.cores} threads | a measurement |")
    print("|---|---:|---:|---|---:|---|")
    disagree = 0
    for label, name, options, shape, batch in ROWS:
        if args.only and name != args.only:
            continue
        torch.manual_seed(0)
        model = build_model(name, shape, 10, **options)
        macs = step_macs(model, shape, batch)
        measured = speedup(model, shape, batch, args.cores, args.rounds, args.seconds)
        rule, timed = macs >= MIN_STEP_MACS, measured >= MIN_SPEEDUP
        disagree += rule != timed
        print(
            f"| {label} | {batch} | {macs:.3g} | {'lend' if rule else 'keep'} | {measured:.2f}x | "
            f"{'lend' if timed else 'keep'} |",
            flush=True,
        )
    print(f"\nrows where the rule and a measurement disagree: {disagree}")


if __name__ == "__main__":
    main()
