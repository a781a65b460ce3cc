"""The report's evidence sections: final-evaluation results and the FGSM sweep, when they exist.

A search's report (:mod:`.report`) shows what the search found; once ``taylorglo final`` and
``taylorglo robustness`` have run, these sections add what a paper reports: test accuracy over
repeated full-schedule runs against cross-entropy with the t-tests, and accuracy under attack.
Each section draws its figure beside the page and returns ``(title, html)`` for
:func:`.report.write_report`; nothing is shown for a step that has not run yet.
"""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path
from typing import Any

from ..atomic import write_atomic
from ..errors import TaylorGLOError
from .plots import plot_final, plot_robustness
from .stats import compare
from .sweep import read_robustness

FINAL_FIGURE = "final.png"
ROBUSTNESS_FIGURE = "robustness.png"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def _mean_std(d: dict[str, Any]) -> str:
    if d.get("mean") is None:
        return "–"
    return _num(d["mean"]) + ("" if d.get("std") is None else f" ± {_num(d['std'])}")


def final_section(directory: Path, out: Path) -> tuple[str, str] | None:
    """Mean ± std test accuracy per final loss, t-tests against cross-entropy, a box plot, a CSV."""
    try:
        result = compare(directory)
    except TaylorGLOError:
        return None
    plot_final(out / FINAL_FIGURE, [(s["label"], s["accuracies"]) for s in result["losses"]])
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["loss", "source", "repeat_index", "test_accuracy"])
    for s in result["losses"]:
        for k, accuracy in enumerate(s["accuracies"]):
            writer.writerow([s["label"], s["source"], k, accuracy])
    write_atomic(out / "final.csv", text.getvalue())
    rows = "".join(
        f"<tr><td>{_e(s['label'])}</td><td>{_e(s['source'])}</td><td class=num>{s['test_accuracy']['n']}</td>"
        f"<td class=num>{_mean_std(s['test_accuracy'])}</td><td class=num>{s['failed']}</td>"
        f"<td class=num>{s['pending']}</td><td><code>{_e(s['formula'])}</code></td></tr>"
        for s in result["losses"]
    )
    tests = "".join(
        f"<tr><td>{_e(c['a'])} vs {_e(c['b'])}</td><td class=num>{_num(c['difference'])}</td>"
        f"<td class=num>{_p(c['student_p'])}</td><td class=num>{_p(c['welch_p'])}</td>"
        f"<td class=num>{_num(c['cohens_d'], 3)}</td></tr>"
        for c in result["comparisons"]
    )
    body = (
        "<p>Each loss trained on the full schedule with the same seeds (repeat <i>r</i> of every loss "
        "starts from the same initialisation and batch order), measured on the test set. Failed runs "
        "are counted, not averaged in.</p>"
        '<table class="grid" id="final-table"><thead><tr><th>loss</th><th>source</th><th>n</th>'
        "<th>test accuracy (mean ± std)</th><th>failed</th><th>pending</th><th>f(x, y)</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )
    if tests:
        body += (
            '<table class="grid" id="ttest-table"><thead><tr><th>comparison</th><th>difference of means</th>'
            "<th>Student p (two-tailed)</th><th>Welch p (two-tailed)</th><th>Cohen's d</th></tr></thead>"
            f"<tbody>{tests}</tbody></table>"
        )
    body += (
        f'<figure><img src="{FINAL_FIGURE}" alt="test accuracy of each final loss over repeats">'
        "<figcaption>Test accuracy of every final run; boxes show quartiles.</figcaption></figure>"
        '<p>Every run: <a href="final.csv">final.csv</a>.</p>'
    )
    return "Final evaluation", body


def robustness_section(directory: Path, out: Path) -> tuple[str, str] | None:
    """The last ``taylorglo robustness`` sweep: a table per ε and the accuracy-vs-ε figure."""
    result = read_robustness(directory)
    if not result:
        return None
    eps = result["epsilons"]
    attack = (
        "cross-entropy for every network (taylorglo robustness --attack-loss cross-entropy)"
        if result.get("attack_loss") == "cross-entropy"
        else "the loss each network was trained with"
    )
    series = []
    rows = []
    for entry in result["losses"]:
        by_eps = {a["epsilon"]: a for a in entry["accuracy"]}
        series.append((entry["label"], [by_eps[e]["mean"] for e in eps], [by_eps[e]["std"] for e in eps]))
        cells = "".join(f"<td class=num>{_mean_std(by_eps[e])}</td>" for e in eps)
        rows.append(f"<tr><td>{_e(entry['label'])}</td><td class=num>{by_eps[eps[0]]['n']}</td>{cells}</tr>")
        if any(by_eps[e]["welch_p_vs_cross_entropy"] is not None for e in eps):
            cells = "".join(f"<td class=num>{_p(by_eps[e]['welch_p_vs_cross_entropy'])}</td>" for e in eps)
            rows.append(f"<tr><td class=muted>Welch p vs cross-entropy</td><td></td>{cells}</tr>")
    plot_robustness(out / ROBUSTNESS_FIGURE, eps, series)
    head = "".join(f"<th>ε = {e:g}</th>" for e in eps)
    body = (
        "<p>One-step FGSM on the test set, x′ = clip(x + ε·sign ∇ₓL, 0, 1) in pixel space, L "
        f"{_e(attack)}; mean ± std over the saved final networks (ε = 0 is clean accuracy).</p>"
        f'<table class="grid" id="robustness-table"><thead><tr><th>loss</th><th>n</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
        f'<figure><img src="{ROBUSTNESS_FIGURE}" alt="accuracy under FGSM against epsilon">'
        "<figcaption>Accuracy under attack; bands are ±1 std over repeats.</figcaption></figure>"
    )
    return "Robustness (FGSM)", body


def evidence_sections(directory: Path, out: Path) -> list[tuple[str, str]]:
    """Whichever of the final-evaluation and robustness sections have data."""
    return [s for s in (final_section(directory, out), robustness_section(directory, out)) if s is not None]
