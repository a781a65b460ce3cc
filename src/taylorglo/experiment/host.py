"""The experiment host (the reference's "Lossferatu"): init and start/resume (reading one: :mod:`.reading`).

An experiment is a directory::

    DIR/config.toml         the file given to `init`, copied verbatim (for the record)
    DIR/experiment.sqlite   the configuration as validated, CMA-ES states, every candidate
    DIR/host.log            one line per event, appended by every `start`
    DIR/best.json           the best loss so far (rewritten after each generation)
    DIR/generations.csv     best / mean / min fitness per generation
    DIR/candidates.csv      every candidate with its status and metrics
    DIR/lock                held by a running `start`

The SQLite file is the only source of truth; the other files are views of it, rewritten
atomically, for people and spreadsheets. :func:`start` is a loop over generations that can be cut
at any instant: everything it needs to continue is in the store (see :mod:`.store`), so running
it again resumes where the last run stopped, and a search resumed any number of times ends with
the same results as one that never stopped.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import remove_stale_temporaries, write_atomic
from ..errors import TaylorGLOError
from ..invariant import invariant_holds
from ..polynomial import format_formula
from ..records import Candidate
from ..search import CMAESSearch
from ..seeds import candidate_seed
from ..training.config import TrainConfig
from .config import ExperimentConfig, read_config_file
from .lock import ExperimentLock
from .progress import Reporter, SearchProgress
from .reading import Experiment, open_experiment, status
from .store import Store
from .threads import recorded_layout, search_plan

if TYPE_CHECKING:
    from ..training.data import DataSplits

CONFIG_COPY = "config"
LOG_FILE = "host.log"


def init_experiment(
    directory: str | os.PathLike[str], config_path: str | os.PathLike[str], exist_ok: bool = False
) -> Experiment:
    """Validate ``config_path`` and create the experiment directory; refuse an existing one
    (with ``exist_ok``, accept one that was made from an identical config)."""
    directory = Path(directory)
    config = ExperimentConfig.load(config_path)
    if exist_ok and (directory / Store.FILENAME).is_file():
        existing = open_experiment(directory)
        if existing.config != config:
            raise TaylorGLOError(
                f"DIR: {str(directory)!r} holds an experiment with a different config; choose a new directory"
            )
        return existing
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise TaylorGLOError(
            f"DIR: {str(directory)!r} already exists; resume it with `taylorglo start {directory}` "
            "or choose a new directory"
        )
    directory.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copyfile(config_path, directory / (CONFIG_COPY + Path(config_path).suffix.lower()))
        with Store(directory / Store.FILENAME, create=True) as store:
            store.set_meta("config", config.to_dict())
            store.set_meta("created", time.strftime("%Y-%m-%d %H:%M:%S"))
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return Experiment(directory, config)


def _warn_if_config_edited(experiment: Experiment, log: _Log) -> None:
    """An experiment runs the config it was created with (recorded in its store); an edit of
    ``DIR/config.*`` afterwards changes nothing, which a user who made one must be told."""
    for path in sorted(experiment.directory.glob(CONFIG_COPY + ".*")):
        try:
            # Compared, not run: the network is not built (that would import torch in the host).
            edited = ExperimentConfig.from_dict(
                read_config_file(path), default_name=experiment.config.name, check_network=False
            )
        except TaylorGLOError as exc:
            edited, why = None, f" and is no longer valid ({exc})"
        else:
            why = ""
        if edited != experiment.config:
            log.info(
                f"warning: {path} was edited after `taylorglo init`{why}; the edit is ignored: an experiment "
                f"runs the config it was created with (in {Store.FILENAME}); to run the edited one, "
                f"`taylorglo init NEW_DIR {path}`"
            )


def make_evaluator(
    config: ExperimentConfig,
    training: TrainConfig,
    workers: int | None,
    most: int,
    log: Callable[[str], None],
    data: DataSplits | None = None,
) -> Any:
    """The evaluator ``config`` asks for, training with ``training``; never more than ``most``
    workers (more than there are jobs at once would only idle). Shared by the search and ``final``.
    ``log`` receives what the evaluator reports (a worker that died); ``data``, the dataset the
    driver has loaded, is handed to evaluators that can reuse it."""
    evaluator = _evaluator(config, training, workers, most, data)
    evaluator.log = log
    return evaluator


def _evaluator(
    config: ExperimentConfig, training: TrainConfig, workers: int | None, most: int, data: DataSplits | None
) -> Any:
    e = config.evaluator
    if e.kind == "local":
        from ..evaluators.local import LocalEvaluator, cpu_count

        n = workers or e.workers
        return LocalEvaluator(training, workers=max(1, min(n or cpu_count(), most)), retries=e.retries)
    if e.kind == "ray":
        from ..evaluators.ray import RayEvaluator
        from ..training.data import load_dataset

        if data is None and e.ship_data:
            data = load_dataset(training.dataset, training.data_dir, training.data_fraction, field="training.dataset")
        n = workers or e.max_in_flight or e.workers or most
        return RayEvaluator(training, e, workers=max(1, min(n, most)), data=data)
    raise TaylorGLOError(f'evaluator.kind: {e.kind!r} is not available; use "local" or "ray"')


def start(
    directory: str | os.PathLike[str],
    workers: int | None = None,
    reporter: Reporter | None = None,
    evaluator: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the search in ``directory`` to its last generation; return :func:`status`.

    ``evaluator`` overrides fields of the config's ``[evaluator]`` table for this run only (for
    example ``{"kind": "ray", "address": "auto"}``): results do not depend on where they train.

    Refuses to run while another ``start`` holds the directory. Configuration problems that only
    show with the data (a missing dataset, a model that does not fit the images) raise
    :class:`TaylorGLOError` before any candidate is trained.
    """
    experiment = open_experiment(directory)
    config = experiment.config.with_evaluator(evaluator)
    reporter = reporter or Reporter()
    with ExperimentLock(experiment.directory):
        log = _Log(experiment.directory / LOG_FILE, reporter)
        remove_stale_temporaries(experiment.directory)
        _warn_if_config_edited(experiment, log)
        if config.kind == "epbt":
            from ..training.data import load_dataset
            from ..training.trainer import check_network, resolve_device

            data = load_dataset(
                config.training.dataset,
                config.training.data_dir,
                config.training.data_fraction,
                field="training.dataset",
            )
            check_network(config.candidate_training(), data)
            resolve_device(config.training.device)
            with (
                experiment.store() as store,
                make_evaluator(config, config.training, workers, config.population, log.info, data) as runner,
            ):
                _run_epbt(experiment.directory, store, config, runner, data, log, reporter)
            result = status(experiment.directory)
            log.info(f"finished: best member {_best_text(result)}")
            return result
        # The search's host never imports torch: the workers start now, and one of them loads the
        # data and checks the network (``facts``) while the others import torch.
        with (
            experiment.store() as store,
            make_evaluator(config, config.candidate_training(), workers, config.search.population, log.info) as runner,
        ):
            facts = runner.facts()
            progress = SearchProgress.from_store(store, config, runner.workers)
            log.info(
                f"start: {config.name}: {config.search.generations} generations x "
                f"{config.search.population} candidates, {runner.workers} {config.evaluator.kind} workers, "
                f"{facts.summary}; resuming at generation {progress.generation}"
            )
            _fill_summaries(store)
            plan = search_plan(store, config.evaluator.lend_idle_cores, runner, log.info)
            reporter.begin(progress)
            while True:
                search, generation, candidates, fresh = _next_generation(store, config, facts.num_classes)
                if search is None:
                    break
                progress.begin_generation(generation, candidates, fresh)
                reporter.update(progress)
                jobs = _jobs(candidates, config.candidate_fgsm_epsilon, plan)
                for result in runner.evaluate(jobs):
                    if store.record(result):
                        progress.record(result)
                        log.candidate(progress, result)
                        reporter.update(progress)
                rows = store.candidates(generation)
                still = [c.index for c in rows if c.status == "pending"]
                if still:  # cannot happen unless an evaluator drops jobs; never tell a partial generation
                    raise RuntimeError(f"generation {generation}: candidates {still} were not evaluated")
                search.tell([c.params for c in rows], [c.fitness or 0.0 for c in rows])
                store.close_generation(generation, search.state(), search.sigma, search.summary())
                export(experiment.directory, store, config)
                progress.end_generation()
                log.generation(progress, store.generation(generation))
                reporter.update(progress)
            reporter.end(progress)
        result = status(experiment.directory)
        log.info(f"finished: best fitness {result['best']['fitness'] if result['best'] else None}")
    return result


