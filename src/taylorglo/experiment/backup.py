"""``taylorglo backup DIR DEST``: a consistent copy of an experiment, safe while it runs.

Copying ``experiment.sqlite`` with ``cp`` while ``start`` writes can catch a page half-written or
miss what still sits in the ``-wal`` file. The store is copied with SQLite's online backup API
instead (a snapshot of one moment, into a single self-contained file); the other files of the
directory (the config copy, the log, the exported views, saved networks and checkpoints) are
written atomically by their writers, so a plain copy of each is whole.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from ..errors import TaylorGLOError, one_line
from .lock import ExperimentLock
from .store import Store


def _skip(directory: str, names: list[str]) -> set[str]:
    """The store (copied separately), its WAL files, the lock and half-written temporaries."""
    return {
        n
        for n in names
        if n.startswith(Store.FILENAME) or n == ExperimentLock.FILENAME or (n.startswith(".") and n.endswith(".tmp"))
    }


def backup_experiment(directory: str | os.PathLike[str], destination: str | os.PathLike[str]) -> Path:
    """Copy the experiment in ``directory`` to the new directory ``destination``; returns it.

    The copy is an experiment of its own: ``status``, ``analyze`` and ``start`` (to resume it
    there) work on it. ``directory`` is only read.
    """
    from .reading import open_experiment

    source = open_experiment(directory).directory
    target = Path(destination)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise TaylorGLOError(f"DEST: {str(target)!r} already exists; choose a new directory")
    try:
        shutil.copytree(source, target, ignore=_skip, dirs_exist_ok=True)
        with Store(source / Store.FILENAME, readonly=True) as store:
            store.backup(target / Store.FILENAME)
    except (OSError, sqlite3.DatabaseError) as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise TaylorGLOError(f"DEST: cannot write the backup to {str(target)!r}: {one_line(exc)}") from None
    return target
