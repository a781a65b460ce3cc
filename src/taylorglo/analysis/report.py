"""``taylorglo analyze DIR``: the report of any experiment, written by the page its kind names
(:attr:`~taylorglo.experiment.kind.ExperimentKind.report`: a search's
:mod:`taylorglo.glo.page`, EPBT's :mod:`taylorglo.epbt.page`, a one-shot experiment's
:mod:`taylorglo.oneshot.report`), imported only then. Every page is built on the one skeleton of
:mod:`.page` and ends with the evidence sections of :mod:`.evidence`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import TaylorGLOError
from ..experiment.kinds import kind_class
from ..experiment.reading import open_experiment
from ..plugins import resolve_plugin


def write_report(
    directory: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    extra_sections: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write the report of the experiment in ``directory``; return the path of its index.html.

    ``out_dir`` defaults to ``DIR/report``. The final-evaluation and robustness sections follow
    the kind's once ``taylorglo final`` / ``taylorglo robustness`` have run. ``extra_sections``
    are ``(title, html_fragment)`` pairs appended after the built-in sections: the title is
    escaped here, the fragment is inserted as it is (its author escapes its data) and must be
    static, since the page's Content-Security-Policy allows no script and no network. Raises
    :class:`TaylorGLOError` (one line) when the directory is not an experiment or has nothing
    recorded yet.
    """
    config = open_experiment(directory).config
    kind = kind_class(config.kind)
    if kind.report is None:
        raise TaylorGLOError(f"DIR: a kind = {config.kind!r} experiment has no report")
    return resolve_plugin(kind.report, "kind")(directory, out_dir, extra_sections)
