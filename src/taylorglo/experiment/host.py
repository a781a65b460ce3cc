"""The experiment host (the reference's "Lossferatu"): init and start/resume (reading one: :mod:`.reading`).

An experiment is a directory::

    DIR/config.toml         the file given to `init`, copied verbatim (for the record)
    DIR/experiment.sqlite   the configuration as validated, every result, the kind's state
    DIR/host.log            one line per event, appended by every `start` and `final`
    DIR/lock                held by a running `start` or `final`
    DIR/...                 the kind's views (a search's best.json, generations.csv, candidates.csv;
                            EPBT's members.csv and checkpoints/), and final/ (final networks)

The SQLite file is the only source of truth; the other files are views of it, rewritten
atomically, for people and spreadsheets. :func:`start` holds the lock, starts the workers and
hands them to the experiment's kind (:mod:`.kinds`, :class:`~.kind.ExperimentKind`), which runs
the one generation loop (:mod:`.generations`) or the one final loop (:mod:`.final`); it can be cut
at any instant: everything it needs to continue is in the store (see :mod:`.store`), so running
it again resumes where the last run stopped, and an experiment resumed any number of times ends
with the same results as one that never stopped.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import remove_stale_temporaries
from ..errors import TaylorGLOError
from ..evaluators.base import auto_vectorize
from ..evaluators.config import EVALUATORS
from ..plugins import resolve_plugin
from ..records import Result
from ..training.config import TrainConfig
from .config import ExperimentConfig, read_config_file, read_experiment_file
from .config_text import translation_text
from .kinds import kind_class
from .lock import ExperimentLock
from .progress import Reporter, SearchProgress
from .reading import Experiment, open_experiment, status
from .store import Store

if TYPE_CHECKING:
    from .generations import GenerationKind

CONFIG_COPY = "config"
#: Where ``init`` keeps a reference config it translated (the translation is ``config.toml``).
REFERENCE_COPY = "reference-config.json"
LOG_FILE = "host.log"


def init_experiment(
    directory: str | os.PathLike[str],
    config_path: str | os.PathLike[str],
    exist_ok: bool = False,
    report: Callable[[str], None] | None = None,
) -> Experiment:
    """Validate ``config_path`` and create the experiment directory; refuse an existing one
    (with ``exist_ok``, accept one that was made from an identical config).

    A config in the reference's schema is translated (:mod:`taylorglo.reference.translate`):
    ``report`` gets one line per field saying how, the directory keeps the translation as
    ``config.toml`` (what runs) beside the original as ``reference-config.json``."""
    directory, source = Path(directory), Path(config_path)
    data, translation = read_experiment_file(source)
    config = ExperimentConfig.from_dict(data, default_name=source.stem)
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
        if translation is None:
            shutil.copyfile(source, directory / (CONFIG_COPY + source.suffix.lower()))
        else:
            shutil.copyfile(source, directory / REFERENCE_COPY)
            (directory / f"{CONFIG_COPY}.toml").write_text(translation_text(translation), encoding="utf-8")
        with Store(directory / Store.FILENAME, create=True) as store:
            store.set_meta("config", config.to_dict())
            store.set_meta("created", time.strftime("%Y-%m-%d %H:%M:%S"))
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    if translation is not None and report is not None:
        for line in translation.mapped + translation.notes:
            report(line)
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
) -> Any:
    """The evaluator ``config`` asks for, training with ``training``; never more than ``most``
    workers (more than there are jobs at once would only idle). Shared by the search and ``final``.
    ``log`` receives what the evaluator reports (a worker that died)."""
    evaluator = _evaluator(config, training, workers, most)
    evaluator.log = log
    setting = config.evaluator.vectorize  # until the experiment's record says otherwise
    if setting == "auto":
        setting, why = auto_vectorize(evaluator.facts(), training.optimizer)
        log(f"vectorize auto: {'stacks' if setting > 1 else 'one training at a time'} ({why})")
    elif int(setting) > 1 and evaluator.facts().aux_heads:
        raise TaylorGLOError(
            f"evaluator.vectorize: {training.model!r} has auxiliary heads, which a vectorized population "
            'does not train; set vectorize = 1 (or "auto")'
        )
    evaluator.vectorize = int(setting)
    return evaluator


def _evaluator(config: ExperimentConfig, training: TrainConfig, workers: int | None, most: int) -> Any:
    e = config.evaluator
    return resolve_plugin(EVALUATORS[e.kind], "evaluator.kind")(training, e, workers, most)


def start(
    directory: str | os.PathLike[str],
    workers: int | None = None,
    reporter: Reporter | None = None,
    evaluator: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the experiment in ``directory`` to its end; return :func:`status`.

    ``evaluator`` overrides fields of the config's ``[evaluator]`` table for this run only (for
    example ``{"kind": "ray", "address": "auto"}``): results do not depend on where they train.

    Refuses to run while another ``start`` holds the directory. Configuration problems that only
    show with the data (a missing dataset, a model that does not fit the images) raise
    :class:`TaylorGLOError` before any candidate is trained.
    """
    experiment = open_experiment(directory)
    config = experiment.config.with_evaluator(evaluator)
    reporter = reporter or Reporter()
    kind_cls = kind_class(config.kind)
    with ExperimentLock(experiment.directory):
        log = _Log(experiment.directory / LOG_FILE, reporter)
        remove_stale_temporaries(experiment.directory)
        _warn_if_config_edited(experiment, log)
        # The host never imports torch: the workers start now, and one of them loads the data and
        # checks the network (``facts``) while the others import torch.
        with (
            experiment.store() as store,
            make_evaluator(config, kind_cls.training(config), workers, config.population, log.info) as runner,
        ):
            facts = runner.facts()
            kind = kind_cls(experiment.directory, store, config, facts, runner, log.info)
            log.info(
                f"start: {config.name}: {kind.describe()}, {runner.workers} {config.evaluator.kind} workers, "
                f"{facts.summary}; {kind.position()}"
            )
            kind.run(log, reporter)
        result = status(experiment.directory)
        log.info(f"finished: {kind.finished_text(result)}")
    return result


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

    def candidate(self, p: SearchProgress, c: Result, kind: GenerationKind) -> None:
        """One recorded result (a search's candidate, an EPBT member's stretch), in the kind's words."""
        what = f"fitness {c.fitness:.4f}" if c.status == "evaluated" else f"{c.status} ({c.reason})"
        wall = f" {c.wall_time:.1f}s" if c.wall_time is not None else ""
        self.info(
            f"{kind.wording.noun} {c.generation}:{c.index} {what}{kind.result_detail(c)}{wall} on {c.worker}; "
            f"{p.generation_done}/{p.population} of generation {c.generation} done; best {p.best_text()}",
            detail=True,
        )

    def generation(self, p: SearchProgress, g: Any, kind: GenerationKind) -> None:
        sigma = kind.generation_detail(g.row())
        self.info(
            f"generation {g.generation} ({g.generation + 1} of {p.generations_total}) done: best {g.best_fitness:.4f} "
            f"mean {g.mean_fitness:.4f} min {g.min_fitness:.4f}{sigma}; "
            f"overall: {p.counts_text()}; best {p.best_text()}; ETA {p.eta_text()}"
        )
