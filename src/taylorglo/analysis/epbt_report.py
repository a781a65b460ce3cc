"""``taylorglo analyze DIR`` for an EPBT experiment: the same kind of static page as a search's
(see :mod:`.report`: no script, no network, files written atomically, safe on a running
experiment), with what EPBT is about:

    index.html        the page
    population.png    every member's validation accuracy per generation, best/mean, the best lineage
    lineage.png       the lineage tree (who copied whom, exploit and novelty copies marked)
    schedule.png      the final best member's loss-function schedule and hyperparameter schedule
    members.csv       every member of every generation: parent, action, genes, result
    generations.csv   per generation: steps, fitness statistics, exploits, novelty copies
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from ..atomic import write_atomic
from ..epbt.report import BEST_MODEL, best_member, generations_csv, members_csv, schedule_of
from ..errors import TaylorGLOError
from ..experiment.reading import open_experiment, status
from ..experiment.store import Candidate, Member
from ..polynomial import format_formula, loss_spec
from . import epbt_plots
from .report import _CSP, _CSS, Section, _e, _fmt, _slug, _table, report_directory

FIGURES = ("population.png", "lineage.png", "schedule.png")
_CAPTIONS = {
    "population.png": "Validation accuracy of every member at the end of each generation's segment (grey), the "
    "population's best and mean, and the accuracy along the lineage of the final best member "
    "(red): the networks whose weights it inherited.",
    "lineage.png": "Who continued whom. Each column is a generation, each row a member slot; an edge joins a member "
    "to the network it started from. Orange: an exploit copy (a weaker member took a fitter one's "
    "network and a mutated copy of its genes); purple: a copy made by novelty pulsation.",
    "schedule.png": "The loss-function schedule that EPBT discovered: the final best member's per-class loss "
    "−f(x, y) and its slope −∂f/∂y for the target class (solid) and a non-target class (dashed) "
    "during each stretch of training, early (light) to late (dark); below, its learning rate and "
    "weight decay. A TaylorGLO loss is defined up to a constant: compare shapes and slopes. "
    "`taylorglo final` replays this schedule from scratch.",
}


def write_epbt_report(
    directory: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    extra_sections: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write the EPBT report of ``directory``; return the path of its index.html."""
    experiment = open_experiment(directory)
    config = experiment.config
    info = status(experiment.directory)
    with experiment.reader() as store:
        candidates = store.candidates()
        members = store.members()
        best = best_member(store)
        schedule = schedule_of(store, best[0].generation, best[0].index) if best else []
    if not any(c.status != "pending" for c in candidates):
        raise TaylorGLOError(
            f"DIR: {str(experiment.directory)!r} has no trained member yet; run "
            f"`taylorglo start {experiment.directory}` first"
        )
    out = report_directory(Path(out_dir) if out_dir is not None else experiment.directory / "report")

    results = {(c.generation, c.index): c for c in candidates}
    gens = sorted({m.generation for m in members})
    stops = [max(m.stop_step for m in members if m.generation == g) for g in gens]
    size = config.population
    fitness = [[_fitness(results.get((g, i))) for i in range(size)] for g in gens]
    best_path = [s["val_accuracy"] for s in schedule]
    epbt_plots.plot_population(out / "population.png", stops, fitness, best_path)
    highlight = [(s["generation"], s["member"]) for s in schedule]
    epbt_plots.plot_lineage(out / "lineage.png", members, {k: _fitness(v) for k, v in results.items()}, highlight)
    title = (
        ""
        if best is None
        else f"member {best[0].generation}:{best[0].index}, validation accuracy {_fmt(best[0].fitness)}"
    )
    epbt_plots.plot_schedule(out / "schedule.png", schedule, title)
    write_atomic(out / "members.csv", members_csv(members, results))
    write_atomic(out / "generations.csv", generations_csv(members, results))

    from .evidence import evidence_sections

    sections = [
        _experiment_section(config, experiment.directory),
        _progress_section(info, members, candidates),
        _best_section(best, info),
        Section(
            "figures",
            "Figures",
            "".join(
                f'<figure><img src="{_e(n)}" alt="{_e(n)}" width="800"><figcaption>{_e(_CAPTIONS[n])}</figcaption>'
                "</figure>"
                for n in FIGURES
            ),
        ),
        _schedule_section(schedule),
    ]
    taken = {s.id for s in sections}
    for title_, fragment in [*evidence_sections(experiment.directory, out), *extra_sections]:
        sections.append(Section(_slug(title_, taken), title_, fragment))
    files = "".join(f'<li><a href="{_e(f)}">{_e(f)}</a></li>' for f in ("members.csv", "generations.csv", *FIGURES))
    sections.append(Section("files", "Files", f"<ul>{files}</ul>"))
    index = out / "index.html"
    write_atomic(index, _render(config.name, info, best, sections))
    return index


