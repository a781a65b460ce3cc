"""``[evaluator] vectorize = N``: a worker trains up to N of a batch's fresh runs at once as one
population (training/population.py), through the CLI, with kill -9 and resume, in final, and with
what cannot be stacked."""

from __future__ import annotations

import json
import sqlite3

import pytest

from experiments import OWN, SMALL, candidate_rows, cli, killed_and_resumed, merged, write_config
from taylorglo.errors import TaylorGLOError
from taylorglo.evaluators.base import Job, JobStack, plan_stacks
from taylorglo.evaluators.recipes import ContinuedRun, FreshRun, Replay, Stretch
from taylorglo.experiment.config import ExperimentConfig
from taylorglo.training.trainer import ScheduleStep

SEARCH = merged(SMALL, search={"population": 12, "generations": 3})


def _run(tmp_path, name: str, config: dict) -> object:
    directory = tmp_path / name
    cli("init", str(directory), str(write_config(tmp_path / f"{name}.toml", config)), check=True)
    return directory


def _query(directory, sql: str) -> list[tuple]:
    with sqlite3.connect(directory / "experiment.sqlite") as db:
        return db.execute(sql).fetchall()


def _stacks(directory) -> list:
    return [r[0] for r in _query(directory, "SELECT json_extract(metrics, '$.stack_size') FROM candidates")]


def _layout(directory) -> dict:
    return json.loads(_query(directory, "SELECT value FROM meta WHERE key = 'layout'")[0][0])


@pytest.fixture(scope="module")
def one_at_a_time(tmp_path_factory):
    root = tmp_path_factory.mktemp("plain")
    directory = _run(root, "plain", SEARCH)
    cli("start", str(directory), check=True)
    return directory


@pytest.fixture(scope="module")
def stacked(tmp_path_factory):
    root = tmp_path_factory.mktemp("stacked")
    directory = _run(root, "stacked", merged(SEARCH, evaluator={"kind": "local", "workers": 2, "vectorize": 12}))
    out = cli("start", str(directory), check=True).stdout
    assert "finished, 3/3 generations" in out
    return directory


#: How closely a vectorized member's numbers agree with the lone training's (the same training up
#: to the floating-point order of batched kernels, which depends on the CPU): a validation
#: accuracy within two of digits' 300 validation examples, a loss to a relative 1e-4.
ACCURACY = 2 / 300
LOSS = 1e-4


def test_a_vectorized_search_agrees_with_one_at_a_time(stacked, one_at_a_time):
    stacks = [s for s in _stacks(stacked) if s is not None]
    assert stacks and max(stacks) > 1  # trained in stacks (split over the 2 workers)
    assert _layout(stacked)["vectorize"] == 12
    rows, plain = candidate_rows(stacked), candidate_rows(one_at_a_time)
    assert len(rows) == len(plain) == 36
    # Generation 0's candidates are the same losses with the same seeds in both searches.
    for row, lone in zip(rows[:12], plain[:12]):
        assert row[:5] == lone[:5]
        assert row[5] == pytest.approx(lone[5], abs=ACCURACY)
        assert row[7] == lone[7] if lone[7] is None else row[7] == pytest.approx(lone[7], rel=LOSS, nan_ok=True)
    best = max(r[5] for r in rows)
    assert best == pytest.approx(max(r[5] for r in plain), abs=0.02)


def test_kill_9_in_a_vectorized_generation_resumes_exactly(tmp_path, stacked):
    config = merged(SEARCH, evaluator={"kind": "local", "workers": 1, "vectorize": 4})
    after = killed_and_resumed(_run(tmp_path, "killed", config))
    # One worker, stacks of 4, resumed with fewer pending: a member's result never depends on its
    # stack, so this is the uninterrupted search in stacks of 6 on 2 workers, bit for bit.
    assert [r[:8] for r in after] == [r[:8] for r in candidate_rows(stacked)]


def test_final_repeats_train_as_a_population(tmp_path, one_at_a_time, stacked):
    import shutil

    plain, vectorized = tmp_path / "plain", tmp_path / "stacked"
    shutil.copytree(one_at_a_time, plain)
    shutil.copytree(stacked, vectorized)
    loss = ",".join(str(p) for p in json.loads(candidate_rows(one_at_a_time)[0][2]))
    for directory in (plain, vectorized):  # the same loss in both, and cross-entropy
        cli("final", str(directory), "--repeats", "4", "--params", loss, check=True)

    def runs(d):
        return _query(
            d,
            "SELECT loss_id, repeat, seed, status, test_accuracy, val_loss, json_extract(metrics, '$.stack_size') "
            "FROM final_runs ORDER BY loss_id, repeat",
        )

    a, b = runs(plain), runs(vectorized)
    assert [r[:4] for r in a] == [r[:4] for r in b] and len(a) == 8
    for lone, member in zip(a, b):
        assert member[4] == pytest.approx(lone[4], abs=0.01) and member[5] == pytest.approx(lone[5], rel=1e-3)
    assert all(r[6] is None for r in a) and all(r[6] and r[6] > 1 for r in b)


