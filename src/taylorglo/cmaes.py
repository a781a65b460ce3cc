"""CMA-ES over TaylorGLO parameter vectors: ask / tell, and nothing about files or workers.

:class:`CMAESSearch` wraps pycma's ``CMAEvolutionStrategy`` (SPEC §2: (μ/μ_w, λ)-CMA-ES with
pycma's default weights and learning rates, mean 0, σ₀ = 1.2, no bounds). It speaks *fitness*
(validation accuracy in [0, 1], higher is better) and minimises ``1 − fitness`` inside.

Its whole state, random generator included, is one byte string (:meth:`state` /
:meth:`from_state`), so a host can save it after every ``ask`` and ``tell`` and a restarted
search continues bit for bit. That needs care twice over:

* pycma samples with ``numpy.random.randn`` by default, the *process-global* generator, which a
  pickle neither contains nor restores. We pass pycma a generator object of our own
  (:class:`_Randn`) instead; pycma keeps it in its options and sampler, so it travels inside the
  pickle and a resumed search draws exactly the numbers an uninterrupted one would.
* pycma remembers the solutions it handed out (to find their genotype again in ``tell``; with
  mirrored sampling, pycma's default for λ < 6, the genotype matters) in dicts keyed by
  ``hash(x.tobytes())``, and Python salts ``bytes`` hashes per process. Unpickled in another
  process, those keys match nothing, and ``tell`` after a restart would update the covariance
  differently. :meth:`CMAESSearch.__setstate__` re-keys them for the process that loads them.
"""

from __future__ import annotations

import io
import math
import pickle
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

#: What pycma imports at import time only to offer if present: ``matplotlib`` (its plotting
#: helpers) and ``scipy.stats`` (one statistic of its surrogate models, which it also has in pure
#: Python). An ask/tell search uses neither, and together they cost more than importing torch.
_OPTIONAL = ("matplotlib", "scipy.stats")


