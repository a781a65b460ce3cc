"""The experiment host end to end: real searches on digits, real worker processes, real SQLite."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from experiments import SMALL, cli, eventually, merged, straight_and_killed, write_config
from taylorglo.errors import TaylorGLOError
from taylorglo.evaluators import FreshRun, Job, LocalEvaluator, evaluate_job, lending
from taylorglo.experiment import ExperimentConfig, Store, init_experiment, start, status
from taylorglo.experiment.lock import ExperimentLock, is_running
from taylorglo.training import TrainConfig, load_dataset
from taylorglo.training.cost import network_macs, step_macs
from taylorglo.training.models import build_model
from taylorglo.training.trainers import probe

# A slower variant for the kill test: ~0.3 s per candidate, so a kill lands inside a generation.
# Lending forced on: the resumed generations must replay the lent threads too.
SLOW = merged(
    SMALL,
    training={"steps": 12000},
    search={"generations": 3, "partial_fraction": 0.05},
    evaluator={"lend_idle_cores": True},
)


def _rows(directory):
    """Every candidate as a comparable tuple, from the SQLite file itself."""
    with sqlite3.connect(directory / "experiment.sqlite") as db:
        return db.execute(
            "SELECT generation, idx, params, seed, status, fitness, val_accuracy, attempts FROM candidates "
            "ORDER BY generation, idx"
        ).fetchall()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One uninterrupted small search, shared by the tests that only read it."""
    root = tmp_path_factory.mktemp("search")
    path = write_config(root / "digits.toml", SMALL)
    result = cli("init", str(root / "run"), str(path), check=True)
    assert "taylorglo start" in result.stdout
    result = cli("start", str(root / "run"), check=True)
    return root / "run", result


def test_full_search_records_every_candidate_and_learns(finished):
    directory, result = finished
    st = status(directory)
    population, generations = SMALL["search"]["population"], SMALL["search"]["generations"]
    assert st["state"] == "finished"
    assert st["generations_completed"] == st["generations_total"] == generations
    c = st["candidates"]
    assert c["total"] == population * generations == len(_rows(directory))
    assert c["evaluated"] + c["rejected_invariant"] + c["failed"] + c["aborted"] == c["total"]
    assert c["pending"] == 0 and c["rejected_invariant"] > 0
    assert st["best"]["fitness"] >= 0.8
    assert len(st["best"]["params"]) == 8
    # Rejected candidates were never trained and score 0; trained ones carry their metrics.
    with Store(directory / "experiment.sqlite") as store:
        for cand in store.candidates():
            if cand.status == "rejected-invariant":
                assert cand.fitness == 0.0 and cand.wall_time is None and "invariant" in cand.reason
            elif cand.status == "evaluated":
                assert cand.fitness == cand.val_accuracy and cand.steps == 100 and cand.worker
                assert cand.metrics["history"] and cand.attempts == 1
    # The end of `start` says what was found and where it is.
    assert "best loss: fitness" in result.stdout and "best.json" in result.stdout
    best = json.loads((directory / "best.json").read_text())
    assert best["params"] == st["best"]["params"]
    assert len((directory / "candidates.csv").read_text().splitlines()) == c["total"] + 1
    assert len((directory / "generations.csv").read_text().splitlines()) == generations + 1
    # Without a terminal, progress is plain log lines (also kept in host.log).
    assert "generation 2 (3 of 3) done" in result.stderr
    assert "generation 2 (3 of 3) done" in (directory / "host.log").read_text()


def test_status_json_has_the_documented_keys(finished):
    directory, _ = finished
    out = json.loads(cli("status", str(directory), "--json", check=True).stdout)
    assert {"generations_completed", "generations_total", "candidates", "best"} <= set(out)
    assert {"evaluated", "rejected_invariant", "failed", "total"} <= set(out["candidates"])
    assert {"params", "fitness", "generation"} <= set(out["best"])
    text = cli("check", str(directory), check=True).stdout
    assert "finished" in text and "generation   2" in text