def test_what_cannot_be_stacked_trains_alone():
    fresh = [Job(0, i, FreshRun((0.0,) * 8), seed=1) for i in range(5)]
    continued = Job(0, 9, ContinuedRun(None, from_seed=1, partial_fraction=0.5), seed=1)
    units = plan_stacks([*fresh[:2], continued, *fresh[2:]], size=2, workers=1)
    # A fresh run left over alone is still a stack (of one): the same floating-point order as its mates.
    assert units == [JobStack(tuple(fresh[:2])), continued, JobStack(tuple(fresh[2:4])), JobStack((fresh[4],))]
    # Split so that every worker gets a stack; different threads never share one.
    assert [len(u.jobs) for u in plan_stacks(fresh, size=8, workers=2)] == [3, 2]
    lent = [fresh[0], fresh[1], Job(0, 2, FreshRun(None), seed=1, threads=2)]
    assert [u.jobs for u in plan_stacks(lent, size=8, workers=1)] == [tuple(lent[:2]), (lent[2],)]


def test_only_work_of_one_kind_over_the_same_steps_shares_a_stack():
    def stretch(index: int, start: int, stop: int) -> Job:
        step = ScheduleStep(start, stop, None, 0.1, 0.0)
        return Job(1, index, Stretch(step, save_to=f"m{index}.pt", resume_from="p.pt"), seed=index)

    def replay(index: int, *bounds: tuple[int, int]) -> Job:
        return Job(2, index, Replay(None, tuple(ScheduleStep(a, b, None, 0.1, 0.0) for a, b in bounds)), seed=index)

    jobs = [
        stretch(0, 0, 50),
        stretch(1, 0, 50),
        stretch(2, 50, 100),
        Job(0, 3, FreshRun(None), seed=3),
        replay(4, (0, 50), (50, 100)),
        replay(5, (0, 50), (50, 100)),
        replay(6, (0, 100)),
    ]
    units = plan_stacks(jobs, size=8, workers=1)
    assert sorted(tuple(j.index for j in u.jobs) for u in units) == [(0, 1), (2,), (3,), (4, 5), (6,)]
    assert all(isinstance(u, JobStack) for u in units)


def test_vectorize_with_an_objective_or_a_bad_value_is_one_line(tmp_path):
    for config, message in (
        (merged(OWN, evaluator={"kind": "local", "vectorize": 4}), "evaluator.vectorize: stacks the built-in"),
        (merged(SMALL, evaluator={"kind": "local", "vectorize": 0}), "evaluator.vectorize: must be a positive integer"),
        (
            merged(SMALL, training={"optimizer": "adam"}, evaluator={"kind": "local", "vectorize": 4}),
            "evaluator.vectorize: a stacked population steps with SGD",
        ),
    ):
        with pytest.raises(TaylorGLOError, match=message):
            ExperimentConfig.load(write_config(tmp_path / "c.toml", config))


def test_auto_stacks_where_a_step_is_cheap_and_keeps_compute_bound_networks_alone(tmp_path):
    cheap = _run(tmp_path, "cheap", merged(SEARCH, evaluator={"kind": "local", "workers": 2, "vectorize": "auto"}))
    cli("start", str(cheap), check=True)
    assert "vectorize auto: stacks (a step does" in (cheap / "host.log").read_text()
    assert max(s for s in _stacks(cheap) if s) > 1
    cnn = merged(
        SEARCH,
        training={"model": "mnist-cnn", "model_options": {"width": 0.25}, "steps": 400},
        search={"population": 4, "generations": 1},
        evaluator={"kind": "local", "workers": 2, "vectorize": "auto"},
    )
    costly = _run(tmp_path, "costly", cnn)
    cli("start", str(costly), check=True)
    assert "vectorize auto: one training at a time (a step does" in (costly / "host.log").read_text()
    assert not any(_stacks(costly))
    assert _layout(costly)["vectorize"] == 1


def test_fgsm_fitness_is_measured_per_member_of_a_stack(tmp_path):
    config = merged(SEARCH, search={"population": 6, "generations": 1, "fitness": "fgsm", "fgsm_epsilon": 0.1})
    plain = _run(tmp_path, "plain", config)
    cli("start", str(plain), check=True)
    stacked = _run(tmp_path, "stacked", merged(config, evaluator={"kind": "local", "workers": 2, "vectorize": 6}))
    cli("start", str(stacked), check=True)

    def measured(directory):
        return _query(
            directory,
            "SELECT idx, status, fitness, json_extract(metrics, '$.fgsm_accuracy'), val_accuracy "
            "FROM candidates ORDER BY idx",
        )

    for member, lone in zip(measured(stacked), measured(plain), strict=True):
        assert member[:2] == lone[:2]
        assert member[2] == pytest.approx(lone[2], abs=ACCURACY) and member[4] == pytest.approx(lone[4], abs=ACCURACY)
    assert any(r[1] == "evaluated" and r[3] is not None for r in measured(stacked))
    assert max(s for s in _stacks(stacked) if s) > 1
