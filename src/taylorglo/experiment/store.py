"""The experiment's record: one SQLite file, written transactionally, readable while a search runs.

What a crash may cost is decided here. Three kinds of write, each one transaction:

* :meth:`Store.open_generation` — the CMA-ES state *right after* ``ask`` together with all λ
  candidates (rejected ones already final, the rest ``pending``). A restart finds the open
  generation and re-runs exactly its pending candidates; nothing is re-sampled.
* :meth:`Store.record` — one candidate's result, the moment its evaluation ends. It only turns a
  ``pending`` row into a final one, so a result can never be written twice.
* :meth:`Store.close_generation` — the state after ``tell`` and the generation's statistics.

A ``kill -9`` therefore loses at most the evaluations in flight. The database runs in WAL mode,
so ``taylorglo status`` reads a consistent snapshot while ``start`` writes.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

SCHEMA_VERSION = 3

#: Final statuses of a candidate; "pending" means asked, not yet evaluated.
STATUSES = ("evaluated", "rejected-invariant", "failed", "aborted")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS generations (
    generation   INTEGER PRIMARY KEY,
    asked_state  BLOB NOT NULL,
    told_state   BLOB,
    opened_at    REAL NOT NULL,
    closed_at    REAL,
    sigma        REAL,
    best_fitness REAL,
    mean_fitness REAL,
    min_fitness  REAL
);
CREATE TABLE IF NOT EXISTS candidates (
    generation     INTEGER NOT NULL REFERENCES generations(generation),
    idx            INTEGER NOT NULL,
    params         TEXT NOT NULL,
    seed           INTEGER NOT NULL,
    status         TEXT NOT NULL,
    fitness        REAL,
    reason         TEXT,
    val_accuracy   REAL,
    val_loss       REAL,
    train_accuracy REAL,
    train_loss     REAL,
    steps          INTEGER,
    attempts       INTEGER,
    wall_time      REAL,
    step_time      REAL,
    worker         TEXT,
    finished_at    REAL,
    metrics        TEXT,
    PRIMARY KEY (generation, idx)
);
"""