def _cma():
    """pycma, imported on first use and without :data:`_OPTIONAL`, so that a search's host and
    ``getinvocation`` start fast. Python refuses an import whose ``sys.modules`` entry is None;
    pycma catches that ImportError and goes on without. The refusal lasts for this one import:
    whatever imports them later (the report, pycma's own plotting) gets them."""
    if "cma" in sys.modules:
        return sys.modules["cma"]
    blocked = [name for name in _OPTIONAL if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        with warnings.catch_warnings():
            # pycma warns at import when matplotlib is missing; plotting is not something we use.
            warnings.simplefilter("ignore")
            import cma
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return cma


class _Randn:
    """A picklable ``randn(*shape)`` with its own state (see the module docstring)."""

    def __init__(self, seed: int) -> None:
        self.state = np.random.RandomState(seed)

    def __call__(self, *shape: int) -> np.ndarray:
        return self.state.standard_normal(shape)


def _swiftcma_weights(population: int) -> list[float]:
    """SwiftCMA's recombination weights: ``log(μ + ½) − log(i + 1)`` for the best μ = ⌊λ/2⌋,
    normalised, none negative (pycma's positive ones use ``(λ + 1)/2``, the same for even λ)."""
    mu = population // 2
    raw = [math.log(mu + 0.5) - math.log(i + 1) for i in range(mu)]
    total = sum(raw)
    return [w / total for w in raw] + [0.0] * (population - mu)


def _swiftcma_options(population: int) -> dict[str, Any]:
    """The pycma options that make its update SwiftCMA's: no active (negative) update, SwiftCMA's
    weights, no mirrored samples, and σ adapted from the squared length of its path (pycma caps
    the change at e¹, as SwiftCMA does)."""
    return {
        "CMA_active": False,
        "CMA_recombination_weights": _swiftcma_weights(population),
        "CMA_mirrors": 0,
        "CSA_squared": True,
    }


def _swiftcma(es: Any) -> None:
    """Set the constants pycma has no option for to SwiftCMA's values, after pycma computed its
    own: c_σ = (μ_eff + 2)/(n + μ_eff + 5), d_σ = 2μ_eff/λ + 0.3 + c_σ and
    c_μ = min(1 − c₁, 2(μ_eff − 2 + 1/μ_eff)/((n + 2)² + μ_eff)). c₁ and c_c are already the same.
    They live in the strategy object, so they travel in :meth:`CMAESSearch.state` with it."""
    n, lam, mueff = es.N, es.popsize, es.sp.weights.mueff
    cs = (mueff + 2) / (n + mueff + 5)
    es.adapt_sigma.cs = cs
    es.adapt_sigma.damps = 2 * mueff / lam + 0.3 + cs
    cmu = min(1 - es.sp.c1, 2 * (mueff - 2 + 1 / mueff) / ((n + 2) ** 2 + mueff))
    es.sp.cmu = cmu
    # pycma's update reads c_μ from its sampler's cached parameters (the same dict each call
    # with these μ_eff and λ), not from ``sp``: both must say it.
    es.sm.parameters(mueff=mueff, lam=es.sp.weights.lambda_)["cmu"] = cmu


class CMAESSearch:
    """Ask/tell CMA-ES that maximises fitness in [0, 1] over R^dim.

    >>> search = CMAESSearch(dim=8, population=6, sigma=1.2, seed=0)
    >>> solutions = search.ask()
    >>> search.tell(solutions, [0.1, 0.5, 0.0, 0.9, 0.3, 0.2])
    """

    def __init__(
        self,
        dim: int,
        population: int,
        sigma: float = 1.2,
        seed: int = 0,
        mean: Sequence[float] | None = None,
        constants: str = "pycma",
    ) -> None:
        if constants not in ("pycma", "swiftcma"):  # SwiftCMA: the reference's CMA-ES (_swiftcma)
            raise ValueError(f"constants must be 'pycma' or 'swiftcma', got {constants!r}")
        x0 = np.zeros(dim) if mean is None else np.asarray(mean, dtype=float)
        if x0.shape != (dim,):
            raise ValueError(f"mean must have {dim} values, got {len(x0)}")
        options = {
            "popsize": int(population),
            # Our own generator (module docstring); pycma's "seed" option only seeds numpy's global one.
            "randn": _Randn(int(seed)),
            "verbose": -9,
            # No stopping rule of pycma's own: the host runs the configured number of generations.
            "maxiter": math.inf,
            "tolfun": 0,
            "tolx": 0,
            "tolfunhist": 0,
            "tolstagnation": math.inf,
            "tolflatfitness": math.inf,
        }
        if constants == "swiftcma":
            options.update(_swiftcma_options(int(population)))
        self._es = _cma().CMAEvolutionStrategy(x0, float(sigma), options)
        if constants == "swiftcma":
            _swiftcma(self._es)
        self._asked: list[list[float]] | None = None

    @property
    def generation(self) -> int:
        """Number of completed ``tell`` calls."""
        return int(self._es.countiter)

    @property
    def population(self) -> int:
        return int(self._es.popsize)

    def constants(self) -> dict[str, float]:
        """The strategy constants this search runs with (c_σ, d_σ, c₁, c_μ, c_c, μ_eff), for a
        reader to check which CMA-ES ran."""
        es = self._es
        return {
            "cs": float(es.adapt_sigma.cs),
            "damps": float(es.adapt_sigma.damps),
            "c1": float(es.sp.c1),
            "cmu": float(es.sm.parameters()["cmu"]),
            "cc": float(es.sp.cc),
            "mueff": float(es.sp.weights.mueff),
        }

    @property
    def mean(self) -> list[float]:
        return [float(v) for v in self._es.mean]

    @property
    def sigma(self) -> float:
        return float(self._es.sigma)

    def ask(self) -> list[list[float]]:
        """The next generation's λ candidates, as plain lists of floats."""
        if self._asked is not None:
            raise RuntimeError("ask() called twice without tell(); use asked() to get the open generation")
        self._asked = [[float(v) for v in x] for x in self._es.ask()]
        return [list(x) for x in self._asked]

    def asked(self) -> list[list[float]] | None:
        """The open generation's candidates (asked, not yet told), or None."""
        return None if self._asked is None else [list(x) for x in self._asked]

    def tell(self, solutions: Sequence[Sequence[float]], fitnesses: Sequence[float]) -> None:
        """Report the fitness (higher is better) of every candidate of the open generation.

        Non-finite fitnesses count as 0 (SPEC §2: failed runs get accuracy 0).
        """
        if len(solutions) != len(fitnesses):
            raise ValueError(f"{len(solutions)} solutions but {len(fitnesses)} fitnesses")
        objectives = [1.0 - (float(f) if math.isfinite(float(f)) else 0.0) for f in fitnesses]
        self._es.tell([np.asarray(x, dtype=float) for x in solutions], objectives)
        self._asked = None

    def summary(self) -> dict[str, Any]:
        """The state a reader needs, as plain data (stored beside :meth:`state` so that reading an
        experiment never unpickles): the mean, σ and the covariance matrix C."""
        return {
            "mean": self.mean,
            "sigma": self.sigma,
            "C": [[float(v) for v in row] for row in np.asarray(self._es.C)],
        }

    def __setstate__(self, state: dict) -> None:
        """Unpickling: re-key pycma's solution archives for *this* process (see :func:`_rekey`)."""
        self.__dict__.update(state)
        for value in vars(self._es).values():
            if _is_solution_dict(value):
                _rekey(value)

    def state(self) -> bytes:
        """Everything needed to continue, as bytes (a pickle; store it, don't edit it)."""
        return pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def from_state(blob: bytes) -> CMAESSearch:
        _cma()  # the pickle refers to pycma's classes
        obj = _Unpickler(io.BytesIO(blob)).load()
        if not isinstance(obj, CMAESSearch):
            raise ValueError("not a CMAESSearch state")
        return obj


class _Unpickler(pickle.Unpickler):
    """States pickled before this module was renamed (``taylorglo.search``, 0.1) name its classes
    by the old path: they open here (``taylorglo.search`` is now the Python API's function)."""

    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(__name__ if module == "taylorglo.search" else module, name)


def _is_solution_dict(value: object) -> bool:
    return all(hasattr(value, name) for name in ("data", "_unhashed_keys", "data_with_same_key", "key"))


def _rekey(solutions: object) -> None:
    """Recompute a pycma ``SolutionDict``'s hash keys in this process from the solutions it kept
    (``_unhashed_keys``), keeping its order; keys that are not hashes of a kept solution stay."""
    d: Any = solutions
    new = {old: d.key(x) for old, x in d._unhashed_keys.items()}
    d.data = {new.get(k, k): v for k, v in d.data.items()}
    d.data_with_same_key = {new.get(k, k): v for k, v in d.data_with_same_key.items()}
    d._unhashed_keys = {new.get(k, k): x for k, x in d._unhashed_keys.items()}
