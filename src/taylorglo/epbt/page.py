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

from ..analysis.page import Section, esc, fmt, kv_table, render_page, report_directory, with_extra
from ..atomic import write_atomic
from ..errors import TaylorGLOError
from ..experiment.reading import open_experiment, status
from ..polynomial import format_formula, loss_spec
from ..records import Candidate, Member
from . import plots as epbt_plots
from .report import BEST_MODEL, best_member, generations_csv, members_csv, schedule_of

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
        else f"member {best[0].generation}:{best[0].index}, validation accuracy {fmt(best[0].fitness)}"
    )
    epbt_plots.plot_schedule(out / "schedule.png", schedule, title)
    write_atomic(out / "members.csv", members_csv(members, results))
    write_atomic(out / "generations.csv", generations_csv(members, results))

    from ..analysis.evidence import evidence_sections

    sections = [
        _experiment_section(config, experiment.directory),
        _progress_section(info, members, candidates),
        _best_section(best, info),
        Section(
            "figures",
            "Figures",
            "".join(
                f'<figure><img src="{esc(n)}" alt="{esc(n)}" width="800"><figcaption>{esc(_CAPTIONS[n])}</figcaption>'
                "</figure>"
                for n in FIGURES
            ),
        ),
        _schedule_section(schedule),
    ]
    sections = with_extra(sections, [*evidence_sections(experiment.directory, out), *extra_sections])
    files = "".join(f'<li><a href="{esc(f)}">{esc(f)}</a></li>' for f in ("members.csv", "generations.csv", *FIGURES))
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
        ("name", esc(config.name)),
        ("directory", f"<code>{esc(directory.resolve())}</code>"),
        ("trains", esc(t.describe())),
        ("full schedule", esc(f"{schedule}, batch {t.batch_size}, lr {t.lr:g}, weight decay {t.weight_decay:g}")),
        ("population", esc(e.population)),
        ("evolves", esc(", ".join(e.evolve) or "nothing")),
        ("initial loss", esc(e.initial_loss if isinstance(e.initial_loss, str) else loss_spec(e.initial_loss))),
        ("exploit", esc(f"{e.exploit}" + (f", fraction {e.fraction:g}" if e.exploit == "truncation" else ""))),
        (
            "explore",
            esc(
                f"loss genes + N(0, {e.mutate_sigma:g}²); hyperparameters × {e.perturb} or resampled "
                f"(p = {e.resample_probability:g})"
            ),
        ),
        (
            "novelty pulsation",
            esc(
                "off"
                if nov is None
                else f"every {nov.cycle} generations, multiplier "
                f"{nov.multiplier:g}, remove {nov.remove_fraction:g}, behaviour {nov.behaviour}"
            ),
        ),
        (
            "distillation",
            esc(
                "off"
                if dist is None
                else f"weight {dist.weight:g}, temperature {dist.temperature:g}, first {dist.steps} steps after a copy"
            ),
        ),
        ("invariant rule", f'<span id="invariant-rule">{esc(e.invariant)}</span>'),
        ("seed", esc(config.seed)),
    ]
    return Section("experiment", "Experiment (EPBT)", kv_table(rows))


def _progress_section(info: dict, members: Sequence[Member], candidates: Sequence[Candidate]) -> Section:
    n = info["candidates"]
    state = info["state"] + (f" (pid {info['pid']})" if info["pid"] else "")
    wall = sum(c.wall_time or 0.0 for c in candidates)
    rows = [
        ("state", f'<strong id="state" class="state-{esc(info["state"])}">{esc(state)}</strong>'),
        (
            "generations completed",
            f'<span id="generations-completed">{info["generations_completed"]}</span> of '
            f"{info['generations_total'] or '?'} ({esc(info['ready_steps'])} steps each)",
        ),
        ("segments trained", f'<span id="count-evaluated">{n["evaluated"]}</span>'),
        ("failed (NaN/inf loss: replaced at the next step)", f'<span id="count-failed">{n["failed"]}</span>'),
        ("pending", f'<span id="count-pending">{n["pending"]}</span>'),
        ("exploit copies", esc(info["exploits"])),
        ("novelty copies", esc(info["novelty_copies"])),
        (
            "mutated losses rejected by the invariant (drawn again, never trained)",
            f'<span id="count-rejected-invariant">{info["invariant_redraws"]}</span>',
        ),
        ("training time", esc(f"{wall / 60:.1f} min summed over segments")),
    ]
    return Section("progress", "Progress", kv_table(rows))


def _best_section(best: tuple[Candidate, Member] | None, info: dict) -> Section:
    if best is None:
        return Section("best", "Best member", "<p>No generation is complete yet.</p>")
    c, m = best
    test = (c.metrics or {}).get("test_accuracy")
    rows = [
        ("member", f'<span id="best-candidate">{c.generation}:{c.index}</span> (generation:member)'),
        ("validation accuracy", f'<strong id="best-fitness">{fmt(c.fitness)}</strong>'),
        ("test accuracy", fmt(test) + ("" if test is not None else " (measured when the schedule ends)")),
        ("its loss now", f"<code>{esc(format_formula(c.params) if c.params else 'cross-entropy')}</code>"),
        ("loss for `taylorglo train --loss`", f'<code class="copy">{esc(loss_spec(c.params or None))}</code>'),
        ("learning rate · weight decay", esc(f"{m.lr:.4g} · {m.weight_decay:.4g}")),
        ("network", f"<code>{esc(BEST_MODEL)}</code> (when the run has finished)"),
    ]
    return Section("best", "Best member", kv_table(rows))


def _schedule_section(schedule: Sequence[dict]) -> Section:
    rows = []
    for s in schedule:
        loss = format_formula(s["params"]).split(" = ", 1)[-1].split(";")[0] if s["params"] else "cross-entropy"
        rows.append(
            f"<tr><td>{s['generation']}</td><td>{s['start_step']}–{s['stop_step']}</td><td>{esc(s['action'])}"
            f'{" + distillation" if s["distill"] else ""}</td><td class="num">{s["lr"]:.4g}</td>'
            f'<td class="num">{s["weight_decay"]:.3g}</td><td class="num">{fmt(s["val_accuracy"])}</td>'
            f"<td><code>{esc(loss)}</code></td></tr>"
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
    best_text = "" if best is None else f" · best member {fmt(best[0].fitness)}"
    subtitle = (
        f"EPBT · {info['state']} · {info['generations_completed']} of {info['generations_total'] or '?'} "
        f"generations{best_text}"
    )
    return render_page(name, subtitle, sections, info["store"], time.time())
