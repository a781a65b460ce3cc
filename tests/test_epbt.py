"""EPBT end to end on digits: real worker processes, real checkpoints, real SQLite, kill -9."""

from __future__ import annotations

import json
import sqlite3

import pytest
import torch

from experiments import SMALL, cli, merged, straight_and_killed, write_config
from taylorglo.epbt.report import lineage, schedule_of
from taylorglo.experiment import Store, init_experiment, start, status
from taylorglo.training.checkpoint import load_network, load_state
from taylorglo.training.data import load_dataset
from taylorglo.training.trainer import evaluate

BASE = {k: v for k, v in SMALL.items() if k != "search"}
EPBT = merged(
    BASE,
    kind="epbt",
    training={"steps": 400},
    epbt={"population": 4, "ready_steps": 100, "distillation": {"steps": 20}, "novelty_pulsation": {"cycle": 2}},
)
# Slower segments (~0.5 s each) so that a kill lands inside a generation.
SLOW = merged(EPBT, training={"steps": 6000}, epbt={"ready_steps": 1500})


def _rows(directory):
    with sqlite3.connect(directory / "experiment.sqlite") as db:
        candidates = db.execute(
            "SELECT generation, idx, params, seed, status, fitness, val_accuracy, steps "
            "FROM candidates ORDER BY generation, idx"
        ).fetchall()
        members = db.execute("SELECT * FROM members ORDER BY generation, idx").fetchall()
    return candidates, members


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("epbt")
    path = write_config(root / "epbt.toml", EPBT)
    result = cli("init", str(root / "run"), str(path), check=True)
    assert "EPBT with 4 members evolving loss, lr, weight_decay every 100 steps" in result.stdout
    result = cli("start", str(root / "run"), "--plain", check=True)
    return root / "run", result


def test_an_epbt_run_trains_every_member_once_through_the_schedule(finished):
    directory, result = finished
    assert "4/4 EPBT generations of 100 steps, 4 members: 16 segments trained" in result.stdout
    with Store(directory / "experiment.sqlite") as store:
        members = store.members()
        candidates = store.candidates()
    assert len(members) == len(candidates) == 16
    for m in members:
        assert (m.start_step, m.stop_step) == (100 * m.generation, 100 * (m.generation + 1))
        if m.generation == 0:
            assert m.action == "init" and m.parent is None and m.resume_from is None
        else:
            assert m.resume_from == f"checkpoints/g{m.generation - 1:04d}-m{m.parent:03d}.pt"
            assert (m.action == "continue") == (m.parent == m.index)
            assert m.distill == (m.action != "continue")
    # Exploits and (on generation 2, the novelty cycle) novelty copies both happened.
    actions = {m.action for m in members}
    assert {"exploit", "novelty", "continue"} <= actions
    assert all(c.status == "evaluated" and c.steps == 100 * (c.generation + 1) for c in candidates)
    # A child that continued its own network kept its genes; one that copied got mutated genes.
    by_key = {(c.generation, c.index): c for c in candidates}
    for m in members:
        if m.generation and m.action == "continue":
            assert by_key[(m.generation, m.index)].params == by_key[(m.generation - 1, m.index)].params
        elif m.generation:
            assert by_key[(m.generation, m.index)].params != by_key[(m.generation - 1, m.parent)].params


def test_the_best_members_schedule_network_and_status(finished):
    directory, _ = finished
    best = json.loads((directory / "best.json").read_text())
    info = status(directory)
    assert info["kind"] == "epbt" and info["state"] == "finished"
    assert info["generations_completed"] == info["generations_total"] == 4
    assert (
        (best["generation"], best["index"]) == (info["best"]["generation"], info["best"]["index"]) == (3, best["index"])
    )
    schedule = best["schedule"]
    assert [s["generation"] for s in schedule] == [0, 1, 2, 3]
    assert [(s["start_step"], s["stop_step"]) for s in schedule] == [(0, 100), (100, 200), (200, 300), (300, 400)]
    with Store(directory / "experiment.sqlite") as store:
        assert schedule == json.loads(json.dumps(schedule_of(store, 3, best["index"])))
        chain = lineage(store, 3, best["index"])
    for (c, m), entry in zip(chain, schedule):
        assert entry["params"] == c.params and entry["lr"] == m.lr
    # Only the final population's checkpoints remain; the best network is saved and reproduces
    # the test accuracy recorded for its last segment.
    assert sorted(p.name for p in (directory / "checkpoints").iterdir()) == [f"g0003-m{i:03d}.pt" for i in range(4)]
    model, meta = load_network(directory / "models" / "epbt-best.pt")
    data = load_dataset("digits")
    from taylorglo.training.trainer import as_loss

    accuracy, _ = evaluate(model, data.test_x, data.test_y, as_loss(meta["loss"]))
    assert accuracy == pytest.approx(best["test_accuracy"], abs=1e-9)
    assert best["test_accuracy"] > 0.5
    state = load_state(directory / best["checkpoint"])
    assert state["step"] == 400 and state["meta"]["generation"] == 3
    csv_rows = (directory / "members.csv").read_text().splitlines()
    assert len(csv_rows) == 17 and csv_rows[0].startswith("generation,index,parent,action,status")


