"""The same config and seed give the same candidates however busy the machine is: no result
depends on a timing (issue 23; the README's Reproducibility section states the promise)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from experiments import SMALL, candidate_rows, cli, merged, write_config
from taylorglo.evaluators import lending
from taylorglo.experiment import Store, init_experiment

# Five candidates, all trained (no invariant), on 2 workers: every generation ends with one
# training alone while a core idles, so whether that core is lent decides its result. The MLP is
# wide enough that the count lends (a step does more than lending.MIN_STEP_MACS), which a
# measurement beside load would not reliably have decided.
BARRIER = merged(
    SMALL, training={"model_options": {"hidden": 1024}}, search={"population": 5, "generations": 2, "invariant": "off"}
)


@contextmanager
def cpu_load(processes: int) -> Iterator[None]:
    """``processes`` busy loops, each taking a core, for the length of the block."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait()


def test_the_same_config_gives_the_same_candidates_quiet_and_beside_cpu_bound_load(tmp_path):
    config = write_config(tmp_path / "barrier.toml", BARRIER)
    quiet, loaded = tmp_path / "quiet", tmp_path / "loaded"
    for directory in (quiet, loaded):
        init_experiment(directory, config)
    cli("start", str(quiet), check=True)
    with cpu_load(2 * len(os.sched_getaffinity(0))):
        cli("start", str(loaded), check=True)
    decisions = []
    for directory in (quiet, loaded):
        with Store(directory / "experiment.sqlite", readonly=True) as store:
            decisions.append(store.get_meta(lending.META_KEY))
    assert decisions[0] == decisions[1] and decisions[0]["mode"] == "auto" and decisions[0]["lend"]
    rows = candidate_rows(quiet)
    assert len(rows) == 10 and all(row[4] == "evaluated" for row in rows)
    # Each generation's fifth training ran alone, on both cores: the idle core was lent.
    assert [row[-1] for row in rows] == [1, 1, 1, 1, 2] * 2
    assert candidate_rows(loaded) == rows
