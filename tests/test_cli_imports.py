"""Commands that only read import neither torch, matplotlib, Ray nor scipy, so they answer at
once (issue 24). Each runs in a fresh interpreter, which then reports what it imported."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "v3"
EXAMPLE = Path(__file__).parent.parent / "examples" / "digits.toml"
ONESHOT = Path(__file__).parent / "fixtures" / "oneshot-tiny.toml"
HEAVY = ("torch", "matplotlib", "ray", "scipy")

PROBE = """
import json, sys
from taylorglo.cli import main
report, *args = sys.argv[1:]
sys.argv = ["taylorglo", *args]
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code or 0
with open(report, "w") as fh:
    json.dump({"code": code, "modules": sorted(sys.modules)}, fh)
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Two finished experiments with final runs and an EPBT one (written by the previous version),
    and a one-shot experiment (its two repeats run by ``final``, which is its ``start``'s loop)."""
    root = tmp_path_factory.mktemp("runs")
    for name in ("a", "b"):
        shutil.copytree(FIXTURES / "v3-final", root / name)
    shutil.copytree(FIXTURES / "v3-epbt-killed", root / "epbt")
    oneshot = root / "oneshot"
    subprocess.run([sys.executable, "-m", "taylorglo", "init", str(oneshot), str(ONESHOT)], check=True)
    subprocess.run([sys.executable, "-m", "taylorglo", "final", str(oneshot), "--repeats", "2"], check=True)
    return root


def _imports(tmp_path: Path, *args: str) -> tuple[int, set[str]]:
    report = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(report), *args], capture_output=True, text=True, timeout=120
    )
    assert report.exists(), done.stderr
    out = json.loads(report.read_text())
    return out["code"], set(out["modules"])


COMMANDS = [
    ("--help",),
    ("start", "--help"),
    ("train", "--help"),
    ("status", "{a}"),
    ("status", "--json", "{a}"),
    ("status", "{epbt}"),
    ("status", "{oneshot}"),
    ("compare", "{oneshot}"),
    ("check", "{a}"),
    ("compare", "{a}"),
    ("compare", "--json", "{a}"),
    ("ttest", "{a}", "{b}"),
    ("collate", "{root}"),
    ("log", "{a}", "1", "2"),
    ("getinvocation", "{a}", "--candidate", "1:2"),
    ("getinvocation", "{config}"),
    ("invariant", "1,1,1,1,1,1,1,1"),
    ("invariant", "--json", "0,0,0,-1,0,0,0,0"),
]


@pytest.mark.parametrize("args", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_a_command_that_only_reads_imports_no_heavy_library(runs, tmp_path, args):
    names = {"a": runs / "a", "b": runs / "b", "epbt": runs / "epbt", "oneshot": runs / "oneshot"}
    argv = [a.format(root=runs, config=EXAMPLE, **names) for a in args]
    code, modules = _imports(tmp_path, *argv)
    assert code == 0
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert not heavy, f"{' '.join(args)} imported {heavy[:5]}"


def test_the_package_face_imports_on_first_use(tmp_path):
    """``import taylorglo`` is free; a name pulls in only what it needs."""
    code = (
        "import sys, taylorglo; assert 'torch' not in sys.modules\n"
        "taylorglo.format_formula([0.0] * 8); assert 'torch' not in sys.modules\n"
        "taylorglo.TaylorGLOLoss; assert 'torch' in sys.modules\n"
        "assert set(taylorglo.__all__) <= set(dir(taylorglo))\n"
        "import importlib\n"
        "for face in ('taylorglo', 'taylorglo.training', 'taylorglo.experiment', 'taylorglo.evaluators'):\n"
        "    module = importlib.import_module(face)\n"
        "    assert all(getattr(module, name) is not None for name in module.__all__), face"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_search_host_imports_no_torch(tmp_path):
    """``start`` of a search trains in its workers; the host itself never imports torch (nor
    matplotlib or scipy), so the workers start at once and the first candidate trains as soon as
    one of them is ready. A worker reports the data's classes and the network's cost instead."""
    config = tmp_path / "small.json"
    config.write_text(
        json.dumps(
            {
                "name": "light-host",
                "seed": 0,
                "training": {
                    "dataset": "digits",
                    "model": "mlp",
                    "steps": 200,
                    "batch_size": 32,
                    "model_options": {"hidden": 16},
                },
                "search": {"population": 4, "generations": 2, "partial_fraction": 0.25},
                "evaluator": {"workers": 2},
            }
        )
    )
    directory = tmp_path / "exp"
    subprocess.run(
        [sys.executable, "-m", "taylorglo", "init", str(directory), str(config)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    code, modules = _imports(tmp_path, "start", str(directory), "--plain")
    assert code == 0
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert not heavy, f"the host imported {heavy[:5]}"
    status = json.loads(
        subprocess.run(
            [sys.executable, "-m", "taylorglo", "status", "--json", str(directory)],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    )
    assert status["state"] == "finished" and status["candidates"]["total"] == 8
