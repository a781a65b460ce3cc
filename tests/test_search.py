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


def _swiftcma_constants(n: int, lam: int) -> dict[str, float]:
    """SwiftCMA's constants as its initialiser computes them (written out here from its formulas)."""
    mu = lam // 2
    w = np.array([np.log(mu + 0.5) - np.log(i + 1) for i in range(mu)])
    w /= w.sum()
    mueff = w.sum() ** 2 / (w**2).sum()
    cs = (mueff + 2) / (n + mueff + 5)
    c1 = 2 / ((n + 1.3) ** 2 + mueff)
    return {
        "weights": w, "mueff": mueff, "cs": cs, "damps": 2 * mueff / lam + 0.3 + cs, "c1": c1,
        "cmu": min(1 - c1, 2 * (mueff - 2 + 1 / mueff) / ((n + 2) ** 2 + mueff)),
        "cc": (4 + mueff / n) / (n + 4 + 2 * mueff / n),
    }  # fmt: skip


@pytest.mark.parametrize("lam", [20, 21])
def test_swiftcma_constants_are_the_references(lam):
    expected = _swiftcma_constants(8, lam)
    got = CMAESSearch(8, lam, seed=0, constants="swiftcma").constants()
    for name in ("cs", "damps", "c1", "cmu", "cc", "mueff"):
        assert got[name] == pytest.approx(expected[name], rel=1e-12), name
    if lam == 20:  # the figures the reference's searches ran with (8 parameters, lambda 20)
        assert (round(got["cs"], 3), round(got["cmu"], 4), round(got["damps"], 3)) == (0.419, 0.0775, 1.313)
    default = CMAESSearch(8, lam, seed=0).constants()
    assert default["cs"] > got["cs"] and default["damps"] > got["damps"] and default["cmu"] > got["cmu"]


def test_swiftcma_first_update_is_swiftcmas():
    """One generation: the weighted mean of the best half, the squared-length sigma rule and the
    covariance update without negative weights, as SwiftCMA's finishEpoch computes them."""
    n, lam, sigma0 = 8, 20, 1.2
    k = _swiftcma_constants(n, lam)
    search = CMAESSearch(n, lam, sigma0, seed=3, constants="swiftcma")
    xs = np.array(search.ask())
    fit = np.random.RandomState(0).rand(lam)
    search.tell(xs.tolist(), fit.tolist())
    best = xs[np.argsort(-fit)[: lam // 2]]
    mean = k["weights"] @ best
    assert np.allclose(search.mean, mean, rtol=0, atol=1e-12)
    ps = np.sqrt(k["cs"] * (2 - k["cs"]) * k["mueff"]) * mean / sigma0
    sigma = sigma0 * np.exp(min(1.0, k["cs"] / k["damps"] * (ps @ ps / n - 1) / 2))
    assert search.sigma == pytest.approx(sigma, rel=1e-4)
    hsig = ps @ ps / n / (1 - (1 - k["cs"]) ** 2) < 2 + 4 / (n + 1)
    pc = np.sqrt(k["cc"] * (2 - k["cc"]) * k["mueff"]) * hsig * mean / sigma0
    c1a = k["c1"] * (1 - (1 - hsig) * k["cc"] * (2 - k["cc"]))
    cov = (1 - c1a - k["cmu"]) * np.eye(n) + k["c1"] * np.outer(pc, pc)
    cov += k["cmu"] * sum(w * np.outer(x / sigma0, x / sigma0) for w, x in zip(k["weights"], best))
    assert np.abs(np.array(search.summary()["C"]) - cov).max() < 1e-3
    pycma = CMAESSearch(n, lam, sigma0, seed=3)
    pycma.tell(pycma.ask(), fit.tolist())
    assert np.abs(np.array(pycma.summary()["C"]) - cov).max() > 1e-2  # the check tells the two apart


def test_a_swiftcma_search_resumes_exactly_and_climbs(tmp_path):
    def run(restore: bool) -> CMAESSearch:
        search = CMAESSearch(8, 10, 1.2, seed=1, constants="swiftcma")
        for g in range(15):
            xs = search.ask()
            if restore and g % 3 == 0:
                search = CMAESSearch.from_state(search.state())
            search.tell(xs, [_fitness(x) for x in xs])
        return search

    straight, resumed = run(False), run(True)
    assert straight.mean == resumed.mean and straight.sigma == resumed.sigma
    assert resumed.constants() == CMAESSearch(8, 10, seed=1, constants="swiftcma").constants()
    assert _fitness(straight.mean) > 1 / 9
