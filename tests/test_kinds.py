"""The registry of experiment kinds: built-ins by name, plug-ins by reference, mistakes in one line."""

from __future__ import annotations

import pytest

from taylorglo.epbt.kind import EPBTKind
from taylorglo.errors import TaylorGLOError
from taylorglo.experiment.generations import GenerationKind
from taylorglo.experiment.kinds import kind_class, register_kind
from taylorglo.kinds.search import SearchKind


def test_built_in_kinds_are_found_by_name():
    assert kind_class("taylorglo") is SearchKind and kind_class("epbt") is EPBTKind
    assert all(issubclass(k, GenerationKind) for k in (SearchKind, EPBTKind))


def test_a_registered_kind_is_found_by_its_name():
    class Tiny(SearchKind):
        pass

    assert register_kind("tiny-test-kind", Tiny) is Tiny
    assert kind_class("tiny-test-kind") is Tiny
    assert kind_class("taylorglo.kinds.search:SearchKind") is SearchKind


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bogus", r"kind: unknown experiment kind 'bogus'; use one of 'epbt', .*'taylorglo'"),
        ("no_such_module:Kind", r"kind: cannot load the experiment kind 'no_such_module:Kind'"),
        ("taylorglo.search:CMAESSearch", r"kind: 'taylorglo.search:CMAESSearch' is not a GenerationKind subclass"),
    ],
)
def test_a_bad_kind_is_one_line_naming_the_field(name, message):
    with pytest.raises(TaylorGLOError, match=message):
        kind_class(name)