def test_start_again_on_a_finished_search_changes_nothing(finished):
    directory, _ = finished
    before = _rows(directory)
    result = cli("start", str(directory), check=True)
    assert _rows(directory) == before
    assert "finished" in result.stdout


def test_getinvocation_reproduces_a_recorded_candidate(finished):
    directory, _ = finished
    with Store(directory / "experiment.sqlite") as store:
        cand = next(c for c in store.candidates() if c.status == "evaluated")
    command = cli(
        "getinvocation", str(directory), "--candidate", f"{cand.generation}:{cand.index}", check=True
    ).stdout.strip()
    argv = command.split()
    assert argv[:2] == ["taylorglo", "train"]
    assert argv[argv.index("--threads") + 1] == str(cand.metrics["threads"])
    run = cli(*argv[1:], "--json", check=True)
    assert json.loads(run.stdout)["val_accuracy"] == cand.fitness  # same seed, same threads: bit-exact


def test_a_generations_last_trainings_get_the_idle_cores(finished):
    """An odd number of trainings on 2 workers: the last one runs on both cores, by a plan that
    depends only on the generation (so a resumed generation keeps it)."""
    assert LocalEvaluator(TrainConfig(), workers=2, threads=1).lending() == lending.Lending(2, 1, 2)
    plan = lending.Lending(2, 1, 2).plan
    assert plan(7) == [None] * 6 + [2]
    assert plan(8) == [None] * 8
    assert plan(1) == [2]
    assert lending.Lending(3, 1, 3).plan(7) == [None] * 6 + [3]
    assert lending.Lending(3, 1, 3).plan(8) == [None] * 8  # 3 // 2 = 1
    assert LocalEvaluator(TrainConfig(), workers=2, threads=2).lending().plan(3) == [None, None, 4]
    assert LocalEvaluator(TrainConfig(threads=1), workers=2).lending() is None  # pinned by the user
    assert LocalEvaluator(TrainConfig(), workers=1).lending() is None  # nothing to lend
    # Without lending, the layout is the workers' own threads.
    assert LocalEvaluator(TrainConfig(), workers=1, threads=2).layout() == lending.Lending(1, 2, 2)


def test_start_decides_lending_by_a_count_and_keeps_to_it(finished):
    """By default ("auto") the first start decides from the network's multiply-accumulates per
    step, counted from its shapes, never timed; it records the count, the threshold, the decision
    and the layout in the store and the log, and every candidate's threads follow the recorded plan."""
    directory, _ = finished
    with Store(directory / "experiment.sqlite") as store:
        candidates = store.candidates()
        decision = store.get_meta(lending.META_KEY)
        layout = store.get_meta("layout")
    config = ExperimentConfig.from_dict(SMALL)
    macs = network_macs(config.candidate_training(), load_dataset("digits"))
    assert decision == {
        "mode": "auto",
        "workers": 2,
        "threads": 1,
        "cores": 2,
        "step_macs": macs,
        "min_step_macs": lending.MIN_STEP_MACS,
        "lend": macs >= lending.MIN_STEP_MACS,
    }
    assert layout == {"workers": 2, "threads": 1, "cores": 2, "vectorize": 1}
    assert lending.describe(decision) in (directory / "host.log").read_text()
    for generation in range(SMALL["search"]["generations"]):
        trained = [c for c in candidates if c.generation == generation and c.status != "rejected-invariant"]
        plan = lending.Lending(2, 1, 2).plan(len(trained)) if decision["lend"] else [None] * len(trained)
        assert [c.metrics["threads"] for c in trained] == [t or 1 for t in plan]
    st = status(directory)
    assert st["lending"]["line"] == lending.describe(decision) and st["notes"] == []


