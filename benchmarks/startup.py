"""Benchmark: how soon a fresh search trains its first candidate, and how long the demo takes (issue 24).

Each round inits a fresh copy of ``examples/digits.toml`` and times ``python -m taylorglo start
DIR`` from the moment it is launched: *first training* is when the first candidate's training
began (its ``finished_at`` less its ``wall_time``, both recorded in the store), *search* the
whole command. Beside it, in the same rounds, the floor every worker stands on:
``python -c "import torch"``, a fresh interpreter importing torch. Printed: the median of each
over the rounds, and first training / import torch.

    python benchmarks/startup.py                 # 5 rounds
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "digits.toml"


def _search(directory: Path) -> tuple[float, float]:
    """(first training began, search ended), in seconds after ``start`` was launched."""
    subprocess.run(
        [sys.executable, "-m", "taylorglo", "init", str(directory), str(CONFIG)], check=True, capture_output=True
    )
    launched_at, started = time.time(), time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "taylorglo", "start", str(directory), "--plain"], check=True, capture_output=True
    )
    whole = time.perf_counter() - started
    with sqlite3.connect(f"file:{directory / 'experiment.sqlite'}?mode=ro", uri=True) as db:
        (began,) = db.execute(
            "SELECT MIN(finished_at - wall_time) FROM candidates WHERE wall_time IS NOT NULL"
        ).fetchone()
    return began - launched_at, whole


def _import_torch() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="taylorglo-startup-"))
    first, whole, floor = [], [], []
    for i in range(args.rounds):
        floor.append(_import_torch())
        began, ended = _search(root / f"run{i}")
        first.append(began)
        whole.append(ended)
        print(
            f"round {i}: first training {began:.2f} s, search {ended:.2f} s, import torch {floor[-1]:.2f} s", flush=True
        )
    f, w, t = statistics.median(first), statistics.median(whole), statistics.median(floor)
    print(f"\nmedian over {args.rounds} rounds (examples/digits.toml, 2 workers, {len(first)} fresh searches):")
    print(f"  first candidate's training began  {f:6.2f} s after `taylorglo start`")
    print(f"  the whole search                  {w:6.2f} s")
    print(f"  python -c 'import torch'          {t:6.2f} s   (first training / import torch = {f / t:.2f})")


if __name__ == "__main__":
    main()
