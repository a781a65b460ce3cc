"""The user's own training as the fitness (``[training] objective``): a plain AdamW loop on a
tabular task (tests/own_objective.py) through the CLI, resume after kill -9, failures, early abort,
``final`` and ``taylorglo train``."""

from __future__ import annotations

import csv
import json
import sqlite3

import pytest
import torch

from experiments import OWN, candidate_rows, cli, killed_and_resumed, merged, run_cli, write_config
from taylorglo.errors import TaylorGLOError
from taylorglo.experiment import init_experiment, start, status
from taylorglo.experiment.config import ExperimentConfig
from taylorglo.loss import TaylorGLOLoss
from taylorglo.training.config import TrainConfig
from taylorglo.training.objective import run_objective


def _metrics(directory) -> dict[tuple[int, int], dict]:
    with sqlite3.connect(directory / "experiment.sqlite") as db:
        rows = db.execute("SELECT generation, idx, metrics FROM candidates").fetchall()
    return {(g, i): json.loads(m or "{}") for g, i, m in rows}


@pytest.fixture(scope="module")
def own_search(tmp_path_factory):
    """The OWN search run to its end through the CLI, as a user runs it."""
    root = tmp_path_factory.mktemp("own")
    path = write_config(root / "own.toml", OWN)
    cli("init", str(root / "run"), str(path), check=True)
    cli("start", str(root / "run"), check=True)
    return root / "run"


def test_a_search_whose_fitness_is_the_users_loop(own_search):
    rows = candidate_rows(own_search)
    trained = [r for r in rows if r[4] == "evaluated"]
    assert len(rows) == 8 and trained, rows
    metrics = _metrics(own_search)
    for g, i, _params, _seed, state, fitness, *_ in rows:
        if state != "evaluated":
            continue
        m = metrics[g, i]
        assert m["phase"] == "search" and m["epochs"] == 2  # budget 0.25 of 8 epochs
        assert m["objective_fitness"] == fitness and 0.0 <= fitness <= 1.0
        assert 0.0 <= m["test_accuracy"] <= 1.0  # every other number it returned is kept
        assert [r["step"] for r in m["reports"]] == [1.0, 2.0]
    assert max(r[5] for r in trained) > 0.8  # the loop learns the task with the found losses
    # Every other number it returned has its column in candidates.csv, after the store's own.
    with (own_search / "candidates.csv").open() as fh:
        table = {(int(r["generation"]), int(r["index"])): r for r in csv.DictReader(fh)}
    assert list(next(iter(table.values())))[-3:] == ["test_accuracy", "epochs", "phase"]
    for (g, i), row in table.items():
        if row["status"] == "evaluated":
            assert float(row["test_accuracy"]) == metrics[g, i]["test_accuracy"] and row["epochs"] == "2.0"
            assert row["phase"] == "search" and float(row["fitness"]) == metrics[g, i]["objective_fitness"]
    # What the objective called its fitness is what the CLI, best.json and the report call it.
    out = cli("status", str(own_search), check=True).stdout
    assert "= validation accuracy of the AdamW loop after 25% of the objective's full budget" in out
    assert json.loads((own_search / "best.json").read_text())["fitness_name"] == "validation accuracy of the AdamW loop"
    assert "--objective own_objective:objective" in out and "--dataset" not in out


def test_the_report_of_an_objective_search(own_search, tmp_path):
    cli("analyze", str(own_search), "--out", str(tmp_path / "report"), check=True)
    page = (tmp_path / "report" / "index.html").read_text()
    assert "validation accuracy of the AdamW loop after" in page
    assert (tmp_path / "report" / "candidates.csv").read_text() == (own_search / "candidates.csv").read_text()


