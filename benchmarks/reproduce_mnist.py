"""Reproduce TaylorGLO's central claim on a reduced protocol: a searched loss against cross-entropy.

The claim (Gonzalez & Miikkulainen, GECCO 2021): a TaylorGLO loss found by CMA-ES trains networks
to a higher test accuracy than cross-entropy, most clearly when training data are scarce. The
paper's MNIST protocol (the full CNN, 20,000 steps, λ = 28, ~50 generations) is thousands of
CPU-hours; this script keeps its *structure* and shrinks its sizes so that one run fits in about
half an hour on 2 CPU cores:

* data: 10% of the training split (5,500 images; the 5,000 validation and 10,000 test images
  are whole), MNIST or Fashion-MNIST read from their original IDX files in ``--data-dir``;
* model: the paper's MNIST CNN at ``--width`` 0.25 (8/16 conv channels, fc 256), SGD with momentum
  0.9 at a constant lr 0.01, batch 100;
* search: CMA-ES, λ = ``--population`` 12, σ₀ = 1.2, ``--generations`` 12, the reference
  invariant; a candidate's fitness is its validation accuracy after ``--partial`` 0.2 of the
  ``--steps`` 6,000-step schedule (1,200 steps, ~22 epochs of the 10% split);
* final: the best loss of the search and cross-entropy, each trained ``--repeats`` 10 times on the
  full schedule with paired seeds; test accuracy mean ± std, Welch's t-test.

It is an ordinary experiment directory (``--out``, default ``runs/reproduce-<dataset>``), so the
run is crash-safe: run the same command again after a crash or Ctrl-C and it continues where it
stopped; ``taylorglo status|analyze|compare|robustness`` work on it as on any other. The HTML
report is written to ``OUT/report/index.html`` and the figures below to ``OUT/reproduce.json``.

    python benchmarks/reproduce_mnist.py --data-dir ../shared/data/mnist                 # ~30 min
    python benchmarks/reproduce_mnist.py --dataset fashion-mnist --data-dir ../shared/data/fashion-mnist
    python benchmarks/reproduce_mnist.py --quick                                          # ~2 min smoke run

The last line printed holds the figures: both test accuracies, their difference (the searched loss
against the cross-entropy baseline trained in the same run), the Welch p-value, the invariant's
rejections and the wall time: the search's from the store (the sum of its generations' spans, so a
resumed run counts only the time it computed), final's as its runs' training time / workers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

DATASETS = ("mnist", "fashion-mnist")


def experiment_config(args: argparse.Namespace) -> dict[str, Any]:
    """The experiment, as the dict a TOML file would hold."""
    return {
        "name": f"reproduce-{args.dataset}",
        "kind": "taylorglo",
        "seed": args.seed,
        "training": {
            "dataset": args.dataset,
            "data_dir": str(Path(args.data_dir).resolve()),
            "data_fraction": 0.1,
            "model": "mnist-cnn",
            "model_options": {"width": args.width},
            "steps": args.steps,
            "batch_size": 100,
            "lr": args.lr,
            "momentum": 0.9,
        },
        "search": {
            "order": 3,
            "population": args.population,
            "sigma": 1.2,
            "generations": args.generations,
            "partial_fraction": args.partial,
            "invariant": args.invariant,
        },
        "evaluator": {"kind": "local", "workers": args.workers},
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist", choices=DATASETS)
    parser.add_argument("--data-dir", help="the four IDX files (default ../shared/data/<dataset>)")
    parser.add_argument("--out", help="experiment directory (default runs/reproduce-<dataset>); resumed if it exists")
    parser.add_argument("--steps", type=int, default=6000, help="full schedule, steps of batch 100")
    parser.add_argument("--partial", type=float, default=0.2, help="share of the schedule a candidate trains")
    parser.add_argument("--population", type=int, default=12, help="CMA-ES λ")
    parser.add_argument("--generations", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=10, help="final runs per loss")
    parser.add_argument("--width", type=float, default=0.25, help="mnist-cnn channel multiplier")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--invariant", default="reference", choices=["reference", "gradient", "off"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="run again final runs recorded as failed (a worker that died), as `taylorglo final` does",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 600 steps, λ 6, 2 generations, 2 repeats (~2 min); not evidence",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.population, args.generations, args.repeats = 600, 6, 2, 2
    args.data_dir = args.data_dir or f"../shared/data/{args.dataset}"
    suffix = "-quick" if args.quick else ""
    args.out = Path(args.out or f"runs/reproduce-{args.dataset}{suffix}")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Search, final and report in ``args.out``; the figures as a dict."""
    from taylorglo import compare, init_experiment, run_final, start, write_report
    from taylorglo.experiment.progress import PlainReporter

    args.out.parent.mkdir(parents=True, exist_ok=True)
    config_path = args.out.parent / f"{args.out.name}.json"
    config_path.write_text(json.dumps(experiment_config(args), indent=2), encoding="utf-8")
    init_experiment(args.out, config_path, exist_ok=True)
    reporter = PlainReporter()
    began = time.perf_counter()
    result = start(args.out, workers=args.workers, reporter=reporter)
    searched = time.perf_counter()
    run_final(args.out, repeats=args.repeats, workers=args.workers, reporter=reporter, retry_failed=args.retry_failed)
    finished = time.perf_counter()
    report = write_report(args.out)
    from taylorglo.experiment import open_experiment

    with open_experiment(args.out).reader() as store:  # compute time, also over earlier (resumed) invocations
        search_time = sum(g.closed_at - g.opened_at for g in store.generations() if g.closed_at is not None)
        runs = [r for r in store.final_runs() if r.wall_time is not None]
        final_time = sum(r.wall_time for r in runs) / max(1, args.workers)
    table = compare(args.out)
    by_label = {s["label"]: s for s in table["losses"]}
    ce = by_label["cross-entropy"]
    best = next(s for s in table["losses"] if s["source"] == "best of the search")
    test = next(t for t in table["comparisons"] if t["a"] == best["label"] and t["b"] == "cross-entropy")
    counts = result["candidates"]
    figures = {
        "dataset": args.dataset,
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "config": experiment_config(args),
        "best_loss": {
            "label": best["label"],
            "params": best["params"],
            "formula": best["formula"],
            "search_fitness": result["best"]["fitness"],
        },
        "best": best["test_accuracy"],
        "cross_entropy": ce["test_accuracy"],
        "difference": test["difference"],
        "welch_p": test["welch_p"],
        "student_p": test["student_p"],
        "cohens_d": test["cohens_d"],
        "candidates": counts,
        "wall_search": search_time,
        "wall_final": final_time,
        "wall": search_time + final_time,
        "wall_this_invocation": {"search": searched - began, "final": finished - searched},
        "report": str(report),
    }
    (args.out / "reproduce.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return figures


def summary_line(f: dict[str, Any]) -> str:
    """The figures in one line (printed last)."""
    b, ce, c = f["best"], f["cross_entropy"], f["candidates"]

    def number(value: float | None, form: str) -> str:
        return "n/a" if value is None else format(value, form)

    return (
        f"{f['dataset']} 10%: best loss {number(b['mean'], '.4f')} ± {number(b['std'], '.4f')} (n={b['n']}) "
        f"vs cross-entropy {number(ce['mean'], '.4f')} ± {number(ce['std'], '.4f')} (n={ce['n']}): "
        f"difference {number(f['difference'], '+.4f')}, Welch p {number(f['welch_p'], '.3g')}; "
        f"invariant rejected {c['rejected_invariant']} of {c['total']} candidates; "
        f"wall {f['wall']:.0f} s (search {f['wall_search']:.0f} s, final ~{f['wall_final']:.0f} s)"
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from taylorglo import TaylorGLOError

    c = experiment_config(args)
    print(
        f"{args.dataset}, 10% of the training split, mnist-cnn width {args.width}, {args.steps} steps "
        f"(candidates: {args.partial:g} of them), λ {args.population} x {args.generations} generations, "
        f"final {args.repeats} repeats, {args.workers} workers; experiment in {args.out}",
        flush=True,
    )
    try:
        figures = run(args)
    except TaylorGLOError as exc:
        raise SystemExit(f"error: {exc}") from None
    print()
    print(f"best loss ({figures['best_loss']['label']}): {figures['best_loss']['formula']}")
    print(
        f"  params {[round(p, 4) for p in figures['best_loss']['params']]}; search fitness "
        f"{figures['best_loss']['search_fitness']:.4f} (validation, {c['search']['partial_fraction']:g} schedule)"
    )
    print(f"report: {figures['report']}")
    print(summary_line(figures))


if __name__ == "__main__":
    main()
