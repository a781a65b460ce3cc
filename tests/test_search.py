"""CMA-ES ask/tell: pycma underneath, state that survives a pickle round-trip bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from taylorglo.cmaes import CMAESSearch


def _fitness(x):
    # Peak at all-ones, in (0, 1] like a validation accuracy.
    return 1.0 / (1.0 + float(np.sum((np.asarray(x) - 1.0) ** 2)))


def _run(generations: int, restore_every: int | None, seed: int = 0) -> CMAESSearch:
    search = CMAESSearch(dim=8, population=6, sigma=1.2, seed=seed)
    for g in range(generations):
        xs = search.ask()
        if restore_every and g % restore_every == 0:  # as if killed after ask
            search = CMAESSearch.from_state(search.state())
            assert search.asked() == xs
        np.random.rand(7)  # other code touching numpy's global generator must not matter
        search.tell(xs, [_fitness(x) for x in xs])
        if restore_every and g % restore_every == 1:  # as if killed after tell
            search = CMAESSearch.from_state(search.state())
    return search


def test_first_generation_is_centred_at_zero_with_sigma():
    xs = np.array(CMAESSearch(dim=8, population=2000, sigma=1.2, seed=3).ask())
    assert xs.shape == (2000, 8)
    assert np.abs(xs.mean(axis=0)).max() < 0.12
    assert abs(xs.std() - 1.2) < 0.05


def test_restored_search_continues_exactly():
    straight = _run(12, restore_every=None)
    resumed = _run(12, restore_every=2)
    assert straight.mean == resumed.mean
    assert straight.sigma == resumed.sigma
    assert straight.generation == resumed.generation == 12


def test_seeds_differ_and_repeat():
    assert CMAESSearch(8, 4, seed=1).ask() == CMAESSearch(8, 4, seed=1).ask()
    assert CMAESSearch(8, 4, seed=1).ask() != CMAESSearch(8, 4, seed=2).ask()


def test_search_climbs_towards_the_optimum():
    search = _run(40, restore_every=None)
    assert _fitness(search.mean) > 0.5  # started at 1/(1+8) = 0.11


def test_non_finite_fitness_counts_as_zero_and_ask_twice_is_an_error():
    search = CMAESSearch(8, 4, seed=0)
    xs = search.ask()
    with pytest.raises(RuntimeError):
        search.ask()
    search.tell(xs, [float("nan"), 0.5, float("inf"), 0.1])
    assert search.generation == 1
    with pytest.raises(ValueError):
        search.tell(search.ask(), [0.1])


@pytest.mark.parametrize("population", [4, 6])
def test_a_state_saved_by_another_process_continues_exactly(tmp_path, population):
    """A search asked in one process and told in another (a restart after a crash) must go on as
    if it had never stopped, although Python salts bytes hashes per process and pycma keys the
    solutions it handed out by such hashes (population 4: pycma mirrors samples, the genotypes
    it looks up matter)."""
    import os
    import subprocess
    import sys

    def fitness(xs):
        return [float(np.tanh(abs(np.sum(x)) / 4)) for x in xs]

    blob = tmp_path / "asked.pickle"
    code = (
        "import sys, numpy as np\n"
        "from taylorglo.cmaes import CMAESSearch\n"
        f"s = CMAESSearch(8, {population}, 1.2, seed=3)\n"
        "f = lambda xs: [float(np.tanh(abs(np.sum(x)) / 4)) for x in xs]\n"
        "xs = s.ask(); s.tell(xs, f(xs)); s.ask()\n"
        f"open({str(blob)!r}, 'wb').write(s.state())\n"
    )
    for hash_seed in ("1", "2"):  # two different salts, neither of them this process's
        subprocess.run(
            [sys.executable, "-c", code], check=True, timeout=120, env={**os.environ, "PYTHONHASHSEED": hash_seed}
        )
        resumed = CMAESSearch.from_state(blob.read_bytes())
        straight = CMAESSearch(8, population, 1.2, seed=3)
        xs = straight.ask()
        straight.tell(xs, fitness(xs))
        xs = straight.ask()
        assert resumed.asked() == xs
        for search in (straight, resumed):
            for _ in range(3):
                xs = search.asked()
                search.tell(xs, fitness(xs))
                search.ask()
        assert resumed.asked() == straight.asked()
        assert resumed.sigma == straight.sigma and resumed.mean == straight.mean
