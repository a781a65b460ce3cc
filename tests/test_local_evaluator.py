"""The local evaluator's worker processes dying under it: only the job a dead worker held is
charged, every death is reported, and a re-run job ends as if nothing had happened."""

from __future__ import annotations

import pytest

from taylorglo.errors import TaylorGLOError
from taylorglo.evaluators import FreshRun, Job, LocalEvaluator
from taylorglo.training import TrainConfig
from taylorglo.training.data import load_dataset
from taylorglo.training.trainers import probe

PARAMS = None  # cross-entropy: the jobs differ by seed alone
KILL_SEED = 777


def _training(**options: object) -> TrainConfig:
    return TrainConfig(
        dataset="digits", model="dying_model:model", steps=100, batch_size=64, model_options=dict(options)
    )


def _evaluate(training: TrainConfig, seeds: list[int], workers: int = 2) -> tuple[dict[int, object], list[str]]:
    lines: list[str] = []
    with LocalEvaluator(training, workers=workers, threads=1, retries=2) as pool:
        pool.log = lines.append
        results = {
            r.index: r for r in pool.evaluate([Job(0, i, FreshRun(PARAMS), seed) for i, seed in enumerate(seeds)])
        }
    return results, lines


def test_three_deaths_of_one_jobs_worker_charge_that_job_alone():
    seeds = [1, KILL_SEED, 2, 3, 4]
    results, lines = _evaluate(_training(kill_seed=KILL_SEED), seeds)
    assert sorted(results) == list(range(len(seeds)))
    dead = results[1]
    assert dead.status == "failed" and "died 3 times" in dead.reason and "SIGKILL" in dead.reason
    assert dead.metrics["worker_deaths"] == 3
    for index in (0, 2, 3, 4):
        assert results[index].status == "evaluated", results[index].reason
        assert "worker_deaths" not in results[index].metrics
    # Each death is in the log: the pid, the signal, the job it held.
    deaths = [line for line in lines if "worker process" in line]
    assert len(deaths) == 3 and all("killed by SIGKILL while training job 0:1" in line for line in deaths)
    assert len({line.split()[2] for line in deaths}) == 3  # three different processes


def test_a_job_whose_worker_died_once_ends_as_an_undisturbed_run(tmp_path):
    once = tmp_path / "died"
    results, lines = _evaluate(_training(kill_seed=KILL_SEED, once=str(once)), [KILL_SEED, 5])
    assert once.exists() and len([line for line in lines if "worker process" in line]) == 1
    rerun = results[0]
    assert rerun.status == "evaluated" and rerun.metrics["worker_deaths"] == 1
    undisturbed, _ = _evaluate(_training(), [KILL_SEED], workers=1)
    assert rerun.fitness == undisturbed[0].fitness and rerun.val_loss == undisturbed[0].val_loss


def test_a_worker_that_dies_while_the_host_asks_its_facts_fails_the_start_in_one_line():
    """The host asks a worker for the data's facts before dispatching; a worker killed then (its
    network's factory dies the first time it runs) is an error naming the process and its death,
    not a hang."""
    with LocalEvaluator(_training(kill_first_build=True), workers=2, threads=1) as pool:
        with pytest.raises(TaylorGLOError, match=r"worker process \d+ killed by SIGKILL while it loaded the dataset"):
            pool.facts()


def test_facts_come_from_a_worker_and_match_the_hosts_own():
    training = _training()
    with LocalEvaluator(training, workers=2, threads=1) as pool:
        assert pool.facts() == probe(training, load_dataset("digits"))
        assert pool.facts() is pool.facts()  # asked once
