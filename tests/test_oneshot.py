"""One-shot experiments (``kind = "oneshot"``): given losses trained on the full schedule N times
each with paired seeds, through init/start/status/final/compare, crash-safe under ``kill -9``."""

from __future__ import annotations

import json
import signal
import sqlite3

import pytest

from experiments import SMALL, cli, kill_9_when, merged, write_config
from taylorglo.errors import TaylorGLOError
from taylorglo.experiment import ExperimentConfig, init_experiment, start, status
from taylorglo.experiment.contenders import final_seed, params_label
from taylorglo.training.checkpoint import load_network

FOUND = "taylorglo:8.2896,0.2415,7.8726,8.9666,2.0184,7.0513,-10.9408,7.5216"
BASE = {k: v for k, v in SMALL.items() if k != "search"}
ONESHOT = merged(
    BASE,
    name="digits-oneshot",
    kind="oneshot",
    training={"steps": 300},
    oneshot={"losses": ["cross-entropy", {"label": "found", "loss": FOUND}], "repeats": 2},
)
# Slower runs (about a second each) so that a kill lands between two of them.
SLOW = merged(ONESHOT, training={"steps": 4000}, oneshot={"repeats": 3})


def _runs(directory):
    with sqlite3.connect(directory / "experiment.sqlite") as db:
        return db.execute(
            "SELECT l.label, r.repeat, r.seed, r.status, r.test_accuracy, r.val_accuracy, r.steps, r.model_path "
            "FROM final_runs r JOIN final_losses l ON l.id = r.loss_id ORDER BY l.label, r.repeat"
        ).fetchall()


BAD = [
    ({"losses": []}, "oneshot.losses: must be a non-empty list"),
    ({"losses": "cross-entropy"}, "oneshot.losses: must be a non-empty list"),
    ({"losses": ["hinge"]}, "oneshot.losses[0]: expected 'cross-entropy' or 'taylorglo:P0,...,P7'"),
    ({"losses": ["taylorglo:1,2,3"]}, "oneshot.losses[0]: params: "),
    ({"losses": ["cross-entropy", "ce"]}, "oneshot.losses[1]: 'cross-entropy' is given twice"),
    ({"losses": [{"loss": FOUND, "label": "a b"}]}, "oneshot.losses[0].label: must be a non-empty name"),
    ({"losses": [{"los": FOUND}]}, "oneshot.losses[0]: a table must be"),
    ({"losses": ["cross-entropy"], "repeats": 0}, "oneshot.repeats: must be a positive integer"),
    ({"losses": ["cross-entropy"], "save_models": "yes"}, "oneshot.save_models: must be true or false"),
    ({"losses": ["cross-entropy"], "repeat": 3}, "oneshot.repeat: unknown field"),
]


@pytest.mark.parametrize("table,message", BAD)
def test_a_bad_oneshot_table_is_one_line_naming_the_field(table, message):
    with pytest.raises(TaylorGLOError) as err:
        ExperimentConfig.from_dict({**ONESHOT, "oneshot": table})
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_the_oneshot_table_round_trips_through_the_store_format():
    config = ExperimentConfig.from_dict(ONESHOT)
    assert [g.label for g in config.oneshot.losses] == ["cross-entropy", "found"]
    again = ExperimentConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and again.population == 4
    unnamed = ExperimentConfig.from_dict(merged(ONESHOT, oneshot={"losses": [FOUND]}))
    (only,) = unnamed.oneshot.losses
    assert only.label == params_label(only.params) and only.spec == FOUND


def test_oneshot_runs_end_to_end_from_the_cli(tmp_path):
    run = tmp_path / "run"
    created = cli("init", str(run), str(write_config(tmp_path / "oneshot.toml", ONESHOT)), check=True)
    assert "one-shot, 2 losses x 2 repeats, mlp on digits" in created.stdout
    assert json.loads(cli("status", str(run), "--json", check=True).stdout)["state"] == "not started"
    started = cli("start", str(run), "--plain", check=True)
    assert (
        "digits-oneshot: finished, 4/4 runs finished (2 losses x 2 repeats, paired seeds), 0 failed" in started.stdout
    )
    rows = _runs(run)
    assert [(label, repeat) for label, repeat, *_ in rows] == [("cross-entropy", 0), ("cross-entropy", 1)] + [
        ("found", 0),
        ("found", 1),
    ]
    # Paired seeds: repeat r of every loss trains from the same seed, the full schedule, on the test set.
    assert all(seed == final_seed(0, repeat) for _, repeat, seed, *_ in rows)
    assert all(r[3] == "finished" and 0 < r[4] <= 1 and r[6] == 300 for r in rows)
    for *_, path in rows:
        load_network(run / path)
    report = json.loads(cli("status", str(run), "--json", check=True).stdout)
    assert report["state"] == "finished" and report["runs"] == {"total": 4, "finished": 4, "failed": 0, "pending": 0}
    means = {entry["label"]: entry["mean"] for entry in report["losses"]}
    assert means == {label: sum(r[4] for r in rows if r[0] == label) / 2 for label in means}
    assert report["best"]["fitness"] == max(means.values())

    # Running it again trains nothing; final adds only the new repeats; compare tests the losses.
    again = cli("start", str(run), "--plain", check=True)
    assert "4 runs already recorded, 0 to run" in again.stderr and _runs(run) == rows
    more = cli("final", str(run), "--repeats", "3", "--plain", check=True)
    assert "4 runs already recorded, 2 to run" in more.stderr
    assert _runs(run)[:2] == rows[:2] and len(_runs(run)) == 6
    compared = json.loads(cli("compare", str(run), "--json", check=True).stdout)
    assert [c["a"] + " vs " + c["b"] for c in compared["comparisons"]] == ["found vs cross-entropy"]
    paired = json.loads(cli("ttest", str(run), str(run), "--label-b", "cross-entropy", "--json", check=True).stdout)
    assert paired["a"]["label"] == "found" and paired["b"]["label"] == "cross-entropy"
    collated = cli("collate", str(tmp_path), check=True).stdout
    assert "digits-oneshot" in collated and "found" in collated
    refused = cli("final", str(run), "--params", FOUND.partition(":")[2])
    assert refused.returncode == 2 and refused.stderr.startswith("error: --params: not for a one-shot experiment")
    page = cli("analyze", str(run), check=True)
    assert "index.html" in page.stdout and (run / "report" / "final.csv").is_file()


def test_a_oneshot_killed_mid_run_resumes_to_the_uninterrupted_results(tmp_path):
    path = write_config(tmp_path / "slow.toml", SLOW)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    for directory in (straight, killed):
        init_experiment(directory, path)
    cli("start", str(straight), check=True)

    def between(db):
        counts = dict(db.execute("SELECT status, COUNT(*) FROM final_runs GROUP BY status").fetchall())
        return counts.get("finished", 0) >= 1 and counts.get("pending", 0) >= 1

    returncode, _ = kill_9_when(["start", str(killed)], killed, between)
    assert returncode == -signal.SIGKILL, "the runs ended before the kill"
    assert status(killed)["state"] == "stopped"
    before = [r for r in _runs(killed) if r[3] != "pending"]
    start(killed)  # the Python API resumes it as the CLI does
    after = _runs(killed)
    assert all(r in after for r in before)  # recorded before the kill, not re-run
    assert after == _runs(straight) and len(after) == 6
    assert status(killed)["state"] == "finished"
