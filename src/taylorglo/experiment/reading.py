"""Reading an experiment: its directory, its recorded config, where it stands.

Everything here only reads (the store is opened read-only) and imports neither torch nor the
search's machinery, so ``taylorglo status`` answers at once, even while ``start`` runs, and a
shared experiment can be inspected without running any of its code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TaylorGLOError
from ..evaluators.lending import META_KEY as LENDING_KEY
from ..evaluators.lending import TIMING_NOTE, depends_on_timing, upgrade
from ..evaluators.lending import describe as describe_lending
from .config import ExperimentConfig
from .kinds import kind_class
from .lock import is_running
from .store import Store


@dataclass
class Experiment:
    """An initialised experiment directory: its validated config and its store."""

    directory: Path
    config: ExperimentConfig

    @property
    def store_path(self) -> Path:
        return self.directory / Store.FILENAME

    def store(self) -> Store:
        """The store for writing (``start``, ``final``): a damaged one is refused unwritten."""
        return Store(self.store_path)

    def reader(self) -> Store:
        """The store for reading only (``status``, ``analyze``, ...): never written, not even migrated."""
        return Store(self.store_path, readonly=True)


def open_experiment(directory: str | os.PathLike[str]) -> Experiment:
    """The experiment in ``directory``, with the config its store recorded (not the file beside it)."""
    directory = Path(directory)
    path = directory / Store.FILENAME
    if not path.is_file():
        raise TaylorGLOError(
            f"DIR: {str(directory)!r} is not an experiment directory (no {Store.FILENAME}); "
            "create one with `taylorglo init DIR CONFIG`"
        )
    with Store(path, readonly=True) as store:
        data = store.get_meta("config")
    return Experiment(directory, ExperimentConfig.from_dict(data, check_network=False, recorded=True))


def status(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Where an experiment stands; only reads, so it is safe while ``start`` runs elsewhere."""
    experiment = open_experiment(directory)
    config = experiment.config
    with experiment.reader() as store:
        counts = store.counts()
        generations = store.generations()
        totals = store.totals()
        lending = store.get_meta(LENDING_KEY)
        extra = kind_class(config.kind).status_fields(store, config)
    completed = sum(1 for g in generations if g.closed)
    running = is_running(experiment.directory)
    total = extra["generations_total"]
    # A kind that runs no generations (one-shot) says itself whether it has started and finished.
    finished = extra.pop("finished", total is not None and completed >= total)
    started = extra.pop("started", bool(generations))
    if finished:
        state = "finished"
    elif running:
        state = "running"
    elif started:
        state = "stopped"
    else:
        state = "not started"
    recorded = {k: counts[k] for k in ("evaluated", "rejected-invariant", "failed", "aborted")}
    return {
        "name": config.name,
        "directory": str(experiment.directory),
        "kind": config.kind,
        "state": state,
        "pid": running.get("pid") if running else None,
        "generations_completed": completed,
        "generations_total": total,
        "population": config.population,
        "invariant": extra["invariant"],
        "candidates": {
            "evaluated": recorded["evaluated"],
            "rejected_invariant": recorded["rejected-invariant"],
            "failed": recorded["failed"],
            "aborted": recorded["aborted"],
            "pending": counts["pending"],
            "total": sum(recorded.values()),
        },
        "best": extra["best"],
        "generations": [g.row() for g in generations if g.closed],
        "training_time": totals["wall_time"],
        "step_time": totals["step_time"],
        "store": str(experiment.store_path),
        # Whether idle cores are lent to a generation's last trainings, as recorded at the first start.
        "lending": None if lending is None else {**upgrade(lending), "line": describe_lending(lending)},
        # What a reader of the results should know: here, whether they depend on a timing.
        "notes": [TIMING_NOTE] if depends_on_timing(lending) else [],
        **extra,
    }
