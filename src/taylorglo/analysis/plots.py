"""The report's figures, drawn from plain numbers (lists and arrays), each saved to one PNG.

Nothing here reads an experiment: :mod:`.report` gathers the numbers, these functions only draw,
so a figure can be re-made from a CSV or a notebook without a store.

Two rules every function follows:

* Figures are :class:`matplotlib.figure.Figure` objects rendered with the Agg canvas directly,
  never ``pyplot``: no global figure registry to leak or close, no GUI backend chosen behind our
  back (a report is often written on a headless server while a search runs).
* PNGs are written atomically (:func:`taylorglo.atomic.atomic_file`),
  so a browser showing the report while it is rewritten sees the old image or the new one,
  never half a file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..atomic import atomic_file

#: Colours shared by the figures (matplotlib's default cycle, named for readability).
BLUE, ORANGE, GREEN, RED, PURPLE, GREY = "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#7f7f7f"

#: Cross-entropy's curves run to infinity as y → 0; its panels show y ≥ this value in full.
CE_VISIBLE_FROM = 0.05


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 100) -> None:
    """Render ``fig`` to ``path`` as PNG, atomically (see the module docstring)."""
    FigureCanvasAgg(fig)  # attach the Agg canvas explicitly: no backend lookup, no pyplot
    with atomic_file(path) as fh:
        fig.savefig(fh, format="png", dpi=dpi)


def _nan(values: Sequence[float | None]) -> np.ndarray:
    """None (no value yet, e.g. an open generation with nothing recorded) → NaN, a gap in a line."""
    return np.array([math.nan if v is None else float(v) for v in values], dtype=float)


# --------------------------------------------------------------------------------------------
# fitness.png
# --------------------------------------------------------------------------------------------


def plot_fitness(
    path: str | os.PathLike[str],
    generations: Sequence[int],
    best: Sequence[float | None],
    mean: Sequence[float | None],
    minimum: Sequence[float | None],
    rejected: Sequence[int],
    failed: Sequence[int],
    pending: Sequence[int] | None = None,
    points: Sequence[tuple[int, float]] = (),
    open_generation: int | None = None,
    population: int | None = None,
) -> None:
    """Fitness per generation (top) and the candidates that were never scored by training (bottom).

    ``best``/``mean``/``minimum`` are per generation (None: nothing recorded yet). ``points`` are
    the individual evaluated candidates as (generation, fitness), drawn as dots so the spread
    behind the three lines is visible. ``rejected`` (by the invariant), ``failed`` (failed or
    aborted runs) and ``pending`` (asked, not yet evaluated: only an open generation has them)
    are stacked bars: they are why the mean sits below the best, since they count as fitness 0.
    ``open_generation`` marks a generation that is still being evaluated.
    """
    gens = np.asarray(list(generations), dtype=float)
    fig = Figure(figsize=(8, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2.2, 1]})

    if points:
        px, py = zip(*points)
        top.scatter(px, py, s=12, color=GREY, alpha=0.45, linewidths=0, label="evaluated candidate", zorder=1)
    top.plot(gens, _nan(best), marker="o", color=GREEN, label="max (best)", zorder=3)
    top.plot(
        gens, _nan(mean), marker="s", markersize=4, color=BLUE, label="mean (rejected / failed count as 0)", zorder=3
    )
    top.plot(gens, _nan(minimum), marker="v", markersize=4, color=RED, label="min", zorder=3)
    top.set_ylabel("fitness (validation accuracy)")
    top.set_ylim(-0.02, 1.02)
    top.grid(True, alpha=0.3)
    top.set_title("Fitness per generation")

    rejected_a = np.asarray(list(rejected), dtype=float)
    failed_a = np.asarray(list(failed), dtype=float)
    pending_a = np.zeros_like(rejected_a) if pending is None else np.asarray(list(pending), dtype=float)
    bottom.bar(gens, rejected_a, width=0.6, color=PURPLE, label="rejected by the invariant")
    bottom.bar(gens, failed_a, width=0.6, bottom=rejected_a, color=ORANGE, label="failed / aborted")
    if pending_a.any():
        bottom.bar(
            gens,
            pending_a,
            width=0.6,
            bottom=rejected_a + failed_a,
            color="white",
            edgecolor=GREY,
            hatch="//",
            label="pending (not yet evaluated)",
        )
    bottom.set_ylabel("candidates")
    bottom.set_xlabel("generation")
    stacked = rejected_a + failed_a + pending_a
    top_count = max(population or 0, int(stacked.max()) if stacked.size else 0, 1)
    bottom.set_ylim(0, top_count * 1.05)
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.grid(True, axis="y", alpha=0.3)

    if open_generation is not None:
        for ax in (top, bottom):
            ax.axvspan(open_generation - 0.4, open_generation + 0.4, color="#ffe9a8", alpha=0.6, zorder=0)
        top.set_title(f"Fitness per generation (shaded: generation {open_generation}, still open)")
    if gens.size:
        bottom.set_xlim(gens.min() - 0.6, gens.max() + 0.6)
    top.legend(loc="lower right", fontsize=8)
    bottom.legend(loc="upper right", fontsize=8)
    save_figure(fig, path)


# --------------------------------------------------------------------------------------------
# cmaes.png
# --------------------------------------------------------------------------------------------


def plot_cmaes(
    path: str | os.PathLike[str],
    told: Sequence[int],
    sigma: Sequence[float],
    means: Sequence[Sequence[float]],
    labels: Sequence[str] | None = None,
) -> None:
    """The CMA-ES sampling distribution over the search: step size σ (top), mean (bottom).

    ``told[k]`` is the number of generations told when the state was taken (0: the initial
    distribution, before any result), ``sigma[k]`` and ``means[k]`` that state's σ and mean
    vector (code layout). Plotting against "generations told" keeps the initial σ₀ and mean in
    view, which a per-generation "after tell" axis would lose.
    """
    x = np.asarray(list(told), dtype=float)
    fig = Figure(figsize=(8, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1.6]})

    top.plot(x, np.asarray(list(sigma), dtype=float), marker="o", color=BLUE)
    top.set_ylabel("σ (step size)")
    top.set_ylim(bottom=0)
    top.grid(True, alpha=0.3)
    top.set_title("CMA-ES step size and mean")

    m = np.asarray([list(v) for v in means], dtype=float)
    if m.ndim == 2 and m.shape[0]:
        names = list(labels) if labels is not None else [f"p{k}" for k in range(m.shape[1])]
        for k in range(m.shape[1]):
            bottom.plot(x, m[:, k], marker=".", label=names[k], linestyle="--" if k >= 10 else "-")
        bottom.legend(
            loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, title="mean (code layout)", title_fontsize=8
        )
    bottom.axhline(0, color="black", linewidth=0.6)
    bottom.set_ylabel("mean of each parameter")
    bottom.set_xlabel("generations told (0 = initial distribution)")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.grid(True, alpha=0.3)
    if x.size:
        bottom.set_xlim(x.min() - 0.3, x.max() + 0.3)
    save_figure(fig, path)


# --------------------------------------------------------------------------------------------
# loss.png
# --------------------------------------------------------------------------------------------


def loss_grid(points: int = 499) -> np.ndarray:
    """Predictions y strictly inside (0, 1): cross-entropy is infinite at 0."""
    return np.linspace(0.0, 1.0, points + 2)[1:-1]


def taylorglo_curves(
    params: Sequence[float], y: np.ndarray, inputs: Sequence[str] | None = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-class loss contribution ``−f(x, y)`` and its slope ``−∂f/∂y`` for x = 1 and x = 0.

    Computed with the loss module itself (:meth:`TaylorGLOLoss.per_class`) and torch autograd, so
    every order the module supports is drawn exactly as training sees it, with no second copy of
    the polynomial here. Returns ``{"target": (value, slope), "non_target": (value, slope)}``.
    A loss of more ``inputs`` is drawn where training starts: logits 0 and progress 0 (as the
    invariant checks it).
    """
    import torch

    from ..loss import TaylorGLOLoss

    loss = TaylorGLOLoss(params, inputs=inputs)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, x in (("target", 1.0), ("non_target", 0.0)):
        yt = torch.tensor(y, dtype=torch.float64, requires_grad=True)
        f = loss.per_class(torch.full_like(yt, x), yt, torch.zeros_like(yt))
        # f is elementwise in y, so the gradient of its sum is the derivative at every point.
        (df,) = torch.autograd.grad(f.sum(), yt)
        out[name] = (-f.detach().numpy(), -df.numpy())
    return out


