"""``taylorglo analyze DIR`` for a TaylorGLO search: one HTML page, three figures and two CSVs.

:func:`write_search_report` reads the experiment's store (never writes it), so it works on a finished
search, a stopped one and one that is running right now: the SQLite file is in WAL mode, and the
open generation's candidates that are not evaluated yet are simply shown as *pending*.

What it writes into ``OUT`` (default ``DIR/report``)::

    index.html        the page (below)
    fitness.png       max / mean / min fitness per generation; rejected, failed, pending per generation
    cmaes.png         CMA-ES σ and mean over the search
    loss.png          the best loss's per-class curve and slope beside cross-entropy's
    candidates.csv    every candidate row of the store (all columns but metrics), by (generation, index)
    generations.csv   per generation: fitness statistics, σ, counts per status, best candidate

The page is one static file: inline CSS, no script, no font or anything else fetched, and a
Content-Security-Policy that forbids any network access, so it opens from a laptop, a cluster's
file share or an archive years later exactly the same. The figures are *referenced* as relative
paths to the PNGs beside it rather than embedded as ``data:`` URIs: the PNGs exist anyway (for
papers and slides), the page stays small and diffable, and a report rewritten every generation
does not rewrite three base64 images inside it. The report directory is therefore the unit to
copy or archive. Every file is written atomically, index.html last, so a browser never sees half
a file nor a page pointing at a figure that is not there yet.

The page is a list of sections, each an HTML fragment made by one function of :data:`SECTIONS`
from a :class:`ReportData`. Later analyses (final evaluation, FGSM sweeps) add theirs with
``write_report(DIR, extra_sections=[("Final evaluation", fragment), ...])``
(:func:`taylorglo.analysis.report.write_report`, which calls this page's writer).
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..analysis import plots
from ..analysis.page import Section, esc, fmt, kv_table, render_page, report_directory, with_extra
from ..atomic import write_atomic
from ..errors import TaylorGLOError
from ..evaluators.lending import META_KEY as LENDING_KEY
from ..evaluators.lending import depends_on_timing
from ..evaluators.lending import describe as describe_lending
from ..experiment.config import ExperimentConfig
from ..experiment.lock import is_running
from ..experiment.reading import open_experiment
from ..experiment.store import Store
from ..polynomial import (
    DEFAULT_INPUTS,
    check_inputs,
    format_formula,
    loss_spec,
    order_for_length,
    taylor_terms,
    to_paper_layout,
)
from ..records import STATUSES, Candidate, Generation
from .tables import candidates_csv

FIGURES = ("fitness.png", "cmaes.png", "loss.png")
GENERATION_COLUMNS = (
    "generation",
    "state",
    "best_fitness",
    "mean_fitness",
    "min_fitness",
    "sigma",
    "evaluated",
    "rejected_invariant",
    "failed",
    "aborted",
    "pending",
    "best_index",
    "best_params",
)
_ALL_STATUSES = (*STATUSES, "pending")


# --------------------------------------------------------------------------------------------
# Gathering
# --------------------------------------------------------------------------------------------


@dataclass
class GenerationSummary:
    """One generation as the report shows it; an open generation has ``closed=False``."""

    generation: int
    closed: bool
    #: CMA-ES step size after this generation was told (None while it is open).
    sigma: float | None
    counts: dict[str, int]
    #: Max / mean / min fitness of the *recorded* candidates, with rejected and failed ones counted
    #: as 0, as the store computes them when it closes a generation (None: nothing recorded yet).
    best_fitness: float | None
    mean_fitness: float | None
    min_fitness: float | None
    #: The fittest evaluated candidate of the generation (ties: lowest index), if any.
    best: Candidate | None


@dataclass
class ReportData:
    """Everything the page and the figures show, read once from the store."""

    directory: Path
    config: ExperimentConfig
    #: "finished" | "running" | "stopped"
    state: str
    pid: int | None
    candidates: list[Candidate]
    generations: list[GenerationSummary]
    counts: dict[str, int]
    best: Candidate | None
    #: CMA-ES states over the search: (generations told, σ, mean); the first is the initial one.
    search_path: list[tuple[int, float, list[float]]]
    generated_at: float
    #: The recorded decision on lending idle cores (None before the first start).
    lending: dict[str, Any] | None = None

    @property
    def completed(self) -> int:
        return sum(1 for g in self.generations if g.closed)

    @property
    def open_generation(self) -> int | None:
        return next((g.generation for g in self.generations if not g.closed), None)


def _better(a: Candidate, b: Candidate | None) -> bool:
    """Store.best()'s order: higher fitness first, ties to the earliest (generation, index)."""
    if b is None:
        return True
    fa, fb = a.fitness or 0.0, b.fitness or 0.0
    return fa > fb or (fa == fb and (a.generation, a.index) < (b.generation, b.index))


