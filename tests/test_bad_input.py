"""Hostile input, each answered with one line and exit status 2 (never a traceback), with nothing
recorded lost; and the smaller promises around it (the lock, edited configs, interrupts)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from datafiles import make_mnist
from experiments import SMALL, cli, merged, plugin_env, run_cli, write_config
from taylorglo.analysis.stats import ttests
from taylorglo.experiment import init_experiment, start, status
from taylorglo.experiment.lock import ExperimentLock, is_running

TINY = merged(SMALL, training={"steps": 600}, search={"population": 4, "generations": 2, "partial_fraction": 0.1})


def one_line(result: subprocess.CompletedProcess[str], *needles: str, code: int = 2) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"seed": 2**32}, "seed"),
        ({"search": {"sigma": 1e308}}, "search.sigma"),
        ({"search": {"mean": [1e308] * 8}}, "search.mean"),
    ],
)
def test_config_values_start_could_not_use_are_refused_at_init(tmp_path, change, field):
    path = write_config(tmp_path / "c.toml", merged(SMALL, **change))
    one_line(run_cli("init", str(tmp_path / "run"), str(path)), field)
    assert not (tmp_path / "run").exists()


def _plugin(tmp_path: Path, monkeypatch, body: str) -> None:
    (tmp_path / "plugins").mkdir(exist_ok=True)
    (tmp_path / "plugins" / "wrongmodel.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))


def test_a_model_whose_output_does_not_match_the_classes_is_one_line(tmp_path, monkeypatch):
    _plugin(
        tmp_path,
        monkeypatch,
        """
        from torch import nn
        def model(input_shape, num_classes, **_):
            return nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    """,
    )
    run = init_experiment(
        tmp_path / "run",
        write_config(tmp_path / "c.toml", merged(TINY, training={"model": "wrongmodel:model", "model_options": {}})),
    ).directory
    one_line(run_cli("start", str(run)), "training.model", "(2, 3)", "10 classes")
    assert status(run)["candidates"]["total"] == 0  # refused before anything was asked
    one_line(run_cli("train", "--model", "wrongmodel:model", "--steps", "5"), "model", "10 classes")


def test_cuda_without_cuda_is_one_line_before_anything_trains(tmp_path):
    run = init_experiment(
        tmp_path / "run", write_config(tmp_path / "c.toml", merged(TINY, training={"device": "cuda"}))
    ).directory
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    one_line(run_cli("start", str(run)), "training.device", "no CUDA device")
    assert status(run)["candidates"]["total"] == 0
    one_line(run_cli("train", "--device", "cuda", "--steps", "5"), "device", "no CUDA device")


@pytest.mark.parametrize("damage", ["corrupt-gzip", "swapped"])
def test_a_damaged_or_swapped_dataset_file_is_one_line(tmp_path, damage, isolated_data):
    folder = tmp_path / "mnist"
    make_mnist(folder)
    images, labels = folder / "train-images-idx3-ubyte.gz", folder / "train-labels-idx1-ubyte.gz"
    if damage == "corrupt-gzip":
        blob = bytearray(images.read_bytes())
        blob[len(blob) // 2 : len(blob) // 2 + 16] = b"\x00" * 16
        images.write_bytes(bytes(blob))
        expected = "damaged"
    else:
        images.rename(tmp_path / "x")
        labels.rename(images)
        (tmp_path / "x").rename(labels)
        expected = "swapped"
    one_line(
        run_cli("train", "--dataset", "mnist", "--data-dir", str(folder), "--model", "mlp", "--steps", "5"), expected
    )


@pytest.fixture(scope="module")
def finaled(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    init_experiment(root / "run", write_config(root / "tiny.toml", TINY))
    start(root / "run")
    assert run_cli("final", str(root / "run"), "--repeats", "2").returncode == 0
    return root / "run"


def test_robustness_on_a_garbage_network_is_one_line(finaled, tmp_path):
    run = Path(shutil.copytree(finaled, tmp_path / "run"))
    network = sorted((run / "final").rglob("*.pt"))[0]
    network.write_bytes(b"not a network at all")
    one_line(run_cli("robustness", str(run), "--eps", "0.1"), str(network), "restore it from a backup")
    # ... and one whose pickle is more than weights is not run (weights_only).
    import pickle

    class Evil:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    network.write_bytes(pickle.dumps(Evil()))
    one_line(run_cli("robustness", str(run), "--eps", "0.1"), str(network))
    assert not (tmp_path / "pwned").exists()


def test_robustness_says_which_losses_lack_networks(finaled, tmp_path):
    run = Path(shutil.copytree(finaled, tmp_path / "run"))
    shutil.rmtree(run / "final" / "cross-entropy")
    result = run_cli("robustness", str(run), "--eps", "0.1")
    assert result.returncode == 0, result.stderr
    assert "note: cross-entropy: 2 finished run(s) have no saved network, left out; no p-values" in result.stdout


def test_zero_variance_samples_get_no_p_value_but_a_reason():
    result = ttests([0.9, 0.9, 0.9], [0.8, 0.8, 0.8])
    assert result["student_p"] is None and result["welch_p"] is None and "no variance" in result["note"]
    assert ttests([0.9, 0.91, 0.9], [0.8, 0.8, 0.8])["welch_p"] is not None


@pytest.mark.parametrize(
    "args, needle",
    [
        (("invariant", "1,2,3,4,5,6,7,8", "--classes", "0"), "num_classes"),
        (("invariant", ",".join(["1e308"] * 8)), "overflows"),
        (("robustness", "{run}", "--eps", "2"), "larger than 1"),
        (("log", "{run}", "-1", "0"), "log --help"),
        (("nosuchcommand",), "taylorglo --help"),
        (("start",), "Missing argument"),
    ],
)
def test_cli_arguments_out_of_range_are_one_line(finaled, args, needle):
    one_line(run_cli(*(a.replace("{run}", str(finaled)) for a in args)), needle)


def test_deleting_the_lock_file_does_not_let_a_second_start_in(tmp_path):
    directory = init_experiment(tmp_path / "run", write_config(tmp_path / "c.toml", SMALL)).directory
    with ExperimentLock(directory):
        (directory / "lock").unlink()  # a tidy-up script
        assert is_running(directory) is not None
        one_line(run_cli("start", str(directory)), "already running")
    assert is_running(directory) is None


def test_an_edited_config_copy_is_reported_and_ignored(tmp_path):
    directory = init_experiment(tmp_path / "run", write_config(tmp_path / "c.toml", TINY)).directory
    copy = directory / "config.toml"
    copy.write_text(copy.read_text().replace("generations = 2", "generations = 5"))
    result = cli("start", str(directory), check=True)
    assert "was edited after `taylorglo init`; the edit is ignored" in result.stderr
    assert status(directory)["generations_total"] == 2


def test_a_killed_analyze_leaves_no_temporaries_behind(finaled, tmp_path):
    out = tmp_path / "report"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = out / f".fitness.png.{dead.pid}.0123abcd.tmp"
    stale.write_bytes(b"half a PNG")
    assert run_cli("analyze", str(finaled), "--out", str(out)).returncode == 0
    assert not stale.exists() and not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_start_stops_cleanly_with_the_signals_exit_code(tmp_path, sig, code):
    """The signal lands mid-generation by construction, not by timing: every training but the
    first waits at a gate (``tests/gated_model.py``) that opens only after the interrupt."""
    gate = tmp_path / "gate"
    gated = merged(
        SMALL,
        training={"model": "gated_model:model", "model_options": {"gate": str(gate)}},
        search={"generations": 1, "invariant": "off"},
    )
    directory = init_experiment(tmp_path / "run", write_config(tmp_path / "c.toml", gated)).directory
    # Ctrl-C's default action, even where this test runs in a background job (which ignores SIGINT,
    # and so would the child, as Unix passes an ignored signal on).
    proc = subprocess.Popen(
        [sys.executable, "-m", "taylorglo", "start", str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=plugin_env(),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
        with sqlite3.connect(f"file:{directory / 'experiment.sqlite'}?mode=ro", uri=True) as db:
            if db.execute("SELECT COUNT(*) FROM candidates WHERE status = 'evaluated'").fetchone()[0]:
                break
        db.close()
    assert proc.poll() is None, proc.communicate()[1]
    os.kill(proc.pid, sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    one_line(subprocess.CompletedProcess([], proc.returncode, "", stderr), "interrupted", code=code)
    assert status(directory)["candidates"]["evaluated"] == 1 and status(directory)["candidates"]["pending"] == 5
    gate.touch()
    cli("start", str(directory), check=True)
    assert status(directory)["state"] == "finished"