def _fitness(c: Candidate | None) -> float | None:
    if c is None or c.status == "pending":
        return None
    return c.fitness or 0.0


def _experiment_section(config, directory: Path) -> Section:
    t, e = config.training, config.epbt
    schedule = f"{t.epochs:g} epochs" if t.epochs is not None else f"{t.steps} steps" if t.steps else "default steps"
    nov = e.novelty_pulsation
    dist = e.distillation
    rows = [
        ("name", _e(config.name)),
        ("directory", f"<code>{_e(directory.resolve())}</code>"),
        ("dataset · model", _e(f"{t.dataset} · {t.model}")),
        ("full schedule", _e(f"{schedule}, batch {t.batch_size}, lr {t.lr:g}, weight decay {t.weight_decay:g}")),
        ("population", _e(e.population)),
        ("evolves", _e(", ".join(e.evolve) or "nothing")),
        ("initial loss", _e(e.initial_loss if isinstance(e.initial_loss, str) else loss_spec(e.initial_loss))),
        ("exploit", _e(f"{e.exploit}" + (f", fraction {e.fraction:g}" if e.exploit == "truncation" else ""))),
        (
            "explore",
            _e(
                f"loss genes + N(0, {e.mutate_sigma:g}²); hyperparameters × {e.perturb} or resampled "
                f"(p = {e.resample_probability:g})"
            ),
        ),
        (
            "novelty pulsation",
            _e(
                "off"
                if nov is None
                else f"every {nov.cycle} generations, multiplier "
                f"{nov.multiplier:g}, remove {nov.remove_fraction:g}, behaviour {nov.behaviour}"
            ),
        ),
        (
            "distillation",
            _e(
                "off"
                if dist is None
                else f"weight {dist.weight:g}, temperature {dist.temperature:g}, first {dist.steps} steps after a copy"
            ),
        ),
        ("invariant rule", f'<span id="invariant-rule">{_e(e.invariant)}</span>'),
        ("seed", _e(config.seed)),
    ]
    return Section("experiment", "Experiment (EPBT)", _table(rows))


def _progress_section(info: dict, members: Sequence[Member], candidates: Sequence[Candidate]) -> Section:
    n = info["candidates"]
    state = info["state"] + (f" (pid {info['pid']})" if info["pid"] else "")
    wall = sum(c.wall_time or 0.0 for c in candidates)
    rows = [
        ("state", f'<strong id="state" class="state-{_e(info["state"])}">{_e(state)}</strong>'),
        (
            "generations completed",
            f'<span id="generations-completed">{info["generations_completed"]}</span> of '
            f"{info['generations_total'] or '?'} ({_e(info['ready_steps'])} steps each)",
        ),
        ("segments trained", f'<span id="count-evaluated">{n["evaluated"]}</span>'),
        ("failed (NaN/inf loss: replaced at the next step)", f'<span id="count-failed">{n["failed"]}</span>'),
        ("pending", f'<span id="count-pending">{n["pending"]}</span>'),
        ("exploit copies", _e(info["exploits"])),
        ("novelty copies", _e(info["novelty_copies"])),
        (
            "mutated losses rejected by the invariant (drawn again, never trained)",
            f'<span id="count-rejected-invariant">{info["invariant_redraws"]}</span>',
        ),
        ("training time", _e(f"{wall / 60:.1f} min summed over segments")),
    ]
    return Section("progress", "Progress", _table(rows))


