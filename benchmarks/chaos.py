"""Chaos: kill taylorglo at random moments and check that nothing is lost, duplicated or changed.

Each trial copies a fresh experiment, runs the command under test in a subprocess and, at a
random moment drawn from a seeded generator, does one harmful thing:

* ``search``  — ``kill -9`` of ``taylorglo start`` (a digits CMA-ES search);
* ``epbt``    — ``kill -9`` of ``taylorglo start`` on an EPBT run;
* ``final``   — ``kill -9`` of ``taylorglo final``;
* ``worker``  — ``kill -9`` of one of ``start`` 's worker processes (the search goes on);
* ``disk``    — the experiment lives on a tiny tmpfs that fills up mid-run (where this machine
  lets us mount one; as root): the command must stop with one line, and after the space is
  freed it must resume;

then runs the command again (as often as it takes) to the end. A trial *survived* when the
experiment ends with exactly the results of an uninterrupted reference run. It *lost* results
when a row recorded before the harm was missing or different afterwards, and *duplicated* when
one result was recorded twice (counted from ``host.log``, where every ``start`` and ``final``
appends one line per recorded result).

    python benchmarks/chaos.py                      # 30 trials, about 35 minutes on 2 cores
    python benchmarks/chaos.py --trials 60 --seed 1 --kinds search,final
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from experiments import SMALL, merged, write_config  # noqa: E402

SEARCH = merged(SMALL, training={"steps": 12000}, search={"generations": 3, "partial_fraction": 0.05})
EPBT = merged(
    {k: v for k, v in SMALL.items() if k != "search"},
    kind="epbt",
    training={"steps": 6000},
    epbt={"population": 4, "ready_steps": 1500, "distillation": {"steps": 20}, "novelty_pulsation": {"cycle": 2}},
)
FINAL = merged(SMALL, training={"steps": 3000}, search={"population": 4, "generations": 1, "partial_fraction": 0.05})
KINDS = ("search", "epbt", "final", "worker", "disk")


def taylorglo(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "taylorglo", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kwargs,
    )


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "taylorglo", *args], capture_output=True, text=True, timeout=900)


def rows(directory: Path) -> dict[tuple[str, int, int], tuple[Any, ...]]:
    """Every recorded result (search candidates and final runs), keyed by where it belongs."""
    path = directory / "experiment.sqlite"
    if not path.exists():
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        out = {
            ("c", g, i): rest
            for g, i, *rest in db.execute(
                "SELECT generation, idx, params, seed, status, fitness, val_accuracy FROM candidates "
                "WHERE status != 'pending'"
            )
        }
        out.update(
            {
                ("f", loss, r): rest
                for loss, r, *rest in db.execute(
                    "SELECT loss_id, repeat, seed, status, test_accuracy FROM final_runs WHERE status != 'pending'"
                )
            }
        )
    except sqlite3.Error:
        return {}
    finally:
        db.close()
    return out


def duplicated(directory: Path) -> int:
    """Results recorded more than once, from the log lines every command writes per result."""
    text = (directory / "host.log").read_text() if (directory / "host.log").exists() else ""
    keys = re.findall(r" (?:candidate|member) (\d+:\d+) ", text) + re.findall(r" final (\S+ repeat \d+):", text)
    return sum(n - 1 for n in Counter(keys).values() if n > 1)


def children(pid: int) -> list[int]:
    """The worker processes of ``pid`` (its direct children)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def prepare(kind: str, root: Path) -> tuple[Path, list[str]]:
    """A fresh experiment for ``kind`` and the command to run on it."""
    config = {"search": SEARCH, "worker": SEARCH, "disk": SEARCH, "epbt": EPBT, "final": FINAL}[kind]
    directory = root / "run"
    cfg = write_config(root / "config.toml", config)
    subprocess.run(
        [sys.executable, "-m", "taylorglo", "init", str(directory), str(cfg)], check=True, capture_output=True
    )
    if kind == "final":
        subprocess.run([sys.executable, "-m", "taylorglo", "start", str(directory)], check=True, capture_output=True)
        return directory, ["final", str(directory), "--repeats", "2"]
    return directory, ["start", str(directory)]


def reference(kind: str, scratch: Path) -> tuple[dict[tuple[str, int, int], tuple[Any, ...]], float]:
    """The uninterrupted run's results, and how long its command took (the harm's time range)."""
    root = Path(tempfile.mkdtemp(prefix=f"ref-{kind}-", dir=scratch))
    directory, command = prepare(kind, root)
    started = time.perf_counter()
    result = run(*command)
    assert result.returncode == 0, result.stderr
    return rows(directory), time.perf_counter() - started


def mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
        ).returncode
        == 0
    )


def trial(kind: str, rng: random.Random, scratch: Path, expected: dict[Any, Any], duration: float) -> dict[str, Any]:
    """One trial: harm at a random moment, resume to the end, compare."""
    root = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=scratch))
    if kind == "disk":
        disk = root / "disk"
        if not mount_tmpfs(disk, "64m"):
            return {"kind": kind, "skipped": "cannot mount a tmpfs here (needs root)"}
        root = disk
    directory, command = prepare(kind, root)
    seen: dict[Any, Any] = {}
    harmed = 0
    notes = []
    try:
        if kind == "disk":
            # Leave the store a few kB to grow into, then fill the rest of the tmpfs.
            filler = root / "filler"
            subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k"], capture_output=True)
            subprocess.run(["truncate", "-s", f"-{rng.randint(16, 128)}k", str(filler)], capture_output=True)
            result = run(*command)
            lines = result.stderr.strip().splitlines()
            one_line = (
                result.returncode == 2
                and len(lines) >= 1
                and lines[-1].startswith("error:")
                and "Traceback" not in result.stderr
            )
            notes.append(
                "full disk: one line" if one_line else f"full disk: {result.returncode} {result.stderr[-300:]!r}"
            )
            harmed += result.returncode != 0
            seen = rows(directory)
            filler.unlink()
        else:
            proc = taylorglo(*command)
            when = rng.uniform(0.1, 1.0) * duration
            time.sleep(when)
            if proc.poll() is None:
                if kind == "worker":
                    workers = children(proc.pid)
                    if workers:
                        os.kill(rng.choice(workers), signal.SIGKILL)
                        harmed += 1
                    proc.wait(timeout=900)
                else:
                    seen = rows(directory)
                    if rng.random() < 0.5:  # the host alone: its orphaned workers must stop by themselves
                        os.kill(proc.pid, signal.SIGKILL)
                    else:  # the whole process group, workers too
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    harmed += 1
            else:
                proc.wait()
        for _ in range(3):
            result = run(*command)
            if result.returncode == 0:
                break
        finished = rows(directory)
    finally:
        if kind == "disk":
            subprocess.run(["umount", str(root)], capture_output=True)
    lost = sum(1 for key, value in seen.items() if finished.get(key) != value)
    return {
        "kind": kind,
        "harmed": harmed,
        "survived": finished == expected,
        "lost": lost,
        "duplicated": duplicated(directory) if kind != "disk" else 0,
        "notes": notes,
        "at": None if kind == "disk" else round(when, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"comma-separated, of {', '.join(KINDS)}")
    parser.add_argument("--keep", action="store_true", help="keep the trial directories")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"--kinds: unknown {sorted(unknown)}")
    rng = random.Random(args.seed)
    scratch = Path(tempfile.mkdtemp(prefix="taylorglo-chaos-"))
    expected, durations = {}, {}
    for kind in dict.fromkeys("search" if k in ("worker", "disk") else k for k in kinds):
        expected[kind], durations[kind] = reference(kind, scratch)
        print(f"reference {kind}: {len(expected[kind])} results in {durations[kind]:.1f} s", flush=True)
    results = []
    for n in range(args.trials):
        kind = kinds[n % len(kinds)]
        base = "search" if kind in ("worker", "disk") else kind
        outcome = trial(kind, rng, scratch, expected[base], durations[base])
        results.append(outcome)
        print(json.dumps(outcome), flush=True)
    print()
    print(f"{'harm':<8} {'tried':>5} {'harmed':>6} {'survived':>8} {'lost':>5} {'duplicated':>10}")
    for kind in kinds:
        done = [r for r in results if r["kind"] == kind and "skipped" not in r]
        skipped = [r for r in results if r["kind"] == kind and "skipped" in r]
        if skipped and not done:
            print(f"{kind:<8} skipped: {skipped[0]['skipped']}")
            continue
        print(
            f"{kind:<8} {len(done):>5} {sum(r['harmed'] for r in done):>6} {sum(r['survived'] for r in done):>8} "
            f"{sum(r['lost'] for r in done):>5} {sum(r['duplicated'] for r in done):>10}"
        )
    if not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
