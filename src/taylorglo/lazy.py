"""Package faces that import on first use.

``import taylorglo`` must cost nothing a command does not use: ``taylorglo status`` only reads a
SQLite file and should start in a fraction of a second, while importing torch alone takes about a
second. So the package faces (``taylorglo``, ``taylorglo.training``, ``taylorglo.experiment``,
``taylorglo.evaluators``) name their exports in a table, and :func:`exports` imports each one's module when the name is
first read (PEP 562), then caches it as an ordinary module attribute.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def exports(package: str, table: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose name ``N`` lives in module
    ``table[N]`` (relative to the package, as ``".loss"``)."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        where = table.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
