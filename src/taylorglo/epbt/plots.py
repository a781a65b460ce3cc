"""The figures of an EPBT report: the population's fitness, the lineage tree, and the best
member's loss-function and hyperparameter schedules. Same conventions as :mod:`.plots` (Agg
canvas, atomic PNG writes, no pyplot)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from ..analysis.plots import BLUE, GREEN, GREY, ORANGE, PURPLE, RED, _limits, loss_grid, save_figure, taylorglo_curves

ACTION_COLOURS = {"init": GREY, "continue": GREY, "exploit": ORANGE, "novelty": PURPLE}


def plot_population(
    path: str | os.PathLike[str],
    stops: Sequence[int],
    fitness: Sequence[Sequence[float | None]],
    best_path: Sequence[float | None],
) -> None:
    """Every member's validation accuracy at the end of every generation (dots), the population's
    best and mean, and the accuracy along the final best member's lineage."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    x = np.asarray(stops, dtype=float)
    values = np.array([[np.nan if v is None else v for v in row] for row in fitness], dtype=float)
    for k in range(values.shape[1] if values.size else 0):
        ax.scatter(x, values[:, k], s=12, color=GREY, alpha=0.5, linewidths=0, label="member" if k == 0 else None)
    if values.size:
        ax.plot(x, np.nanmax(values, axis=1), color=GREEN, marker="o", label="best")
        ax.plot(x, np.nanmean(values, axis=1), color=BLUE, marker="s", markersize=4, label="mean")
    ax.plot(
        x[: len(best_path)],
        [np.nan if v is None else v for v in best_path],
        color=RED,
        linewidth=2,
        label="final best member's lineage",
    )
    ax.set_xlabel("training step (end of each generation's segment)")
    ax.set_ylabel("validation accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Population fitness over training")
    save_figure(fig, path)


def plot_lineage(
    path: str | os.PathLike[str],
    members: Sequence[Any],
    fitness: dict[tuple[int, int], float | None],
    highlight: Sequence[tuple[int, int]],
) -> None:
    """The lineage tree: one column per generation, one row per member slot; an edge joins each
    member to the network it started from (grey: continued its own, orange: exploit copy, purple:
    novelty copy). Node colour is validation accuracy; the final best member's line is red."""
    fig = Figure(figsize=(9, 4.8), layout="constrained")
    ax = fig.subplots()
    marked = set(zip(highlight, list(highlight)[1:]))
    for m in members:
        if m.parent is None:
            continue
        edge = ((m.generation - 1, m.parent), (m.generation, m.index))
        on_best = edge in marked
        ax.plot(
            [m.generation - 1, m.generation],
            [m.parent, m.index],
            color=RED if on_best else ACTION_COLOURS.get(m.action, GREY),
            linewidth=2.5 if on_best else 1.0,
            alpha=1.0 if on_best or m.action != "continue" else 0.5,
            zorder=3 if on_best else 1,
        )
    xs = [m.generation for m in members]
    ys = [m.index for m in members]
    cs = [fitness.get((m.generation, m.index)) for m in members]
    cs = [np.nan if c is None else c for c in cs]
    sc = ax.scatter(xs, ys, c=cs, cmap="viridis", vmin=0, vmax=1, s=40, edgecolors="black", linewidths=0.4, zorder=4)
    fig.colorbar(sc, ax=ax, label="validation accuracy")
    ax.set_xlabel("generation")
    ax.set_ylabel("member")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    handles = [
        Line2D([], [], color=GREY, label="continued"),
        Line2D([], [], color=ORANGE, label="exploit copy"),
        Line2D([], [], color=PURPLE, label="novelty copy"),
        Line2D([], [], color=RED, linewidth=2.5, label="final best member's lineage"),
    ]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=4, fontsize=8)
    ax.set_title("Lineage tree")
    save_figure(fig, path)