def _best_section(best: tuple[Candidate, Member] | None, info: dict) -> Section:
    if best is None:
        return Section("best", "Best member", "<p>No generation is complete yet.</p>")
    c, m = best
    test = (c.metrics or {}).get("test_accuracy")
    rows = [
        ("member", f'<span id="best-candidate">{c.generation}:{c.index}</span> (generation:member)'),
        ("validation accuracy", f'<strong id="best-fitness">{_fmt(c.fitness)}</strong>'),
        ("test accuracy", _fmt(test) + ("" if test is not None else " (measured when the schedule ends)")),
        ("its loss now", f"<code>{_e(format_formula(c.params) if c.params else 'cross-entropy')}</code>"),
        ("loss for `taylorglo train --loss`", f'<code class="copy">{_e(loss_spec(c.params or None))}</code>'),
        ("learning rate · weight decay", _e(f"{m.lr:.4g} · {m.weight_decay:.4g}")),
        ("network", f"<code>{_e(BEST_MODEL)}</code> (when the run has finished)"),
    ]
    return Section("best", "Best member", _table(rows))


def _schedule_section(schedule: Sequence[dict]) -> Section:
    rows = []
    for s in schedule:
        loss = format_formula(s["params"]).split(" = ", 1)[-1].split(";")[0] if s["params"] else "cross-entropy"
        rows.append(
            f"<tr><td>{s['generation']}</td><td>{s['start_step']}–{s['stop_step']}</td><td>{_e(s['action'])}"
            f'{" + distillation" if s["distill"] else ""}</td><td class="num">{s["lr"]:.4g}</td>'
            f'<td class="num">{s["weight_decay"]:.3g}</td><td class="num">{_fmt(s["val_accuracy"])}</td>'
            f"<td><code>{_e(loss)}</code></td></tr>"
        )
    head = (
        "<thead><tr><th>generation</th><th>steps</th><th>how it got here</th><th>lr</th><th>weight decay</th>"
        "<th>validation accuracy after</th><th>loss f(x, y) (code layout)</th></tr></thead>"
    )
    return Section(
        "schedule",
        "Schedule of the best member",
        f'<table class="grid" id="schedule-table">{head}<tbody>{"".join(rows)}</tbody></table>',
    )


def _render(name: str, info: dict, best: tuple[Candidate, Member] | None, sections: list[Section]) -> str:
    nav = "".join(f'<a href="#{_e(s.id)}">{_e(s.title)}</a>' for s in sections)
    body = "".join(f'<section id="{_e(s.id)}"><h2>{_e(s.title)}</h2>{s.html}</section>' for s in sections)
    best_text = "" if best is None else f" · best member {_fmt(best[0].fitness)}"
    subtitle = (
        f"EPBT · {info['state']} · {info['generations_completed']} of {info['generations_total'] or '?'} "
        f"generations{best_text}"
    )
    generated = time.strftime("%Y-%m-%d %H:%M:%S")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(name)} · taylorglo report</title><style>{_CSS}</style></head>\n"
        f'<body><header><h1 id="name">{_e(name)}</h1><p>{_e(subtitle)}</p></header>\n'
        f"<nav>{nav}</nav>\n<main>{body}</main>\n"
        f"<footer>Written by <code>taylorglo analyze</code> at {_e(generated)} from "
        f"<code>{_e(info['store'])}</code>; it only reads the store.</footer>\n</body></html>\n"
    )
