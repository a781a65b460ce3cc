"""An experiment config written as TOML, for people to read and edit (``taylorglo convert``).

The standard library reads TOML but does not write it; a config is a few flat tables of numbers,
strings, lists and small inline tables, so writing one needs no dependency. What this writes,
:mod:`tomllib` reads back to the same dict (tested).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..reference.translate import Translation


def to_toml(config: dict[str, Any], comments: Sequence[str] = ()) -> str:
    """``config`` (top-level fields, then one ``[table]`` per dict) as TOML text, ``comments``
    first as ``#`` lines."""
    lines = [f"# {c}" if c else "#" for c in comments]
    if lines:
        lines.append("")
    tables = {k: v for k, v in config.items() if isinstance(v, dict)}
    for key, value in config.items():
        if key not in tables:
            lines.append(f"{_key(key)} = {_value(value)}")
    for name, table in tables.items():
        lines += ["", f"[{_key(name)}]"]
        lines += [f"{_key(k)} = {_value(v)}" for k, v in table.items() if v is not None]
    return "\n".join(lines).lstrip("\n") + "\n"


def _key(key: str) -> str:
    return key if key and all(c.isalnum() or c in "_-" for c in key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"TOML config values must be finite, got {value!r}")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: the same escapes
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None)
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"cannot write {type(value).__name__} to a TOML config")


def translation_text(translation: Translation) -> str:
    """A translated reference config as the TOML ``convert`` prints and ``init`` keeps: how each
    field was translated, as comments, above the config."""
    comments = [
        f"Translated by taylorglo from the reference's config {translation.source}.",
        "How each of its fields was translated:",
        *[f"  {line}" for line in translation.mapped],
        "Fields with no bearing on a taylorglo run:",
        *[f"  {line}" for line in translation.notes],
    ]
    return to_toml(translation.config, comments)
