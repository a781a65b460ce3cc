"""The commands that turn an experiment into evidence: final, compare, ttest, collate, analyze,
robustness, log. Listed in the command table of :mod:`taylorglo.cli`; thin like it:
parse, call the library, print."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from .cli_options import evaluator_options, evaluator_overrides, interruptible, parse_floats, with_progress
from .errors import TaylorGLOError


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table (readable in a log file, unlike box drawing)."""
    cells = [[str(h) for h in headers]] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _mean_std(d: dict[str, Any]) -> str:
    if d["mean"] is None:
        return "-"
    return f"{d['mean']:.4f}" + ("" if d["std"] is None else f" ± {d['std']:.4f}")


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _t(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


@click.command()
@click.argument("directory", metavar="DIR")
@click.option(
    "--repeats",
    type=int,
    default=None,
    help="Full-schedule runs per loss (default 10; a one-shot experiment's: its config's repeats).",
)
@click.option("--generation-best", is_flag=True, help="Evaluate the best candidate of every generation.")
@click.option("--params", default=None, help="Evaluate this loss (P0,...,P7, code layout) instead.")
@click.option("--workers", type=int, default=None, help="Parallel trainings (default as for `start`).")
@click.option(
    "--from-pretrained",
    is_flag=True,
    help="Continue each candidate's partial-schedule run to the full schedule instead of starting afresh.",
)
@click.option("--no-save-models", is_flag=True, help="Do not keep the trained networks (robustness needs them).")
@click.option("--no-pbt", is_flag=True, help="EPBT experiments: skip the plain-PBT baseline (population x the cost).")
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Run again the repeats recorded as failed (a worker that died); finished ones are kept.",
)
@evaluator_options
@click.option("--plain", is_flag=True, help="Plain log lines even on a terminal.")
def final(
    directory: str,
    repeats: int | None,
    generation_best: bool,
    params: str | None,
    workers: int | None,
    from_pretrained: bool,
    no_save_models: bool,
    no_pbt: bool,
    retry_failed: bool,
    evaluator_kind: str | None,
    address: str | None,
    plain: bool,
) -> None:
    """Train the best loss AND cross-entropy on the full schedule, REPEATS times each (same seeds),
    on the test set; resumable. For EPBT: the best member's schedule replayed, cross-entropy and
    plain PBT. Then: taylorglo compare DIR."""
    from .experiment.final import run_final
    from .experiment.progress import PlainReporter, Reporter

    if workers is not None and workers < 1:
        raise TaylorGLOError(f"--workers: must be a positive integer, got {workers}")
    values = None if params is None else parse_floats(params, "--params")
    live = sys.stderr.isatty() and not plain

    def run(progress: Any) -> Any:
        reporter = Reporter() if live else PlainReporter()
        return run_final(
            directory,
            repeats=repeats,
            generation_best=generation_best,
            params=values,
            workers=workers,
            save_models=not no_save_models,
            from_pretrained=from_pretrained,
            progress=progress,
            reporter=reporter,
            evaluator=evaluator_overrides(evaluator_kind, address),
            pbt=not no_pbt,
            retry_failed=retry_failed,
        )

    resume = f"taylorglo final {directory}" + (f" --repeats {repeats}" if repeats else "")
    if live:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

        with Progress(
            "final runs", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(), transient=True
        ) as bar:
            task = bar.add_task("final", total=None)
            interruptible(
                lambda: run(lambda run_, loss, done, total: bar.update(task, completed=done, total=total)),
                resume,
            )
    else:
        interruptible(lambda: run(None), resume)
    _print_compare(directory)


def _print_compare(directory: str) -> dict[str, Any]:
    from .analysis.stats import compare as run_compare

    result = run_compare(directory)
    rows = [
        (s["label"], s["source"], s["test_accuracy"]["n"], _mean_std(s["test_accuracy"]), s["failed"], s["pending"])
        for s in result["losses"]
    ]
    click.echo(f"{result['name']}: test accuracy after the full schedule")
    click.echo(_table(["loss", "source", "n", "test accuracy (mean ± std)", "failed", "pending"], rows))
    for c in result["comparisons"]:
        click.echo(
            f"{c['a']} vs {c['b']}: difference {_t(c['difference'])}; Student t {_t(c['student_t'])} "
            f"p {_p(c['student_p'])}; Welch t {_t(c['welch_t'])} p {_p(c['welch_p'])}; "
            f"Cohen's d {_t(c['cohens_d'])}" + (f" ({c['note']})" if c.get("note") else "")
        )
    failed = sum(s["failed"] for s in result["losses"])
    if failed:
        click.echo(
            f"{failed} runs failed (reasons: taylorglo final's log, DIR/host.log); if a machine failed rather "
            f"than the loss, `taylorglo final {directory} --retry-failed` runs them again"
        )
    return result


