"""The house rules, checked with the tests (so the README's one test command runs them): ruff's lint
and format, and the import contract (lint-imports), all configured in pyproject.toml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TREES = ("src", "tests", "benchmarks", "examples")


def _tool(name: str) -> str:
    """The console script ``name`` beside this interpreter (the test extra installs it)."""
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return found


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_finds_nothing():
    done = _run(_tool("ruff"), "check", *TREES)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_code_is_formatted():
    done = _run(_tool("ruff"), "format", "--check", *TREES)
    assert done.returncode == 0, f"run `ruff format {' '.join(TREES)}`:\n{done.stdout}{done.stderr}"


def test_imports_keep_the_layers():
    done = _run(_tool("lint-imports"), "--no-cache")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
