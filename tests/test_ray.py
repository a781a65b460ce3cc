"""The Ray evaluator on a real local Ray instance (num_cpus=2): the same database as the local
evaluator, streamed results, a worker killed mid-evaluation, the driver killed mid-search, `final`
through Ray, and the one-line error without ray installed."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from experiments import OWN, SMALL, cli, merged, write_config
from taylorglo.evaluators.base import Job
from taylorglo.evaluators.lending import Lending
from taylorglo.evaluators.recipes import FreshRun
from taylorglo.experiment import init_experiment, start, status
from taylorglo.experiment.config import ExperimentConfig
from taylorglo.training.config import TrainConfig

ray = pytest.importorskip("ray", reason="the Ray evaluator's tests need ray: pip install -e '.[test]'")

from taylorglo.evaluators.ray import RayEvaluator  # noqa: E402  (needs ray)

RAY = {"kind": "ray", "max_in_flight": 2}
# About 0.5 s per candidate (1,000 steps): long enough for a kill to land inside an evaluation.
SLOW = merged(SMALL, training={"steps": 20000}, search={"population": 4, "generations": 3, "partial_fraction": 0.05})
ROWS = (
    "SELECT generation, idx, params, seed, status, fitness, val_accuracy, val_loss, steps, attempts "
    "FROM candidates ORDER BY generation, idx"
)


def _rows(directory: Path) -> list[tuple]:
    with sqlite3.connect(directory / "experiment.sqlite") as db:
        return db.execute(ROWS).fetchall()


def _metrics(directory: Path) -> dict[tuple[int, int], dict]:
    with sqlite3.connect(directory / "experiment.sqlite") as db:
        rows = db.execute("SELECT generation, idx, metrics, worker FROM candidates").fetchall()
    return {(g, i): {**json.loads(m or "{}"), "_worker": w} for g, i, m, w in rows}


@pytest.fixture(scope="module")
def ray_cluster():
    """A real local Ray instance with two CPUs; the evaluator joins it (and leaves it running)."""
    # Its workers import the tests' model plug-ins (tests/gated_model.py) from here.
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parent), before]))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()
    if before is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = before


@pytest.fixture(scope="module")
def slow_local(tmp_path_factory) -> list[tuple]:
    """The uninterrupted SLOW search on the local evaluator: what every Ray run must reproduce."""
    root = tmp_path_factory.mktemp("slow-local")
    init_experiment(root / "run", write_config(root / "slow.toml", SLOW))
    start(root / "run")
    return _rows(root / "run")


def _training_workers(prefix: str = "ray::TrainingWorker") -> list[int]:
    """PIDs of Ray worker processes of our actor class (or of ``prefix``), from their titles."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                title = fh.read().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if title.startswith(prefix):
            pids.append(int(entry))
    return pids


