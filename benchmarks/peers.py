"""Benchmark: taylorglo's search against the two other ways to run the same search (issue 24).

Three ways to train a TaylorGLO search's candidates on 2 cores, 2 at a time, 1 torch thread each:

* **taylorglo**: ``taylorglo init`` + ``taylorglo start`` (the host, its two worker processes).
* **optuna**: Optuna's CMA-ES sampler (``CmaEsSampler``, popsize λ, σ₀ and mean as the config)
  driving the same :func:`taylorglo.train` from two processes that share a journal file
  (``JournalStorage(JournalFileBackend)``, Optuna's way to run one study from several processes);
  a loss the invariant rejects is a pruned trial, not trained. Each process imports torch and
  loads the data once; they stop once the study holds as many trained trials as taylorglo trained.
* **process per candidate** (the reference system's way: the host launches its trainer for every
  candidate): the same CMA-ES as taylorglo's, so the very same candidates and seeds, each trained
  by a fresh ``taylorglo train --json`` process, two at a time.

Rounds interleave the three (the order rotates), on two protocols: **digits** (the MLP of
``examples/digits.toml``, λ 8, 8 generations) and **mnist** (10 % of MNIST's training split, the
``mnist-cnn`` at width 0.25, 1,200-step candidates: the README's Results protocol, λ 8, 3
generations). Printed per protocol: each way's median wall time and trainings, and the ratios
peer / taylorglo of wall time per training (> 1: taylorglo is faster).

    pip install -e ".[bench]"                                      # Optuna and cmaes: benchmark-only
    python benchmarks/peers.py --data-dir ../shared/data/mnist    # about 15 minutes on 2 cores
    python benchmarks/peers.py --only digits --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2


def protocols(data_dir: str | None) -> dict[str, dict[str, Any]]:
    digits = tomllib.loads((ROOT / "examples" / "digits.toml").read_text())
    digits["search"]["population"] = 8
    digits["evaluator"] = {"kind": "local", "workers": WORKERS}
    mnist = {
        "name": "peers-mnist",
        "seed": 0,
        "training": {
            "dataset": "mnist",
            "data_fraction": 0.1,
            "model": "mnist-cnn",
            "model_options": {"width": 0.25},
            "steps": 6000,
            "batch_size": 100,
            "lr": 0.01,
            "momentum": 0.9,
        },
        "search": {"population": 8, "generations": 3, "sigma": 1.2, "partial_fraction": 0.2, "invariant": "reference"},
        "evaluator": {"kind": "local", "workers": WORKERS},
    }
    if data_dir:
        mnist["training"]["data_dir"] = str(Path(data_dir).resolve())
    return {"digits": digits, "mnist": mnist}


# -- the three ways ------------------------------------------------------------------------------


def run_taylorglo(config: Path, work: Path) -> tuple[float, int]:
    directory = work / "taylorglo"
    subprocess.run(
        [sys.executable, "-m", "taylorglo", "init", str(directory), str(config)], check=True, capture_output=True
    )
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "taylorglo", "start", str(directory), "--plain"], check=True, capture_output=True
    )
    wall = time.perf_counter() - started
    status = json.loads(
        subprocess.run(
            [sys.executable, "-m", "taylorglo", "status", "--json", str(directory)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    counts = status["candidates"]
    return wall, counts["total"] - counts["rejected_invariant"]


def run_optuna(config: Path, work: Path, trainings: int) -> tuple[float, int]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    journal = work / "optuna.journal"
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    optuna.create_study(storage=storage, study_name="peers", direction="maximize")
    started = time.perf_counter()
    procs = [
        subprocess.Popen([sys.executable, __file__, "_optuna", str(config), str(journal), str(trainings), str(worker)])
        for worker in range(WORKERS)
    ]
    if any(p.wait() for p in procs):
        raise SystemExit("an optuna worker failed")
    wall = time.perf_counter() - started
    study = optuna.load_study(study_name="peers", storage=storage)
    done = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    return wall, len(done)


def optuna_worker(config_path: str, journal: str, trainings: int, worker: int) -> None:
    """One of the two Optuna processes: the study's trials until it holds ``trainings`` trained ones."""
    import optuna
    import torch

    from taylorglo import TaylorGLOLoss, invariant_holds
    from taylorglo.experiment import ExperimentConfig
    from taylorglo.seeds import derived_seed
    from taylorglo.training import load_dataset, train

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)  # x0, sigma0: deprecated in 4.9, still honoured
    torch.set_num_threads(1)
    config = ExperimentConfig.from_dict(json.loads(Path(config_path).read_text()), check_network=False)
    training = config.candidate_training()
    data = load_dataset(training.dataset, training.data_dir, training.data_fraction)
    names = [f"p{i}" for i in range(8)]
    sampler = optuna.samplers.CmaEsSampler(
        x0={n: 0.0 for n in names},
        sigma0=config.search.sigma,
        popsize=config.search.population,
        n_startup_trials=0,
        seed=config.seed + worker,
        warn_independent_sampling=False,
    )
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    study = optuna.load_study(study_name="peers", storage=storage, sampler=sampler)
    complete = (optuna.trial.TrialState.COMPLETE,)

    def objective(trial: optuna.Trial) -> float:
        params = [trial.suggest_float(n, -30.0, 30.0) for n in names]
        if not invariant_holds(params, data.num_classes, config.search.invariant):
            raise optuna.TrialPruned()
        result = train(training, TaylorGLOLoss(params), seed=derived_seed(config.seed, 7, trial.number), data=data)
        return result.val_accuracy if result.ok else 0.0

    def enough(study: optuna.Study, _trial: Any) -> None:
        if len(study.get_trials(deepcopy=False, states=complete)) >= trainings:
            study.stop()

    if len(study.get_trials(deepcopy=False, states=complete)) < trainings:
        study.optimize(objective, n_trials=100 * trainings, callbacks=[enough])


