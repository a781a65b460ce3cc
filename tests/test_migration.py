"""Experiments written by the previous version (schema 3, ``tests/fixtures/v3``) open, report,
resume and extend; reading them leaves them as they were."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from experiments import candidate_rows, cli, run_cli
from taylorglo.evaluators.lending import TIMING_NOTE
from taylorglo.experiment import Store, init_experiment, status
from taylorglo.experiment.store import SCHEMA_VERSION

FIXTURES = Path(__file__).parent / "fixtures" / "v3"


def _copy(name: str, target: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, target / name))


def _version(directory: Path) -> int:
    with sqlite3.connect(directory / "experiment.sqlite") as db:
        version = int(db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
    db.close()
    return version


def _assert_same_search(resumed: list[tuple], straight: list[tuple]) -> None:
    """The same candidates, up to the last bits of the parameters: the fixture's pending
    generation was asked by CMA-ES on the installation that wrote it, and another numpy or BLAS
    build may round its linear algebra differently (the README's Reproducibility says so). Seeds,
    statuses, attempts and threads are exact; fitnesses may differ by one validation example."""
    assert [r[:2] for r in resumed] == [r[:2] for r in straight]
    for a, b in zip(resumed, straight):
        assert (a[3], a[4], a[8], a[9]) == (b[3], b[4], b[8], b[9]), (a, b)
        assert json.loads(a[2]) == pytest.approx(json.loads(b[2]), rel=1e-9, abs=1e-12), (a, b)
        if a[5] is not None or b[5] is not None:
            assert abs(a[5] - b[5]) <= 1 / 299, (a, b)


def test_a_killed_v3_search_reports_unchanged_then_resumes_to_the_uninterrupted_result(tmp_path):
    run = _copy("v3-search-killed", tmp_path)
    assert _version(run) == 3
    before = (run / "experiment.sqlite").read_bytes()
    st = status(run)
    assert st["state"] == "stopped" and st["generations_completed"] == 1 and st["candidates"]["pending"] > 0
    for args in (("status",), ("log", "0", "1"), ("analyze", "--out", str(tmp_path / "report"))):
        result = run_cli(args[0], str(run), *args[1:])
        assert result.returncode == 0, result.stderr
    assert (run / "experiment.sqlite").read_bytes() == before and _version(run) == 3

    cli("start", str(run), check=True)
    assert _version(run) == SCHEMA_VERSION
    with Store(run / "experiment.sqlite", readonly=True) as store:
        generations = store.generations()
        assert all(g.asked_summary is not None and g.told_summary is not None for g in generations)
    # The same config run from scratch by this version gives the same candidates.
    straight = tmp_path / "straight"
    init_experiment(straight, run / "config.toml")
    cli("start", str(straight), check=True)
    _assert_same_search(candidate_rows(run), candidate_rows(straight))


def test_a_v3_final_compares_and_extends(tmp_path):
    run = _copy("v3-final", tmp_path)
    before = (run / "experiment.sqlite").read_bytes()
    result = run_cli("compare", str(run), "--json")
    assert result.returncode == 0, result.stderr
    import json

    losses = {s["label"]: s for s in json.loads(result.stdout)["losses"]}
    assert set(losses) == {"cross-entropy", "candidate-1:3"} and all(s["finished"] == 2 for s in losses.values())
    assert run_cli("robustness", str(run), "--eps", "0.1").returncode == 0
    assert (run / "experiment.sqlite").read_bytes() == before
    # A third repeat per loss is added; the two recorded ones are kept as they were.
    cli("final", str(run), "--repeats", "3", check=True)
    after = {s["label"]: s for s in json.loads(run_cli("compare", str(run), "--json").stdout)["losses"]}
    for label, summary in losses.items():
        assert after[label]["finished"] == 3
        assert after[label]["accuracies"][:2] == summary["accuracies"]


@pytest.mark.parametrize("command", ["status", "analyze"])
def test_a_killed_v3_epbt_run_reads_without_change(tmp_path, command):
    run = _copy("v3-epbt-killed", tmp_path)
    before = (run / "experiment.sqlite").read_bytes()
    args = ("--out", str(tmp_path / "report")) if command == "analyze" else ()
    result = run_cli(command, str(run), *args)
    assert result.returncode == 0, result.stderr
    assert (run / "experiment.sqlite").read_bytes() == before


def test_a_killed_v3_epbt_run_resumes_to_its_end(tmp_path):
    run = _copy("v3-epbt-killed", tmp_path)
    cli("start", str(run), check=True)
    st = status(run)
    assert st["state"] == "finished" and st["candidates"]["pending"] == 0
    assert _version(run) == SCHEMA_VERSION


def test_an_earlier_versions_measured_auto_decision_is_kept_and_said_to_depend_on_a_timing(tmp_path):
    """Before the count, ``lend_idle_cores = "auto"`` measured. An experiment whose record says it
    measured a speed-up and lent resumes lending, although this version's count would not lend for
    its small MLP, so its results stay those it began with; status says they depend on a timing."""
    run = _copy("v3-search-killed", tmp_path)
    measured = {"mode": "auto", "workers": 2, "threads": 1, "cores": 2, "speedup": 1.65, "lend": True}
    with sqlite3.connect(run / "experiment.sqlite") as db:  # as the previous version recorded it
        db.execute("UPDATE meta SET value = ? WHERE key = 'lending'", (json.dumps(measured),))
    db.close()
    config = (run / "config.toml").read_text().replace("lend_idle_cores = true", 'lend_idle_cores = "auto"')
    (run / "config.toml").write_text(config)
    before = (run / "experiment.sqlite").read_bytes()
    st = status(run)
    assert st["lending"]["mode"] == "measure" and st["lending"]["recorded_as"] == "auto" and st["lending"]["lend"]
    assert st["notes"] == [TIMING_NOTE]
    assert f"note: {TIMING_NOTE}" in run_cli("status", str(run)).stdout
    assert (run / "experiment.sqlite").read_bytes() == before  # reading changed nothing

    cli("start", str(run), check=True)
    with Store(run / "experiment.sqlite", readonly=True) as store:
        assert store.get_meta("lending") == {**measured, "mode": "measure", "min_speedup": 1.3, "recorded_as": "auto"}
    # Bit for bit what the fixture resumes to with its own record (lending forced on).
    forced = _copy("v3-search-killed", tmp_path / "forced")
    cli("start", str(forced), check=True)
    assert candidate_rows(run) == candidate_rows(forced)
    assert any(row[-1] == 2 for row in candidate_rows(run))  # some candidates were lent a core


def test_a_v3_final_says_its_lending_was_measured(tmp_path):
    run = _copy("v3-final", tmp_path)
    st = status(run)
    assert st["lending"]["mode"] == "measure" and not st["lending"]["lend"] and st["notes"] == [TIMING_NOTE]