def _run_epbt(
    directory: Path,
    store: Store,
    config: ExperimentConfig,
    runner: Any,
    data: DataSplits,
    log: _Log,
    reporter: Reporter,
) -> None:
    """The EPBT loop (:mod:`taylorglo.epbt.runner`), logged and shown like a search."""
    from ..epbt.report import export_epbt, save_best_network
    from ..epbt.runner import plan_meta, run_generations

    meta = plan_meta(config, data)
    recorded = store.get_meta("epbt_plan")
    if recorded is not None and recorded != meta:
        raise TaylorGLOError(
            f"training: the schedule resolves to {meta} now but the experiment started with "
            f"{recorded}; the data or config changed: restore them or start a new directory"
        )
    if recorded is None:
        store.set_meta("epbt_plan", meta)
    progress = SearchProgress.from_store(store, config, runner.workers, meta["generations"])
    e = config.epbt
    assert e is not None
    log.info(
        f"start: {config.name}: EPBT, {e.population} members, {meta['generations']} generations of "
        f"{meta['ready_steps']} steps ({meta['total_steps']} in all), {runner.workers} "
        f"{config.evaluator.kind} workers, {data.summary()}; resuming at generation {progress.generation}"
    )
    threads = recorded_layout(store, runner, log.info)["threads"]
    reporter.begin(progress)
    for event, value in run_generations(directory, store, config, runner, data, meta, threads):
        if event == "begin":
            progress.begin_generation(*value)
        elif event == "member":
            progress.record(value)
            log.candidate(progress, value)
        else:
            export_epbt(directory, store, config)
            progress.end_generation()
            log.generation(progress, store.generation(value))
        reporter.update(progress)
    export_epbt(directory, store, config, final=True)
    saved = save_best_network(directory, store, config, data)
    if saved is not None:
        log.info(f"best member's network saved to {saved}")
    reporter.end(progress)


