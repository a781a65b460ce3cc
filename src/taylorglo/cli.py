"""The ``taylorglo`` command line: parses, calls the library, prints.

Every user mistake arrives here as a :class:`~taylorglo.errors.TaylorGLOError` and leaves as one
line on stderr with exit status 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from . import cli_results as results
from .cli_options import evaluator_options, evaluator_overrides, interruptible, parse_floats, with_progress
from .errors import TaylorGLOError
from .training.config import ABORT_FITNESSES, ATTACK_SPACES, AUGMENTATIONS, CROP_FILLS, NORMALIZATIONS, SUBSETS
from .training.optimizers import OPTIMIZERS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="taylorglo")
def cli() -> None:
    """Loss-function metalearning for PyTorch classifiers (TaylorGLO, CMA-ES, EPBT)."""


@click.command()
@click.option(
    "--dataset",
    default="digits",
    show_default=True,
    help="digits, mnist, fashion-mnist, cifar10, svhn, or package.module:function",
)
@click.option(
    "--model",
    default="mlp",
    show_default=True,
    help="mlp, mnist-cnn, allcnnc, resnet20, preresnet20, wrn-16-8, alexnet, or package.module:function",
)
@click.option(
    "--loss",
    "loss_spec",
    default="cross-entropy",
    show_default=True,
    help="cross-entropy, taylorglo:P0,...,P7 (code layout; taylorglo[x,y,logits,t]:... with more inputs), "
    "or taylorglo:FILE.json",
)
@click.option("--steps", type=int, default=None, help="Full schedule length in steps (default 1000).")
@click.option("--epochs", type=float, default=None, help="Full schedule length in epochs (instead of --steps).")
@click.option(
    "--partial-fraction",
    type=float,
    default=1.0,
    show_default=True,
    help="Train only this share of the full schedule, keeping its learning-rate schedule.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--lr", type=float, default=0.01, show_default=True)
@click.option("--momentum", type=float, default=0.9, show_default=True)
@click.option("--nesterov/--no-nesterov", default=False, show_default=True)
@click.option("--weight-decay", type=float, default=0.0, show_default=True)
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--eval-batch-size", type=int, default=100, show_default=True)
@click.option("--lr-decay", default="", help="Milestones (steps or epochs, as the schedule), e.g. 100,150.")
@click.option("--lr-gamma", type=float, default=0.1, show_default=True)
@click.option(
    "--data-dir", envvar="TAYLORGLO_DATA", default=None, help="Folder with the dataset's files (env TAYLORGLO_DATA)."
)
@click.option(
    "--data-fraction",
    type=float,
    default=1.0,
    show_default=True,
    help="Use a fixed random share of the training split (reduced-data runs).",
)
@click.option(
    "--augment",
    type=click.Choice(AUGMENTATIONS),
    default=None,
    help="Default: crop-flip for CIFAR-10/SVHN, none otherwise.",
)
@click.option("--cutout", type=int, default=0, show_default=True, help="Cutout hole size in pixels (0: off).")
@click.option("--cutmix", type=float, default=0.0, show_default=True, help="Share of batches CutMix mixes (0: off).")
@click.option("--cutmix-alpha", type=float, default=1.0, show_default=True, help="CutMix's Beta(alpha, alpha).")
@click.option("--optimizer", type=click.Choice(sorted(OPTIMIZERS)), default="sgd", show_default=True)
@click.option(
    "--data-subset",
    type=click.Choice(SUBSETS),
    default="random",
    show_default=True,
    help="Which --data-fraction of the split: a fixed random one, or its first examples (the reference's).",
)
@click.option("--crop-fill", type=click.Choice(CROP_FILLS), default="mean", show_default=True, help="Crop padding.")
@click.option(
    "--normalization",
    type=click.Choice(NORMALIZATIONS),
    default="dataset",
    show_default=True,
    help="Input normalisation constants: the dataset's own, or the reference's.",
)
@click.option(
    "--attack-space",
    type=click.Choice(ATTACK_SPACES),
    default="pixels",
    show_default=True,
    help="Where FGSM steps and clips (normalized: the reference's quirk).",
)
@click.option(
    "--abort-fitness",
    type=click.Choice(ABORT_FITNESSES),
    default="zero",
    show_default=True,
    help="An early-aborted run's fitness.",
)
@click.option("--abort-at", type=float, default=None, help="Early-abort check point (steps or epochs).")
@click.option("--abort-below", type=float, default=0.15, show_default=True)
@click.option("--attempts", type=int, default=3, show_default=True)
@click.option(
    "--log-every",
    type=int,
    default=100,
    show_default=True,
    help="Training-log interval in steps (also the NaN check and progress updates).",
)
@click.option("--round-params", type=int, default=None, help="Round TaylorGLO parameters to N decimals.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--threads", type=int, default=None, help="torch intra-op threads.")
@click.option(
    "--model-option",
    "model_option",
    multiple=True,
    metavar="KEY=VALUE",
    help="Keyword argument for the model factory (VALUE read as JSON, else text); repeatable.",
)
@click.option(
    "--objective",
    default=None,
    help="Your own training function, package.module:function (replaces dataset, model and schedule).",
)
@click.option(
    "--objective-option",
    "objective_option",
    multiple=True,
    metavar="KEY=VALUE",
    help="An option for the objective (trial.options; VALUE read as JSON, else text); repeatable.",
)
@click.option("--num-classes", type=int, default=None, help="Classes of the objective's task.")
@click.option(
    "--aux-losses",
    multiple=True,
    metavar="SPEC",
    help="One auxiliary classifier head's loss (as --loss; needs --model-option aux_heads=true); repeat per head. "
    "Default: --loss.",
)
@click.option("--aux-weights", default="", help="Each auxiliary head's weight in the loss, e.g. 0.3,0.3 (default 1).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with all metrics.")
def train(
    loss_spec: str,
    lr_decay: str,
    aux_losses: tuple[str, ...],
    aux_weights: str,
    seed: int,
    as_json: bool,
    model_option: tuple[str, ...],
    objective_option: tuple[str, ...],
    **options: Any,
) -> None:
    """Train one network once and print its metrics."""
    from .loss import parse_loss
    from .training import TrainConfig
    from .training.trainers import trainer_for

    config = TrainConfig(
        lr_decay=parse_floats(lr_decay, "--lr-decay"),
        aux_losses=list(aux_losses),
        aux_weights=parse_floats(aux_weights, "--aux-weights"),
        eval_test=True,
        model_options=_parse_options(model_option, "--model-option"),
        objective_options=_parse_options(objective_option, "--objective-option"),
        **options,
    ).validate("--")
    loss = parse_loss(loss_spec, field="--loss", round_to=config.round_params)
    config.loss_inputs = list(getattr(loss, "inputs", config.loss_inputs))  # what the spec named
    phase = "final" if config.partial_fraction == 1.0 else "search"
    result, extra = with_progress(
        lambda progress: trainer_for(config).fresh(loss, seed, None, False, phase, progress),
        enabled=not as_json,
        label=f"training {config.describe()}",
    )
    if as_json:
        click.echo(json.dumps({"loss": loss_spec, "config": config.to_dict(), **result.to_dict(), **extra}))
        return
    rows = [
        ("status", result.status + (f" ({result.reason})" if result.reason else "")),
        ("loss", loss_spec),
        *((("fitness", _fmt(result.fitness)),) if result.fitness is not None else ()),
        ("steps", f"{result.steps} of {result.total_steps}"),
        ("attempts", str(result.attempts)),
        ("train accuracy (last window)", _fmt(result.train_accuracy)),
        ("validation accuracy", _fmt(result.val_accuracy)),
        ("validation loss", _fmt(result.val_loss)),
        ("test accuracy", _fmt(result.test_accuracy)),
        ("test loss", _fmt(result.test_loss)),
        ("wall time", f"{result.wall_time:.1f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("params")
@click.option("--classes", type=int, default=10, show_default=True, help="Number of classes n.")
@click.option("--json", "as_json", is_flag=True)
def invariant(params: str, classes: int, as_json: bool) -> None:
    """Check the trainability invariant (SPEC §5) of P0,...,P7 under both rules."""
    from .invariant import invariant_holds, invariant_margins, slope
    from .polynomial import check_params, describe_loss

    try:
        values, _ = check_params(parse_floats(params, "PARAMS"))
    except ValueError as exc:
        raise TaylorGLOError(str(exc)) from None
    try:
        left, right = invariant_margins(values, classes)
        g1, g0 = slope(values, 1.0, 1.0 / classes), slope(values, 0.0, 1.0 / classes)
    except OverflowError:
        raise TaylorGLOError(
            "PARAMS: the loss polynomial overflows float64 at y = 1/n; values this large "
            "can be neither checked nor trained"
        ) from None
    out = {
        "params": values,
        "classes": classes,
        "reference": invariant_holds(values, classes, "reference"),
        "gradient": invariant_holds(values, classes, "gradient"),
        "left": left,
        "right": right,
        "target_slope": g1,
        "non_target_slope": g0,
    }
    if as_json:
        click.echo(json.dumps(out))
        return
    click.echo(describe_loss(values))
    verdict = {True: "holds", False: "FAILS"}
    click.echo(f"reference rule (left >= right): {verdict[out['reference']]}  left={left:.6g} right={right:.6g}")
    click.echo(f"gradient rule  (g1 > g0 at y=1/n): {verdict[out['gradient']]}  g1={g1:.6g} g0={g0:.6g}")


@click.command()
@click.argument("directory", metavar="DIR")
@click.argument("config", metavar="CONFIG")
@click.option(
    "--exist-ok", is_flag=True, help="Accept an existing DIR made from the same config (for set-up scripts run twice)."
)
def init(directory: str, config: str, exist_ok: bool) -> None:
    """Create experiment DIR from CONFIG (.toml, .json or .yaml, or one of the reference's JSON
    configs, translated field by field); refuses an existing DIR."""
    from .experiment import init_experiment

    lines: list[str] = []
    experiment = init_experiment(directory, config, exist_ok=exist_ok, report=lines.append)
    if lines:
        click.echo(f"translated {config} from the reference's schema (kept as {directory}/config.toml):")
        for line in lines:
            click.echo(f"  {line}")
    cfg = experiment.config
    click.echo(f"created {directory}: {cfg.name!r}, {cfg.kind_class().outline(cfg)}, {cfg.training.describe()}")
    click.echo(f"next: taylorglo start {directory}")


@click.command()
@click.argument("config", metavar="REFERENCE_CONFIG")
def convert(config: str) -> None:
    """Print one of the reference's JSON experiment configs as a taylorglo config (TOML, with how
    each field was translated), to read, edit and `taylorglo init`; refuses, one line per field,
    what taylorglo cannot run."""
    from .experiment.config import ExperimentConfig, read_experiment_file
    from .experiment.config_text import translation_text

    data, translation = read_experiment_file(config)
    if translation is None:
        raise TaylorGLOError(
            f"REFERENCE_CONFIG: {config} is not in the reference's schema (no evaluation.baseTrainingConfig)"
        )
    ExperimentConfig.from_dict(data, default_name=Path(config).stem)  # what init would refuse, refused now
    click.echo(translation_text(translation), nl=False)


@click.command()
@click.argument("directory", metavar="DIR")
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Parallel evaluations (default: the config's evaluator.workers, else one per core).",
)
@evaluator_options
@click.option("--plain", is_flag=True, help="Plain log lines even on a terminal.")
def start(directory: str, workers: int | None, evaluator_kind: str | None, address: str | None, plain: bool) -> None:
    """Run the experiment in DIR to its end; after any crash or kill, run it again to resume."""
    from .experiment import start as run_search
    from .experiment.progress import LiveReporter, PlainReporter

    if workers is not None and workers < 1:
        raise TaylorGLOError(f"--workers: must be a positive integer, got {workers}")
    reporter = LiveReporter() if sys.stderr.isatty() and not plain else PlainReporter()
    result = interruptible(
        lambda: run_search(
            directory, workers=workers, reporter=reporter, evaluator=evaluator_overrides(evaluator_kind, address)
        ),
        f"taylorglo start {directory}",
    )
    _print_summary(directory, result)


def _print_summary(directory: str, result: dict[str, Any]) -> None:
    from .experiment import open_experiment

    config = open_experiment(directory).config
    for line in config.kind_class().summary(directory, result, config):
        click.echo(line)


@click.command()
@click.argument("directory", metavar="DIR")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (machine-readable).")
def status(directory: str, as_json: bool) -> None:
    """Where the experiment in DIR stands; safe to run while `start` runs."""
    from .experiment import status as read_status
    from .experiment.kinds import kind_class

    result = read_status(directory)
    if as_json:
        click.echo(json.dumps(result))
        return
    if result["state"] == "running":
        click.echo(f"running (pid {result['pid']})")
    kind = kind_class(result["kind"])
    for g in result["generations"][-10:]:
        detail = kind.generation_detail(g)
        click.echo(
            f"  generation {g['generation']:>3}: best {g['best']:.4f}  mean {g['mean']:.4f}  min {g['min']:.4f}"
            + (f" {detail}" if detail else "")
        )
    _print_summary(directory, result)
    for note in result.get("notes", []):
        click.echo(f"note: {note}")


@click.command()
@click.argument("directory", metavar="DIR")
@click.argument("destination", metavar="DEST")
def backup(directory: str, destination: str) -> None:
    """Copy experiment DIR to the new directory DEST, consistently, even while `start` runs."""
    from .experiment.backup import backup_experiment

    target = backup_experiment(directory, destination)
    click.echo(f"backed up {directory} to {target} (resume or read it there like the original)")


@click.command()
@click.argument("source", metavar="CONFIG|DIR")
@click.option(
    "--candidate",
    default=None,
    metavar="G:I",
    help="Candidate I of generation G (default 0:0: the first one the search asks).",
)
@click.option("--params", default=None, help="Use these parameters instead (P0,...,P7, code layout).")
@click.option("--full", is_flag=True, help="The full schedule (final training) instead of the partial one.")
def getinvocation(source: str, candidate: str | None, params: str | None, full: bool) -> None:
    """Print the `taylorglo train` command that evaluates one candidate of CONFIG (or experiment DIR)."""
    from pathlib import Path

    from .experiment import ExperimentConfig, open_experiment

    from_dir = Path(source).is_dir()
    # A config file's network is not built here: the printed `taylorglo train` checks it when it runs.
    config = open_experiment(source).config if from_dir else ExperimentConfig.load(source, check_network=False)
    generation, index = 0, 0
    if candidate is not None:
        g, sep, i = candidate.partition(":")
        if not (sep and g.isdigit() and i.isdigit()):
            raise TaylorGLOError(f"--candidate: expected GENERATION:INDEX such as 0:3, got {candidate!r}")
        generation, index = int(g), int(i)
    values = None if params is None else parse_floats(params, "--params")
    directory = Path(source) if from_dir else None
    click.echo(config.kind_class().invocation(directory, config, generation, index, values, full))


def _parse_options(pairs: tuple[str, ...], flag: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise TaylorGLOError(f"{flag}: expected KEY=VALUE, got {pair!r}")
        try:
            options[key] = json.loads(text)
        except ValueError:
            options[key] = text
    return options


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


#: Every command, by name, in one table. To add one, write it (here; in :mod:`.cli_results` if it
#: turns an experiment into evidence) and list it here.
_COMMANDS = {
    "train": train,
    "invariant": invariant,
    "init": init,
    "convert": convert,
    "start": start,
    "status": status,
    "check": status,  # the reference system's name for it
    "backup": backup,
    "getinvocation": getinvocation,
    "final": results.final,
    "compare": results.compare,
    "ttest": results.ttest,
    "collate": results.collate,
    "log": results.log_command,
    "robustness": results.robustness,
    "analyze": results.analyze,
}
for _name, _command in _COMMANDS.items():
    cli.add_command(_command, name=_name)


def main() -> None:
    """Entry point: turn user errors, and failures of the machine around us (a full disk, a
    read-only directory, a damaged database), into one line and exit status 2."""
    import sqlite3

    from .errors import one_line, os_error_line

    try:
        cli.main(standalone_mode=False)
    except TaylorGLOError as exc:
        for line in getattr(exc, "lines", None) or [str(exc)]:  # several problems: one line each
            click.echo(f"error: {line}", err=True)
        sys.exit(getattr(exc, "exit_code", 2))
    except OSError as exc:
        click.echo(f"error: {os_error_line(exc)}", err=True)
        sys.exit(2)
    except sqlite3.DatabaseError as exc:
        click.echo(
            f"error: an experiment's store: {one_line(exc)}; if it is damaged, restore it from a backup "
            "(`taylorglo backup` makes one)",
            err=True,
        )
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:  # one line too, with where to look
        command = exc.ctx.command_path if exc.ctx is not None else "taylorglo"
        click.echo(f"error: {one_line(exc.format_message())} (see `{command} --help`)", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
