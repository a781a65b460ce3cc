"""Resolve user plug-ins given as ``"package.module:function"`` strings.

Models and datasets are plugged in by naming a factory function, so a user never has to register
anything or edit this package: the string is all a config file needs to carry, and it stays
meaningful in another process (a worker, a Ray node) that imports it again.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .errors import TaylorGLOError


def is_plugin_ref(name: str) -> bool:
    """True when ``name`` looks like ``module:function`` rather than a built-in name."""
    return ":" in name


def resolve_plugin(ref: str, field: str) -> Callable[..., Any]:
    """Import ``module:function`` and return the callable.

    ``field`` names the config field or CLI option the reference came from, so the one-line error
    tells the user where to look.
    """
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise TaylorGLOError(f"{field}: {ref!r} is not of the form 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or an error raised while importing the user's module
        raise TaylorGLOError(
            f"{field}: cannot import module {module_name!r} ({type(exc).__name__}: {exc}); "
            "check it is installed or on PYTHONPATH"
        ) from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TaylorGLOError(f"{field}: module {module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise TaylorGLOError(f"{field}: {ref!r} is not callable")
    return obj