def _busy_training_worker(timeout: float = 300.0) -> int:
    """The PID of a Ray worker that is training a candidate right now (title ``...evaluate``)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for pid in _training_workers():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    if b"TrainingWorker.evaluate" in fh.read():
                        return pid
            except OSError:
                continue
        time.sleep(0.02)
    raise AssertionError("no Ray worker started evaluating a candidate")


# --------------------------------------------------------------------------------------------


def test_ray_search_writes_the_same_database_as_the_local_evaluator(ray_cluster, tmp_path):
    local = tmp_path / "local"
    lend = {"lend_idle_cores": True}  # by its count the digits MLP would not lend; this checks the plan
    init_experiment(local, write_config(tmp_path / "local.toml", merged(SMALL, evaluator=lend)))
    start(local)
    remote = tmp_path / "ray"
    init_experiment(remote, write_config(tmp_path / "ray.toml", merged(SMALL, evaluator={**RAY, **lend})))
    result = start(remote)
    assert result["state"] == "finished"
    assert _rows(remote) == _rows(local)
    # The same thread plan: on this one-node cluster, a generation's last of an odd number of
    # trainings runs on both actors' cores, like on the local pool (the seeded search has some).
    threads = {key: m["threads"] for key, m in _metrics(remote).items() if "threads" in m}
    assert threads == {key: m["threads"] for key, m in _metrics(local).items() if "threads" in m}
    assert 2 in threads.values()
    # The trainings really ran in Ray worker processes, not in this one.
    workers = {m["_worker"] for m in _metrics(remote).values() if m["_worker"]}
    assert workers and all(not w.endswith(f":{os.getpid()}") for w in workers)
    # The actors are kept for the whole search: never more names than max_in_flight. (Not exactly
    # two: jobs go only to actors that are up, and on a loaded machine the second one can come up
    # after this tiny search's ~1 s of training is over.)
    assert 1 <= len(workers) <= 2


def test_a_generations_last_trainings_get_the_idle_actors_cores_on_one_node(ray_cluster):
    """The local evaluator's plan where all actors share one node (this 2-CPU instance); a third
    actor could not run at once, so it counts as two; pinned threads are left alone."""
    ray_config = ExperimentConfig.from_dict(merged(SMALL, evaluator=RAY)).evaluator
    for workers in (2, 3):
        with RayEvaluator(TrainConfig(), ray_config, workers=workers) as evaluator:
            assert evaluator.lending() == Lending(2, 1, 2)
            assert evaluator.lending().plan(7) == [None] * 6 + [2]
            assert evaluator.lending().plan(8) == [None] * 8
            assert evaluator.lending().plan(0) == []
    with RayEvaluator(TrainConfig(threads=1), ray_config, workers=2) as evaluator:
        assert evaluator.lending() is None


def test_results_stream_back_as_each_finishes(ray_cluster, tmp_path):
    """Ordered by a file, not by a clock (``tests/gated_model.py``): every job but the first waits
    until the gate opens, and the test opens it only once it holds a result, so a first result in
    hand with the gate still shut came back while the others were still training."""
    gate = tmp_path / "gate"
    config = ExperimentConfig.from_dict(merged(SLOW, evaluator=RAY))
    training = dataclasses.replace(
        config.candidate_training(), model="gated_model:model", steps=200, model_options={"gate": str(gate)}
    )
    jobs = [Job(0, k, FreshRun(None), seed=k) for k in range(4)]  # cross-entropy: every job trains
    arrived = []
    with RayEvaluator(training, config.evaluator, workers=2) as evaluator:
        for result in evaluator.evaluate(jobs):
            arrived.append((result, gate.exists()))
            gate.touch()
    assert sorted(r.index for r, _ in arrived) == [0, 1, 2, 3]
    assert all(r.status == "evaluated" for r, _ in arrived), [r.reason for r, _ in arrived]
    assert [opened for _, opened in arrived] == [False, True, True, True]


def test_a_users_objective_on_ray_records_the_local_evaluators_candidates(ray_cluster, tmp_path):
    """The user's own training loop (tests/own_objective.py) is called by Ray's actors exactly as
    by the local pool: the same candidates, fitnesses and metrics it returned."""
    local, remote = tmp_path / "local", tmp_path / "ray"
    init_experiment(local, write_config(tmp_path / "local.toml", OWN))
    start(local)
    init_experiment(remote, write_config(tmp_path / "ray.toml", merged(OWN, evaluator=RAY)))
    assert start(remote)["state"] == "finished"
    assert _rows(remote) == _rows(local)
    assert any(r[4] == "evaluated" for r in _rows(remote))
    drop = ("threads", "_worker", "wall_time", "step_time", "worker_startup")
    same = [{k: v for k, v in m.items() if k not in drop} for _, m in sorted(_metrics(remote).items())]
    assert same == [{k: v for k, v in m.items() if k not in drop} for _, m in sorted(_metrics(local).items())]


@pytest.mark.parametrize("retries", [2, 0])
def test_a_worker_killed_mid_evaluation(ray_cluster, slow_local, tmp_path, retries):
    directory = tmp_path / "run"
    init_experiment(
        directory, write_config(tmp_path / "slow.toml", merged(SLOW, evaluator={**RAY, "retries": retries}))
    )
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start(directory)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    victim = _busy_training_worker()
    os.kill(victim, signal.SIGKILL)
    thread.join(timeout=300)
    assert not thread.is_alive() and not errors, errors
    assert status(directory)["state"] == "finished"
    rows = _rows(directory)
    metrics = _metrics(directory)
    if retries:
        # The candidate ran again on another worker, with the same result as if nothing happened.
        assert rows == slow_local
        rerun = [key for key, m in metrics.items() if m.get("evaluator_retries")]
        assert len(rerun) == 1 and metrics[rerun[0]]["evaluator_retries"] == 1
        assert not metrics[rerun[0]]["_worker"].endswith(f":{victim}")
    else:
        # No retries: that one candidate is recorded as failed with the reason; the rest match.
        failed = [r for r in rows if r[4] == "failed"]
        assert len(failed) == 1
        reason = _reason(directory, failed[0][0], failed[0][1])
        assert "lost" in reason and f":{victim}" in reason
        same = [(a, b) for a, b in zip(rows, slow_local) if a[:2] == b[:2] and a[0] == failed[0][0]]
        assert all(a == b for a, b in same if a[1] != failed[0][1])


def _reason(directory: Path, generation: int, index: int) -> str:
    with sqlite3.connect(directory / "experiment.sqlite") as db:
        return db.execute(
            "SELECT reason FROM candidates WHERE generation = ? AND idx = ?", (generation, index)
        ).fetchone()[0]


def test_driver_killed_mid_search_resumes_with_the_same_results(ray_cluster, slow_local, tmp_path):
    """`taylorglo start` with its own private Ray instance, kill -9 in generation 1: its Ray workers
    go with it, and `start` again finishes with exactly the uninterrupted search's results."""
    directory = tmp_path / "run"
    init_experiment(directory, write_config(tmp_path / "slow.toml", merged(SLOW, evaluator=RAY)))
    before = set(_training_workers())
    agents_before = set(_training_workers("ray::"))  # the test instance's own processes
    driver = subprocess.Popen(
        [sys.executable, "-m", "taylorglo", "start", str(directory), "--plain"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 300
        while time.time() < deadline and driver.poll() is None:
            if (
                os.path.exists(directory / "experiment.sqlite")
                and len([r for r in _rows(directory) if r[4] != "pending"]) >= 6
            ):
                break
            time.sleep(0.05)
        assert driver.poll() is None, "the search ended before it could be killed"
        ours = set(_training_workers()) - before
        assert ours, "the driver's Ray workers were not found"
        driver.kill()
        driver.wait(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
    recorded = [r for r in _rows(directory) if r[4] != "pending"]
    assert 6 <= len(recorded) < len(slow_local)
    # The driver's workers end with it (they belong to it); polled, with room for a loaded machine.
    deadline = time.time() + 120
    while time.time() < deadline and ours & set(_training_workers()):
        time.sleep(0.2)
    assert not ours & set(_training_workers()), "Ray workers outlived the killed driver"
    # Ray's own agents of the killed instance may linger as orphans (see the README); end them.
    for pid in set(_training_workers("ray::")) - agents_before:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                orphan = fh.read().rsplit(")", 1)[1].split()[1] == "1"
            if orphan:
                os.kill(pid, signal.SIGKILL)
        except (OSError, IndexError):
            pass
    result = start(directory)  # resumes on the test's Ray instance
    assert result["state"] == "finished"
    assert _rows(directory) == slow_local


def test_final_runs_on_ray_and_saves_networks_on_the_driver(ray_cluster, tmp_path):
    from taylorglo.experiment.final import run_final
    from taylorglo.loss import parse_loss
    from taylorglo.training.checkpoint import load_network
    from taylorglo.training.data import load_dataset
    from taylorglo.training.trainer import evaluate

    tiny = merged(SMALL, training={"steps": 600}, search={"population": 4, "generations": 1, "partial_fraction": 0.1})
    directory = tmp_path / "run"
    init_experiment(directory, write_config(tmp_path / "tiny.toml", tiny))
    start(directory)
    run_final(directory, repeats=2, evaluator={"kind": "ray"}, workers=2)
    with sqlite3.connect(directory / "experiment.sqlite") as db:
        runs = db.execute("SELECT status, test_accuracy, model_path, worker FROM final_runs").fetchall()
    assert len(runs) == 4 and all(r[0] == "finished" for r in runs)
    data = load_dataset("digits")
    for _, accuracy, path, worker in runs:
        assert not worker.endswith(f":{os.getpid()}")
        model, info = load_network(directory / path)
        assert evaluate(model, data.test_x, data.test_y, parse_loss(info["loss"]))[0] == pytest.approx(accuracy)
    assert not list((directory / "final").rglob(".*.tmp"))


def test_a_vectorized_search_and_final_on_ray(ray_cluster, tmp_path):
    """``vectorize`` on Ray: each actor trains stacks of candidates (and of final repeats, whose
    networks travel back to the driver), with the local evaluator's results in stacks (a member's
    result never depends on its stack, nor on who trains it)."""
    from taylorglo.experiment.final import run_final
    from taylorglo.training.checkpoint import load_network

    config = merged(SMALL, search={"population": 8, "generations": 2})
    local, remote = tmp_path / "local", tmp_path / "ray"
    local_config = merged(config, evaluator={"kind": "local", "workers": 2, "vectorize": 3})
    init_experiment(local, write_config(tmp_path / "local.toml", local_config))
    start(local)
    init_experiment(remote, write_config(tmp_path / "ray.toml", merged(config, evaluator={**RAY, "vectorize": 4})))
    assert start(remote)["state"] == "finished"
    assert _rows(remote) == _rows(local)
    sizes = [m.get("stack_size") for m in _metrics(remote).values() if m]
    assert max(s for s in sizes if s) > 1
    run_final(remote, repeats=2, workers=2)
    with sqlite3.connect(remote / "experiment.sqlite") as db:
        runs = db.execute("SELECT status, model_path, json_extract(metrics, '$.stack_size') FROM final_runs").fetchall()
    assert len(runs) == 4 and all(r[0] == "finished" and r[2] == 2 for r in runs)
    for _, path, _ in runs:
        load_network(remote / path)


def test_without_ray_installed_asking_for_it_is_one_line(tmp_path):
    directory = tmp_path / "run"
    init_experiment(directory, write_config(tmp_path / "ray.toml", merged(SMALL, evaluator=RAY)))
    code = (
        "import sys; sys.modules['ray'] = None\n"  # what `import ray` sees where it is not installed
        "from taylorglo.cli import main\n"
        f"sys.argv = ['taylorglo', 'start', {str(directory)!r}]\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'taylorglo[ray]'" in lines[0] and lines[0].startswith("error: ")
    assert status(directory)["candidates"]["evaluated"] == 0


def test_start_can_switch_an_experiment_to_ray_for_one_run(ray_cluster, tmp_path):
    directory = tmp_path / "run"
    init_experiment(directory, write_config(tmp_path / "local.toml", merged(SMALL, search={"generations": 1})))
    out = cli("start", str(directory), "--evaluator", "ray", "--plain", check=True)
    assert "finished" in out.stdout
    bad = cli("start", str(directory), "--evaluator", "local", "--address", "auto")
    assert bad.returncode == 2 and "--address" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("vectorize", [1, 2], ids=["alone", "stacked"])
def test_epbt_on_ray_matches_the_local_evaluator_and_ships_checkpoints(ray_cluster, tmp_path, vectorize):
    """EPBT's checkpoints travel as bytes: a Ray worker reads its starting state from the job and
    sends the state it reached back, so the databases *and* the networks equal a local run's;
    stacked too, where an actor trains two members' stretches at once."""
    import torch

    from taylorglo.training.checkpoint import load_state

    epbt = merged(
        {k: v for k, v in SMALL.items() if k != "search"},
        kind="epbt",
        training={"steps": 300},
        epbt={"population": 4, "ready_steps": 100, "distillation": {"steps": 20}, "novelty_pulsation": {"cycle": 2}},
    )
    local, remote = tmp_path / "local", tmp_path / "ray"
    local_evaluator = {"kind": "local", "workers": 2, "vectorize": vectorize}
    init_experiment(local, write_config(tmp_path / "local.toml", merged(epbt, evaluator=local_evaluator)))
    init_experiment(
        remote, write_config(tmp_path / "ray.toml", merged(epbt, evaluator={**RAY, "vectorize": vectorize}))
    )
    start(local)
    assert start(remote)["state"] == "finished"
    assert _rows(remote) == _rows(local)
    if vectorize > 1:
        assert {m.get("stack_size") for m in _metrics(remote).values()} == {2}
    with sqlite3.connect(local / "experiment.sqlite") as a, sqlite3.connect(remote / "experiment.sqlite") as b:
        query = "SELECT * FROM members ORDER BY generation, idx"
        assert a.execute(query).fetchall() == b.execute(query).fetchall()
    metrics = _metrics(remote)
    for (g, i), m in metrics.items():
        assert m["checkpoint"] == str(remote / f"checkpoints/g{g:04d}-m{i:03d}.pt")
        assert not m["_worker"].endswith(f":{os.getpid()}")
    names = sorted(p.name for p in (local / "checkpoints").iterdir())
    assert names == sorted(p.name for p in (remote / "checkpoints").iterdir()) and len(names) == 4
    for name in names:
        x, y = load_state(local / "checkpoints" / name)["model"], load_state(remote / "checkpoints" / name)["model"]
        assert all(torch.equal(x[k], y[k]) for k in x)
