"""The experiment's record: one SQLite file, written transactionally, readable while a search runs.

What a crash may cost is decided here. Three kinds of write, each one transaction:

* :meth:`Store.open_generation` — the CMA-ES state *right after* ``ask`` together with all λ
  candidates (rejected ones already final, the rest ``pending``). A restart finds the open
  generation and re-runs exactly its pending candidates; nothing is re-sampled.
* :meth:`Store.record` — one candidate's result, the moment its evaluation ends. It only turns a
  ``pending`` row into a final one, so a result can never be written twice.
* :meth:`Store.close_generation` — the state after ``tell`` and the generation's statistics.

A ``kill -9`` therefore loses at most the evaluations in flight. The database runs in WAL mode,
so ``taylorglo status`` reads a consistent snapshot while ``start`` writes; the WAL is
checkpointed into the main file after every generation and final run, so that file alone (a copy
taken mid-run, a backup that missed the ``-wal``) holds everything up to then.

Opening is where damage is caught. A writer (``start``, ``final``) runs SQLite's ``quick_check``
first and refuses a damaged file with one line, writing nothing; a reader (``status``, ``analyze``)
opens the file read-only (an archived copy on a read-only disk without its ``-wal``/``-shm``
included) and never migrates it in place: an older schema is upgraded in a private in-memory copy.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import StoreDamagedError, TaylorGLOError, one_line
from ..records import (
    STATUSES,
    Candidate,
    FinalLoss,
    FinalRun,
    Generation,
    Member,
    Result,
)

SCHEMA_VERSION = 4
#: The first 16 bytes of every SQLite 3 database file.
_HEADER = b"SQLite format 3\x00"

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
    min_fitness  REAL,
    asked_summary TEXT,
    told_summary  TEXT
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


# Version 4: the CMA-ES state as plain data (JSON: mean, sigma, covariance) beside its pickle, after
# ask and after tell, so that reading an experiment never unpickles anything. Added to older stores
# by a writer; the host fills them in from the pickles it trusts (its own, to resume).
_SUMMARY_COLUMNS = ("asked_summary", "told_summary")

_GENERATION_COLUMNS = (
    "generation, asked_state, told_state, opened_at, closed_at, sigma, best_fitness, "
    "mean_fitness, min_fitness, asked_summary, told_summary"
)


_FINAL_RUN_COLUMNS = (
    "loss_id, repeat, seed, status, reason, test_accuracy, test_loss, val_accuracy, val_loss, steps, attempts, "
    "wall_time, worker, finished_at, model_path, metrics"
)

_MEMBER_COLUMNS = (
    "generation, idx, parent, action, lr, weight_decay, start_step, stop_step, resume_from, "
    "checkpoint, distill, redraws"
)

_CANDIDATE_COLUMNS = (
    "generation, idx, params, seed, status, fitness, reason, val_accuracy, val_loss, train_accuracy, "
    "train_loss, steps, attempts, wall_time, step_time, worker, finished_at, metrics"
)


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def check_file(path: Path) -> None:
    """Refuse, in one line, a store file that is missing, empty or not SQLite at all (before
    SQLite, which would happily turn an empty file into a new database)."""
    if not path.is_file():
        raise FileNotFoundError(path)
    try:
        with open(path, "rb") as f:
            header = f.read(len(_HEADER))
    except OSError as exc:
        raise TaylorGLOError(f"{path}: cannot read the experiment's store: {one_line(exc)}") from None
    if not header:
        raise StoreDamagedError(
            f"{path}: the store is empty (0 bytes), so this experiment's record is gone; "
            "restore it from a backup (`taylorglo backup` makes one)"
        )
    if header != _HEADER:
        raise StoreDamagedError(
            f"{path}: not an SQLite database (overwritten or truncated?); "
            "restore it from a backup (`taylorglo backup` makes one)"
        )


def _verify(db: sqlite3.Connection, path: Path) -> None:
    """SQLite's ``quick_check`` (every page, every index's shape); raises on any finding."""
    rows = [r[0] for r in db.execute("PRAGMA quick_check").fetchall()]
    if rows != ["ok"]:
        raise StoreDamagedError(
            f"{path}: the store is damaged (integrity check: {one_line('; '.join(rows[:3]))}); nothing was "
            f"written to it. Restore it from a backup, or salvage it with `sqlite3 {path} .recover`"
        )


def store_error(path: Path, exc: sqlite3.DatabaseError) -> TaylorGLOError:
    """A one-line error for what SQLite said about ``path``."""
    text = one_line(exc)
    if isinstance(exc, StoreDamagedError):
        return exc
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return TaylorGLOError(
            f"{path.parent}: cannot write the experiment here ({text}); it is read-only: "
            f"copy it somewhere writable (`taylorglo backup {path.parent} DEST`) and run there"
        )
    if "disk is full" in text or "disk I/O" in text:
        return TaylorGLOError(f"{path}: {text}; free some space and run the command again (what is recorded is kept)")
    if "malformed" in text or "not a database" in text or "corrupt" in text:
        return StoreDamagedError(
            f"{path}: the store is damaged ({text}); nothing was written to it. "
            f"Restore it from a backup, or salvage it with `sqlite3 {path} .recover`"
        )
    return TaylorGLOError(f"{path}: {text}")


def _schema_version(db: sqlite3.Connection) -> int:
    if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone():
        return 0
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 1


def _migrate(db: sqlite3.Connection) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION` (a no-op on a current store)."""
    if _schema_version(db) >= SCHEMA_VERSION:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement in (_SCHEMA + _FINAL_SCHEMA + _EPBT_SCHEMA).split(";"):
            if statement.strip():
                db.execute(statement)
        columns = {row[1] for row in db.execute("PRAGMA table_info(generations)")}
        for name in _SUMMARY_COLUMNS:
            if name not in columns:
                db.execute(f"ALTER TABLE generations ADD COLUMN {name} TEXT")
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _finite(value: Any) -> Any:
    """SQLite stores NaN as NULL; keep the numbers JSON and SQL agree on."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Store:
    """The SQLite file of one experiment (``DIR/experiment.sqlite``).

    ``readonly`` opens it for reading only (every command that does not train): nothing is ever
    written to the file, its schema is not migrated in place, and a copy on a read-only disk opens
    too. A writer refuses a damaged file (:class:`~taylorglo.errors.StoreDamagedError`) before it
    writes anything.
    """

    FILENAME = "experiment.sqlite"

    def __init__(self, path: str | Path, create: bool = False, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if not create:
            check_file(self.path)
        try:
            self._db = self._open_reader() if readonly else self._open_writer(create)
        except sqlite3.DatabaseError as exc:
            raise store_error(self.path, exc) from None

    def _open_writer(self, create: bool) -> sqlite3.Connection:
        # Autocommit mode; every write below is an explicit BEGIN IMMEDIATE ... COMMIT.
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            if not create:
                _verify(db, self.path)
            db.execute("PRAGMA journal_mode=WAL")
            # NORMAL would already survive a killed process; FULL also survives a power cut, for one
            # fsync per result, which is nothing next to a training run.
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            _migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    def _open_reader(self) -> sqlite3.Connection:
        uri = "file:" + urllib.parse.quote(str(self.path.resolve()))
        db = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=60, isolation_level=None)
        try:
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            # A WAL-mode copy without its -shm, in a place this process cannot write (an archive,
            # a read-only mount): nothing can be writing it, so it is read as immutable.
            db.close()
            db = sqlite3.connect(uri + "?immutable=1", uri=True, isolation_level=None)
        try:
            _verify(db, self.path)
            if _schema_version(db) < SCHEMA_VERSION:
                # Written by an earlier version: upgrade a private copy, never the file itself.
                memory = sqlite3.connect(":memory:", isolation_level=None)
                db.backup(memory)
                db.close()
                db = memory
                _migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    def close(self) -> None:
        if not self.readonly:
            try:  # a clean stop leaves the main file complete (and the -wal empty)
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.DatabaseError:
                pass
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write, all or nothing; what SQLite refuses (a full disk, a read-only file) leaves
        the store as it was and arrives as one line naming the file."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise store_error(self.path, exc) from None

    def checkpoint(self) -> None:
        """Copy what the WAL holds into the main file, so that the main file alone is current
        (``start`` calls it after each generation, ``final`` after each run). Passive: it never
        waits for a reader, and whatever a reader holds back goes with the next one."""
        self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def backup(self, destination: str | Path) -> None:
        """A consistent copy of the whole store at ``destination`` (SQLite's online backup, safe
        while ``start`` writes)."""
        target = sqlite3.connect(destination, isolation_level=None)
        try:
            self._db.backup(target)
            target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            target.close()

    # -- meta ----------------------------------------------------------------------------------

    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    # -- generations ---------------------------------------------------------------------------

    def open_generation(
        self,
        generation: int,
        asked_state: bytes,
        candidates: Sequence[Candidate],
        members: Sequence[Member] = (),
        asked_summary: dict[str, Any] | None = None,
    ) -> None:
        """Record an asked generation and all its candidates (and EPBT members) at once."""
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO generations (generation, asked_state, opened_at, asked_summary) VALUES (?, ?, ?, ?)",
                (generation, asked_state, now, _json(asked_summary)),
            )
            for c in candidates:
                db.execute(
                    f"INSERT INTO candidates ({_CANDIDATE_COLUMNS}) VALUES ({', '.join('?' * 18)})",
                    self._row(c, now if c.status != "pending" else None),
                )
            for m in members:
                db.execute(
                    f"INSERT INTO members ({_MEMBER_COLUMNS}) VALUES ({', '.join('?' * 12)})",
                    (
                        m.generation,
                        m.index,
                        m.parent,
                        m.action,
                        m.lr,
                        m.weight_decay,
                        m.start_step,
                        m.stop_step,
                        m.resume_from,
                        m.checkpoint,
                        int(m.distill),
                        m.redraws,
                    ),
                )

    def close_generation(
        self, generation: int, told_state: bytes, sigma: float, told_summary: dict[str, Any] | None = None
    ) -> None:
        with self.transaction() as db:
            # The statistics come from the rows in the same transaction that closes the generation.
            cur = db.execute(
                "UPDATE generations SET told_state = ?, closed_at = ?, sigma = ?, told_summary = ?, "
                "(best_fitness, mean_fitness, min_fitness) = (SELECT MAX(COALESCE(fitness, 0)), "
                "AVG(COALESCE(fitness, 0)), MIN(COALESCE(fitness, 0)) FROM candidates WHERE generation = ?) "
                "WHERE generation = ? AND told_state IS NULL",
                (told_state, time.time(), sigma, _json(told_summary), generation, generation),
            )
            if cur.rowcount != 1:
                raise RuntimeError(f"generation {generation} is not open")
        self.checkpoint()

    def generation(self, generation: int) -> Generation | None:
        row = self._db.execute(
            f"SELECT {_GENERATION_COLUMNS} FROM generations WHERE generation = ?", (generation,)
        ).fetchone()
        return None if row is None else Generation.from_row(row)

    def latest_generation(self) -> Generation | None:
        row = self._db.execute(
            f"SELECT {_GENERATION_COLUMNS} FROM generations ORDER BY generation DESC LIMIT 1"
        ).fetchone()
        return None if row is None else Generation.from_row(row)

    def generations(self) -> list[Generation]:
        """All generations without their (large) search states."""
        rows = self._db.execute(
            "SELECT generation, x'', CASE WHEN told_state IS NULL THEN NULL ELSE x'' END, opened_at, closed_at, "
            "sigma, best_fitness, mean_fitness, min_fitness, asked_summary, told_summary "
            "FROM generations ORDER BY generation"
        ).fetchall()
        return [Generation.from_row(row) for row in rows]

    def missing_summaries(self) -> list[Generation]:
        """Generations (with their states) whose plain-data summaries an older version did not
        write; the host fills them in with :meth:`set_summaries`."""
        rows = self._db.execute(
            f"SELECT {_GENERATION_COLUMNS} FROM generations WHERE asked_summary IS NULL "
            "OR (told_state IS NOT NULL AND told_summary IS NULL) ORDER BY generation"
        ).fetchall()
        return [Generation.from_row(row) for row in rows]

    def set_summaries(self, generation: int, asked: dict[str, Any] | None, told: dict[str, Any] | None) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE generations SET asked_summary = COALESCE(asked_summary, ?), "
                "told_summary = COALESCE(told_summary, ?) WHERE generation = ?",
                (_json(asked), _json(told), generation),
            )

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

    def record(self, c: Result) -> bool:
        """Store a finished evaluation in the row it is keyed by; False (and nothing written) if
        it was already recorded."""
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE candidates SET status = ?, fitness = ?, reason = ?, val_accuracy = ?, val_loss = ?, "
                "train_accuracy = ?, train_loss = ?, steps = ?, attempts = ?, wall_time = ?, step_time = ?, "
                "worker = ?, finished_at = ?, metrics = ? "
                "WHERE generation = ? AND idx = ? AND status = 'pending'",
                self._outcome(c, time.time()) + (c.generation, c.index),
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

    def tagged(self, key: str) -> int:
        """How many candidates' metrics carry ``key`` (a tag a kind adds when it records them).

        Read in Python, not with SQLite's ``json_extract``: a diverged run's metrics hold NaN or
        Infinity, which Python's JSON writes and reads but SQLite calls malformed."""
        rows = self._db.execute("SELECT metrics FROM candidates WHERE metrics LIKE ?", (f'%"{key}"%',)).fetchall()
        return sum(1 for (text,) in rows if json.loads(text).get(key) is not None)

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

    def add_final_loss(
        self,
        label: str,
        params: Sequence[float] | None,
        source: str,
        generation: int | None = None,
        index: int | None = None,
        pretrained: bool = False,
    ) -> FinalLoss:
        """The final loss called ``label``, created on first use (labels name their params, so a
        second ``final`` for the same loss finds and extends the same runs)."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO final_losses (label, params, source, generation, idx, pretrained, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    label,
                    None if params is None else json.dumps(list(params)),
                    source,
                    generation,
                    index,
                    int(pretrained),
                    time.time(),
                ),
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
                db.execute(
                    "INSERT OR IGNORE INTO final_runs (loss_id, repeat, seed, status) VALUES (?, ?, ?, 'pending')",
                    (loss_id, repeat, seed),
                )
            if not retry_failed:
                return 0
            cleared = ", ".join(f"{c} = NULL" for c in _FINAL_RUN_COLUMNS.split(", ")[4:])
            cur = db.execute(
                f"UPDATE final_runs SET status = 'pending', {cleared} WHERE loss_id = ? AND repeat < ? "
                "AND status NOT IN ('pending', 'finished')",
                (loss_id, len(seeds)),
            )
            return cur.rowcount

    def record_final(self, run: FinalRun) -> bool:
        """Store a finished final run; False (nothing written) if it was already recorded."""
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE final_runs SET status = ?, reason = ?, test_accuracy = ?, test_loss = ?, val_accuracy = ?, "
                "val_loss = ?, steps = ?, attempts = ?, wall_time = ?, worker = ?, finished_at = ?, model_path = ?, "
                "metrics = ? WHERE loss_id = ? AND repeat = ? AND status = 'pending'",
                (
                    run.status,
                    run.reason,
                    _finite(run.test_accuracy),
                    _finite(run.test_loss),
                    _finite(run.val_accuracy),
                    _finite(run.val_loss),
                    run.steps,
                    run.attempts,
                    run.wall_time,
                    run.worker,
                    time.time(),
                    run.model_path,
                    None if run.metrics is None else json.dumps(run.metrics, allow_nan=True),
                    run.loss_id,
                    run.repeat,
                ),
            )
        self.checkpoint()  # a final run is minutes to hours of work: the main file holds it at once
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
        return (c.generation, c.index, json.dumps(c.params), c.seed, *Store._outcome(c, finished_at))

    @staticmethod
    def _outcome(c: Candidate | Result, finished_at: float | None) -> tuple[Any, ...]:
        """A row's columns from ``status`` on: what a training came to."""
        return (
            c.status,
            _finite(c.fitness),
            c.reason,
            _finite(c.val_accuracy),
            _finite(c.val_loss),
            _finite(c.train_accuracy),
            _finite(c.train_loss),
            c.steps,
            c.attempts,
            c.wall_time,
            c.step_time,
            c.worker,
            finished_at,
            None if c.metrics is None else json.dumps(c.metrics, allow_nan=True),
        )

    @staticmethod
    def _candidate(row: Sequence[Any]) -> Candidate:
        values = list(row)
        values[2] = json.loads(values[2])
        values[17] = None if values[17] is None else json.loads(values[17])
        return Candidate(*values)
