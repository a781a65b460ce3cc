"""The README's "Your own training" examples (examples/own-training/) run as a user runs them:
from their folder's modules, through init, start, final and robustness."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from experiments import cli

FOLDER = Path(__file__).parent.parent / "examples" / "own-training"


@pytest.fixture
def importable(monkeypatch):
    """The example's folder on the workers' path, as ``PYTHONPATH=.`` puts it there."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(FOLDER), os.environ.get("PYTHONPATH")])))


def _run(tmp_path: Path, config: str, fitness_name: str) -> Path:
    run = tmp_path / "run"
    cli("init", str(run), str(FOLDER / config), check=True)
    out = cli("start", str(run), check=True).stdout
    assert f"= {fitness_name} after 25% of the objective's full budget" in out
    assert json.loads((run / "best.json").read_text())["fitness"] > 0.9
    header = (run / "candidates.csv").read_text().splitlines()[0]
    assert header.endswith(",test_accuracy")  # what the objective returned beside its fitness
    out = cli("final", str(run), "--repeats", "2", check=True).stdout
    assert "vs cross-entropy" in out
    out = cli("robustness", str(run), "--eps", "0.1", check=True).stdout
    assert "eps in input units" in out and "no saved network" not in out
    return run


def test_the_plain_pytorch_loop_example(tmp_path, importable):
    _run(tmp_path, "search.toml", "validation accuracy (AdamW loop)")


def test_the_lightning_example(tmp_path, importable):
    pytest.importorskip("lightning", reason="Lightning is an optional extra: pip install -e '.[lightning]'")
    _run(tmp_path, "lightning.toml", "validation accuracy (Lightning)")
