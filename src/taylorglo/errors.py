"""User-facing errors.

Every mistake a user can make (a bad config field, a missing dataset file, a malformed parameter
vector) is raised as a :class:`TaylorGLOError` whose message is one line that names the field and
the fix. The CLI prints exactly that line and exits with status 2 instead of a traceback, so a
researcher sees what to change, not where in our code the problem surfaced.
"""

from __future__ import annotations

from typing import Any


class TaylorGLOError(Exception):
    """A problem the user can fix; its message is a single line that says how."""


class DatasetNotFoundError(TaylorGLOError):
    """A dataset's files are neither on disk nor downloadable."""


class Interrupted(TaylorGLOError):
    """Ctrl-C (exit status 130) or SIGTERM (143) stopped a command cleanly; everything finished
    is saved. The shell's conventional codes, so schedulers and scripts tell it from bad input (2)."""

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class StoreDamagedError(TaylorGLOError):
    """An experiment's SQLite file is empty, not SQLite, or fails its integrity check; nothing
    is written to it (writing into a damaged file can only make it worse)."""


def one_line(value: Any) -> str:
    """An exception (or reason) squeezed onto one line, for one-line user errors."""
    return " ".join(str(value).split()) or type(value).__name__


def os_error_line(exc: OSError) -> str:
    """What a failed file operation means for the user, in one line naming the file: a full disk
    and a read-only place are the environment's doing, and what is recorded is kept."""
    import errno

    where = f"{exc.filename}: " if exc.filename else ""
    why = exc.strerror or one_line(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return f"{where}{why}; free some space and run the command again (everything recorded so far is kept)"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (
            f"{where}{why}: this command needs to write there; run it where you may write "
            "(`taylorglo backup DIR DEST` copies an experiment)"
        )
    return f"{where}{why}"