# Version 2: the final evaluation (`taylorglo final`). Added on open to stores made by version 1.
_FINAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS final_losses (
    id         INTEGER PRIMARY KEY,
    label      TEXT NOT NULL UNIQUE,
    params     TEXT,
    source     TEXT NOT NULL,
    generation INTEGER,
    idx        INTEGER,
    pretrained INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS final_runs (
    loss_id       INTEGER NOT NULL REFERENCES final_losses(id),
    repeat        INTEGER NOT NULL,
    seed          INTEGER NOT NULL,
    status        TEXT NOT NULL,
    reason        TEXT,
    test_accuracy REAL,
    test_loss     REAL,
    val_accuracy  REAL,
    val_loss      REAL,
    steps         INTEGER,
    attempts      INTEGER,
    wall_time     REAL,
    worker        TEXT,
    finished_at   REAL,
    model_path    TEXT,
    metrics       TEXT,
    PRIMARY KEY (loss_id, repeat)
);
"""


# Version 3: EPBT lineages. A member of EPBT's generation g is candidate (g, idx); this row says
# where its network came from and with which hyperparameters it trained steps [start, stop).
_EPBT_SCHEMA = """
CREATE TABLE IF NOT EXISTS members (
    generation   INTEGER NOT NULL REFERENCES generations(generation),
    idx          INTEGER NOT NULL,
    parent       INTEGER,
    action       TEXT NOT NULL,
    lr           REAL NOT NULL,
    weight_decay REAL NOT NULL,
    start_step   INTEGER NOT NULL,
    stop_step    INTEGER NOT NULL,
    resume_from  TEXT,
    checkpoint   TEXT NOT NULL,
    distill      INTEGER NOT NULL DEFAULT 0,
    redraws      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (generation, idx)
);
"""


@dataclass
class Member:
    """One row of ``members``: EPBT member ``index`` during ``generation``.

    ``parent`` is the member of the previous generation whose network it continues (itself for
    ``action = "continue"``; None in generation 0, ``action = "init"``); ``"exploit"`` and
    ``"novelty"`` mark a copy with mutated genes. Paths are relative to the experiment directory.
    ``redraws`` counts the mutations the invariant rejected before this member's loss.
    """

    generation: int
    index: int
    parent: int | None
    action: str
    lr: float
    weight_decay: float
    start_step: int
    stop_step: int
    resume_from: str | None
    checkpoint: str
    distill: bool = False
    redraws: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Candidate:
    """One row of the ``candidates`` table."""

    generation: int
    index: int
    params: list[float]
    seed: int
    status: str
    fitness: float | None = None
    reason: str | None = None
    val_accuracy: float | None = None
    val_loss: float | None = None
    train_accuracy: float | None = None
    train_loss: float | None = None
    steps: int | None = None
    attempts: int | None = None
    wall_time: float | None = None
    step_time: float | None = None
    worker: str | None = None
    finished_at: float | None = None
    metrics: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Generation:
    generation: int
    asked_state: bytes
    told_state: bytes | None
    opened_at: float
    closed_at: float | None
    sigma: float | None
    best_fitness: float | None
    mean_fitness: float | None
    min_fitness: float | None

    @property
    def closed(self) -> bool:
        return self.told_state is not None


@dataclass
class FinalLoss:
    """A loss chosen for the final evaluation; ``params`` None is the cross-entropy baseline."""

    id: int
    label: str
    params: list[float] | None
    source: str
    generation: int | None = None
    index: int | None = None
    pretrained: bool = False
    created_at: float | None = None


@dataclass
class FinalRun:
    """One full-schedule training of a final loss (one row of ``final_runs``)."""

    loss_id: int
    repeat: int
    seed: int
    status: str
    reason: str | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    val_accuracy: float | None = None
    val_loss: float | None = None
    steps: int | None = None
    attempts: int | None = None
    wall_time: float | None = None
    worker: str | None = None
    finished_at: float | None = None
    model_path: str | None = None
    metrics: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


_FINAL_RUN_COLUMNS = (
    "loss_id, repeat, seed, status, reason, test_accuracy, test_loss, val_accuracy, val_loss, steps, attempts, "
    "wall_time, worker, finished_at, model_path, metrics"
)

_MEMBER_COLUMNS = ("generation, idx, parent, action, lr, weight_decay, start_step, stop_step, resume_from, "
                   "checkpoint, distill, redraws")

_CANDIDATE_COLUMNS = (
    "generation, idx, params, seed, status, fitness, reason, val_accuracy, val_loss, train_accuracy, "
    "train_loss, steps, attempts, wall_time, step_time, worker, finished_at, metrics"
)


def _finite(value: Any) -> Any:
    """SQLite stores NaN as NULL; keep the numbers JSON and SQL agree on."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Store:
    """The SQLite file of one experiment (``DIR/experiment.sqlite``)."""

    FILENAME = "experiment.sqlite"

    def __init__(self, path: str | Path, create: bool = False) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise FileNotFoundError(self.path)
        # Autocommit mode; every write below is an explicit BEGIN IMMEDIATE ... COMMIT.
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL would already survive a killed process; FULL also survives a power cut, for one
        # fsync per result, which is nothing next to a training run.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        current = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'members'").fetchone()
        if create or not current:
            with self.transaction() as db:
                for statement in (_SCHEMA + _FINAL_SCHEMA + _EPBT_SCHEMA).split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- meta ----------------------------------------------------------------------------------

    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    # -- generations ---------------------------------------------------------------------------

    def open_generation(self, generation: int, asked_state: bytes, candidates: Sequence[Candidate],
                        members: Sequence[Member] = ()) -> None:
        """Record an asked generation and all its candidates (and EPBT members) at once."""
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO generations (generation, asked_state, opened_at) VALUES (?, ?, ?)",
                (generation, asked_state, now),
            )
            for c in candidates:
                db.execute(
                    f"INSERT INTO candidates ({_CANDIDATE_COLUMNS}) VALUES ({', '.join('?' * 18)})",
                    self._row(c, now if c.status != "pending" else None),
                )
            for m in members:
                db.execute(f"INSERT INTO members ({_MEMBER_COLUMNS}) VALUES ({', '.join('?' * 12)})",
                           (m.generation, m.index, m.parent, m.action, m.lr, m.weight_decay, m.start_step,
                            m.stop_step, m.resume_from, m.checkpoint, int(m.distill), m.redraws))

    def close_generation(self, generation: int, told_state: bytes, sigma: float) -> None:
        with self.transaction() as db:
            # The statistics come from the rows in the same transaction that closes the generation.
            cur = db.execute(
                "UPDATE generations SET told_state = ?, closed_at = ?, sigma = ?, "
                "(best_fitness, mean_fitness, min_fitness) = (SELECT MAX(COALESCE(fitness, 0)), "
                "AVG(COALESCE(fitness, 0)), MIN(COALESCE(fitness, 0)) FROM candidates WHERE generation = ?) "
                "WHERE generation = ? AND told_state IS NULL",
                (told_state, time.time(), sigma, generation, generation),
            )
            if cur.rowcount != 1:
                raise RuntimeError(f"generation {generation} is not open")

    def generation(self, generation: int) -> Generation | None:
        row = self._db.execute("SELECT * FROM generations WHERE generation = ?", (generation,)).fetchone()
        return None if row is None else Generation(*row)

    def latest_generation(self) -> Generation | None:
        row = self._db.execute("SELECT * FROM generations ORDER BY generation DESC LIMIT 1").fetchone()
        return None if row is None else Generation(*row)

    def generations(self) -> list[Generation]:
        """All generations without their (large) search states."""
        rows = self._db.execute(
            "SELECT generation, x'', CASE WHEN told_state IS NULL THEN NULL ELSE x'' END, opened_at, closed_at, "
            "sigma, best_fitness, mean_fitness, min_fitness FROM generations ORDER BY generation"
        ).fetchall()
        return [Generation(*row) for row in rows]

    def members(self, generation: int | None = None) -> list[Member]:
        """EPBT lineage rows (all, or one generation's), by generation and index."""
        sql = f"SELECT {_MEMBER_COLUMNS} FROM members"
        args: tuple[Any, ...] = ()
        if generation is not None:
            sql += " WHERE generation = ?"
            args = (generation,)
        out = []
        for row in self._db.execute(sql + " ORDER BY generation, idx", args):
            values = list(row)
            values[10] = bool(values[10])
            out.append(Member(*values))
        return out

    # -- candidates ----------------------------------------------------------------------------

    def record(self, c: Candidate) -> bool:
        """Store a finished evaluation; False (and nothing written) if it was already recorded."""
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE candidates SET status = ?, fitness = ?, reason = ?, val_accuracy = ?, val_loss = ?, "
                "train_accuracy = ?, train_loss = ?, steps = ?, attempts = ?, wall_time = ?, step_time = ?, "
                "worker = ?, finished_at = ?, metrics = ? "
                "WHERE generation = ? AND idx = ? AND status = 'pending'",
                self._row(c, time.time())[4:] + (c.generation, c.index),
            )
            return cur.rowcount == 1

    def candidates(self, generation: int | None = None) -> list[Candidate]:
        sql = f"SELECT {_CANDIDATE_COLUMNS} FROM candidates"
        args: tuple[Any, ...] = ()
        if generation is not None:
            sql += " WHERE generation = ?"
            args = (generation,)
        rows = self._db.execute(sql + " ORDER BY generation, idx", args).fetchall()
        return [self._candidate(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """Candidates per status (every status present, zeros included)."""
        out = {s: 0 for s in (*STATUSES, "pending")}
        for status, n in self._db.execute("SELECT status, COUNT(*) FROM candidates GROUP BY status"):
            out[status] = n
        return out

    def best(self) -> Candidate | None:
        """The fittest recorded candidate; ties go to the earliest."""
        row = self._db.execute(
            f"SELECT {_CANDIDATE_COLUMNS} FROM candidates WHERE status = 'evaluated' "
            "ORDER BY fitness DESC, generation, idx LIMIT 1"
        ).fetchone()
        return None if row is None else self._candidate(row)

    def totals(self) -> dict[str, float]:
        """Summed wall and step time of recorded evaluations (for overhead reports)."""
        wall, step = self._db.execute(
            "SELECT COALESCE(SUM(wall_time), 0), COALESCE(SUM(step_time), 0) FROM candidates"
        ).fetchone()
        return {"wall_time": wall, "step_time": step}

    # -- final evaluation ----------------------------------------------------------------------

    def add_final_loss(self, label: str, params: Sequence[float] | None, source: str,
                       generation: int | None = None, index: int | None = None,
                       pretrained: bool = False) -> FinalLoss:
        """The final loss called ``label``, created on first use (labels name their params, so a
        second ``final`` for the same loss finds and extends the same runs)."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO final_losses (label, params, source, generation, idx, pretrained, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (label, None if params is None else json.dumps(list(params)), source, generation, index,
                 int(pretrained), time.time()),
            )
        loss = self.final_loss(label)
        assert loss is not None
        return loss

    def final_loss(self, label: str) -> FinalLoss | None:
        row = self._db.execute("SELECT * FROM final_losses WHERE label = ?", (label,)).fetchone()
        return None if row is None else self._final_loss(row)

    def final_losses(self) -> list[FinalLoss]:
        return [self._final_loss(r) for r in self._db.execute("SELECT * FROM final_losses ORDER BY id")]

    def plan_final_runs(self, loss_id: int, seeds: Sequence[int], retry_failed: bool = False) -> int:
        """Make sure repeats ``0 .. len(seeds)-1`` of a final loss exist (new ones ``pending``).

        ``retry_failed`` also sets those of them that ended ``failed`` or ``aborted`` back to
        ``pending``, forgetting their result (a worker that died, a job lost with a node: a failure
        of the machine, not of the loss, should not stay in the comparison). Returns how many."""
        with self.transaction() as db:
            for repeat, seed in enumerate(seeds):
                db.execute("INSERT OR IGNORE INTO final_runs (loss_id, repeat, seed, status) VALUES (?, ?, ?, 'pending')",
                           (loss_id, repeat, seed))
            if not retry_failed:
                return 0
            cleared = ", ".join(f"{c} = NULL" for c in _FINAL_RUN_COLUMNS.split(", ")[4:])
            cur = db.execute(f"UPDATE final_runs SET status = 'pending', {cleared} WHERE loss_id = ? AND repeat < ? "
                             "AND status NOT IN ('pending', 'finished')", (loss_id, len(seeds)))
            return cur.rowcount

    def record_final(self, run: FinalRun) -> bool:
        """Store a finished final run; False (nothing written) if it was already recorded."""
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE final_runs SET status = ?, reason = ?, test_accuracy = ?, test_loss = ?, val_accuracy = ?, "
                "val_loss = ?, steps = ?, attempts = ?, wall_time = ?, worker = ?, finished_at = ?, model_path = ?, "
                "metrics = ? WHERE loss_id = ? AND repeat = ? AND status = 'pending'",
                (run.status, run.reason, _finite(run.test_accuracy), _finite(run.test_loss),
                 _finite(run.val_accuracy), _finite(run.val_loss), run.steps, run.attempts, run.wall_time,
                 run.worker, time.time(), run.model_path,
                 None if run.metrics is None else json.dumps(run.metrics, allow_nan=True),
                 run.loss_id, run.repeat),
            )
            return cur.rowcount == 1

    def final_runs(self, loss_id: int | None = None) -> list[FinalRun]:
        sql = f"SELECT {_FINAL_RUN_COLUMNS} FROM final_runs"
        args: tuple[Any, ...] = ()
        if loss_id is not None:
            sql += " WHERE loss_id = ?"
            args = (loss_id,)
        out = []
        for row in self._db.execute(sql + " ORDER BY loss_id, repeat", args):
            values = list(row)
            values[15] = None if values[15] is None else json.loads(values[15])
            out.append(FinalRun(*values))
        return out

    @staticmethod
    def _final_loss(row: Sequence[Any]) -> FinalLoss:
        values = list(row)
        values[2] = None if values[2] is None else json.loads(values[2])
        values[6] = bool(values[6])
        return FinalLoss(*values)

    @staticmethod
    def _row(c: Candidate, finished_at: float | None) -> tuple[Any, ...]:
        return (
            c.generation, c.index, json.dumps(c.params), c.seed, c.status, _finite(c.fitness), c.reason,
            _finite(c.val_accuracy), _finite(c.val_loss), _finite(c.train_accuracy), _finite(c.train_loss),
            c.steps, c.attempts, c.wall_time, c.step_time, c.worker, finished_at,
            None if c.metrics is None else json.dumps(c.metrics, allow_nan=True),
        )

    @staticmethod
    def _candidate(row: Sequence[Any]) -> Candidate:
        values = list(row)
        values[2] = json.loads(values[2])
        values[17] = None if values[17] is None else json.loads(values[17])
        return Candidate(*values)
