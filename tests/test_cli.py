"""The command line, run as a user runs it (a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "taylorglo", *args], capture_output=True, text=True, timeout=300)


def test_train_json_on_digits():
    proc = run(
        "train",
        "--dataset",
        "digits",
        "--model",
        "mlp",
        "--loss",
        "cross-entropy",
        "--steps",
        "200",
        "--lr",
        "0.05",
        "--seed",
        "1",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "ok" and out["steps"] == 200
    assert 0.8 <= out["val_accuracy"] <= 1 and 0.8 <= out["test_accuracy"] <= 1


def test_train_human_readable_with_taylorglo_loss():
    proc = run("train", "--steps", "50", "--loss", "taylorglo:0,0,0,1,0,0,0,0")
    assert proc.returncode == 0, proc.stderr
    assert "validation accuracy" in proc.stdout and "test accuracy" in proc.stdout


@pytest.mark.parametrize(
    "args, start",
    [
        (["train", "--loss", "taylorglo:1,2,3"], "error: --loss: "),
        (["train", "--steps", "0"], "error: --steps: "),
        (["train", "--dataset", "nope"], "error: dataset: "),
        (["train", "--model", "nope"], "error: model: "),
        (["invariant", "1,2"], "error: params: "),
    ],
)
def test_bad_input_is_one_line_no_traceback(args, start):
    proc = run(*args)
    assert proc.returncode == 2
    assert proc.stderr.startswith(start), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_invariant_command():
    proc = run("invariant", "8.2896,0.2415,7.8726,8.9666,2.0184,7.0513,-10.9408,7.5216", "--classes", "10", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["reference"] is False and out["gradient"] is True
    # A leading negative number is a value, not an option.
    proc = run("invariant", "-1,0,0,1,0,0,0,0")
    assert proc.returncode == 0, proc.stderr
    assert "reference rule" in proc.stdout and "gradient rule" in proc.stdout


def test_train_mnist_cnn_from_a_data_dir(tmp_path):
    """The MNIST path end to end: original-format IDX files in --data-dir, the paper's CNN."""
    from datafiles import make_mnist

    make_mnist(tmp_path / "mnist", n_train=240, n_test=60, hw=(28, 28))
    proc = run(
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        str(tmp_path / "mnist"),
        "--model",
        "mnist-cnn",
        "--steps",
        "4",
        "--batch-size",
        "32",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "ok" and out["steps"] == 4 and out["config"]["model"] == "mnist-cnn"
    assert 0 <= out["test_accuracy"] <= 1


def test_missing_dataset_is_one_line(tmp_path):
    env_dir = tmp_path / "empty"
    env_dir.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "taylorglo", "train", "--dataset", "mnist", "--data-dir", str(env_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "TAYLORGLO_CACHE": str(tmp_path / "cache"),
            "TAYLORGLO_MIRROR": (tmp_path / "no-mirror").as_uri(),
        },
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and str(env_dir) in proc.stderr
