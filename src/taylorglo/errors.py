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


def one_line(value: Any) -> str:
    """An exception (or reason) squeezed onto one line, for one-line user errors."""
    return " ".join(str(value).split()) or type(value).__name__
