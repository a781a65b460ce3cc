"""Shared fixtures."""

from __future__ import annotations

import pytest

from taylorglo.training import data as D


@pytest.fixture
def isolated_data(tmp_path, monkeypatch):
    """No real cache, data root or mirror leaks into a test; each test starts with an empty cache."""
    monkeypatch.setenv("TAYLORGLO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TAYLORGLO_DATA", raising=False)
    monkeypatch.delenv("TAYLORGLO_MIRROR", raising=False)
    D.clear_cache()
    yield
    D.clear_cache()