def _summarise(generation: int, closed: bool, sigma: float | None, rows: list[Candidate]) -> GenerationSummary:
    counts = {s: 0 for s in _ALL_STATUSES}
    best: Candidate | None = None
    scores: list[float] = []
    for c in rows:
        counts[c.status] = counts.get(c.status, 0) + 1
        if c.status == "pending":
            continue
        scores.append(c.fitness if c.fitness is not None else 0.0)
        if c.status == "evaluated" and _better(c, best):
            best = c
    return GenerationSummary(
        generation,
        closed,
        sigma,
        counts,
        max(scores) if scores else None,
        sum(scores) / len(scores) if scores else None,
        min(scores) if scores else None,
        best,
    )


def load_report_data(directory: str | os.PathLike[str]) -> ReportData:
    """Read what the report needs; raise a one-line :class:`TaylorGLOError` if there is nothing yet.

    A search may be writing while this reads. Generations are read before candidates, and a
    generation missing from the first read but present in the second counts as open, so what is
    shown is always a state the search really passed through, give or take one newer result.
    Counts and the best loss are computed from the one candidates read, so they agree with
    candidates.csv row for row.
    """
    experiment = open_experiment(directory)
    config = experiment.config
    running = is_running(experiment.directory)
    with experiment.reader() as store:
        generation_rows = {g.generation: g for g in store.generations()}
        candidates = store.candidates()
        if not any(c.status != "pending" for c in candidates):
            where = str(experiment.directory)
            if running:
                raise TaylorGLOError(
                    f"DIR: {where!r} has no evaluated candidates yet; its search is running, "
                    "run `taylorglo analyze` again once the first candidates are recorded"
                )
            raise TaylorGLOError(f"DIR: {where!r} has no evaluated candidates yet; run `taylorglo start {where}` first")
        search_path = _search_path(generation_rows)
        lending = store.get_meta(LENDING_KEY)

    by_generation: dict[int, list[Candidate]] = {}
    for c in candidates:
        by_generation.setdefault(c.generation, []).append(c)
    generations = []
    for g in sorted(set(generation_rows) | set(by_generation)):
        row = generation_rows.get(g)
        closed = row is not None and row.closed
        generations.append(_summarise(g, closed, row.sigma if closed and row else None, by_generation.get(g, [])))

    counts = {s: 0 for s in _ALL_STATUSES}
    best: Candidate | None = None
    for c in candidates:
        counts[c.status] = counts.get(c.status, 0) + 1
        if c.status == "evaluated" and _better(c, best):
            best = c

    completed = sum(1 for g in generations if g.closed)
    state = "finished" if completed >= config.search.generations else "running" if running else "stopped"
    return ReportData(
        directory=experiment.directory,
        config=config,
        state=state,
        pid=running.get("pid") if running else None,
        candidates=candidates,
        generations=generations,
        counts=counts,
        best=best,
        search_path=search_path,
        generated_at=time.time(),
        lending=lending,
    )


def _search_path(rows: dict[int, Generation]) -> list[tuple[int, float, list[float]]]:
    """The initial CMA-ES state, then the state after each closed generation's ``tell``.

    The initial one is generation 0's state as asked: ``ask`` moves neither the mean nor σ, so it
    is the (σ₀, mean₀) the search started from. Read from the plain-data summaries the host
    stores beside each state, never from the pickled state itself (reading must not run code
    from an experiment someone shared); generations of an older store that no ``start`` has
    filled in yet are left out.
    """
    path: list[tuple[int, float, list[float]]] = []
    for g in sorted(rows):
        row = rows[g]
        if g == 0 and row.asked_summary is not None:
            path.append((0, float(row.asked_summary["sigma"]), [float(v) for v in row.asked_summary["mean"]]))
        if row.told_summary is not None:
            path.append((g + 1, float(row.told_summary["sigma"]), [float(v) for v in row.told_summary["mean"]]))
    return path


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _params_text(params: Sequence[float]) -> str:
    """Parameters as space-separated ``repr`` floats: exact, and one CSV cell."""
    return " ".join(repr(float(p)) for p in params)


