"""A one-shot experiment's page (``taylorglo analyze``): what was trained, how far it got, and
the evidence sections every kind's page shares (test accuracy per loss with the t-tests, the FGSM
sweep once ``taylorglo robustness`` ran), on the one page skeleton of
:mod:`taylorglo.analysis.page`."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from ..analysis.evidence import evidence_sections
from ..analysis.page import Section, esc, fmt, kv_table, render_page, report_directory, with_extra
from ..atomic import write_atomic
from ..errors import TaylorGLOError
from ..experiment.reading import open_experiment, status


def write_oneshot_report(
    directory: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    extra_sections: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write the report of the one-shot experiment in ``directory``; return its index.html."""
    experiment = open_experiment(directory)
    config, info = experiment.config, status(experiment.directory)
    runs = info["runs"]
    if runs["finished"] + runs["failed"] == 0:
        raise TaylorGLOError(
            f"DIR: {str(experiment.directory)!r} has no finished run yet; run "
            f"`taylorglo start {experiment.directory}` first"
        )
    out = report_directory(Path(out_dir) if out_dir is not None else experiment.directory / "report")
    t, s = config.training, config.settings
    schedule = f"{t.epochs:g} epochs" if t.epochs is not None else f"{t.steps} steps" if t.steps else "default steps"
    setup = kv_table(
        [
            ("name", esc(config.name)),
            ("directory", f"<code>{esc(experiment.directory.resolve())}</code>"),
            ("trains", esc(t.describe())),
            ("full schedule", esc(f"{schedule}, batch {t.batch_size}, lr {t.lr:g}, weight decay {t.weight_decay:g}")),
            ("losses", "<br>".join(f"{esc(g.label)}: <code>{esc(g.spec)}</code>" for g in s.losses)),
            ("repeats", esc(f"{s.repeats} per loss, repeat r of every loss with the same seed")),
            ("seed", esc(config.seed)),
        ]
    )
    progress = kv_table(
        [
            ("state", esc(info["state"])),
            ("runs", esc(f"{runs['finished']} finished, {runs['failed']} failed, {runs['pending']} pending")),
        ]
    )
    sections = [Section("experiment", "Experiment (one-shot)", setup), Section("progress", "Progress", progress)]
    sections = with_extra(sections, [*evidence_sections(experiment.directory, out), *extra_sections])
    best = info["best"]
    subtitle = f"one-shot · {info['state']} · {runs['finished']} of {runs['total']} runs" + (
        "" if best is None else f" · best mean test accuracy {fmt(best['fitness'])} ({best['label']})"
    )
    index = out / "index.html"
    write_atomic(index, render_page(config.name, subtitle, sections, info["store"], time.time()))
    return index
