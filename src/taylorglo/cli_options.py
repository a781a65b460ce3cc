"""What several commands share: options, the parsing of numbers, progress bars, and Ctrl-C."""

from __future__ import annotations

import sys
from typing import Any

import click

from .errors import TaylorGLOError


def parse_floats(text: str, field: str) -> list[float]:
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise TaylorGLOError(f"{field}: expected comma-separated numbers, got {text!r}") from None


def evaluator_options(command: Any) -> Any:
    """``--evaluator`` and ``--address``: where this run trains, overriding the config's
    ``[evaluator]`` table (results never depend on it). Shared by ``start`` and ``final``."""
    command = click.option(
        "--address", default=None, help="Ray cluster address ('auto', 'ray://host:10001'); implies --evaluator ray."
    )(command)
    return click.option(
        "--evaluator",
        "evaluator_kind",
        type=click.Choice(["local", "ray"]),
        default=None,
        help="Where candidates train, for this run (default: the config's evaluator.kind).",
    )(command)


def evaluator_overrides(kind: str | None, address: str | None) -> dict[str, Any] | None:
    if address is not None and kind == "local":
        raise TaylorGLOError("--address: a Ray cluster address; use it with --evaluator ray (or without --evaluator)")
    overrides: dict[str, Any] = {}
    if kind is not None or address is not None:
        overrides["kind"] = kind or "ray"
    if address is not None:
        overrides["address"] = address
    return overrides or None


def interruptible(action: Any, resume: str) -> Any:
    """Run ``action()``; Ctrl-C or SIGTERM (from `kill`, a scheduler, systemd) ends it cleanly
    with one line saying how to go on, and exit status 130 or 143."""
    import signal

    from .errors import Interrupted

    received = {"code": 130}

    def on_sigterm(*_: Any) -> None:
        received["code"] = 143
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        return action()
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted; everything finished is saved, run `{resume}` to go on", received["code"]
        ) from None


def with_progress(run: Any, enabled: bool, label: str) -> Any:
    """Run ``run(progress)`` with a progress bar on a terminal, plainly otherwise."""
    if not (enabled and sys.stderr.isatty()):
        return run(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)
        return run(lambda done, total: bar.update(task, completed=done, total=total))