def plot_schedule(path: str | os.PathLike[str], schedule: Sequence[dict[str, Any]], title: str = "") -> None:
    """The final best member's schedule. Top: its loss at successive segments, the per-class
    contribution −f(x, y) (left) and its slope −∂f/∂y (right), for the target (solid) and a
    non-target class (dashed), coloured from early (light) to late (dark); cross-entropy-trained
    lineages say so. Bottom: learning rate and weight decay per segment (steps on x)."""
    fig = Figure(figsize=(11, 8), layout="constrained")
    axes = fig.subplot_mosaic([["value", "slope"], ["hyper", "hyper"]], height_ratios=[1.5, 1])
    value_ax, top, bottom = axes["value"], axes["slope"], axes["hyper"]
    y = loss_grid()
    cmap = colormaps["viridis"]
    # Consecutive segments with the same loss (a member that continued) are one curve.
    runs: list[tuple[list[float], int, int]] = []
    for seg in schedule:
        if runs and runs[-1][0] == seg.get("params"):
            runs[-1] = (runs[-1][0], runs[-1][1], seg["stop_step"])
        else:
            runs.append((seg.get("params"), seg["start_step"], seg["stop_step"]))
    n = max(1, len(runs) - 1)
    drawn: dict[int, list[np.ndarray]] = {0: [], 1: []}
    for k, (params, start, stop) in enumerate(runs):
        if not params:
            continue
        curves = taylorglo_curves(params, y)
        colour = cmap(0.9 - 0.8 * k / n)
        label = f"steps {start}–{stop}"
        for row, ax in ((0, value_ax), (1, top)):
            ax.plot(y, curves["target"][row], color=colour, linewidth=1.8, label=label)
            ax.plot(y, curves["non_target"][row], color=colour, linewidth=1.2, linestyle="--")
            drawn[row] += [curves["target"][row], curves["non_target"][row]]
    for row, ax, ylabel in ((0, value_ax, "per-class loss  −f(x, y)"), (1, top, "slope  −∂f/∂y")):
        if drawn[row]:
            ax.set_ylim(*_limits(drawn[row]))
        else:
            ax.text(0.5, 0.5, "cross-entropy throughout (plain PBT)", ha="center", va="center", transform=ax.transAxes)
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xlim(0, 1)
        ax.set_xlabel("prediction y (softmax output of the class)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    if drawn[0]:
        value_ax.legend(fontsize=7, ncol=2, loc="best", title="solid: target, dashed: non-target", title_fontsize=7)
    value_ax.set_title("Loss-function schedule: f(x, y) per stretch")
    top.set_title("… and its slope")

    edges = [s["start_step"] for s in schedule] + ([schedule[-1]["stop_step"]] if schedule else [])
    lr = [s["lr"] for s in schedule]
    wd = [s["weight_decay"] for s in schedule]
    if schedule:
        bottom.stairs(lr, edges, color=BLUE, linewidth=2, baseline=None, label="learning rate")
        bottom.set_yscale("log")
        twin = bottom.twinx()  # linear: weight decay 0 is a common value
        twin.stairs(wd, edges, color=ORANGE, linewidth=2, baseline=None, label="weight decay")
        twin.set_ylim(bottom=0, top=max(max(wd) * 1.15, 1e-6))
        twin.set_ylabel("weight decay", color=ORANGE)
        for s in schedule:
            if s["action"] in ("exploit", "novelty"):
                bottom.axvline(
                    s["start_step"], color=PURPLE if s["action"] == "novelty" else ORANGE, linestyle=":", linewidth=1
                )
    bottom.set_xlabel("training step (dotted: the lineage switched to a fitter member's copy)")
    bottom.set_ylabel("learning rate", color=BLUE)
    bottom.grid(True, alpha=0.3)
    bottom.set_title("Hyperparameter schedule (base values; the config's decay milestones apply on top)")
    if title:
        fig.suptitle(title, fontsize=11)
    save_figure(fig, path)