def run_per_process(config: Path, work: Path) -> tuple[float, int]:
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, "_per_process", str(config), str(work)], check=True)
    return time.perf_counter() - started, int((work / "per_process.count").read_text())


def per_process_driver(config_path: str, work: str) -> None:
    """The reference's way: CMA-ES in the driver, a fresh process per candidate (:func:`train_one`)."""
    from taylorglo.experiment import ExperimentConfig
    from taylorglo.invariant import invariant_holds
    from taylorglo.seeds import candidate_seed

    config = ExperimentConfig.from_dict(json.loads(Path(config_path).read_text()), check_network=False)
    search = config.search.new_search(config.seed)
    trained = 0
    for generation in range(config.search.generations):
        asked = search.ask()
        fitness = [0.0] * len(asked)
        todo = [(i, p) for i, p in enumerate(asked) if invariant_holds(p, 10, config.search.invariant)]
        running: dict[int, tuple[subprocess.Popen[bytes], Path]] = {}
        while todo or running:
            while todo and len(running) < WORKERS:
                i, params = todo.pop(0)
                seed = candidate_seed(config.seed, generation, i, config.search.seeds)
                out = Path(work) / f"result-{generation}-{i}.json"
                running[i] = (
                    subprocess.Popen(
                        [sys.executable, __file__, "_train", config_path, json.dumps(params), str(seed), str(out)]
                    ),
                    out,
                )
            finished = [i for i, (proc, _) in running.items() if proc.poll() is not None]
            if not finished:
                time.sleep(0.005)
            for i in finished:
                proc, out = running.pop(i)
                if proc.returncode:
                    raise SystemExit(f"candidate {generation}:{i} failed")
                fitness[i] = json.loads(out.read_text())["fitness"]
                trained += 1
        search.tell(asked, fitness)
    (Path(work) / "per_process.count").write_text(str(trained))


def train_one(config_path: str, params: str, seed: str, out: str) -> None:
    """One candidate in a fresh process: import torch, load the data, train, write the fitness."""
    import torch

    from taylorglo import TaylorGLOLoss
    from taylorglo.experiment import ExperimentConfig
    from taylorglo.training import load_dataset, train

    torch.set_num_threads(1)
    config = ExperimentConfig.from_dict(json.loads(Path(config_path).read_text()), check_network=False)
    training = config.candidate_training()
    data = load_dataset(training.dataset, training.data_dir, training.data_fraction)
    result = train(training, TaylorGLOLoss(json.loads(params)), seed=int(seed), data=data)
    Path(out).write_text(json.dumps({"fitness": result.val_accuracy if result.ok else 0.0}))


# -- rounds ----------------------------------------------------------------------------------------

WAYS = ("taylorglo", "optuna", "process per candidate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="MNIST's IDX files (else downloaded)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=("digits", "mnist"), default=None)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="taylorglo-peers-"))
    table = []
    for name, protocol in protocols(args.data_dir).items():
        if args.only and name != args.only:
            continue
        walls: dict[str, list[float]] = {w: [] for w in WAYS}
        counts: dict[str, list[int]] = {w: [] for w in WAYS}
        # taylorglo's search is reproducible, so round 0 (taylorglo first) fixes how many trainings
        # Optuna is held to in every round.
        trainings: int | None = None
        for r in range(args.rounds):
            order = WAYS[r % 3 :] + WAYS[: r % 3]
            work = root / f"{name}-{r}"
            work.mkdir()
            config = work / "config.json"
            config.write_text(json.dumps(protocol))
            for way in order:
                if way == "taylorglo":
                    wall, n = run_taylorglo(config, work)
                elif way == "optuna":
                    assert trainings is not None
                    wall, n = run_optuna(config, work, trainings)
                else:
                    wall, n = run_per_process(config, work)
                if way == "taylorglo":
                    trainings = n
                walls[way].append(wall)
                counts[way].append(n)
                print(f"{name} round {r}: {way}: {wall:.2f} s, {n} trainings", flush=True)
        base = statistics.median(walls["taylorglo"]) / statistics.median(counts["taylorglo"])
        for way in WAYS:
            per = statistics.median(walls[way]) / statistics.median(counts[way])
            table.append((name, way, statistics.median(walls[way]), statistics.median(counts[way]), per, per / base))
    print(f"\nmedians over {args.rounds} interleaved rounds, {WORKERS} workers x 1 thread:")
    print(f"  {'protocol':8} {'way':22} {'wall s':>8} {'trainings':>9} {'s/training':>10} {'peer/taylorglo':>14}")
    for name, way, wall, n, per, ratio in table:
        print(f"  {name:8} {way:22} {wall:8.2f} {n:9.0f} {per:10.3f} {ratio:14.3f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_optuna":
        optuna_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_per_process":
        per_process_driver(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "_train":
        train_one(*sys.argv[2:6])
    else:
        main()
