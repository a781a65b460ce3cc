"""Atomic file writes: a reader (a browser on the report, ``status`` on a running search, a resumed
``start``) sees the old file or the new one, never half of one. Light on purpose (no torch, no
matplotlib), since workers and the host import it."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path`` at once.

    The temporary name is unique per process and call, so two writers never share one. The file is
    created with mode 0666 minus the umask, like any other file (mkstemp's 0600 would make results
    on a shared file system unreadable to the rest of the team).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")  # see _TEMPORARY
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` atomically."""
    with atomic_file(path) as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)


#: The temporary name :func:`atomic_file` writes under; group 1 is the writer's pid.
_TEMPORARY = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$")


def remove_stale_temporaries(directory: str | os.PathLike[str]) -> int:
    """Delete the temporaries of writers that died mid-write (a killed ``analyze``) in
    ``directory``: those whose pid is no longer running. Returns how many went."""
    removed = 0
    try:
        entries = list(Path(directory).iterdir())
    except OSError:
        return 0
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match and not _running(int(match.group(1))):
            entry.unlink(missing_ok=True)
            removed += 1
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
