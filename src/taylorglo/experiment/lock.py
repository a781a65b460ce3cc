"""One ``start`` per experiment directory, with a lock a dead process cannot leave behind and a
cleanup script cannot delete.

The lock is an ``flock`` on the experiment *directory itself*: the kernel drops it the instant its
holder exits, however it exits (``kill -9`` included), so there is never a stale lock to remove
by hand, and no file can be deleted from under it (a tidy-up that deletes ``DIR/lock`` does not
let a second ``start`` in). ``DIR/lock`` is locked too, as earlier versions did, so that a
``start`` of an earlier version and one of this version exclude each other; its *content* (pid,
host, start time) only serves messages and ``status``, and is never trusted as the lock itself.
Where a file system cannot lock directories, the file lock alone serves.
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


def _open_directory(directory: Path) -> int | None:
    """A descriptor of ``directory`` that can carry an ``flock``; None where it cannot."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except BlockingIOError:
        pass  # held by someone: directories do lock here
    except OSError:
        os.close(fd)
        return None
    return fd


def _try_lock(fd: int, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


class ExperimentLock:
    FILENAME = "lock"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / self.FILENAME
        self._fds: list[int] = []

    def acquire(self) -> ExperimentLock:
        fds = [fd for fd in (_open_directory(self.directory),) if fd is not None]
        try:
            fds.append(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644))
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        # A few tries: `status` probes the lock for microseconds and must not make a start fail.
        for _ in range(20):
            taken = [fd for fd in fds if _try_lock(fd, fcntl.LOCK_EX)]
            if len(taken) == len(fds):
                break
            for fd in taken:
                fcntl.flock(fd, fcntl.LOCK_UN)
            time.sleep(0.05)
        else:
            for fd in fds:
                os.close(fd)
            holder = read_holder(self.directory)
            who = f" (pid {holder['pid']} on {holder['host']}, since {holder['started']})" if holder else ""
            raise TaylorGLOError(
                f"{self.directory}: another `taylorglo start` or `final` is already running on this experiment{who}; "
                "wait for it or stop it first (`taylorglo status` shows progress)"
            ) from None
        self._fds = fds
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        try:
            file_fd = fds[-1]
            os.ftruncate(file_fd, 0)
            os.write(file_fd, json.dumps(info).encode())
            os.fsync(file_fd)
        except BaseException:  # a full disk: nothing can run, and the lock must not outlive the attempt
            self.release()
            raise
        return self

    def release(self) -> None:
        for fd in self._fds:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        self._fds = []

    def __enter__(self) -> ExperimentLock:
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

    Probes with shared, non-blocking locks released at once (a ``start`` that meets the probe
    retries for a second, so the probe cannot make it fail). Only reads: it creates no file.
    """
    directory = Path(directory)
    fds = [fd for fd in (_open_directory(directory),) if fd is not None]
    try:
        fds.append(os.open(directory / ExperimentLock.FILENAME, os.O_RDONLY))
    except OSError:
        pass
    try:
        for fd in fds:
            if not _try_lock(fd, fcntl.LOCK_SH):
                return read_holder(directory) or {"pid": None, "host": None, "started": None}
            fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        for fd in fds:
            os.close(fd)