@click.command()
@click.argument("directory", metavar="DIR")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (machine-readable).")
def compare(directory: str, as_json: bool) -> None:
    """Final runs of DIR: mean ± std per loss; Student and Welch two-tailed t-tests against cross-entropy."""
    from .analysis.stats import compare as run_compare

    if as_json:
        click.echo(json.dumps(run_compare(directory)))
        return
    _print_compare(directory)


@click.command()
@click.argument("dir_a", metavar="DIR_A")
@click.argument("dir_b", metavar="DIR_B")
@click.option("--label-a", default=None, help="Final loss of DIR_A (default: its best-of-search loss).")
@click.option("--label-b", default=None, help="Final loss of DIR_B (default: its best-of-search loss).")
@click.option("--json", "as_json", is_flag=True)
def ttest(dir_a: str, dir_b: str, label_a: str | None, label_b: str | None, as_json: bool) -> None:
    """Student and Welch t-tests between the final runs of two experiments."""
    from .analysis.stats import ttest_experiments

    result = ttest_experiments(dir_a, dir_b, label_a, label_b)
    if as_json:
        click.echo(json.dumps(result))
        return
    rows = [
        (side["directory"], side["label"], side["test_accuracy"]["n"], _mean_std(side["test_accuracy"]))
        for side in (result["a"], result["b"])
    ]
    click.echo(_table(["experiment", "loss", "n", "test accuracy (mean ± std)"], rows))
    click.echo(
        f"difference {_t(result['difference'])}; Student t {_t(result['student_t'])} p {_p(result['student_p'])}; "
        f"Welch t {_t(result['welch_t'])} p {_p(result['welch_p'])}; Cohen's d {_t(result['cohens_d'])}"
        + (f" ({result['note']})" if result.get("note") else "")
    )


