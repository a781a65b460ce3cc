"""The ``taylorglo`` command line: parses, calls the library, prints.

Every user mistake arrives here as a :class:`~taylorglo.errors.TaylorGLOError` and leaves as one
line on stderr with exit status 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .errors import TaylorGLOError


def _parse_floats(text: str, field: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise TaylorGLOError(f"{field}: expected comma-separated numbers, got {text!r}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="taylorglo")
def cli() -> None:
    """Loss-function metalearning for PyTorch classifiers (TaylorGLO, CMA-ES, EPBT)."""


@cli.command()
@click.option("--dataset", default="digits", show_default=True,
              help="digits, mnist, fashion-mnist, cifar10, svhn, or package.module:function")
@click.option("--model", default="mlp", show_default=True,
              help="mlp, mnist-cnn, allcnnc, resnet20, preresnet20, wrn-16-8, alexnet, or package.module:function")
@click.option("--loss", "loss_spec", default="cross-entropy", show_default=True,
              help="cross-entropy, taylorglo:P0,...,P7 (code layout), or taylorglo:FILE.json")
@click.option("--steps", type=int, default=None, help="Full schedule length in steps (default 1000).")
@click.option("--epochs", type=float, default=None, help="Full schedule length in epochs (instead of --steps).")
@click.option("--partial-fraction", type=float, default=1.0, show_default=True,
              help="Train only this share of the full schedule, keeping its learning-rate schedule.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--lr", type=float, default=0.01, show_default=True)
@click.option("--momentum", type=float, default=0.9, show_default=True)
@click.option("--nesterov/--no-nesterov", default=False, show_default=True)
@click.option("--weight-decay", type=float, default=0.0, show_default=True)
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--lr-decay", default="", help="Milestones (steps or epochs, as the schedule), e.g. 100,150.")
@click.option("--lr-gamma", type=float, default=0.1, show_default=True)
@click.option("--data-dir", envvar="TAYLORGLO_DATA", default=None,
              help="Folder with the dataset's files (env TAYLORGLO_DATA).")
@click.option("--data-fraction", type=float, default=1.0, show_default=True,
              help="Use a fixed random share of the training split (reduced-data runs).")
@click.option("--augment", type=click.Choice(["none", "crop-flip"]), default=None,
              help="Default: crop-flip for CIFAR-10/SVHN, none otherwise.")
@click.option("--cutout", type=int, default=0, show_default=True, help="Cutout hole size in pixels (0: off).")
@click.option("--abort-at", type=float, default=None, help="Early-abort check point (steps or epochs).")
@click.option("--abort-below", type=float, default=0.15, show_default=True)
@click.option("--attempts", type=int, default=3, show_default=True)
@click.option("--log-every", type=int, default=100, show_default=True,
              help="Training-log interval in steps (also the NaN check and progress updates).")
@click.option("--round-params", type=int, default=None, help="Round TaylorGLO parameters to N decimals.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--threads", type=int, default=None, help="torch intra-op threads.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with all metrics.")
def train(loss_spec: str, lr_decay: str, seed: int, as_json: bool, **options: Any) -> None:
    """Train one network once and print its metrics."""
    from .loss import parse_loss
    from .training import TrainConfig
    from .training import train as run_training

    config = TrainConfig(lr_decay=_parse_floats(lr_decay, "--lr-decay"), eval_test=True, **options).validate("--")
    loss = parse_loss(loss_spec, field="--loss", round_to=config.round_params)
    result = _with_progress(lambda progress: run_training(config, loss, seed=seed, progress=progress),
                            enabled=not as_json, label=f"training {config.model} on {config.dataset}")
    if as_json:
        click.echo(json.dumps({"loss": loss_spec, "config": config.to_dict(), **result.to_dict()}))
        return
    rows = [("status", result.status + (f" ({result.reason})" if result.reason else "")),
            ("loss", loss_spec), ("steps", f"{result.steps} of {result.total_steps}"),
            ("attempts", str(result.attempts)),
            ("train accuracy (last window)", _fmt(result.train_accuracy)),
            ("validation accuracy", _fmt(result.val_accuracy)), ("validation loss", _fmt(result.val_loss)),
            ("test accuracy", _fmt(result.test_accuracy)), ("test loss", _fmt(result.test_loss)),
            ("wall time", f"{result.wall_time:.1f} s")]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("params")
@click.option("--classes", type=int, default=10, show_default=True, help="Number of classes n.")
@click.option("--json", "as_json", is_flag=True)
def invariant(params: str, classes: int, as_json: bool) -> None:
    """Check the trainability invariant (SPEC §5) of P0,...,P7 under both rules."""
    from .invariant import invariant_holds, invariant_margins, slope
    from .loss import TaylorGLOLoss

    try:
        loss = TaylorGLOLoss(_parse_floats(params, "PARAMS"))
    except ValueError as exc:
        raise TaylorGLOError(str(exc)) from None
    left, right = invariant_margins(loss.params, classes)
    g1, g0 = slope(loss.params, 1.0, 1.0 / classes), slope(loss.params, 0.0, 1.0 / classes)
    out = {
        "params": loss.params, "classes": classes,
        "reference": invariant_holds(loss.params, classes, "reference"),
        "gradient": invariant_holds(loss.params, classes, "gradient"),
        "left": left, "right": right, "target_slope": g1, "non_target_slope": g0,
    }
    if as_json:
        click.echo(json.dumps(out))
        return
    click.echo(str(loss))
    verdict = {True: "holds", False: "FAILS"}
    click.echo(f"reference rule (left >= right): {verdict[out['reference']]}  left={left:.6g} right={right:.6g}")
    click.echo(f"gradient rule  (g1 > g0 at y=1/n): {verdict[out['gradient']]}  g1={g1:.6g} g0={g0:.6g}")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _with_progress(run: Any, enabled: bool, label: str) -> Any:
    """Run ``run(progress)`` with a progress bar on a terminal, plainly otherwise."""
    if not (enabled and sys.stderr.isatty()):
        return run(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task(label, total=None)
        return run(lambda done, total: bar.update(task, completed=done, total=total))


def main() -> None:
    """Entry point: turn user errors into one line and exit status 2."""
    try:
        cli.main(standalone_mode=False)
    except TaylorGLOError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
