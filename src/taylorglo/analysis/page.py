"""The one page skeleton every report uses: sections, a table of contents, the style, the footer.

A kind's report (the search's :mod:`taylorglo.glo.page`, EPBT's :mod:`taylorglo.epbt.page`) builds its
:class:`Section` s and hands them to :func:`render_page`; the page is static HTML whose
Content-Security-Policy allows no script and no network, so it opens from a file anywhere.
"""

from __future__ import annotations

import html
import math
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from ..atomic import remove_stale_temporaries
from ..errors import TaylorGLOError, one_line


class Section(NamedTuple):
    """One part of the page: an anchor id, a heading, and the body as an HTML fragment."""

    id: str
    title: str
    html: str


def esc(value: object) -> str:
    """HTML-escape anything that comes from the data (names, paths, reasons, formulas)."""
    return html.escape(str(value), quote=True)


def fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def kv_table(rows: Sequence[tuple[str, str]], cls: str = "kv") -> str:
    """A two-column table; the *values* must already be HTML (escaped by the caller)."""
    body = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="{cls}">{body}</table>'


def slug(title: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"
    slug, k = base, 2
    while slug in taken:
        slug, k = f"{base}-{k}", k + 1
    taken.add(slug)
    return slug


def with_extra(sections: list[Section], extra: Sequence[tuple[str, str]]) -> list[Section]:
    """``sections`` followed by the extra ``(title, fragment)`` ones, each with an unused anchor."""
    taken = {s.id for s in sections}
    return [*sections, *(Section(slug(title, taken), title, fragment) for title, fragment in extra)]


def report_directory(out: Path) -> Path:
    """``out``, created if need be, without the half-written files of an ``analyze`` killed there."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TaylorGLOError(f"OUT: cannot create the report directory {str(out)!r}: {one_line(exc)}") from None
    remove_stale_temporaries(out)
    return out


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0;
       color: #1d1d1f; background: #fafafa; line-height: 1.45; }
header { background: #1f3b57; color: white; padding: 1.2em 2em; }
header h1 { margin: 0 0 0.2em 0; font-size: 1.6em; }
header p { margin: 0; opacity: 0.85; }
nav { padding: 0.6em 2em; background: #e8edf2; font-size: 0.95em; }
nav a { margin-right: 1.2em; color: #1f3b57; }
main { padding: 0 2em 3em 2em; max-width: 1100px; }
section { margin-top: 1.8em; }
h2 { border-bottom: 2px solid #d0d7de; padding-bottom: 0.2em; font-size: 1.25em; }
table { border-collapse: collapse; margin: 0.6em 0 1em 0; background: white; }
th, td { border: 1px solid #d0d7de; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
table.kv th { background: #f3f5f7; font-weight: 600; white-space: nowrap; }
table.counts th, table.grid th { background: #f3f5f7; }
table.grid { width: 100%; font-size: 0.92em; } table.grid th { vertical-align: bottom; }
tr.total td, tr.total th { font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.9em;
       white-space: pre-wrap; word-break: break-word; }
.muted { color: #777; }
.tag { background: #ffe9a8; color: #6b5500; border-radius: 3px; padding: 0 0.35em; font-size: 0.85em; }
.state-finished { color: #1a7f37; } .state-running { color: #9a6700; } .state-stopped { color: #cf222e; }
figure { margin: 1em 0 2em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #d0d7de;
       background: white; } figcaption { color: #555; font-size: 0.92em; max-width: 800px; }
footer { color: #777; font-size: 0.85em; padding: 1em 2em; }
"""

#: No script, no network: images only from beside the page (file: or the same origin) or data: URIs.
CSP = "default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'"


def render_page(
    name: str, subtitle: str, sections: Sequence[Section], store: str | os.PathLike[str], generated_at: float
) -> str:
    """The whole page: header, a table of contents, the sections, a footer naming the store it read."""
    nav = "".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in sections)
    body = "".join(f'<section id="{esc(s.id)}"><h2>{esc(s.title)}</h2>{s.html}</section>' for s in sections)
    generated = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(generated_at))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(name)} · taylorglo report</title><style>{CSS}</style></head>\n"
        f'<body><header><h1 id="name">{esc(name)}</h1><p>{esc(subtitle)}</p></header>\n'
        f"<nav>{nav}</nav>\n<main>{body}</main>\n"
        f"<footer>Written by <code>taylorglo analyze</code> at {esc(generated)} from "
        f"<code>{esc(store)}</code>; it only reads the store, so running it "
        "again while the experiment runs shows the newer results.</footer>\n</body></html>\n"
    )