def test_start_again_on_a_finished_epbt_run_changes_nothing(finished):
    directory, _ = finished
    before = _rows(directory)
    cli("start", str(directory), check=True)
    assert _rows(directory) == before


def test_plain_pbt_trains_cross_entropy_and_evolves_hyperparameters_only(tmp_path):
    config = merged(
        EPBT,
        epbt={
            "evolve": ["lr", "weight_decay"],
            "initial_loss": "cross-entropy",
            "novelty_pulsation": False,
            "distillation": False,
        },
    )
    init_experiment(tmp_path / "pbt", write_config(tmp_path / "pbt.toml", config))
    result = start(tmp_path / "pbt", workers=2)
    assert result["best"]["formula"] == "cross-entropy" and result["best"]["test_accuracy"] > 0.8
    with Store(tmp_path / "pbt" / "experiment.sqlite") as store:
        assert all(c.params == [] for c in store.candidates())
        members = store.members()
    assert len({(m.lr, m.weight_decay) for m in members}) > 1
    assert not any(m.distill for m in members)


def test_kill_9_mid_generation_then_resume_matches_an_uninterrupted_run(tmp_path):
    killed = tmp_path / "killed"
    seen = [0]

    def count_checkpoints() -> None:  # never more than population x 2 on disk
        if (killed / "checkpoints").is_dir():
            seen[0] = max(seen[0], sum(1 for p in (killed / "checkpoints").iterdir() if p.suffix == ".pt"))

    straight, _ = straight_and_killed(tmp_path, SLOW, on_poll=count_checkpoints)
    checkpoints_seen = seen[0]
    partial_candidates, partial_members = _rows(killed)
    assert any(row[4] == "pending" for row in partial_candidates)
    assert 4 <= checkpoints_seen <= 2 * 4

    cli("start", str(killed), check=True)
    (resumed_c, resumed_m), (straight_c, straight_m) = _rows(killed), _rows(straight)
    # No step lost or duplicated: every (generation, member) once, with contiguous steps.
    assert len(resumed_c) == len(straight_c) == 16
    assert resumed_m == straight_m
    for before in partial_candidates:
        if before[4] != "pending":
            assert before in resumed_c  # recorded before the kill, not re-run
    assert resumed_c == straight_c
    # The networks themselves are identical.
    for name in sorted(p.name for p in (straight / "checkpoints").iterdir()):
        a = load_state(straight / "checkpoints" / name)["model"]
        b = load_state(killed / "checkpoints" / name)["model"]
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_analyze_draws_the_lineage_and_the_best_members_schedule(finished):
    directory, _ = finished
    result = cli("analyze", str(directory), check=True)
    report = directory / "report"
    assert f"report: {report / 'index.html'}" in result.stdout
    page = (report / "index.html").read_text()
    for name in ("population.png", "lineage.png", "schedule.png"):
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f'src="{name}"' in page
    assert "<script" not in page and "Content-Security-Policy" in page
    best = json.loads((directory / "best.json").read_text())
    # The schedule table has one row per segment of the best member's lineage, with its genes.
    table = page.split('id="schedule-table"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr><td>") == len(best["schedule"]) == 4
    for entry in best["schedule"]:
        assert f"{entry['start_step']}–{entry['stop_step']}" in table
    assert f'<span id="best-candidate">{best["generation"]}:{best["index"]}</span>' in page
    assert (report / "generations.csv").read_text().count("\n") == 5


def test_final_replays_the_schedule_beside_cross_entropy_and_plain_pbt(finished, tmp_path):
    import shutil

    directory = tmp_path / "copy"
    shutil.copytree(finished[0], directory)
    result = cli("final", str(directory), "--repeats", "2", "--plain", check=True)
    best = json.loads((directory / "best.json").read_text())
    label = f"epbt-schedule-{best['generation']}:{best['index']}"
    assert label in result.stdout and "pbt vs cross-entropy" in result.stdout
    assert f"{label} vs pbt" in result.stdout
    with Store(directory / "experiment.sqlite") as store:
        losses = {loss.label: loss for loss in store.final_losses()}
        runs = store.final_runs()
    assert set(losses) == {"cross-entropy", label, "pbt"}
    assert len(runs) == 6 and all(r.status == "finished" and r.test_accuracy is not None for r in runs)
    # The replay trained one network through the lineage's hyperparameters, stretch by stretch.
    replay = [r for r in runs if r.loss_id == losses[label].id][0]
    lrs = {h["step"]: h["lr"] for h in replay.metrics["history"]}
    for entry in best["schedule"]:
        assert lrs[entry["stop_step"]] == pytest.approx(entry["lr"])
    assert replay.steps == 400 and (directory / replay.model_path).is_file()
    # Each PBT repeat is an EPBT experiment of its own: cross-entropy, hyperparameters only.
    pbt = [r for r in runs if r.loss_id == losses["pbt"].id]
    for run in pbt:
        sub = directory / run.metrics["experiment"]
        info = status(sub)
        assert info["state"] == "finished" and info["best"]["formula"] == "cross-entropy"
        assert run.test_accuracy == info["best"]["test_accuracy"]
    # Same seeds for every contender; a second `final` re-runs nothing.
    assert sorted(r.seed for r in runs if r.loss_id == losses["cross-entropy"].id) == sorted(r.seed for r in pbt)
    again = cli("final", str(directory), "--repeats", "2", "--plain", check=True)
    assert "0 to run" in again.stderr + again.stdout
    # analyze shows the final table with all three.
    cli("analyze", str(directory), check=True)
    page = (directory / "report" / "index.html").read_text()
    assert label in page and ">pbt<" in page


def test_final_refuses_search_options_and_an_unfinished_run(finished, tmp_path):
    directory, _ = finished
    result = cli("final", str(directory), "--params", "1,2,3,4,5,6,7,8")
    assert result.returncode != 0 and "--params: not for an EPBT experiment" in result.stderr
    init_experiment(tmp_path / "new", write_config(tmp_path / "e.toml", EPBT))
    result = cli("final", str(tmp_path / "new"))
    assert result.returncode != 0 and "has not finished its EPBT run (0 of ? generations)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# -- vectorized: each worker trains a generation's stretches as one population ----------------

VECTORIZED = merged(EPBT, evaluator={"kind": "local", "workers": 1, "vectorize": 4})


@pytest.fixture(scope="module")
def vectorized(tmp_path_factory):
    root = tmp_path_factory.mktemp("vectorized")
    cli("init", str(root / "run"), str(write_config(root / "epbt.toml", VECTORIZED)), check=True)
    result = cli("start", str(root / "run"), "--plain", check=True)
    assert "4/4 EPBT generations of 100 steps, 4 members: 16 segments trained" in result.stdout
    return root / "run"


def _metric(directory, name: str, table: str = "candidates") -> list:
    with sqlite3.connect(directory / "experiment.sqlite") as db:
        return [r[0] for r in db.execute(f"SELECT json_extract(metrics, '$.{name}') FROM {table}")]


def test_a_vectorized_epbt_run_agrees_with_one_at_a_time(vectorized, finished):
    (stacked_c, stacked_m), (plain_c, plain_m) = _rows(vectorized), _rows(finished[0])
    assert _metric(vectorized, "stack_size") == [4] * 16  # every generation one stack of its 4 members
    assert all(row[4] == "evaluated" for row in stacked_c)
    # Generation 0 is the same four members (genes, seeds) in both; each trains the same network
    # up to the floating-point order of batched kernels, so its fitness agrees closely.
    assert stacked_m[:4] == plain_m[:4]
    for row, lone in zip(stacked_c[:4], plain_c[:4]):
        assert row[:5] == lone[:5] and row[5] == pytest.approx(lone[5], abs=2 / 300)
    assert max(r[5] for r in stacked_c) == pytest.approx(max(r[5] for r in plain_c), abs=0.03)
    # Each member saved its own network and momentum, with its own hyperparameters.
    with Store(vectorized / "experiment.sqlite") as store:
        members = store.members(3)
    for m in members:
        state = load_state(vectorized / m.checkpoint)
        assert state["step"] == 400 and state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(m.lr)
        assert state["optimizer"]["param_groups"][0]["weight_decay"] == pytest.approx(m.weight_decay)
    assert len({m.lr for m in members}) > 1  # the stack really held different hyperparameters


def test_kill_9_in_a_vectorized_epbt_generation_resumes_exactly(tmp_path):
    config = merged(SLOW, evaluator={"kind": "local", "workers": 2, "vectorize": 2})
    straight, killed = straight_and_killed(tmp_path, config)
    cli("start", str(killed), check=True)
    # A killed stack is re-run whole, and its members' results never depend on the stack.
    assert _rows(killed) == _rows(straight)
    assert max(_metric(straight, "stack_size")) == 2
    for name in sorted(p.name for p in (straight / "checkpoints").iterdir()):
        a = load_state(straight / "checkpoints" / name)["model"]
        b = load_state(killed / "checkpoints" / name)["model"]
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_vectorized_epbt_final_replays_its_repeats_as_a_population(vectorized, tmp_path):
    import shutil

    directory = tmp_path / "copy"
    shutil.copytree(vectorized, directory)
    cli("final", str(directory), "--repeats", "3", "--no-pbt", "--plain", check=True)
    with Store(directory / "experiment.sqlite") as store:
        runs = store.final_runs()
    assert len(runs) == 6 and all(r.status == "finished" and r.steps == 400 for r in runs)
    assert _metric(directory, "stack_size", "final_runs") == [3] * 6  # three replays, three cross-entropy runs
    for run in runs:
        model, _ = load_network(directory / run.model_path)
        assert run.test_accuracy > 0.3
