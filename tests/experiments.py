"""Small experiment configs for the host tests (digits, a few generations, seconds per search)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SMALL: dict[str, Any] = {
    "name": "test-digits",
    "kind": "taylorglo",
    "seed": 0,
    "training": {"dataset": "digits", "model": "mlp", "steps": 2000, "batch_size": 64, "model_options": {"hidden": 32}},
    "search": {
        "order": 3,
        "population": 6,
        "sigma": 1.2,
        "generations": 3,
        "partial_fraction": 0.05,
        "invariant": "reference",
    },
    "evaluator": {"kind": "local", "workers": 2},
}

#: A search whose fitness is the user's own training loop (tests/own_objective.py: AdamW on a
#: tabular task), the workers import it from the tests' folder.
OWN: dict[str, Any] = {
    "name": "own-tabular",
    "kind": "taylorglo",
    "seed": 0,
    "training": {"objective": "own_objective:objective", "objective_options": {"epochs": 8}, "num_classes": 2},
    "search": {"population": 4, "generations": 2, "partial_fraction": 0.25},
    "evaluator": {"kind": "local", "workers": 2},
}


def merged(base: dict[str, Any], **tables: dict[str, Any] | Any) -> dict[str, Any]:
    out = json.loads(json.dumps(base))
    for key, value in tables.items():
        if isinstance(value, dict):
            out.setdefault(key, {}).update(value)
        else:
            out[key] = value
    return out


def toml_text(config: dict[str, Any]) -> str:
    """A tiny TOML writer for the flat tables these tests use."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        return repr(v)

    lines = [f"{k} = {value(v)}" for k, v in config.items() if not isinstance(v, dict)]
    for k, v in config.items():
        if isinstance(v, dict):
            lines.append(f"\n[{k}]")
            lines += [f"{kk} = {value(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path = Path(path)
    if path.suffix == ".json":
        path.write_text(json.dumps(config))
    else:
        path.write_text(toml_text(config))
    return path


def candidate_rows(directory: Path) -> list[tuple]:
    """Every candidate of an experiment as a comparable tuple, read from its SQLite file: (generation,
    index, params, seed, status, fitness, val_accuracy, val_loss, attempts, threads)."""
    import sqlite3

    with sqlite3.connect(Path(directory) / "experiment.sqlite") as db:
        rows = db.execute(
            "SELECT generation, idx, params, seed, status, fitness, val_accuracy, val_loss, attempts, "
            "json_extract(metrics, '$.threads') FROM candidates ORDER BY generation, idx"
        ).fetchall()
    db.close()
    return rows


def plugin_env() -> dict[str, str]:
    """The environment of a ``taylorglo`` subprocess: this one's, with the tests' plug-ins
    (``tests/gated_model.py``, ``tests/dying_model.py``) importable, output unbuffered."""
    path = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


def cli(*args: str, check: bool = False, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``python -m taylorglo ARGS`` as a user would (a separate process)."""
    env = plugin_env()
    result = subprocess.run(
        [sys.executable, "-m", "taylorglo", *args], capture_output=True, text=True, env=env, timeout=600, **kwargs
    )
    if check and result.returncode != 0:
        raise AssertionError(f"taylorglo {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``taylorglo ARGS`` through the CLI's own entry point, in this process (no interpreter and
    torch start-up per call): exit code, stdout and stderr as a user would see them."""
    import contextlib
    import io

    from taylorglo.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv, sys.argv = sys.argv, ["taylorglo", *args]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    return subprocess.CompletedProcess(["taylorglo", *args], code, out.getvalue(), err.getvalue())


def eventually(condition: Any, timeout: float = 120.0) -> bool:
    """Whether ``condition()`` becomes true within ``timeout`` seconds (polled). For what must
    happen *at some point* (an orphaned worker exits): a deadline generous enough that a loaded
    machine meets it, so no test depends on how fast the machine is."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def kill_9_when(args: list[str], directory: Path, ready: Any, on_poll: Any = None) -> tuple[int, Any]:
    """``taylorglo ARGS`` in a subprocess, killed with SIGKILL as soon as ``ready(db)`` (a
    connection to ``DIR/experiment.sqlite``) returns something true. ``on_poll()`` runs at every
    poll. Returns the exit code (``-SIGKILL`` when the kill landed) and ``ready``'s last answer."""
    import signal
    import sqlite3
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "taylorglo", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=plugin_env(),
    )
    deadline = time.time() + 300
    state = None
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
        if on_poll is not None:
            on_poll()
        try:
            db = sqlite3.connect(f"file:{Path(directory) / 'experiment.sqlite'}?mode=ro", uri=True)
            try:
                state = ready(db)
            finally:
                db.close()
        except sqlite3.Error:
            continue
        if state:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    return proc.returncode, state


def start_and_kill_9(directory: Path, generation: int = 1, on_poll: Any = None) -> tuple[int, dict[str, int] | None]:
    """``taylorglo start DIR``, killed with SIGKILL as soon as ``generation`` has at least one
    recorded and one pending row (inside that generation); see :func:`kill_9_when`."""
    counts: dict[str, int] = {}

    def inside(db: Any) -> bool:
        counts.clear()
        counts.update(
            db.execute(
                "SELECT status, COUNT(*) FROM candidates WHERE generation = ? GROUP BY status", (generation,)
            ).fetchall()
        )
        return counts.get("evaluated", 0) >= 1 and counts.get("pending", 0) >= 1

    returncode, _ = kill_9_when(["start", str(directory)], directory, inside, on_poll)
    return returncode, dict(counts)


def straight_and_killed(root: Path, config: dict[str, Any], on_poll: Any = None) -> tuple[Path, Path]:
    """Two experiments made from ``config`` under ``root``: ``straight`` run to its end, and
    ``killed`` started and killed with SIGKILL inside generation 1 (:func:`start_and_kill_9`),
    which must have landed and left it ``stopped``. For the resume-matches-uninterrupted tests."""
    import signal

    from taylorglo.experiment import init_experiment, status

    path = write_config(root / "slow.toml", config)
    straight, killed = root / "straight", root / "killed"
    for directory in (straight, killed):
        init_experiment(directory, path)
    cli("start", str(straight), check=True)
    returncode, state = start_and_kill_9(killed, on_poll=on_poll)
    assert returncode == -signal.SIGKILL, f"run ended before the kill (generation 1: {state})"
    assert status(killed)["state"] == "stopped"
    return straight, killed


def killed_and_resumed(directory: Path, generation: int = 0) -> list[tuple]:
    """``directory`` (initialised, not started) started and killed with SIGKILL inside
    ``generation`` (:func:`start_and_kill_9`), then resumed to its end in this process; checks the
    kill landed and every row recorded before it survived, and returns :func:`candidate_rows`."""
    import signal

    from taylorglo.experiment import start

    returncode, state = start_and_kill_9(directory, generation=generation)
    assert returncode == -signal.SIGKILL, f"the search ended before the kill (generation {generation}: {state})"
    before = [r for r in candidate_rows(directory) if r[4] != "pending"]
    start(directory)
    after = candidate_rows(directory)
    assert all(r in after for r in before)
    return after
