"""Statistics over final runs: mean ± std, Student and Welch t-tests, effect size; tables over experiments.

The numbers a paper's table needs (SPEC §4): for each loss the test accuracy over repeated
full-schedule runs as mean ± sample std, and for a TaylorGLO loss against cross-entropy the
two-tailed Student (equal variances) and Welch (unequal variances) t-tests (computed here as
``scipy.stats.ttest_ind`` computes them, without importing scipy; the tests check they agree),
with Cohen's d (pooled std) as the effect size. Only runs that finished count; a failed run is
reported beside the numbers, never averaged in as 0 (that would mix "diverged" into "accurate").
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TaylorGLOError
from ..experiment.reading import open_experiment, status
from ..experiment.store import Store
from ..polynomial import DEFAULT_INPUTS, check_inputs, format_formula
from ..records import CROSS_ENTROPY_LABEL, PBT_LABEL, FinalLoss, FinalRun


def describe(values: Sequence[float]) -> dict[str, Any]:
    """n, mean, sample std (ddof=1; None below two values), min, max."""
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    return {
        "n": int(a.size),
        "mean": float(a.mean()),
        "std": float(a.std(ddof=1)) if a.size > 1 else None,
        "min": float(a.min()),
        "max": float(a.max()),
    }


def ttests(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Two-tailed Student and Welch t-tests of ``a`` against ``b``, and Cohen's d (a − b).

    Values are None where they are undefined: fewer than two runs on a side, or zero variance on
    both sides (then ``note`` says so, rather than a p of 0).
    """
    out: dict[str, Any] = {
        "student_t": None,
        "student_p": None,
        "welch_t": None,
        "welch_p": None,
        "cohens_d": None,
        "difference": None,
    }
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size and y.size:
        out["difference"] = float(x.mean() - y.mean())
    if x.size < 2 or y.size < 2:
        return out
    if np.ptp(x) == 0 and np.ptp(y) == 0:
        # Every run the same on both sides: t is infinite (or 0/0) and its p-value meaningless.
        out["note"] = "no variance within either sample: the t-tests are undefined; run more repeats"
        return out
    pooled = _pooled_variance(x, y)
    for name, (t, df) in (("student", _student(x, y, pooled)), ("welch", _welch(x, y))):
        out[f"{name}_t"], out[f"{name}_p"] = _number(t), _number(_two_tailed_p(t, df))
    if pooled > 0:
        out["cohens_d"] = float((x.mean() - y.mean()) / math.sqrt(pooled))
    return out


def _pooled_variance(x: np.ndarray, y: np.ndarray) -> float:
    """The two samples' pooled variance (Student's t and Cohen's d share it)."""
    return float(((x.size - 1) * x.var(ddof=1) + (y.size - 1) * y.var(ddof=1)) / (x.size + y.size - 2))


def _student(x: np.ndarray, y: np.ndarray, pooled: float) -> tuple[float, float]:
    """Student's t (from the pooled variance) and its degrees of freedom."""
    df = x.size + y.size - 2
    return _ratio(x.mean() - y.mean(), math.sqrt(pooled * (1 / x.size + 1 / y.size))), float(df)


def _welch(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Welch's t (separate variances) and its Welch–Satterthwaite degrees of freedom."""
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    df = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1))
    return _ratio(x.mean() - y.mean(), math.sqrt(vx + vy)), float(df)


def _ratio(difference: float, scale: float) -> float:
    if scale == 0:
        return math.copysign(math.inf, difference) if difference else math.nan
    return float(difference / scale)


def _two_tailed_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t distribution with ``df`` degrees of freedom:
    ``I_x(df/2, 1/2)`` at ``x = df / (df + t²)``, the regularized incomplete beta function that
    ``scipy.stats.ttest_ind`` evaluates too (the tests check the two agree). Computed here, in a
    few lines of Python, because importing scipy would make ``compare`` slow to answer."""
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0
    return _incomplete_beta(df / 2, 0.5, df / (df + t * t), t * t / (df + t * t))


def _incomplete_beta(a: float, b: float, x: float, y: float) -> float:
    """The regularized incomplete beta function ``I_x(a, b)``, with ``y = 1 - x`` given exactly
    (``1 - x`` in floating point loses it where x is near 1), by its continued fraction
    (modified Lentz), taken on the side where it converges fast."""
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, y) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    tiny, eps = 1e-300, 1e-16
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def _number(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _accuracies(runs: Sequence[FinalRun]) -> list[float]:
    return [r.test_accuracy for r in runs if r.status == "finished" and r.test_accuracy is not None]


def loss_summary(loss: FinalLoss, runs: Sequence[FinalRun], inputs: Sequence[str] = DEFAULT_INPUTS) -> dict[str, Any]:
    """One final loss: where it came from, its test accuracies and their description (``inputs``:
    what its parameters are a polynomial of, ``training.loss_inputs``)."""
    accuracies = _accuracies(runs)
    return {
        "label": loss.label,
        "source": loss.source,
        "params": loss.params,
        "formula": "cross-entropy"
        if loss.params is None
        else format_formula(loss.params, "code", check_inputs(inputs)),
        "runs": len(runs),
        "finished": len(accuracies),
        "failed": sum(1 for r in runs if r.status not in ("finished", "pending")),
        "pending": sum(1 for r in runs if r.status == "pending"),
        "test_accuracy": describe(accuracies),
        "accuracies": accuracies,
        "wall_time": sum(r.wall_time or 0.0 for r in runs),
    }


def compare(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Every final loss of an experiment, each TaylorGLO loss tested against cross-entropy."""
    experiment = open_experiment(directory)
    with experiment.reader() as store:
        losses = store.final_losses()
        runs = store.final_runs()
    if not losses or not any(r.status != "pending" for r in runs):
        raise TaylorGLOError(
            f"DIR: {str(experiment.directory)!r} has no final runs yet; "
            f"run `taylorglo final {experiment.directory}` first"
        )
    inputs = experiment.config.training.loss_inputs
    summaries = [loss_summary(loss, [r for r in runs if r.loss_id == loss.id], inputs) for loss in losses]
    # Every loss is tested against cross-entropy; an EPBT experiment's also against plain PBT.
    baselines = [s for label in (CROSS_ENTROPY_LABEL, PBT_LABEL) for s in summaries if s["label"] == label]
    comparisons = []
    for baseline in baselines:
        for s in summaries:
            if s in baselines:
                continue
            comparisons.append(
                {"a": s["label"], "b": baseline["label"], **ttests(s["accuracies"], baseline["accuracies"])}
            )
    if len(baselines) == 2:
        pbt, ce = baselines[1], baselines[0]
        comparisons.append({"a": pbt["label"], "b": ce["label"], **ttests(pbt["accuracies"], ce["accuracies"])})
    return {
        "name": experiment.config.name,
        "directory": str(experiment.directory),
        "losses": summaries,
        "comparisons": comparisons,
    }