def test_final_calls_the_objective_for_the_full_budget(own_search, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(own_search, run)
    cli("final", str(run), "--repeats", "2", check=True)
    with sqlite3.connect(run / "experiment.sqlite") as db:
        rows = db.execute("SELECT status, test_accuracy, metrics FROM final_runs").fetchall()
    assert len(rows) == 4
    for state, test_accuracy, metrics in rows:
        m = json.loads(metrics)
        assert state == "finished" and m["phase"] == "final" and m["epochs"] == 8
        assert test_accuracy == m["test_accuracy"]
    out = cli("compare", str(run), check=True).stdout
    assert "cross-entropy" in out and "t " in out
    # The saved modules are attacked on the test split the objective saved with them.
    out = cli("robustness", str(run), "--eps", "0.5", check=True).stdout
    assert "eps 0.5" in out and "cross-entropy" in out and "no saved network" not in out
    result = json.loads((run / "robustness.json").read_text())
    for entry in result["losses"]:
        clean, attacked = entry["accuracy"]
        assert clean["n"] == 2 and clean["mean"] > 0.8  # epsilon 0: the objective's own test accuracy
        assert attacked["mean"] < clean["mean"]  # features are not clipped to a pixel range
        with sqlite3.connect(run / "experiment.sqlite") as db:
            recorded = sorted(
                r[0]
                for r in db.execute(
                    "SELECT r.test_accuracy FROM final_runs r JOIN final_losses l ON l.id = r.loss_id "
                    "WHERE l.label = ?",
                    (entry["label"],),
                )
            )
        assert sorted(clean["values"]) == pytest.approx(recorded)


@pytest.mark.parametrize(
    ("save", "message"),
    [
        ("module", "was saved without a test split to attack; call trial.save_model(model, inputs=x_test"),
        ("none", "the objective did not call trial.save_model(model, inputs, targets)"),
    ],
)
def test_robustness_says_why_an_objectives_network_cannot_be_attacked(tmp_path, save, message):
    config = merged(
        OWN,
        training={"objective_options": {"epochs": 4, "save": save}},
        search={"population": 4, "generations": 1},
    )
    run = tmp_path / "run"
    cli("init", str(run), str(write_config(tmp_path / "own.toml", config)), check=True)
    cli("start", str(run), check=True)
    cli("final", str(run), "--repeats", "1", check=True)
    out = cli("robustness", str(run), "--eps", "0.1")
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def test_taylorglo_train_runs_the_objective(own_search):
    out = run_cli(
        "train", "--objective", "own_objective:objective", "--objective-option", "epochs=3",
        "--num-classes", "2", "--loss", "cross-entropy", "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["status"] == "ok" and result["phase"] == "final" and result["epochs"] == 3
    assert result["fitness"] == result["objective_fitness"]


def test_kill_9_and_resume_gives_the_uninterrupted_candidates(own_search, tmp_path):
    path = write_config(tmp_path / "own.toml", OWN)
    killed = tmp_path / "killed"
    init_experiment(killed, path)
    assert killed_and_resumed(killed) == candidate_rows(own_search)
    assert status(killed)["state"] == "finished"


@pytest.mark.parametrize(
    "objective, reason",
    [
        ("own_objective:raises", "RuntimeError: the user's loop broke on seed"),
        ("own_objective:returns_nan", "objective returned a non-finite fitness (nan)"),
        ("own_objective:returns_text", "objective returned str '0.9' as the fitness; expected a number"),
    ],
)
def test_a_failing_objective_fails_its_candidates_and_the_search_completes(tmp_path, objective, reason):
    config = merged(OWN, training={"objective": objective}, search={"generations": 1})
    init_experiment(tmp_path / "run", write_config(tmp_path / "c.toml", config))
    start(tmp_path / "run")
    rows = candidate_rows(tmp_path / "run")
    trained = [r for r in rows if r[4] != "rejected-invariant"]
    assert trained and all(r[4] == "failed" and r[5] == 0.0 for r in trained)
    with sqlite3.connect(tmp_path / "run" / "experiment.sqlite") as db:
        reasons = [r for (r,) in db.execute("SELECT reason FROM candidates WHERE status = 'failed'")]
    assert all(r.startswith(reason) for r in reasons), reasons
    if objective.endswith("raises"):  # where it was raised, on the same line; not the second line
        assert all("(at own_objective.py:" in r and "in raises)" in r and "second" not in r for r in reasons)
    assert status(tmp_path / "run")["state"] == "finished"


def _training(**changes) -> TrainConfig:
    return TrainConfig(objective="own_objective:objective", num_classes=2, **changes).validate()


def test_trial_report_aborts_under_the_configs_rule():
    training = _training(abort_at=1, abort_below=1.01, attempts=2, objective_options={"epochs": 3})
    result, metrics = run_objective(training, TaylorGLOLoss([1.0] * 8), seed=5, phase="search", threads=1)
    assert result.status == "aborted" and result.attempts == 2
    assert result.reason.startswith("early abort:") and "at step 1" in result.reason
    assert result.seed == 5 + 1_000_003  # the retry's fresh seed, as the built-in trainer's
    assert [r["step"] for r in metrics["reports"]] == [1.0]  # the retry's reports, stopped at the check
    fine, _ = run_objective(_training(abort_at=1, abort_below=0.0), TaylorGLOLoss([1.0] * 8), 5, "search", 1)
    assert fine.status == "ok" and fine.attempts == 1


def test_the_objective_is_called_with_the_loss_and_a_trial():
    seen = {}

    def objective(loss_fn, trial):
        seen.update(loss=loss_fn, trial=trial)
        return {"fitness": torch.tensor(0.25), "fitness_name": "validation AUC", "note": "kept", "obj": object()}

    import sys
    import types

    module = types.ModuleType("objective_under_test")
    module.objective = objective
    sys.modules["objective_under_test"] = module
    try:
        training = TrainConfig(
            objective="objective_under_test:objective", num_classes=3, objective_options={"k": 1}
        ).validate()
        result, metrics = run_objective(training, TaylorGLOLoss([0.5] * 8), seed=11, phase="final", threads=2)
    finally:
        del sys.modules["objective_under_test"]
    trial = seen["trial"]
    assert isinstance(seen["loss"], TaylorGLOLoss)
    assert (trial.seed, trial.phase, trial.budget, trial.options, trial.threads, trial.num_classes) == (
        11, "final", 1.0, {"k": 1}, 2, 3,
    )  # fmt: skip
    assert trial.device == torch.device("cpu")
    assert result.status == "ok" and result.fitness == 0.25
    assert metrics["fitness_name"] == "validation AUC" and metrics["note"] == "kept"
    assert metrics["obj"].startswith("<object object")


@pytest.mark.parametrize(
    "training, message",
    [
        ({"objective": "own_objective:objective"}, "training.num_classes: must be an integer >= 2"),
        (
            {"objective": "own_objective:objective", "num_classes": 2, "dataset": "mnist"},
            "training.dataset: is the built-in trainer's; training.objective trains with its own code",
        ),
        ({"objective": "own_objective", "num_classes": 2}, "training.objective: must name a function"),
        ({"num_classes": 2}, "training.num_classes: is read from the dataset"),
    ],
)
def test_objective_config_errors_are_one_line(training, message):
    with pytest.raises(TaylorGLOError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ExperimentConfig.from_dict({**OWN, "training": training})


def test_what_an_objective_cannot_do_is_refused_in_one_line(tmp_path):
    with pytest.raises(TaylorGLOError, match='search.fitness: "fgsm" attacks'):
        ExperimentConfig.from_dict(merged(OWN, search={"fitness": "fgsm"}))
    epbt = {**OWN, "kind": "epbt", "epbt": {"population": 4}}
    epbt.pop("search")
    with pytest.raises(TaylorGLOError, match="training.objective: EPBT continues each member"):
        ExperimentConfig.from_dict(epbt)
    config = merged(OWN, training={"objective": "no_such_module:objective"})
    init_experiment(tmp_path / "run", write_config(tmp_path / "c.toml", config))
    out = cli("start", str(tmp_path / "run"))
    assert out.returncode == 2
    assert "training.objective: cannot import module 'no_such_module'" in out.stderr
    assert "Traceback" not in out.stderr


SCRIPT = '''
"""A user's script: its objective is defined right here, in __main__."""
import sys

import taylorglo


def objective(loss_fn, trial):
    import own_objective

    return own_objective.objective(loss_fn, trial)


if __name__ == "__main__":
    result = taylorglo.search(
        sys.argv[1], objective=objective, num_classes=2, options={"epochs": 4},
        population=4, generations=1, partial_fraction=0.5, workers=2,
    )
    print(result["state"], result["candidates"]["evaluated"])
'''


def test_python_api_search_with_a_function_defined_in_the_script(tmp_path):
    import subprocess
    import sys

    from experiments import plugin_env

    script = tmp_path / "mine.py"
    script.write_text(SCRIPT)
    run = tmp_path / "runs" / "mine"

    def go():
        return subprocess.run(
            [sys.executable, str(script), str(run)], capture_output=True, text=True, env=plugin_env(), timeout=600
        )

    first = go()
    assert first.returncode == 0, first.stderr
    state, evaluated = first.stdout.split()[-2:]
    assert state == "finished" and int(evaluated) >= 1
    rows = candidate_rows(run)
    assert go().stdout.split()[-2:] == [state, evaluated]  # called again: resumed (nothing left), same rows
    assert candidate_rows(run) == rows
    config = json.loads((run / "config.json").read_text())
    assert config["training"]["objective"] == "__main__:objective"
    out = cli("status", str(run), check=True).stdout  # reading it needs no objective
    assert "finished" in out


def test_objectives_workers_cannot_import_are_refused_in_one_line(monkeypatch):
    import sys
    import types

    from taylorglo.experiment.python_api import objective_ref

    with pytest.raises(TaylorGLOError, match="a lambda or a function defined inside another"):
        objective_ref(lambda loss_fn, trial: 0.0)

    def nested(loss_fn, trial):
        return 0.0

    with pytest.raises(TaylorGLOError, match="a lambda or a function defined inside another"):
        objective_ref(nested)
    notebook = types.ModuleType("__main__")  # an interactive session's __main__ has no file
    monkeypatch.setitem(sys.modules, "__main__", notebook)
    cell = types.FunctionType(nested.__code__, {}, "cell")
    cell.__module__, cell.__qualname__ = "__main__", "cell"
    with pytest.raises(TaylorGLOError, match="interactive session .* from fit import objective"):
        objective_ref(cell)
    notebook.__file__ = "/somewhere/script.py"
    assert objective_ref(cell) == "__main__:cell"
    with pytest.raises(TaylorGLOError, match="ray workers cannot import"):
        objective_ref(cell, evaluator="ray")
    from own_objective import objective

    assert objective_ref(objective) == "own_objective:objective"


def test_resuming_a_script_objective_elsewhere_says_how():
    from taylorglo.training.objective import load_objective

    with pytest.raises(TaylorGLOError, match="was defined in the script that started the experiment"):
        load_objective("__main__:no_such_objective")