def test_the_count_lends_for_networks_that_split_across_threads():
    """The rule's two sides, on the examples' networks: the digits MLP keeps its cores, MNIST's CNN
    (and a wide MLP) lend. A pure function of shapes: the same on any machine, at any load."""
    digits = load_dataset("digits")
    small = TrainConfig(dataset="digits", model="mlp", batch_size=64)
    assert network_macs(small, digits) == 3 * 64 * (64 * 256 + 256 * 10)  # Linear(64, 256), Linear(256, 10)
    assert network_macs(small, digits) < lending.MIN_STEP_MACS
    assert (
        network_macs(TrainConfig(model="mlp", batch_size=64, model_options={"hidden": 1024}), digits)
        >= lending.MIN_STEP_MACS
    )
    assert step_macs(build_model("mnist-cnn", (1, 28, 28), 10), (1, 28, 28), 100) >= lending.MIN_STEP_MACS
    decided = lending.decide("auto", lending.Lending(2, 1, 2), network_macs(small, digits))
    assert decided == lending.decide("auto", lending.Lending(2, 1, 2), network_macs(small, digits))
    assert not decided["lend"] and decided["step_macs"] == network_macs(small, digits)
    # The host reads the count from a worker: the same count.
    assert probe(small, digits).step_macs == network_macs(small, digits)


def test_a_measured_decision_uses_the_measurement_it_is_given_and_says_results_depend_on_it():
    lent = lending.Lending(2, 1, 2)
    calls = []

    def measured(speedup):
        def measure(threads, cores):
            calls.append((threads, cores))
            return speedup

        return measure

    fast = lending.decide("measure", lent, 0, measure=measured(1.6))
    slow = lending.decide("measure", lent, 0, measure=measured(1.1))
    assert calls == [(1, 2), (1, 2)]
    assert fast["lend"] and not slow["lend"] and fast["speedup"] == 1.6 and fast["min_speedup"] == lending.MIN_SPEEDUP
    assert lending.depends_on_timing(fast) and lending.TIMING_NOTE in lending.describe(fast)
    # Forced modes and the count do not depend on a timing.
    assert lending.decide(False, lent, 10**9) == {"mode": False, "workers": 2, "threads": 1, "cores": 2, "lend": False}
    assert not lending.depends_on_timing(lending.decide(True, lent, 0))
    assert not lending.depends_on_timing(lending.decide("auto", lent, 10**9))
    # An earlier version's "auto" was a measurement: read as one, decided as it was.
    old = {"mode": "auto", "workers": 2, "threads": 1, "cores": 2, "speedup": 1.65, "lend": True}
    assert lending.upgrade(old) == {**old, "mode": "measure", "min_speedup": lending.MIN_SPEEDUP, "recorded_as": "auto"}
    assert lending.depends_on_timing(old) and "earlier taylorglo" in lending.describe(old)


def test_an_opted_in_measurement_is_recorded_and_status_and_report_say_so(tmp_path):
    """``lend_idle_cores = "measure"`` times the network at the first start (the value is not
    asserted: it is a timing); status, its text and the report then say results depend on it."""
    config = merged(SMALL, search={"generations": 1, "population": 3}, evaluator={"lend_idle_cores": "measure"})
    directory = tmp_path / "run"
    init_experiment(directory, write_config(tmp_path / "measure.toml", config))
    start(directory)
    st = status(directory)
    assert st["lending"]["mode"] == "measure" and st["lending"]["speedup"] > 0
    assert st["notes"] == [lending.TIMING_NOTE]
    assert f"note: {lending.TIMING_NOTE}" in cli("status", str(directory), check=True).stdout
    cli("analyze", str(directory), "--out", str(tmp_path / "report"), check=True)
    page = (tmp_path / "report" / "index.html").read_text()
    assert 'id="timing-note"' in page and "results depend on a timing" in page