def generations_csv(data: ReportData) -> str:
    """One row per generation, the open one included (state "open", no σ yet)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(GENERATION_COLUMNS)
    for g in data.generations:
        writer.writerow(
            [
                g.generation,
                "closed" if g.closed else "open",
                g.best_fitness,
                g.mean_fitness,
                g.min_fitness,
                g.sigma,
                g.counts["evaluated"],
                g.counts["rejected-invariant"],
                g.counts["failed"],
                g.counts["aborted"],
                g.counts["pending"],
                None if g.best is None else g.best.index,
                None if g.best is None else _params_text(g.best.params),
            ]
        )
    return out.getvalue()


def parameter_labels(length: int, inputs: Sequence[str] = DEFAULT_INPUTS) -> list[str]:
    """``p0 (Y)``, ``p3 (XY)``, …, ``p6 (centre x)``: which term each code-layout entry scales."""
    inputs = check_inputs(inputs)
    try:
        terms = taylor_terms(order_for_length(length, inputs), inputs)
    except ValueError:
        return [f"p{k}" for k in range(length)]
    names = [f"p{k} ({_term_label(e, inputs)})" for k, e in enumerate(terms)]
    centres = [f"p{len(terms) + k} (centre {name})" for k, name in enumerate(inputs)]
    return [*names, *centres]


#: The capital a term label writes for each input (``XY²``, ``XYT``, ``YL``).
_LETTERS = {"x": "X", "y": "Y", "logits": "L", "t": "T"}


def _term_label(exponents: tuple[int, ...], inputs: Sequence[str] = DEFAULT_INPUTS) -> str:
    """``XY²`` for (1, 2): the monomial a code-layout coefficient multiplies."""
    sup = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
    part = lambda name, k: "" if k == 0 else name if k == 1 else name + str(k).translate(sup)  # noqa: E731
    return "".join(part(_LETTERS[name], k) for name, k in zip(inputs, exponents))


def _draw_figures(data: ReportData, out: Path) -> None:
    gens = data.generations
    plots.plot_fitness(
        out / "fitness.png",
        generations=[g.generation for g in gens],
        best=[g.best_fitness for g in gens],
        mean=[g.mean_fitness for g in gens],
        minimum=[g.min_fitness for g in gens],
        rejected=[g.counts["rejected-invariant"] for g in gens],
        failed=[g.counts["failed"] + g.counts["aborted"] for g in gens],
        pending=[g.counts["pending"] for g in gens],
        points=[
            (c.generation, c.fitness) for c in data.candidates if c.status == "evaluated" and c.fitness is not None
        ],
        open_generation=data.open_generation,
        population=data.config.search.population,
    )
    path = data.search_path
    plots.plot_cmaes(
        out / "cmaes.png",
        told=[p[0] for p in path],
        sigma=[p[1] for p in path],
        means=[p[2] for p in path],
        labels=parameter_labels(len(path[0][2]), data.config.training.loss_inputs) if path else None,
    )
    best = data.best
    title = (
        "" if best is None else (f"best loss: candidate {best.generation}:{best.index}, fitness {fmt(best.fitness)}")
    )
    plots.plot_loss(
        out / "loss.png", None if best is None else best.params, title=title, inputs=data.config.training.loss_inputs
    )


def write_search_report(
    directory: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    extra_sections: Sequence[tuple[str, str]] = (),
) -> Path:
    """:func:`write_report` for a TaylorGLO search."""
    data = load_report_data(directory)
    out = report_directory(Path(out_dir) if out_dir is not None else data.directory / "report")
    _draw_figures(data, out)
    write_atomic(out / "candidates.csv", candidates_csv(data.candidates))
    write_atomic(out / "generations.csv", generations_csv(data))
    from ..analysis.evidence import evidence_sections  # final results and FGSM sweep, once they exist

    sections = [*evidence_sections(data.directory, out), *extra_sections]
    index = out / "index.html"
    write_atomic(index, render_html(data, sections))
    return index


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------


def _experiment_section(data: ReportData) -> Section:
    c = data.config
    t, s = c.training, c.search
    schedule = f"{t.epochs:g} epochs" if t.epochs is not None else f"{t.steps} steps" if t.steps else "default steps"
    rows = [
        ("name", esc(c.name)),
        ("directory", f"<code>{esc(data.directory.resolve())}</code>"),
        (
            "dataset",
            esc(t.dataset) + ("" if t.data_fraction == 1.0 else f" ({esc(t.data_fraction)} of the training split)"),
        ),
        ("model", esc(t.model + "".join(f", {k} {v}" for k, v in t.model_options.items()))),
        ("profile", esc(c.profile)),
        ("full schedule", esc(f"{schedule}, batch {t.batch_size}, lr {t.lr:g}")),
        (
            "partial fraction",
            esc(f"{s.partial_fraction:g} (fitness = {s.fitness_meaning} after this share of the schedule)"),
        ),
        ("population (λ)", esc(s.population)),
        ("generations", esc(s.generations)),
        ("σ₀ · order", esc(f"{s.sigma:g} · order {s.order}")),
        ("CMA-ES constants", esc("SwiftCMA, as the reference ran" if s.cma == "swiftcma" else "pycma defaults")),
        ("invariant rule", f'<span id="invariant-rule">{esc(s.invariant)}</span>'),
        ("seeds", esc(f"seed {c.seed}, one training seed per {s.seeds}")),
        ("evaluator", esc(f"{c.evaluator.kind}, {c.evaluator.workers or 'auto'} workers")),
    ]
    if data.lending is not None and data.lending.get("mode") != "unavailable":
        line = esc(describe_lending(data.lending))
        if depends_on_timing(data.lending):
            line = f'<strong id="timing-note">{line}</strong>'
        rows.append(("idle cores", line))
    return Section("experiment", "Experiment", kv_table(rows))


def _progress_section(data: ReportData) -> Section:
    total = data.config.search.generations
    state = data.state + (f" (pid {data.pid})" if data.pid else "")
    n = data.counts
    recorded = sum(n[s] for s in STATUSES)
    labels = (
        ("evaluated", "evaluated (trained)"),
        ("rejected-invariant", "rejected by the invariant (never trained, fitness 0)"),
        ("failed", "failed (NaN/inf loss, fitness 0)"),
        ("aborted", "aborted early (fitness 0)"),
        ("pending", "pending (asked, not yet evaluated)"),
    )
    count_rows = "".join(
        f'<tr><th>{esc(label)}</th><td class="num" id="count-{status}">{n[status]}</td>'
        f'<td class="num">{_share(n[status], recorded) if status != "pending" else ""}</td></tr>'
        for status, label in labels
    )
    count_rows += (
        f'<tr class="total"><th>recorded</th><td class="num" id="count-recorded">{recorded}</td><td></td></tr>'
    )
    times = [c.finished_at for c in data.candidates if c.finished_at is not None]
    wall = sum(c.wall_time or 0.0 for c in data.candidates)
    open_g = data.open_generation
    rows = [
        ("state", f'<strong id="state" class="state-{esc(data.state)}">{esc(state)}</strong>'),
        (
            "generations completed",
            f'<span id="generations-completed">{data.completed}</span> of {total}'
            + ("" if open_g is None else f" (generation {open_g} open)"),
        ),
        ("training time", esc(f"{wall / 60:.1f} min summed over evaluations")),
        ("last result", esc(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(max(times)))) if times else "–"),
    ]
    body = kv_table(rows) + (
        '<table class="counts"><thead><tr><th>candidates</th><th>count</th><th>share</th></tr></thead>'
        f"<tbody>{count_rows}</tbody></table>"
    )
    return Section("progress", "Progress", body)


def _share(k: int, total: int) -> str:
    return f"{100 * k / total:.0f}%" if total else ""


def _best_section(data: ReportData) -> Section:
    best = data.best
    if best is None:
        return Section(
            "best",
            "Best loss",
            "<p>No candidate has been trained successfully yet (all recorded ones were rejected "
            "by the invariant, failed or aborted).</p>",
        )
    inputs = check_inputs(data.config.training.loss_inputs)
    theta = to_paper_layout(best.params, inputs)
    rows = [
        (
            "fitness",
            f'<strong id="best-fitness">{fmt(best.fitness)}</strong> '
            f"({esc((best.metrics or {}).get('fitness_name') or data.config.search.fitness_meaning)} after "
            "the partial schedule)",
        ),
        ("candidate", f'<span id="best-candidate">{best.generation}:{best.index}</span> (generation:index)'),
        ("formula (code layout)", f"<code>{esc(format_formula(best.params, 'code', inputs))}</code>"),
        ("formula (paper layout)", f"<code>{esc(format_formula(best.params, 'paper', inputs))}</code>"),
        ("parameters p (code layout)", f"<code>{esc(', '.join(f'{p:.4f}' for p in best.params))}</code>"),
        ("parameters θ (paper layout)", f"<code>{esc(', '.join(f'{p:.4f}' for p in theta))}</code>"),
        ("loss for `taylorglo train --loss`", f'<code class="copy">{esc(loss_spec(best.params, inputs))}</code>'),
    ]
    return Section("best", "Best loss", kv_table(rows))


_CAPTIONS = {
    "fitness.png": (
        "Fitness per generation: max, mean and min of the recorded candidates (rejected, failed and aborted "
        "ones count as 0, as CMA-ES sees them); grey dots are single evaluated candidates. Below, the "
        "candidates that were never scored by training, per generation."
    ),
    "cmaes.png": (
        "The CMA-ES sampling distribution: step size σ and the mean of each parameter (code layout), "
        "initially and after each generation was told."
    ),
    "loss.png": (
        "The best loss beside cross-entropy, per class: the contribution −f(x, y) of the target class (x = 1) "
        "and of a non-target class (x = 0), and its slope −∂f/∂y. Through the softmax, the target's "
        "probability rises when its slope lies below the non-targets' (cross-entropy: −1/y against 0), so "
        "compare the solid curve with the dashed one. A TaylorGLO loss is defined up to a constant (terms "
        "without y are dropped): compare shapes and slopes, not levels."
    ),
}


def _figures_section(data: ReportData) -> Section:
    figures = "".join(
        f'<figure><img src="{esc(name)}" alt="{esc(name)}" width="800"><figcaption>{esc(_CAPTIONS[name])}'
        "</figcaption></figure>"
        for name in FIGURES
    )
    return Section("figures", "Figures", figures)


def _polynomial(params: Sequence[float], inputs: Sequence[str] = DEFAULT_INPUTS) -> str:
    """Just the right-hand side of ``f(x,y) = …`` (code layout): the table's column says the rest."""
    text = format_formula(params, "code", check_inputs(inputs))
    head, sep, rest = text.partition(" = ")
    return rest.split(";", 1)[0] if sep and head.startswith("f(") else text