def _best_text(result: dict[str, Any]) -> str:
    best = result.get("best")
    if not best:
        return "-"
    test = best.get("test_accuracy")
    return f"{best['fitness']:.4f}" + (f" (test {test:.4f})" if test is not None else "")


def _next_generation(
    store: Store, config: ExperimentConfig, num_classes: int
) -> tuple[CMAESSearch | None, int, list[Candidate], bool]:
    """The open generation (restored) or a newly asked one (``fresh``); None once all are done."""
    latest = store.latest_generation()
    if latest is not None and not latest.closed:
        search = CMAESSearch.from_state(latest.asked_state)
        return search, latest.generation, store.candidates(latest.generation), False
    generation = 0 if latest is None else latest.generation + 1
    if generation >= config.search.generations:
        return None, generation, [], False
    search = (
        config.search.new_search(config.seed) if latest is None else CMAESSearch.from_state(latest.told_state or b"")
    )
    rule = config.search.invariant
    candidates = []
    for index, params in enumerate(search.ask()):
        seed = candidate_seed(config.seed, generation, index, config.search.seeds)
        if invariant_holds(params, num_classes, rule):
            candidates.append(Candidate(generation, index, params, seed, "pending"))
        else:
            candidates.append(
                Candidate(
                    generation,
                    index,
                    params,
                    seed,
                    "rejected-invariant",
                    fitness=0.0,
                    reason=f"fails the {rule} invariant for {num_classes} classes",
                )
            )
    store.open_generation(generation, search.state(), candidates, asked_summary=search.summary())
    return search, generation, candidates, True


def _fill_summaries(store: Store) -> None:
    """Give generations an older version recorded the plain-data summaries readers use. The
    pickles are this experiment's own, which ``start`` unpickles anyway to resume."""
    for g in store.missing_summaries():
        asked = CMAESSearch.from_state(g.asked_state).summary()
        told = CMAESSearch.from_state(g.told_state).summary() if g.told_state else None
        store.set_summaries(g.generation, asked, told)