def test_kill_9_mid_generation_then_resume_matches_an_uninterrupted_run(tmp_path):
    uninterrupted, killed = straight_and_killed(tmp_path, SLOW)
    partial = _rows(killed)
    assert any(row[4] == "pending" for row in partial)
    # Orphaned workers notice their parent died and exit within a couple of seconds.
    workers = {
        int(w.split(":")[1])
        for (w,) in sqlite3.connect(killed / "experiment.sqlite").execute(
            "SELECT DISTINCT worker FROM candidates WHERE worker IS NOT NULL"
        )
    }
    # Polled, not slept on: a busy machine may take longer, and the test must not depend on load.
    assert workers and eventually(lambda: not [pid for pid in workers if _alive(pid)])

    # Resumed with another number of workers: the candidates keep the recorded threads.
    result = cli("start", str(killed), "--workers", "1", check=True)
    assert "every training keeps the 1 torch threads recorded" in result.stderr
    resumed, straight = _rows(killed), _rows(uninterrupted)
    # Nothing lost or duplicated, and results recorded before the kill were not re-run.
    assert len(resumed) == len(straight) == SLOW["search"]["population"] * SLOW["search"]["generations"]
    assert {row[:2] for row in resumed} == {row[:2] for row in straight}
    for before in partial:
        if before[4] != "pending":
            assert before in resumed
    assert resumed == straight
    assert status(killed)["best"] == status(uninterrupted)["best"]
    # ... with a generation's last trainings on lent cores, in both runs alike.
    threads = (
        sqlite3.connect(killed / "experiment.sqlite")
        .execute("SELECT json_extract(metrics, '$.threads') FROM candidates WHERE status = 'evaluated'")
        .fetchall()
    )
    assert (2,) in threads


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_a_second_start_is_refused_and_a_dead_holder_leaves_no_lock(tmp_path):
    path = write_config(tmp_path / "c.toml", SMALL)
    directory = init_experiment(tmp_path / "run", path).directory
    with ExperimentLock(directory):
        assert is_running(directory)["pid"] == os.getpid()
        with pytest.raises(TaylorGLOError, match="already running"):
            start(directory)
        result = cli("start", str(directory))
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
        assert f"pid {os.getpid()}" in result.stderr
    assert is_running(directory) is None
    # A holder killed with SIGKILL: the kernel drops its lock.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from taylorglo.experiment.lock import ExperimentLock; "
            f"ExperimentLock({str(directory)!r}).acquire(); print('held', flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    assert is_running(directory)["pid"] == holder.pid
    holder.kill()
    holder.wait()
    assert is_running(directory) is None
    ExperimentLock(directory).acquire().release()


def test_nan_candidates_are_failed_results_not_crashes(tmp_path):
    config = ExperimentConfig.from_dict(SMALL)
    training = config.candidate_training()
    good = evaluate_job(training, Job(0, 0, FreshRun((0, 0, 0, 5.0, 0, 0, 0, 0)), 0))  # pushes the target up
    nan = evaluate_job(training, Job(0, 1, FreshRun((1e30,) * 8), 0))
    assert good.status == "evaluated" and good.fitness > 0.5
    assert nan.status == "failed" and nan.fitness == 0.0 and "non-finite" in nan.reason
    # The same through worker processes, in one batch: the NaN one does not disturb the other.
    with LocalEvaluator(training, workers=2) as evaluator:
        results = {
            r.index: r
            for r in evaluator.evaluate(
                [Job(0, 0, FreshRun((0, 0, 0, 5.0, 0, 0, 0, 0)), 0), Job(0, 1, FreshRun((1e30,) * 8), 0)]
            )
        }
    assert results[0].status == "evaluated" and results[0].fitness == good.fitness
    assert results[1].status == "failed"
    # Each worker reports its start-up timings once, with its first result, failed or not.
    startups = [r.metrics["worker_startup"] for r in results.values() if "worker_startup" in (r.metrics or {})]
    workers = {r.worker for r in results.values() if r.worker}
    assert len(startups) == len(workers) >= 1
    for marks in startups:
        assert set(marks) == {"process_start", "data_load"}
        assert 0 < marks["process_start"] < 120 and marks["data_load"] >= 0

    # A whole search whose every candidate diverges still runs to its end.
    blowup = merged(
        SMALL, search={"mean": [1e30] * 8, "sigma": 1.0, "invariant": "off", "generations": 2, "population": 4}
    )
    directory = init_experiment(tmp_path / "nan", write_config(tmp_path / "nan.toml", blowup)).directory
    st = start(directory, workers=2)
    assert st["state"] == "finished"
    assert st["candidates"]["failed"] == st["candidates"]["total"] == 8
    assert st["best"] is None
