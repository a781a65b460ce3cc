"""The final evaluation and its statistics end to end: real trainings, real SQLite, scipy as referee."""

from __future__ import annotations

import json
import shutil
import sqlite3

import numpy as np
import pytest
from scipy import stats

from experiments import SMALL, cli, kill_9_when, merged, write_config
from taylorglo.analysis import stats as stats_module
from taylorglo.analysis.stats import collate, compare, describe, ttests
from taylorglo.errors import TaylorGLOError
from taylorglo.experiment import init_experiment, start
from taylorglo.experiment.final import final_seed, run_final
from taylorglo.loss import parse_loss
from taylorglo.training.checkpoint import load_network
from taylorglo.training.data import load_dataset
from taylorglo.training.trainer import evaluate

# Full schedule 600 steps (~0.3 s a run); candidates train 10% of it.
TINY = merged(SMALL, training={"steps": 600}, search={"population": 4, "generations": 2, "partial_fraction": 0.1})


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A finished tiny search, never modified (tests copy it)."""
    root = tmp_path_factory.mktemp("final")
    init_experiment(root / "run", write_config(root / "tiny.toml", TINY))
    start(root / "run")
    return root / "run"


@pytest.fixture(scope="module")
def finaled(searched, tmp_path_factory):
    """The search plus `final --repeats 2` through the CLI, as a user runs it."""
    directory = tmp_path_factory.mktemp("finaled") / "run"
    shutil.copytree(searched, directory)
    result = cli("final", str(directory), "--repeats", "2", "--workers", "2", check=True)
    assert "cross-entropy" in result.stdout and "Welch" in result.stdout
    return directory


def _final_rows(directory):
    with sqlite3.connect(directory / "experiment.sqlite") as db:
        return db.execute(
            "SELECT l.label, r.repeat, r.seed, r.status, r.test_accuracy, r.finished_at, r.model_path "
            "FROM final_runs r JOIN final_losses l ON l.id = r.loss_id ORDER BY l.label, r.repeat"
        ).fetchall()


def test_final_records_best_and_cross_entropy_with_identical_seeds(finaled):
    rows = _final_rows(finaled)
    assert len(rows) == 4
    with sqlite3.connect(finaled / "experiment.sqlite") as db:
        g, i = db.execute(
            "SELECT generation, idx FROM candidates WHERE status = 'evaluated' "
            "ORDER BY fitness DESC, generation, idx LIMIT 1"
        ).fetchone()
    assert {r[0] for r in rows} == {"cross-entropy", f"candidate-{g}:{i}"}
    assert all(r[3] == "finished" and 0.5 < r[4] <= 1.0 for r in rows)
    seeds = {}
    for _label, repeat, seed, *_ in rows:
        seeds.setdefault(repeat, set()).add(seed)
    assert all(len(s) == 1 for s in seeds.values())  # repeat r: one seed shared by both losses
    assert seeds[0] != seeds[1] and seeds[0] == {final_seed(0, 0)}


def test_saved_networks_reproduce_the_recorded_test_accuracy(finaled):
    data = load_dataset("digits")
    for _label, _repeat, seed, _status, test_accuracy, _, model_path in _final_rows(finaled):
        model, info = load_network(finaled / model_path)
        assert info["model"] == "mlp" and info["meta"]["seed"] == seed
        accuracy, _ = evaluate(model, data.test_x, data.test_y, parse_loss(info["loss"]))
        assert accuracy == pytest.approx(test_accuracy, abs=1e-9)


def test_compare_json_matches_scipy_computed_from_the_database(finaled):
    result = json.loads(cli("compare", str(finaled), "--json", check=True).stdout)
    rows = _final_rows(finaled)
    ce = [r[4] for r in rows if r[0] == "cross-entropy"]
    tg = [r[4] for r in rows if r[0] != "cross-entropy"]
    (comparison,) = result["comparisons"]
    assert comparison["b"] == "cross-entropy"
    student, welch = stats.ttest_ind(tg, ce, equal_var=True), stats.ttest_ind(tg, ce, equal_var=False)
    if student.pvalue == student.pvalue:  # NaN when both sides happen to have zero variance
        assert comparison["student_p"] == pytest.approx(student.pvalue, rel=1e-12)
        assert comparison["welch_p"] == pytest.approx(welch.pvalue, rel=1e-12)
        assert comparison["welch_t"] == pytest.approx(welch.statistic, rel=1e-12)
    by_label = {s["label"]: s for s in result["losses"]}
    assert by_label["cross-entropy"]["test_accuracy"]["mean"] == pytest.approx(sum(ce) / 2)
    assert by_label["cross-entropy"]["test_accuracy"]["n"] == 2


def test_ttests_match_scipy_and_handle_small_samples():
    a, b = [0.91, 0.93, 0.92, 0.95], [0.90, 0.89, 0.92]
    out = ttests(a, b)
    assert out["student_p"] == pytest.approx(stats.ttest_ind(a, b).pvalue)
    assert out["welch_p"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    pooled = ((3 * stats.tvar(a) + 2 * stats.tvar(b)) / 5) ** 0.5
    assert out["cohens_d"] == pytest.approx((sum(a) / 4 - sum(b) / 3) / pooled)
    assert ttests([0.9], [0.8, 0.7])["welch_p"] is None  # one run: no test, no crash
    assert describe([0.5])["std"] is None and describe([])["n"] == 0


def test_ttests_agree_with_scipy_stats_on_many_samples():
    """The t-tests are computed without importing scipy.stats (so `compare` starts at once): they
    must give what scipy.stats.ttest_ind gives, on samples of every shape a final produces."""
    rng = np.random.default_rng(0)
    samples = [
        (rng.normal(0.9, s, n).tolist(), rng.normal(0.9 + d, t, m).tolist())
        for n, m, s, t, d in [
            (2, 2, 0.01, 0.02, 0.0),
            (3, 10, 0.001, 0.05, 0.01),
            (10, 10, 0.01, 0.01, 0.003),
            (5, 4, 0.02, 0.001, -0.02),
            (30, 25, 0.005, 0.006, 0.001),
        ]
    ]
    samples.append(([0.9, 0.9, 0.9], [0.8, 0.81, 0.79]))  # one side without variance
    for df in (1, 1.5, 2, 3, 4.7, 10, 25, 60, 200, 1e4):  # the distribution itself, tails included
        for t in (0, 1e-6, 0.1, 0.5, 1, 2, 3, 5, 10, 30, 100, 1e3):
            assert stats_module._two_tailed_p(t, df) == pytest.approx(2 * stats.t.sf(t, df), rel=1e-8, abs=1e-300)
    for a, b in samples:
        out = ttests(a, b)
        for name, equal_var in (("student", True), ("welch", False)):
            expected = stats.ttest_ind(a, b, equal_var=equal_var)
            assert out[f"{name}_t"] == pytest.approx(float(expected.statistic), rel=1e-10)
            assert out[f"{name}_p"] == pytest.approx(float(expected.pvalue), rel=1e-9, abs=1e-300)


def test_final_resumes_and_extends_without_rerunning(finaled, tmp_path):
    directory = tmp_path / "run"
    shutil.copytree(finaled, directory)
    before = {(r[0], r[1]): r[5] for r in _final_rows(directory)}
    losses = run_final(directory, repeats=3, workers=2)
    assert [loss.label for loss in losses][0] == "cross-entropy"
    after = _final_rows(directory)
    assert len(after) == 6
    for label, repeat, *_, finished_at, _path in after:
        if (label, repeat) in before:
            assert finished_at == before[(label, repeat)]  # kept, not re-run
    # A run interrupted mid-way is a pending row; the next `final` runs exactly that one.
    with sqlite3.connect(directory / "experiment.sqlite") as db:
        db.execute(
            "UPDATE final_runs SET status = 'pending', test_accuracy = NULL, finished_at = NULL "
            "WHERE repeat = 2 AND loss_id = 1"
        )
    run_final(directory, repeats=3, workers=1)
    rows = _final_rows(directory)
    assert len(rows) == 6 and all(r[3] == "finished" for r in rows)


def test_retry_failed_reruns_only_the_failed_repeats(finaled, tmp_path):
    directory = tmp_path / "run"
    shutil.copytree(finaled, directory)
    before = {(r[0], r[1]): r for r in _final_rows(directory)}
    # What the local evaluator records when a worker dies three times under a run.
    with sqlite3.connect(directory / "experiment.sqlite") as db:
        db.execute(
            "UPDATE final_runs SET status = 'failed', reason = 'worker process died 3 times', "
            "test_accuracy = NULL WHERE repeat = 1 AND loss_id = 1"
        )
    shown = cli("compare", str(directory), check=True)
    assert "1 runs failed" in shown.stdout and "--retry-failed" in shown.stdout
    cli("final", str(directory), "--repeats", "2", "--workers", "1", check=True)  # without the flag: kept failed
    assert sum(r[3] == "failed" for r in _final_rows(directory)) == 1
    result = cli("final", str(directory), "--repeats", "2", "--workers", "1", "--retry-failed", check=True)
    assert "--retry-failed" not in result.stdout
    after = {(r[0], r[1]): r for r in _final_rows(directory)}
    assert all(r[3] == "finished" for r in after.values())
    for key, row in after.items():
        if row[1] == 1 and key[0] == "cross-entropy":
            assert row[5] != before[key][5] and row[4] == before[key][4]  # re-run, same seed, same accuracy
        else:
            assert row == before[key]  # kept


def test_generation_best_and_params(searched, tmp_path):
    directory = tmp_path / "run"
    shutil.copytree(searched, directory)
    losses = run_final(directory, repeats=1, generation_best=True, workers=2, save_models=False)
    assert [loss.source for loss in losses] == ["baseline", "best of generation 0", "best of generation 1"]
    losses = run_final(directory, repeats=1, params=[1, 0, 0, 0, 0, 0, 0, 0], workers=1, save_models=False)
    assert losses[1].label.startswith("params-") and losses[1].params == [1.0] + [0.0] * 7
    result = compare(directory)
    assert len(result["comparisons"]) == 3
    assert all(r[6] is None for r in _final_rows(directory))  # --no-save-models kept nothing


def test_robustness_accuracy_falls_as_epsilon_grows(finaled):
    result = cli("robustness", str(finaled), "--eps", "0.05,0.15,0.3", "--json", check=True)
    out = json.loads(result.stdout)
    assert out["epsilons"] == [0.0, 0.05, 0.15, 0.3]
    for entry in out["losses"]:
        means = [a["mean"] for a in entry["accuracy"]]
        assert all(b <= a + 0.01 for a, b in zip(means, means[1:])), means
        assert means[-1] < means[0] - 0.2
        assert entry["accuracy"][0]["n"] == 2
    assert (finaled / "robustness.json").is_file() and (finaled / "robustness.csv").is_file()


def test_robustness_can_attack_every_network_through_cross_entropy(finaled, tmp_path):
    from taylorglo.analysis.sweep import robustness_sweep

    directory = tmp_path / "run"
    shutil.copytree(finaled, directory)
    own = robustness_sweep(directory, (0.1, 0.3))
    through_ce = robustness_sweep(directory, (0.1, 0.3), attack_loss="cross-entropy")
    assert own["attack_loss"] == "own" and through_ce["attack_loss"] == "cross-entropy"
    by_label = lambda r: {e["label"]: [a["values"] for a in e["accuracy"]] for e in r["losses"]}  # noqa: E731
    a, b = by_label(own), by_label(through_ce)
    # Cross-entropy's networks are attacked through cross-entropy either way: identical numbers.
    assert a["cross-entropy"] == b["cross-entropy"]
    # Clean accuracy (eps 0) never depends on the attack.
    assert all(a[label][0] == b[label][0] for label in a)
    with pytest.raises(TaylorGLOError, match="--attack-loss"):
        robustness_sweep(directory, (0.1,), attack_loss="hinge")


def test_ttest_and_collate_across_experiments(finaled, searched, tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    shutil.copytree(finaled, root / "a")
    shutil.copytree(searched, root / "b")  # searched, no final runs yet
    result = json.loads(
        cli("ttest", str(root / "a"), str(finaled), "--label-b", "cross-entropy", "--json", check=True).stdout
    )
    assert result["a"]["label"].startswith("candidate-") and result["b"]["label"] == "cross-entropy"
    expected = stats.ttest_ind(result["a"]["accuracies"], result["b"]["accuracies"], equal_var=False).pvalue
    if expected == expected:
        assert result["welch_p"] == pytest.approx(expected)
    rows = collate(root)
    assert [r["experiment"] for r in rows] == [str(root / "a"), str(root / "b")]
    assert rows[0]["final_n"] == 2 and rows[0]["ce_n"] == 2 and rows[1]["final_n"] == 0
    table = cli("collate", str(root), check=True).stdout
    assert "cross-entropy" not in table.splitlines()[0] or "Welch p" in table


def test_log_prints_a_candidates_training_log(searched):
    out = cli("log", str(searched), "1", "0", check=True).stdout
    assert "candidate 1:0" in out and "step" in out
    data = json.loads(cli("log", str(searched), "1", "0", "--json", check=True).stdout)
    assert data["generation"] == 1 and data["index"] == 0
    missing = cli("log", str(searched), "9", "0")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1


def test_nothing_to_evaluate_or_compare_is_one_line(tmp_path):
    directory = tmp_path / "fresh"
    init_experiment(directory, write_config(tmp_path / "tiny.toml", TINY))
    for args in (
        ("final", str(directory)),
        ("compare", str(directory)),
        ("robustness", str(directory)),
        ("final", str(directory), "--repeats", "0"),
    ):
        result = cli(*args)
        assert result.returncode == 2, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, result.stderr)
    with pytest.raises(TaylorGLOError, match="RUNS_DIR"):
        collate(tmp_path / "nowhere")


def test_search_can_optimise_accuracy_under_fgsm(tmp_path):
    config = merged(TINY, search={"population": 6, "generations": 1, "fitness": "fgsm", "fgsm_epsilon": 0.1})
    init_experiment(tmp_path / "run", write_config(tmp_path / "fgsm.toml", config))
    start(tmp_path / "run", workers=2)
    with sqlite3.connect(tmp_path / "run" / "experiment.sqlite") as db:
        rows = db.execute("SELECT status, fitness, val_accuracy, metrics FROM candidates").fetchall()
    evaluated = [r for r in rows if r[0] == "evaluated"]
    assert evaluated
    for _, fitness, val_accuracy, metrics in evaluated:
        m = json.loads(metrics)
        assert m["fgsm_epsilon"] == 0.1 and fitness == m["fgsm_accuracy"] and m["val_accuracy"] == val_accuracy
    # A network that learned something loses accuracy under attack. (A badly trained one may not:
    # a strange loss's gradient can even push inputs towards the right class.)
    learned = [(fitness, val) for _, fitness, val, _ in evaluated if val > 0.5]
    assert learned and all(fitness < val for fitness, val in learned), evaluated
    # What the fitness means is said wherever it is shown.
    from taylorglo.analysis.report import write_report

    page = write_report(tmp_path / "run").read_text(encoding="utf-8")
    assert "validation accuracy under FGSM (eps 0.1) after the partial schedule" in page


def test_reseed_replays_the_partial_run_then_continues_differently():
    from taylorglo.training import TrainConfig, train

    full = TrainConfig(
        dataset="digits",
        model="mlp",
        steps=300,
        batch_size=64,
        log_every=20,
        model_options={"hidden": 32},
        eval_test=False,
    )
    partial = full.replace(partial_fraction=0.2)  # the first 60 steps
    head = [h["train_loss"] for h in train(partial, None, seed=5).history]
    a = [h["train_loss"] for h in train(full, None, seed=5, reseed=(60, 11)).history]
    b = [h["train_loss"] for h in train(full, None, seed=5, reseed=(60, 12)).history]
    assert a[:3] == head and b[:3] == head  # steps 20, 40, 60: the candidate's own partial run
    assert a[3:] != b[3:]  # after it, each repeat's seed takes over


def test_final_from_pretrained_continues_candidates(searched, tmp_path):
    directory = tmp_path / "run"
    shutil.copytree(searched, directory)
    losses = run_final(directory, repeats=2, from_pretrained=True, workers=2, save_models=False)
    assert losses[1].label.endswith("+pretrained") and losses[1].pretrained
    rows = _final_rows(directory)
    assert len(rows) == 4 and all(r[3] == "finished" for r in rows)
    with pytest.raises(TaylorGLOError, match="--from-pretrained"):
        run_final(directory, repeats=1, from_pretrained=True, params=[1, 0, 0, 0, 0, 0, 0, 0])


def test_analyze_adds_final_and_robustness_sections(finaled, tmp_path):
    from PIL import Image

    from taylorglo.analysis.sweep import robustness_sweep

    directory = tmp_path / "run"
    shutil.copytree(finaled, directory)
    robustness_sweep(directory, (0.1,))
    out = cli("analyze", str(directory), check=True).stdout
    assert "index.html" in out
    page = (directory / "report" / "index.html").read_text()
    assert "Final evaluation" in page and "Robustness (FGSM)" in page and "Welch p" in page
    for name in ("final.png", "robustness.png"):
        with Image.open(directory / "report" / name) as image:
            image.verify()
    lines = (directory / "report" / "final.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + 4  # header + 2 losses x 2 repeats


def test_kill_9_of_final_during_its_last_run_resumes_to_the_identical_result(tmp_path):
    """The last run, resumed alone (a pool of one worker, which would have had both cores),
    trains on the threads the experiment recorded, so it ends exactly as uninterrupted."""
    slow = merged(SMALL, training={"steps": 3000}, search={"population": 4, "generations": 1, "partial_fraction": 0.05})
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    init_experiment(straight, write_config(tmp_path / "slow.toml", slow))
    start(straight)
    shutil.copytree(straight, killed)
    cli("final", str(straight), "--repeats", "2", check=True)

    def last_run_in_flight(db):
        rows = db.execute("SELECT status, COUNT(*) FROM final_runs GROUP BY status").fetchall()
        return dict(rows).get("pending") == 1 and sum(n for _, n in rows) == 4

    # One worker, so that the last run starts alone and the kill lands well inside it.
    returncode, _ = kill_9_when(["final", str(killed), "--repeats", "2", "--workers", "1"], killed, last_run_in_flight)
    assert returncode == -9, "final ended before the kill"
    result = cli("final", str(killed), "--repeats", "2", check=True)
    assert "1 to run" in (killed / "host.log").read_text()
    with sqlite3.connect(killed / "experiment.sqlite") as db:
        threads = [t for (t,) in db.execute("SELECT json_extract(metrics, '$.threads') FROM final_runs")]
    assert threads == [1, 1, 1, 1]
    assert "every training keeps the 1 torch threads recorded" in result.stderr
    keep = lambda rows: [r[:5] for r in rows]  # noqa: E731  (finished_at differs, model paths are DIR-relative)
    assert keep(_final_rows(killed)) == keep(_final_rows(straight))