def _jobs(candidates: list[Candidate], fgsm_epsilon: float | None, plan: Callable[[int], list[int]]) -> list[Any]:
    """The jobs of a generation's pending candidates. Threads are planned over every candidate
    that trains, recorded or not, so a resumed generation gets the plan it started with."""
    from ..evaluators.base import Job

    trained = [c for c in candidates if c.status != "rejected-invariant"]
    threads = dict(zip((c.index for c in trained), plan(len(trained))))
    return [
        Job(c.generation, c.index, tuple(c.params), c.seed, fgsm_epsilon=fgsm_epsilon, threads=threads[c.index])
        for c in candidates
        if c.status == "pending"
    ]


def export(directory: Path, store: Store, config: ExperimentConfig) -> None:
    """Rewrite the human-readable views (best.json, generations.csv, candidates.csv) atomically."""
    best = store.best()
    if best is not None:
        write_atomic(
            directory / "best.json",
            json.dumps(
                {
                    "name": config.name,
                    "params": best.params,
                    "fitness": best.fitness,
                    "generation": best.generation,
                    "index": best.index,
                    "seed": best.seed,
                    "formula": format_formula(best.params),
                    "formula_paper": format_formula(best.params, "paper"),
                    "loss": "taylorglo:" + ",".join(repr(p) for p in best.params),
                },
                indent=2,
            )
            + "\n",
        )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["generation", "best_fitness", "mean_fitness", "min_fitness", "sigma"])
    for g in store.generations():
        if g.closed:
            writer.writerow([g.generation, g.best_fitness, g.mean_fitness, g.min_fitness, g.sigma])
    write_atomic(directory / "generations.csv", out.getvalue())
    out = io.StringIO()
    writer = csv.writer(out)
    columns = [
        "generation",
        "index",
        "status",
        "fitness",
        "val_accuracy",
        "val_loss",
        "train_accuracy",
        "train_loss",
        "steps",
        "attempts",
        "wall_time",
        "worker",
        "seed",
        "reason",
        "params",
    ]
    writer.writerow(columns)
    for c in store.candidates():
        row = c.to_dict()
        row["params"] = " ".join(repr(p) for p in c.params)
        writer.writerow([row[k] for k in columns])
    write_atomic(directory / "candidates.csv", out.getvalue())


class _Log:
    """Plain event lines to DIR/host.log (always) and to the reporter (which decides the screen)."""

    def __init__(self, path: Path, reporter: Reporter) -> None:
        self.path = path
        self.reporter = reporter

    def info(self, message: str, detail: bool = False) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
        self.reporter.log(line, detail)

    def candidate(self, p: SearchProgress, c: Candidate) -> None:
        """One recorded result: a search's candidate, or (with its hyperparameters) an EPBT member's stretch."""
        what = f"fitness {c.fitness:.4f}" if c.status == "evaluated" else f"{c.status} ({c.reason})"
        m = c.metrics or {}
        noun, hyper = "candidate", ""
        if p.kind == "epbt":
            noun = "member"
            hyper = f" lr {m['lr']:.3g} wd {m['weight_decay']:.3g}" if "lr" in m else ""
        wall = f" {c.wall_time:.1f}s" if c.wall_time is not None else ""
        self.info(
            f"{noun} {c.generation}:{c.index} {what}{hyper}{wall} on {c.worker}; "
            f"{p.generation_done}/{p.population} of generation {c.generation} done; best {p.best_text()}",
            detail=True,
        )

    def generation(self, p: SearchProgress, g: Any) -> None:
        sigma = "" if p.kind == "epbt" else f" sigma {g.sigma:.3g}"
        self.info(
            f"generation {g.generation} ({g.generation + 1} of {p.generations_total}) done: best {g.best_fitness:.4f} "
            f"mean {g.mean_fitness:.4f} min {g.min_fitness:.4f}{sigma}; "
            f"overall: {p.counts_text()}; best {p.best_text()}; ETA {p.eta_text()}"
        )
