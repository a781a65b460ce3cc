"""Every seed a run derives from its config's seed, by one rule.

A training's seed must be a pure function of the experiment's seed and the training's place in it
(generation, index, repeat, stretch), so that a resumed run and a fresh one, on any number of
workers, give each training the same seed; numpy's ``SeedSequence`` mixes such a key into
well-separated 32-bit seeds.
"""

from __future__ import annotations

import numpy as np


def derived_seed(*key: int) -> int:
    """The 32-bit seed of ``key`` (the same key, the same seed, on every machine)."""
    return int(np.random.SeedSequence(list(key)).generate_state(1)[0])


def candidate_seed(seed: int, generation: int, index: int, mode: str) -> int:
    """The training seed of candidate ``index`` of ``generation`` (see ``SearchConfig.seeds``:
    ``"generation"`` gives a generation's candidates one seed, so they differ by their loss alone)."""
    return derived_seed(seed, generation) if mode == "generation" else derived_seed(seed, generation, index)