def _generations_section(data: ReportData) -> Section:
    rows = []
    for g in data.generations:
        state = "" if g.closed else ' <span class="tag">open</span>'
        sigma = fmt(g.sigma, 3) if g.sigma is not None else "–"
        if g.best is None:
            best = '<td class="num">–</td><td>–</td>'
            formula = '<td class="muted">no evaluated candidate</td>'
        else:
            best = f'<td class="num">{fmt(g.best.fitness)}</td><td>{g.generation}:{g.best.index}</td>'
            formula = f"<td><code>{esc(_polynomial(g.best.params, data.config.training.loss_inputs))}</code></td>"
        rows.append(
            f'<tr><td>{g.generation}{state}</td>{best}<td class="num">{fmt(g.mean_fitness)}</td>'
            f'<td class="num">{g.counts["rejected-invariant"]}</td>'
            f'<td class="num">{g.counts["failed"] + g.counts["aborted"]}</td><td class="num">{sigma}</td>'
            f"{formula}</tr>"
        )
    head = (
        "<thead><tr><th>generation</th><th>best fitness</th><th>candidate</th><th>mean fitness</th>"
        "<th>rejected by the invariant</th><th>failed / aborted</th><th>σ after</th>"
        "<th>best loss: f(x, y) in code layout</th></tr></thead>"
    )
    return Section(
        "generations",
        "Best candidate of every generation",
        f'<table class="grid" id="generations-table">{head}<tbody>{"".join(rows)}</tbody></table>',
    )


