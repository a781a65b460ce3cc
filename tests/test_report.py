"""The analysis report (`taylorglo analyze`) on a real tiny digits search: files, CSV fidelity,
an open generation, a running search, and the one-line error when there is nothing to show."""

from __future__ import annotations

import csv
import math
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments import SMALL, merged, write_config
from taylorglo.analysis import plots
from taylorglo.analysis.report import write_report
from taylorglo.errors import TaylorGLOError
from taylorglo.experiment import Store, init_experiment, start
from taylorglo.experiment.lock import ExperimentLock
from taylorglo.glo.page import FIGURES
from taylorglo.glo.tables import CANDIDATE_COLUMNS
from taylorglo.invariant import slope
from taylorglo.loss import order_for_length, taylor_terms

# Markup in the name: the page must show it as text, never as HTML.
NAME = 'digits <b>report</b> & "friends"'
CONFIG = merged(SMALL, name=NAME, search={"population": 6, "generations": 3, "partial_fraction": 0.05})

_SHARED: dict[str, Path] = {}


def finished_experiment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 3-generation search, run once per test session (also used by the browser test).

    A module-level cache rather than a fixture, because pytest caches a module-scoped fixture per
    module and the browser test lives in another one.
    """
    if "run" not in _SHARED:
        root = tmp_path_factory.mktemp("report-search")
        init_experiment(root / "run", write_config(root / "digits.toml", CONFIG))
        start(root / "run")
        _SHARED["run"] = root / "run"
    return _SHARED["run"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_experiment(tmp_path_factory)


@pytest.fixture(scope="module")
def report(finished: Path) -> Path:
    """The report of the finished search, written to its default place (DIR/report)."""
    return write_report(finished)


def _id_text(page: str, element_id: str) -> str:
    match = re.search(rf'id="{re.escape(element_id)}"[^>]*>([^<]*)<', page)
    assert match, f"no element with id {element_id!r} in the page"
    return match.group(1)


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _float_or_none(text: str) -> float | None:
    return None if text == "" else float(text)


def _check_png(path: Path) -> None:
    assert path.stat().st_size > 1000, path
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 200 and im.size[1] > 200, (path, im.size)


# --------------------------------------------------------------------------------------------


def test_report_files_and_page(finished, report):
    assert report == finished / "report" / "index.html" and report.is_file()
    out = report.parent
    for name in FIGURES:
        _check_png(out / name)
    assert not list(out.glob("*.tmp")), "temporary files left behind"

    page = report.read_text(encoding="utf-8")
    with Store(finished / Store.FILENAME) as store:
        counts, best = store.counts(), store.best()
    # The name is escaped everywhere, never live markup.
    assert "digits &lt;b&gt;report&lt;/b&gt; &amp; &quot;friends&quot;" in page
    assert "<b>report</b>" not in page
    # Best loss, state and the counts, the invariant's rejections always among them.
    assert best is not None
    assert _id_text(page, "best-fitness") == f"{best.fitness:.4f}"
    assert _id_text(page, "best-candidate") == f"{best.generation}:{best.index}"
    assert _id_text(page, "state") == "finished"
    assert _id_text(page, "generations-completed") == "3"
    for status in ("evaluated", "rejected-invariant", "failed", "aborted", "pending"):
        assert int(_id_text(page, f"count-{status}")) == counts[status], status
    assert counts["rejected-invariant"] > 0  # seed 0 rejects some of generation 0: the count is exercised
    assert "rejected by the invariant" in page
    assert _id_text(page, "invariant-rule") == "reference"
    for text in ("digits", "mlp", "partial fraction", "0.05", "population", "f(x,y) =", "θ0=", "pycma defaults"):
        assert text in page, text
    # One row per generation in the per-generation table.
    table = page.split('id="generations-table"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == 1 + 3
    # Self-contained: every resource is a file beside the page; nothing from the network.
    assert "http://" not in page and "https://" not in page and "<script" not in page
    sources = re.findall(r'\ssrc="([^"]*)"', page)
    assert sorted(sources) == sorted(FIGURES)
    for href in re.findall(r'\shref="([^"]*)"', page):
        assert href.startswith("#") or (out / href).is_file(), href


def test_candidates_csv_matches_the_store_row_by_row(finished, report):
    rows = _csv(report.parent / "candidates.csv")
    with Store(finished / Store.FILENAME) as store:
        stored = store.candidates()
    assert list(rows[0]) == list(CANDIDATE_COLUMNS) and "metrics" not in rows[0]
    assert len(rows) == len(stored) == 6 * 3
    for row, c in zip(rows, stored):
        assert (int(row["generation"]), int(row["index"])) == (c.generation, c.index)
        assert row["status"] == c.status
        assert _float_or_none(row["fitness"]) == c.fitness  # exact: floats are written as repr
        assert [float(v) for v in row["params"].split(" ")] == c.params
        assert int(row["seed"]) == c.seed
        assert row["reason"] == (c.reason or "")
        assert _float_or_none(row["val_accuracy"]) == c.val_accuracy
        assert row["worker"] == (c.worker or "")


def test_generations_csv_agrees_with_the_store(finished, report):
    rows = _csv(report.parent / "generations.csv")
    with Store(finished / Store.FILENAME) as store:
        generations = store.generations()
        candidates = store.candidates()
    assert [int(r["generation"]) for r in rows] == [g.generation for g in generations] == [0, 1, 2]
    for row, g in zip(rows, generations):
        assert row["state"] == "closed"
        for key, value in (
            ("best_fitness", g.best_fitness),
            ("mean_fitness", g.mean_fitness),
            ("min_fitness", g.min_fitness),
            ("sigma", g.sigma),
        ):
            assert float(row[key]) == pytest.approx(value, abs=1e-12), key
        mine = [c for c in candidates if c.generation == g.generation]
        for status, column in (
            ("evaluated", "evaluated"),
            ("rejected-invariant", "rejected_invariant"),
            ("failed", "failed"),
            ("aborted", "aborted"),
            ("pending", "pending"),
        ):
            assert int(row[column]) == sum(c.status == status for c in mine), column
        evaluated = [c for c in mine if c.status == "evaluated"]
        if evaluated:
            top = max(evaluated, key=lambda c: (c.fitness, -c.index))
            assert int(row["best_index"]) == top.index
            assert [float(v) for v in row["best_params"].split()] == top.params
            assert float(row["best_fitness"]) == top.fitness


def test_extra_sections_are_appended_with_escaped_titles(finished, tmp_path):
    index = write_report(
        finished, tmp_path / "out", extra_sections=[("FGSM <robustness>", '<p id="fgsm-body">ε sweep</p>')]
    )
    page = index.read_text(encoding="utf-8")
    assert index == tmp_path / "out" / "index.html"
    assert "<h2>FGSM &lt;robustness&gt;</h2>" in page
    assert '<p id="fgsm-body">ε sweep</p>' in page
    assert page.index('id="generations-table"') < page.index('id="fgsm-body"')
    assert 'href="#fgsm-robustness"' in page and 'id="fgsm-robustness"' in page


def _reopen_last_generation(directory: Path, pending: int) -> int:
    """Turn the experiment into one stopped inside its last generation, as a `kill -9` leaves it:
    the generation asked but not told, ``pending`` of its evaluated candidates not yet recorded
    (the store's own writes in reverse: close_generation undone, record undone)."""
    with sqlite3.connect(directory / Store.FILENAME) as db:
        last = db.execute("SELECT MAX(generation) FROM generations").fetchone()[0]
        db.execute(
            "UPDATE generations SET told_state = NULL, closed_at = NULL, sigma = NULL, best_fitness = NULL, "
            "mean_fitness = NULL, min_fitness = NULL WHERE generation = ?",
            (last,),
        )
        indices = [
            i
            for (i,) in db.execute(
                "SELECT idx FROM candidates WHERE generation = ? AND status = 'evaluated' ORDER BY idx", (last,)
            )
        ][:pending]
        assert len(indices) == pending, "the last generation needs enough evaluated candidates"
        db.executemany(
            "UPDATE candidates SET status = 'pending', fitness = NULL, reason = NULL, val_accuracy = NULL, "
            "val_loss = NULL, train_accuracy = NULL, train_loss = NULL, steps = NULL, attempts = NULL, "
            "wall_time = NULL, step_time = NULL, worker = NULL, finished_at = NULL, metrics = NULL "
            "WHERE generation = ? AND idx = ?",
            [(last, i) for i in indices],
        )
    return last


def test_open_generation_of_a_stopped_then_running_search(finished, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished, run, ignore=shutil.ignore_patterns("report"))
    with Store(run / Store.FILENAME) as store:
        evaluated_last = sum(c.status == "evaluated" for c in store.candidates(2))
    pending = min(2, evaluated_last)
    last = _reopen_last_generation(run, pending)

    index = write_report(run, tmp_path / "stopped")
    page = index.read_text(encoding="utf-8")
    assert _id_text(page, "state") == "stopped"
    assert _id_text(page, "generations-completed") == "2"
    assert f"generation {last} open" in page
    assert int(_id_text(page, "count-pending")) == pending
    for name in FIGURES:
        _check_png(index.parent / name)
    rows = _csv(index.parent / "generations.csv")
    assert rows[-1]["generation"] == str(last) and rows[-1]["state"] == "open"
    assert rows[-1]["sigma"] == "" and int(rows[-1]["pending"]) == pending
    candidates = _csv(index.parent / "candidates.csv")
    assert sum(r["status"] == "pending" for r in candidates) == pending
    assert all(r["fitness"] == "" for r in candidates if r["status"] == "pending")

    # While a `start` holds the directory, the same state reads as running, with its pid.
    with ExperimentLock(run):
        page = write_report(run, tmp_path / "running").read_text(encoding="utf-8")
    assert _id_text(page, "state").startswith("running (pid ")

    # The reopened generation is a real one: `start` resumes it, and the report is finished again.
    start(run, workers=1)  # one worker process is enough for the few pending candidates
    page = write_report(run, tmp_path / "resumed").read_text(encoding="utf-8")
    assert _id_text(page, "state") == "finished" and int(_id_text(page, "count-pending")) == 0


def test_a_fresh_experiment_has_nothing_to_report(tmp_path):
    init_experiment(tmp_path / "fresh", write_config(tmp_path / "c.toml", CONFIG))
    with pytest.raises(TaylorGLOError) as info:
        write_report(tmp_path / "fresh")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("DIR: ") and "no evaluated candidates yet" in message
    assert f"taylorglo start {tmp_path / 'fresh'}" in message
    assert not (tmp_path / "fresh" / "report").exists()


def test_not_an_experiment_is_a_one_line_error(tmp_path):
    with pytest.raises(TaylorGLOError, match="not an experiment directory"):
        write_report(tmp_path)


@pytest.mark.parametrize(
    "params",
    [
        [8.2896, 0.2415, 7.8726, 8.9666, 2.0184, 7.0513, -10.9408, 7.5216],  # order 3 (SPEC §1)
        [0.5, -1.0, 2.0, 0.3, 0.7],  # order 2
        [float(k % 5) - 2.0 for k in range(12)],  # order 4
    ],
)
def test_loss_curves_are_the_per_class_contribution_and_its_slope(params):
    y = plots.loss_grid(49)
    curves = plots.taylorglo_curves(params, y)
    for name, x in (("target", 1.0), ("non_target", 0.0)):
        value, slope_ = curves[name]
        cx, cy = params[-2], params[-1]
        terms = taylor_terms(order_for_length(len(params)))
        f = sum(c * (x - cx) ** i * (y - cy) ** j for c, (i, j) in zip(params[:-2], terms))
        np.testing.assert_allclose(value, -f, rtol=1e-10, atol=1e-9)  # −f: the loss is −Σ f
        np.testing.assert_allclose(slope_, [-slope(params, x, float(v)) for v in y], rtol=1e-10, atol=1e-9)
    ce = plots.cross_entropy_curves(y)
    np.testing.assert_allclose(ce["target"][0], -np.log(y))  # f = x·log y: the target adds −log y
    np.testing.assert_allclose(ce["target"][1], -1.0 / y)
    assert not ce["non_target"][0].any() and not ce["non_target"][1].any()
    assert 0.0 < y.min() and y.max() < 1.0 and math.isfinite(float(np.log(y).min()))


def test_plots_accept_edge_cases(tmp_path: Path):
    """One generation, nothing recorded yet in it, no trained candidate: still valid PNGs."""
    plots.plot_fitness(
        tmp_path / "f.png", [0], [None], [None], [None], [0], [0], pending=[6], open_generation=0, population=6
    )
    plots.plot_cmaes(tmp_path / "c.png", [0], [1.2], [[0.0] * 8])
    plots.plot_loss(tmp_path / "l.png", None)
    for name in ("f.png", "c.png", "l.png"):
        _check_png(tmp_path / name)
    assert not list(tmp_path.glob("*.tmp"))
