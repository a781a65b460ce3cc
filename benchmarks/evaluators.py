"""Benchmark: the Ray evaluator against the local one, on the same digits search.

Both run the very same search (same config and seed, hence the same candidates, seeds and steps:
the benchmark checks that the two databases agree row for row) with 2 workers on this machine:
the local evaluator's ``spawn`` ed process pool, and the Ray evaluator on a private local Ray
instance started by the search itself, as ``kind = "ray"`` with no address does. For each it reports

* **wall**: ``start()`` from call to return;
* **start-up**: call → first recorded result minus that candidate's own training time (the local
  pool spawns and loads data; Ray starts its head processes, puts the data in the object store
  and starts the actors);
* **per-candidate overhead**: after start-up, the slot-seconds (``workers ×`` time) not spent
  inside a candidate's ``train()``, per trained candidate: dispatch, result transfer, the SQLite
  write, the generation barrier and everything between generations;
* **shutdown**: last result → ``start()`` returns (Ray stops its instance; the pool is joined).

The figure, printed last, is ``ray wall / local wall`` with the per-candidate overheads of both.
Rounds alternate local / Ray so that a slow phase of the machine hurts both alike; the best round
of each is compared (``--rounds``, default 2).

    python benchmarks/evaluators.py                # ~3 min on 2 cores
    python benchmarks/evaluators.py --quick        # ~1 min
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

CONFIG = """\
name = "evaluator-benchmark"
kind = "taylorglo"
seed = 0

[training]
dataset = "digits"
model = "mlp"
steps = {full_steps}
batch_size = 64
lr = 0.01

[search]
population = {population}
generations = {generations}
partial_fraction = 0.1

[evaluator]
kind = "{kind}"
{workers}
"""

ROWS = "SELECT generation, idx, params, seed, status, fitness, steps FROM candidates ORDER BY generation, idx"


def run_search(root: Path, kind: str, args: argparse.Namespace) -> dict[str, Any]:
    from taylorglo.experiment import init_experiment, start

    directory = root / f"{kind}-{time.monotonic_ns()}"
    config = root / f"{directory.name}.toml"
    config.write_text(
        CONFIG.format(
            full_steps=args.steps * 10,
            population=args.population,
            generations=args.generations,
            kind=kind,
            workers=f"workers = {args.workers}" if kind == "local" else f"max_in_flight = {args.workers}",
        )
    )
    init_experiment(directory, config)
    t0 = time.time()
    start(directory)
    t1 = time.time()
    with sqlite3.connect(directory / "experiment.sqlite") as db:
        rows = db.execute(ROWS).fetchall()
        trained = db.execute(
            "SELECT finished_at, wall_time FROM candidates WHERE wall_time IS NOT NULL ORDER BY finished_at"
        ).fetchall()
    first_end, first_wall = trained[0]
    last = trained[-1][0]
    startup = first_end - first_wall - t0
    busy = sum(w for _, w in trained)
    steady = (last - (t0 + startup)) * args.workers - busy
    return {
        "kind": kind,
        "wall": t1 - t0,
        "startup": startup,
        "shutdown": t1 - last,
        "per_candidate": steady / len(trained),
        "trained": len(trained),
        "train_s": busy,
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--population", type=int, default=20)
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2000, help="training steps per candidate")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="population 8, 2 generations, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.population, args.generations, args.rounds = 8, 2, 1
    try:
        import ray  # noqa: F401
    except ImportError:
        raise SystemExit("this benchmark needs ray: pip install -e '.[ray]'") from None

    results: dict[str, list[dict[str, Any]]] = {"local": [], "ray": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for kind in ("local", "ray") if r % 2 == 0 else ("ray", "local"):
                res = run_search(Path(tmp), kind, args)
                results[kind].append(res)
                print(
                    f"round {r + 1} {kind:5s}: wall {res['wall']:6.1f} s  start-up {res['startup']:5.1f} s  "
                    f"per-candidate overhead {res['per_candidate'] * 1000:6.0f} ms  shutdown "
                    f"{res['shutdown']:4.1f} s  ({res['trained']} trained, {res['train_s']:.1f} s in train())",
                    flush=True,
                )
    same = all(res["rows"] == results["local"][0]["rows"] for kind in results for res in results[kind])
    print(f"databases identical across evaluators and rounds: {same}")
    local = min(results["local"], key=lambda res: res["wall"])
    remote = min(results["ray"], key=lambda res: res["wall"])
    print(
        f"digits search, population {args.population} x {args.generations} generations, "
        f"{args.steps} steps per candidate, {args.workers} workers, best of {args.rounds}: "
        f"ray wall / local wall = {remote['wall']:.1f} / {local['wall']:.1f} = {remote['wall'] / local['wall']:.2f}; "
        f"start-up {remote['startup']:.1f} s vs {local['startup']:.1f} s; per-candidate overhead "
        f"{remote['per_candidate'] * 1000:.0f} ms vs {local['per_candidate'] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
