"""Profiles: named sets of defaults an experiment config opts into with ``profile = "..."``.

taylorglo's defaults are its own choices; ``profile = "reference"`` makes the fields where the
reference's system behaved differently default to what it did, so a published experiment that
``taylorglo init`` imports runs as it ran. A profile only changes defaults: a field the file sets
keeps its value, and every field a profile sets is an ordinary field, documented where it is
defined. A new profile is a row of :data:`PROFILES`.
"""

from __future__ import annotations

from typing import Any

from ..errors import TaylorGLOError
from ..training.config import TrainConfig

#: Per profile, per table, the defaults it sets.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "default": {},
    "reference": {
        "training": {
            "data_subset": "first",  # reduced data: a prefix of the split's seed-42 permutation
            "crop_fill": "black",  # its random crop padded with black
            "normalization": "reference",  # its constants: SVHN's, CIFAR-10's for CIFAR-100, none for MNIST
            "attempts": 1,  # one attempt unless the config said more (its A3 configs: 3)
            "abort_fitness": "measured",  # an aborted run scored the accuracy it had
            "round_params": 4,  # its losses trained as rendered, to 4 decimals
        },
        "search": {
            "cma": "swiftcma",  # SwiftCMA's constants
            "invariant_violators": "train",  # ignoreInvariantCheck: checked, tagged, trained
        },
    },
}


def apply_profile(data: dict[str, Any], table: str) -> tuple[str, dict[str, Any]]:
    """The config's profile name and ``data`` with the profile's defaults filled in under its
    ``[training]`` and its kind's ``table`` (the file's own values win)."""
    name = data.get("profile", "default")
    if name not in PROFILES:
        raise TaylorGLOError(
            f"profile: unknown profile {name!r}; choose one of {', '.join(map(repr, PROFILES))} "
            '("reference": the reference system\'s defaults, for its published experiments)'
        )
    merged = dict(data)
    for section, defaults in PROFILES[name].items():
        if section not in ("training", table):
            continue
        given = data.get(section, {})
        if not isinstance(given, dict):  # refused, naming the table, when it is parsed
            continue
        if section == "training" and given.get("objective") is not None:
            # The user's objective trains with its own code: the built-in trainer's fields stay unset.
            defaults = {k: v for k, v in defaults.items() if k in TrainConfig.OBJECTIVE_FIELDS}
        merged[section] = {**defaults, **given}
    return name, merged
