"""Benchmark: EPBT against plain PBT and cross-entropy on MNIST at equal total training steps.

All three train ``population`` networks for the same full schedule (``--steps`` each), so each
spends ``population × steps`` training steps, on 10% of MNIST's training split with a small CNN
(``mnist-cnn`` at width 0.25: 8/16 channels, fc256):

* **EPBT**: one EPBT experiment (the TaylorGLO loss, learning rate and weight decay evolve every
  ``--ready`` steps; truncation, novelty pulsation every 4 steps, distillation after copies);
* **PBT**: the same with cross-entropy and only the hyperparameters evolving (what ``final``'s
  ``pbt`` baseline runs);
* **cross-entropy**: ``population`` independent networks with the config's fixed hyperparameters;
  reported are the one with the best validation accuracy (what the same budget buys as a seed
  search) and the mean.

Reported per method: test accuracy of the network it ends with (EPBT/PBT: the best final member
by validation accuracy), the wall time, and both as differences/ratios against cross-entropy
measured in the same run. One seed per method: differences of a few tenths of a percent are
within seed noise at this size (``taylorglo final`` measures that with repeats and t-tests).

    python benchmarks/epbt_mnist.py --data-dir ../shared/data/mnist            # ~10 min on 2 cores
    python benchmarks/epbt_mnist.py --data-dir ../shared/data/mnist --quick    # ~2 min
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any


def config(args: argparse.Namespace, pbt: bool) -> dict[str, Any]:
    epbt: dict[str, Any] = {"population": args.population, "ready_steps": args.ready, "initial_loss": args.initial_loss}
    if pbt:
        epbt.update(evolve=["lr", "weight_decay"], initial_loss="cross-entropy")
    else:
        epbt.update(novelty_pulsation={"cycle": 4}, distillation={"steps": max(1, args.ready // 4)})
    return {
        "name": "pbt-mnist" if pbt else "epbt-mnist",
        "kind": "epbt",
        "seed": args.seed,
        "training": training(args),
        "epbt": epbt,
        "evaluator": {"kind": "local", "workers": args.workers},
    }


def training(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "dataset": "mnist",
        "data_dir": str(Path(args.data_dir).resolve()),
        "data_fraction": 0.1,
        "model": "mnist-cnn",
        "model_options": {"width": 0.25},
        "steps": args.steps,
        "batch_size": 100,
        "lr": 0.01,
        "momentum": 0.9,
    }


def run_population(root: Path, args: argparse.Namespace, pbt: bool) -> dict[str, Any]:
    from taylorglo.experiment import init_experiment, start

    path = root / ("pbt.json" if pbt else "epbt.json")
    path.write_text(json.dumps(config(args, pbt)))
    init_experiment(root / path.stem, path)
    started = time.perf_counter()
    result = start(root / path.stem)
    wall = time.perf_counter() - started
    best = result["best"]
    return {
        "test": best["test_accuracy"],
        "val": best["fitness"],
        "wall": wall,
        "detail": f"member {best['generation']}:{best['index']}, lr {best['lr']:.3g}, "
        f"wd {best['weight_decay']:.2g}, {result['exploits']} exploits, "
        f"{result['novelty_copies']} novelty copies",
    }


def run_cross_entropy(args: argparse.Namespace) -> dict[str, Any]:
    from taylorglo.evaluators import FreshRun, Job, LocalEvaluator
    from taylorglo.seeds import candidate_seed
    from taylorglo.training import TrainConfig

    train = TrainConfig.from_dict(training(args))
    jobs = [Job(0, k, FreshRun(None), candidate_seed(args.seed, 0, k, "candidate")) for k in range(args.population)]
    started = time.perf_counter()
    with LocalEvaluator(train, workers=args.workers) as evaluator:
        results = list(evaluator.evaluate(jobs))
    wall = time.perf_counter() - started
    best = max(results, key=lambda c: (c.val_accuracy or 0.0, -c.index))
    tests = [c.metrics["test_accuracy"] for c in results]
    return {
        "test": best.metrics["test_accuracy"],
        "val": best.val_accuracy,
        "wall": wall,
        "mean_test": sum(tests) / len(tests),
        "detail": f"best of {len(results)} by validation; mean test {sum(tests) / len(tests):.4f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default="../shared/data/mnist")
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2000, help="full schedule of every network")
    parser.add_argument("--ready", type=int, default=200, help="steps between evolution steps")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--initial-loss",
        default="cross-entropy",
        choices=["cross-entropy", "random"],
        help="EPBT's first losses: the TaylorGLO polynomial nearest cross-entropy, or random",
    )
    parser.add_argument("--quick", action="store_true", help="population 4, 600 steps, ready 100")
    args = parser.parse_args()
    if args.quick:
        args.population, args.steps, args.ready = 4, 600, 100
    print(
        f"MNIST, 10% of the training split, mnist-cnn width 0.25, population {args.population}, "
        f"{args.steps} steps per network ({args.population * args.steps} in all per method), ready every "
        f"{args.ready}, {args.workers} workers, seed {args.seed}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="taylorglo-epbt-bench-") as tmp:
        root = Path(tmp)
        results = {"cross-entropy": run_cross_entropy(args)}
        print(f"  cross-entropy done in {results['cross-entropy']['wall']:.0f} s", flush=True)
        results["PBT"] = run_population(root, args, pbt=True)
        print(f"  PBT done in {results['PBT']['wall']:.0f} s", flush=True)
        results["EPBT"] = run_population(root, args, pbt=False)
        print(f"  EPBT done in {results['EPBT']['wall']:.0f} s", flush=True)
    base = results["cross-entropy"]
    print()
    print(f"{'method':<14} {'test acc':>9} {'val acc':>8} {'vs CE':>8} {'wall s':>7} {'wall/CE':>8}  detail")
    for name, r in results.items():
        print(
            f"{name:<14} {r['test']:>9.4f} {r['val']:>8.4f} {r['test'] - base['test']:>+8.4f} "
            f"{r['wall']:>7.1f} {r['wall'] / base['wall']:>8.2f}  {r['detail']}"
        )


if __name__ == "__main__":
    main()
