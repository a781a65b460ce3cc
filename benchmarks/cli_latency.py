"""Benchmark: how long the commands that only read take, start to finish (issue 24).

Each command runs as a user runs it, ``python -m taylorglo ...`` in a fresh process, on a small
finished experiment with final runs (made first, outside the timing). Commands are interleaved
round by round, beside a baseline measured in the same rounds: ``python -c pass`` (the
interpreter alone) and ``python -c "import torch"`` (what every command paid when importing the
package imported torch). Printed: the median wall time of each over the rounds.

    python benchmarks/cli_latency.py              # 7 rounds
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SMALL = {
    "name": "latency",
    "seed": 0,
    "training": {"dataset": "digits", "model": "mlp", "steps": 400, "batch_size": 64, "model_options": {"hidden": 32}},
    "search": {"population": 4, "generations": 2, "partial_fraction": 0.25},
    "evaluator": {"workers": 2},
}


def _run(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="taylorglo-latency-"))
    config = root / "small.json"
    config.write_text(json.dumps(SMALL))
    for name in ("a", "b"):
        subprocess.run(
            [sys.executable, "-m", "taylorglo", "init", str(root / name), str(config)], check=True, capture_output=True
        )
        subprocess.run(
            [sys.executable, "-m", "taylorglo", "start", str(root / name), "--plain"], check=True, capture_output=True
        )
        subprocess.run(
            [sys.executable, "-m", "taylorglo", "final", str(root / name), "--repeats", "2"],
            check=True,
            capture_output=True,
        )
    a, b = str(root / "a"), str(root / "b")
    rows = {
        "python -c pass (baseline)": ("-c", "pass"),
        "python -c 'import torch' (baseline)": ("-c", "import torch"),
        "taylorglo --help": ("-m", "taylorglo", "--help"),
        "taylorglo status DIR": ("-m", "taylorglo", "status", a),
        "taylorglo compare DIR": ("-m", "taylorglo", "compare", a),
        "taylorglo ttest DIR_A DIR_B": ("-m", "taylorglo", "ttest", a, b),
        "taylorglo collate RUNS": ("-m", "taylorglo", "collate", str(root)),
        "taylorglo log DIR 1 0": ("-m", "taylorglo", "log", a, "1", "0"),
        "taylorglo getinvocation DIR": ("-m", "taylorglo", "getinvocation", a, "--candidate", "1:0"),
        "taylorglo getinvocation CONFIG": (
            "-m",
            "taylorglo",
            "getinvocation",
            str(Path(__file__).resolve().parent.parent / "examples" / "digits.toml"),
        ),
        "taylorglo invariant P": ("-m", "taylorglo", "invariant", "0,0,0,-1,0,0,0,0"),
    }
    times: dict[str, list[float]] = {label: [] for label in rows}
    for _ in range(args.rounds):
        for label, argv in rows.items():
            times[label].append(_run(*argv))
    print(f"{args.rounds} rounds, interleaved; median wall seconds, start to exit\n")
    print("| command | median s | min s |")
    print("|---|---:|---:|")
    for label, values in times.items():
        print(f"| `{label}` | {statistics.median(values):.2f} | {min(values):.2f} |")


if __name__ == "__main__":
    main()