@click.command()
@click.argument("root", metavar="RUNS_DIR")
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "csv_path", default=None, help="Also write the table to this CSV file.")
def collate(root: str, as_json: bool, csv_path: str | None) -> None:
    """One table over every experiment under RUNS_DIR (search state, best loss, final results)."""
    from .analysis.stats import collate as run_collate

    rows = run_collate(root)
    if csv_path:
        import csv

        with open(csv_path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    if as_json:
        click.echo(json.dumps(rows))
        return

    def final(mean: float | None, std: float | None, n: int) -> str:
        return "-" if mean is None else _mean_std({"mean": mean, "std": std}) + f" (n={n})"

    click.echo(
        _table(
            [
                "experiment",
                "dataset",
                "model",
                "state",
                "gens",
                "trained",
                "rejected",
                "failed",
                "best fitness",
                "final loss",
                "final test acc",
                "cross-entropy",
                "Welch p",
            ],
            [
                (
                    r["name"],
                    r["dataset"],
                    r["model"],
                    r["state"],
                    r["generations"],
                    r["evaluated"],
                    r["rejected_invariant"],
                    r["failed"],
                    None if r["best_fitness"] is None else f"{r['best_fitness']:.4f}",
                    r["final_label"],
                    final(r["final_mean"], r["final_std"], r["final_n"]),
                    final(r["ce_mean"], r["ce_std"], r["ce_n"]),
                    _p(r["welch_p"]),
                )
                for r in rows
            ],
        )
    )


@click.command(name="log")
@click.argument("directory", metavar="DIR")
@click.argument("generation", type=int)
@click.argument("index", type=int)
@click.option("--json", "as_json", is_flag=True)
def log_command(directory: str, generation: int, index: int, as_json: bool) -> None:
    """Print the training log of candidate INDEX of GENERATION."""
    from .experiment import open_experiment
    from .polynomial import check_inputs, format_formula

    experiment = open_experiment(directory)
    with experiment.reader() as store:
        rows = [c for c in store.candidates(generation) if c.index == index]
    if not rows:
        raise TaylorGLOError(
            f"GENERATION INDEX: {directory} has no candidate {generation}:{index}; "
            "see `taylorglo status` for the generations so far"
        )
    c = rows[0]
    if as_json:
        click.echo(json.dumps(c.to_dict()))
        return
    click.echo(f"candidate {c.generation}:{c.index}  status {c.status}" + (f" ({c.reason})" if c.reason else ""))
    click.echo(f"  loss    {format_formula(c.params, 'code', check_inputs(experiment.config.training.loss_inputs))}")
    click.echo(f"  params  {', '.join(repr(p) for p in c.params)}")
    click.echo(
        f"  seed {c.seed}  attempts {c.attempts or '-'}  worker {c.worker or '-'}  "
        f"wall {'-' if c.wall_time is None else f'{c.wall_time:.1f} s'}  fitness {c.fitness}"
    )
    history = (c.metrics or {}).get("history") or []
    if not history:
        click.echo(
            "  no training log: "
            + (
                "rejected by the invariant before training"
                if c.status == "rejected-invariant"
                else "not trained yet"
                if c.status == "pending"
                else "none was recorded"
            )
        )
        return
    columns = ["step", "epoch", "lr", "train_loss", "train_accuracy", "val_accuracy", "val_loss"]

    def cell(v: Any) -> Any:
        return f"{v:.4g}" if isinstance(v, float) else v

    click.echo(_table(columns, [[cell(h.get(k)) for k in columns] for h in history]))


@click.command()
@click.argument("directory", metavar="DIR")
@click.option(
    "--eps",
    "eps_text",
    default="0.05,0.1,0.15,0.2,0.25,0.3",
    show_default=True,
    help="Comma-separated FGSM sizes in pixel units (images in [0, 1]).",
)
@click.option("--loss", "labels", multiple=True, help="Only this final loss (repeatable; default: all).")
@click.option(
    "--attack-loss",
    type=click.Choice(["own", "cross-entropy"]),
    default="own",
    show_default=True,
    help="Loss FGSM differentiates: each network's training loss (SPEC), or cross-entropy for all.",
)
@click.option("--json", "as_json", is_flag=True)
def robustness(directory: str, eps_text: str, labels: tuple[str, ...], attack_loss: str, as_json: bool) -> None:
    """FGSM accuracy sweep (test set) of the networks `final` saved: best loss vs cross-entropy."""
    from .analysis.sweep import robustness_sweep
    from .training.fgsm import parse_epsilons

    epsilons = parse_epsilons(eps_text)
    result = with_progress(
        lambda progress: robustness_sweep(directory, epsilons, labels or None, progress, attack_loss=attack_loss),
        enabled=not as_json,
        label="FGSM sweep",
    )
    if as_json:
        click.echo(json.dumps(result))
        return
    eps = result["epsilons"]
    rows = []
    for entry in result["losses"]:
        by_eps = {a["epsilon"]: a for a in entry["accuracy"]}
        rows.append([entry["label"], by_eps[eps[0]]["n"]] + [_mean_std(by_eps[e]) for e in eps])
        if entry["label"] != "cross-entropy" and any(
            a["welch_p_vs_cross_entropy"] is not None for a in entry["accuracy"]
        ):
            rows.append(["  Welch p vs cross-entropy", ""] + [_p(by_eps[e]["welch_p_vs_cross_entropy"]) for e in eps])
    through = "each network's own loss" if attack_loss == "own" else "cross-entropy"
    unit = result.get("epsilon_unit", "pixel range")
    click.echo(f"{result['name']}: test accuracy under FGSM through {through} (mean ± std over repeats; eps in {unit})")
    click.echo(_table(["loss", "n"] + [f"eps {e:g}" for e in eps], rows))
    for label, count in result["missing_networks"].items():
        cost = "; no p-values against cross-entropy" if label == "cross-entropy" else ""
        why = result.get("missing_reasons", {}).get(label) or "`taylorglo final` without --no-save-models keeps them"
        click.echo(f"note: {label}: {count} finished run(s) have no saved network, left out{cost} ({why})")
    click.echo(f"written: {directory}/robustness.json, {directory}/robustness.csv")


@click.command()
@click.argument("directory", metavar="DIR")
@click.option("--out", "out_dir", default=None, help="Report folder (default: DIR/report).")
def analyze(directory: str, out_dir: str | None) -> None:
    """Write the report of DIR (index.html, PNG plots, CSV); works while the search runs."""
    from .analysis.report import write_report

    index = write_report(directory, out_dir)
    click.echo(f"report: {index}")
    beside = sorted(p.name for p in index.parent.iterdir() if p.name != index.name and not p.name.startswith("."))
    click.echo(f"  open it in a browser; beside it: {', '.join(beside)}")