def _files_section(data: ReportData) -> Section:
    files = ("candidates.csv", "generations.csv", *FIGURES)
    items = "".join(f'<li><a href="{esc(f)}">{esc(f)}</a></li>' for f in files)
    return Section(
        "files",
        "Files",
        f"<p>Beside this page (the store itself is "
        f"<code>{esc(data.directory.resolve() / Store.FILENAME)}</code>):</p><ul>{items}</ul>",
    )


#: The built-in sections, in page order. Each takes the gathered data and returns a Section.
SECTIONS: tuple[Callable[[ReportData], Section], ...] = (
    _experiment_section,
    _progress_section,
    _best_section,
    _figures_section,
    _generations_section,
    _files_section,
)


def _sections(data: ReportData, extra: Sequence[tuple[str, str]] = ()) -> list[Section]:
    """The built-in sections followed by the extra ``(title, fragment)`` ones."""
    sections = [make(data) for make in SECTIONS]
    return with_extra(sections, extra)


def render_html(data: ReportData, extra_sections: Sequence[tuple[str, str]] = ()) -> str:
    """The search's page (:func:`.page.render_page`)."""
    best = "" if data.best is None else f" · best fitness {fmt(data.best.fitness)}"
    subtitle = (
        f"TaylorGLO search · {data.state} · {data.completed} of {data.config.search.generations} generations{best}"
    )
    return render_page(
        data.config.name,
        subtitle,
        _sections(data, extra_sections),
        data.directory.resolve() / Store.FILENAME,
        data.generated_at,
    )
