"""Experiment kinds by name: the registry the host looks a config's ``kind`` up in.

Built-in kinds are named by where they live and imported on first use, so the host never imports
a kind's package (and ``status`` imports only its experiment's); another is added by
:func:`register_kind` (the way models and datasets are registered), or named in a config as
``"package.module:Class"``.
"""

from __future__ import annotations

import importlib

from ..errors import TaylorGLOError, one_line
from ..plugins import is_plugin_ref
from .kind import ExperimentKind

#: Where each built-in kind's :class:`GenerationKind` lives.
_BUILT_IN = {
    "taylorglo": "taylorglo.glo.kind:SearchKind",
    "epbt": "taylorglo.epbt.kind:EPBTKind",
    "oneshot": "taylorglo.oneshot.kind:OneShotKind",
}
_REGISTERED: dict[str, type[ExperimentKind]] = {}


def register_kind(name: str, kind: type[ExperimentKind]) -> type[ExperimentKind]:
    """Make ``kind = "NAME"`` run ``kind``; returns it, so it can decorate the class."""
    _REGISTERED[name] = kind
    return kind


def kind_class(name: str, field: str = "kind") -> type[ExperimentKind]:
    """The class that runs experiments of kind ``name``."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    where = _BUILT_IN.get(name) or (name if is_plugin_ref(name) else None)
    if where is None:
        known = ", ".join(map(repr, sorted({*_BUILT_IN, *_REGISTERED})))
        raise TaylorGLOError(f"{field}: unknown experiment kind {name!r}; use one of {known} or package.module:Class")
    module, _, attribute = where.partition(":")
    try:
        kind = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise TaylorGLOError(f"{field}: cannot load the experiment kind {where!r}: {one_line(exc)}") from None
    if not (isinstance(kind, type) and issubclass(kind, ExperimentKind)):
        raise TaylorGLOError(f"{field}: {where!r} is not an experiment kind (an ExperimentKind subclass)")
    return kind


def kind_tables() -> dict[str, str]:
    """Each known kind's name and its config table's (for the error that names the kind a
    misplaced table belongs to); imports every built-in kind, so only on that path."""
    return {name: kind_class(name).table for name in sorted({*_BUILT_IN, *_REGISTERED})}
