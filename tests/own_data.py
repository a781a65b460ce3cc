"""Plug-in datasets that are not images, for the tests (``dataset = "own_data:..."``): token
sequences whose class is whether a marker token occurs, and feature rows on wildly different
scales."""

from __future__ import annotations

import numpy as np

MARKER = 3


def tokens(n: int = 600, length: int = 12, vocab: int = 20) -> dict:
    """Sequences of ids in 0..vocab-1; class 1 when the marker id occurs, else 0 (about half)."""
    rng = np.random.RandomState(0)
    x = rng.randint(4, vocab, size=(n, length))
    y = rng.randint(0, 2, size=n)
    where = rng.randint(0, length, size=n)
    x[y == 1, where[y == 1]] = MARKER
    cut = n * 5 // 6
    return {"train_x": x[:cut], "train_y": y[:cut], "test_x": x[cut:], "test_y": y[cut:], "vocab_size": vocab}


def scaled_features(n: int = 400) -> dict:
    """Two informative features, one in thousands and one in thousandths, plus noise."""
    rng = np.random.RandomState(1)
    y = rng.randint(0, 2, size=n)
    big = 1000.0 * (y + rng.normal(0, 0.3, n))
    small = 0.001 * (y + rng.normal(0, 0.3, n))
    x = np.stack([big, small, rng.normal(0, 1, n)], axis=1).astype(np.float64)
    cut = n * 3 // 4
    return {"train_x": x[:cut], "train_y": y[:cut], "test_x": x[cut:], "test_y": y[cut:]}


def bad_tokens() -> dict:
    """Ids at or past the vocabulary it declares."""
    x = np.full((10, 4), 7)
    return {"train_x": x, "train_y": np.arange(10) % 2, "test_x": x, "test_y": np.arange(10) % 2, "vocab_size": 5}


def features_with_crops() -> dict:
    return {**scaled_features(), "augment": "crop-flip"}