def cross_entropy_curves(y: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Cross-entropy in the same terms: f = x·log y, so −f is −log y for the target, 0 otherwise."""
    zero = np.zeros_like(y)
    return {"target": (-np.log(y), -1.0 / y), "non_target": (zero, zero)}


def _limits(values: Sequence[np.ndarray], pad: float = 0.08) -> tuple[float, float]:
    """The range of the finite values, padded; a flat curve gets a unit-wide window."""
    finite = np.concatenate([np.asarray(v, dtype=float).ravel() for v in values])
    finite = finite[np.isfinite(finite)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 1.0)
    span = hi - lo
    if span <= 1e-12 * max(1.0, abs(lo), abs(hi)):
        return lo - 0.5, hi + 0.5
    return lo - pad * span, hi + pad * span


def plot_loss(
    path: str | os.PathLike[str], params: Sequence[float] | None, title: str = "", inputs: Sequence[str] | None = None
) -> None:
    """The best loss beside cross-entropy: per-class contribution (top) and its slope (bottom).

    Left column: the TaylorGLO loss of ``params`` (code layout); right: cross-entropy, each on
    its own scale (a TaylorGLO polynomial can be hundreds of times larger than −log y, and only
    its shape and slope matter: the terms without y are dropped, so its level is arbitrary).
    Solid: the target class (x = 1); dashed: a non-target class (x = 0). Plotted is what one class
    adds to the loss, ``−f(x, y)``, and ``∂(−f)/∂y``. Through the softmax, a class's logit rises
    when its slope is *below* the probability-weighted mean slope of all classes, so what drives
    learning is the target's slope relative to the non-targets' (their sign alone is not: a
    constant added to every slope changes nothing). Cross-entropy's panels are clipped at
    y = ``CE_VISIBLE_FROM``, below which its curves run off to infinity. ``params=None`` (no
    candidate trained yet) leaves the TaylorGLO column with a note.
    """
    y = loss_grid()
    fig = Figure(figsize=(10, 7), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True)
    ce = cross_entropy_curves(y)
    columns: list[tuple[str, dict[str, tuple[np.ndarray, np.ndarray]] | None, str]] = [
        ("best TaylorGLO loss", taylorglo_curves(params, y, inputs) if params is not None else None, BLUE),
        ("cross-entropy (baseline)", ce, GREY),
    ]
    rows = ("per-class loss contribution  −f(x, y)", "slope  ∂(−f)/∂y = −∂f/∂y")
    visible = y >= CE_VISIBLE_FROM
    for col, (name, curves, colour) in enumerate(columns):
        for row, ylabel in enumerate(rows):
            ax = axes[row, col]
            ax.axhline(0, color="black", linewidth=0.6)
            ax.grid(True, alpha=0.3)
            if row == 0:
                ax.set_title(name)
            if col == 0:
                ax.set_ylabel(ylabel)
            if row == 1:
                ax.set_xlabel("prediction y (softmax output of the class)")
            if curves is None:
                ax.text(0.5, 0.5, "no evaluated candidate yet", ha="center", va="center", transform=ax.transAxes)
                continue
            target, other = curves["target"][row], curves["non_target"][row]
            ax.plot(y, target, color=colour, linewidth=2, label="target class (x = 1)")
            ax.plot(y, other, color=colour, linewidth=2, linestyle="--", label="non-target class (x = 0)")
            if curves is ce:
                ax.set_ylim(*_limits([target[visible], other[visible]]))
            else:
                ax.set_ylim(*_limits([target, other]))
            ax.legend(fontsize=8, loc="best")
    axes[0, 0].set_xlim(0, 1)
    if title:
        fig.suptitle(title, fontsize=11)
    save_figure(fig, path)


def plot_final(path: str | os.PathLike[str], series: Sequence[tuple[str, Sequence[float]]]) -> None:
    """Test accuracy of each final loss over its repeats: one box (with every run as a dot) per loss."""
    fig = Figure(figsize=(max(4.5, 1.6 * len(series) + 2), 3.8), layout="constrained")
    ax = fig.add_subplot()
    labels = [label for label, _ in series]
    data = [list(values) for _, values in series]
    ax.boxplot([d if d else [math.nan] for d in data], tick_labels=labels, widths=0.5)
    rng = np.random.default_rng(0)  # fixed jitter: the figure is the same every time it is drawn
    for k, values in enumerate(data, 1):
        ax.scatter(k + rng.uniform(-0.12, 0.12, len(values)), values, s=14, color=BLUE, alpha=0.7, zorder=3)
    ax.set_ylabel("test accuracy (full schedule)")
    ax.set_title("Final evaluation: one dot per repeat")
    ax.grid(axis="y", alpha=0.3)
    save_figure(fig, path)


def plot_robustness(
    path: str | os.PathLike[str],
    epsilons: Sequence[float],
    series: Sequence[tuple[str, Sequence[float | None], Sequence[float | None]]],
) -> None:
    """Accuracy under FGSM against ε: mean over repeats with a ±1 std band, one line per loss."""
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    eps = np.asarray(epsilons, dtype=float)
    colours = (ORANGE, BLUE, GREEN, RED, PURPLE, GREY)
    for k, (label, means, stds) in enumerate(series):
        m, s = _nan(means), np.nan_to_num(_nan(stds))
        colour = colours[k % len(colours)]
        ax.plot(eps, m, marker="o", color=colour, label=label)
        ax.fill_between(eps, m - s, m + s, color=colour, alpha=0.15)
    ax.set_xlabel("FGSM ε (pixel units, images in [0, 1])")
    ax.set_ylabel("test accuracy under attack")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)