def default_label(summaries: Sequence[dict[str, Any]]) -> str:
    """The loss an experiment stands for in ``ttest``: its best-of-search loss if ``final`` ran it,
    else its TaylorGLO loss with the highest mean test accuracy, else cross-entropy."""
    for s in summaries:
        if s["source"] == "best of the search":
            return s["label"]
    others = [s for s in summaries if s["params"] is not None and s["test_accuracy"]["mean"] is not None]
    if others:
        return max(others, key=lambda s: s["test_accuracy"]["mean"])["label"]
    return CROSS_ENTROPY_LABEL


def ttest_experiments(
    dir_a: str | os.PathLike[str], dir_b: str | os.PathLike[str], label_a: str | None = None, label_b: str | None = None
) -> dict[str, Any]:
    """t-tests between the final runs of two experiments (the reference's ``ttest DIR1 DIR2``)."""
    sides = []
    for directory, label, flag in ((dir_a, label_a, "--label-a"), (dir_b, label_b, "--label-b")):
        summary = compare(directory)
        chosen = label or default_label(summary["losses"])
        match = next((s for s in summary["losses"] if s["label"] == chosen), None)
        if match is None:
            known = ", ".join(s["label"] for s in summary["losses"])
            raise TaylorGLOError(f"{flag}: {directory} has no final loss {chosen!r}; choose one of {known}")
        sides.append({"directory": str(directory), "name": summary["name"], **match})
    a, b = sides
    return {"a": a, "b": b, **ttests(a["accuracies"], b["accuracies"])}


def find_experiments(root: str | os.PathLike[str]) -> list[Path]:
    """Experiment directories at or below ``root`` (any folder holding an experiment.sqlite)."""
    root = Path(root)
    if not root.is_dir():
        raise TaylorGLOError(f"RUNS_DIR: {str(root)!r} is not a directory")
    return sorted(p.parent for p in root.rglob(Store.FILENAME))


def collate(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """One row per experiment under ``root``: search state and best, final results and Welch p."""
    rows = []
    for directory in find_experiments(root):
        st = status(directory)
        config = open_experiment(directory).config
        row: dict[str, Any] = {
            "experiment": str(directory),
            "name": st["name"],
            "dataset": config.training.dataset,
            "model": config.training.model,
            "state": st["state"],
            "generations": f"{st['generations_completed']}/{st['generations_total']}",
            "evaluated": st["candidates"]["evaluated"],
            "rejected_invariant": st["candidates"]["rejected_invariant"],
            "failed": st["candidates"]["failed"] + st["candidates"]["aborted"],
            "best_fitness": st["best"]["fitness"] if st["best"] else None,
            "best_formula": st["best"]["formula"] if st["best"] else None,
            "final_label": None,
            "final_n": 0,
            "final_mean": None,
            "final_std": None,
            "ce_n": 0,
            "ce_mean": None,
            "ce_std": None,
            "welch_p": None,
        }
        try:
            summary = compare(directory)
        except TaylorGLOError:  # no final runs yet: the search columns alone
            rows.append(row)
            continue
        label = default_label(summary["losses"])
        by_label = {s["label"]: s for s in summary["losses"]}
        chosen, ce = by_label[label], by_label.get(CROSS_ENTROPY_LABEL)
        row.update(
            final_label=label,
            final_n=chosen["test_accuracy"]["n"],
            final_mean=chosen["test_accuracy"]["mean"],
            final_std=chosen["test_accuracy"]["std"],
        )
        if ce is not None and ce is not chosen:
            row.update(
                ce_n=ce["test_accuracy"]["n"],
                ce_mean=ce["test_accuracy"]["mean"],
                ce_std=ce["test_accuracy"]["std"],
                welch_p=ttests(chosen["accuracies"], ce["accuracies"])["welch_p"],
            )
        rows.append(row)
    if not rows:
        raise TaylorGLOError(f"RUNS_DIR: no experiment directories (with {Store.FILENAME}) under {str(root)!r}")
    return rows
