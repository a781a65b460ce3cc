"""One ``start`` per experiment directory, with a lock a dead process cannot leave behind.

The lock is an ``flock`` on ``DIR/lock``: the kernel drops it the instant its holder exits, however
it exits (``kill -9`` included), so there is never a stale lock to delete by hand. The file's
*content* (pid, host, start time) only serves messages and ``status``; it is never trusted as the
lock itself.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from ..errors import TaylorGLOError


class ExperimentLock:
    FILENAME = "lock"

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / self.FILENAME
        self._fd: int | None = None

    def acquire(self) -> "ExperimentLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        # A few tries: `status` probes the lock for microseconds and must not make a start fail.
        for attempt in range(20):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(0.05)
        else:
            os.close(fd)
            holder = read_holder(self.path.parent)
            who = f" (pid {holder['pid']} on {holder['host']}, since {holder['started']})" if holder else ""
            raise TaylorGLOError(
                f"{self.path.parent}: another `taylorglo start` is already running on this experiment{who}; "
                "wait for it or stop it first (`taylorglo status` shows progress)"
            ) from None
        os.ftruncate(fd, 0)
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.write(fd, json.dumps(info).encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "ExperimentLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def read_holder(directory: Path) -> dict[str, Any] | None:
    """Who holds (or last held) the lock, from the file's content; None if unknown."""
    try:
        return json.loads((Path(directory) / ExperimentLock.FILENAME).read_text() or "null")
    except (OSError, ValueError):
        return None


def is_running(directory: Path) -> dict[str, Any] | None:
    """The holder's info if a ``start`` holds the lock now, else None.

    Probes with a shared, non-blocking lock released at once (a ``start`` that meets the probe
    retries for a second, so the probe cannot make it fail).
    """
    path = Path(directory) / ExperimentLock.FILENAME
    if not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return read_holder(Path(directory)) or {"pid": None, "host": None, "started": None}
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
