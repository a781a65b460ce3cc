"""The registry of experiment kinds: built-ins by name, plug-ins by reference, mistakes in one line."""

from __future__ import annotations

import json

import pytest

from experiments import cli, write_config
from taylorglo.epbt.kind import EPBTKind
from taylorglo.errors import TaylorGLOError
from taylorglo.experiment.generations import GenerationKind
from taylorglo.experiment.kinds import kind_class, register_kind
from taylorglo.experiment.store import Store
from taylorglo.glo.kind import SearchKind


def test_built_in_kinds_are_found_by_name():
    assert kind_class("taylorglo") is SearchKind and kind_class("epbt") is EPBTKind
    assert all(issubclass(k, GenerationKind) for k in (SearchKind, EPBTKind))


def test_a_registered_kind_is_found_by_its_name():
    class Tiny(SearchKind):
        pass

    assert register_kind("tiny-test-kind", Tiny) is Tiny
    assert kind_class("tiny-test-kind") is Tiny
    assert kind_class("taylorglo.glo.kind:SearchKind") is SearchKind


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bogus", r"kind: unknown experiment kind 'bogus'; use one of 'epbt', .*'taylorglo'"),
        ("no_such_module:Kind", r"kind: cannot load the experiment kind 'no_such_module:Kind'"),
        ("taylorglo.cmaes:CMAESSearch", r"kind: 'taylorglo.cmaes:CMAESSearch' is not an experiment kind"),
    ],
)
def test_a_bad_kind_is_one_line_naming_the_field(name, message):
    with pytest.raises(TaylorGLOError, match=message):
        kind_class(name)


RANDOM = {
    "name": "random-digits",
    "kind": "random_kind:RandomSearchKind",
    "seed": 3,
    "training": {"dataset": "digits", "model": "mlp", "steps": 1000, "batch_size": 64, "model_options": {"hidden": 16}},
    "random": {"population": 3, "generations": 2, "partial_fraction": 0.04},
    "evaluator": {"kind": "local", "workers": 2},
}


def test_a_kind_defined_outside_the_package_runs_through_init_start_and_status(tmp_path):
    """A fourth kind is one module (``tests/random_kind.py``) named in a config: the host's loop,
    store and CLI run it, and its table is validated by the kind, one line naming the field."""
    config = write_config(tmp_path / "random.toml", RANDOM)
    run = tmp_path / "run"
    init = cli("init", str(run), str(config), check=True)
    assert "2 generations x 3 candidates, mlp on digits" in init.stdout
    start = cli("start", str(run), "--plain", check=True)
    assert "random-digits: finished, 2/2 generations, 6 candidates: 6 trained" in start.stdout
    report = json.loads(cli("status", str(run), "--json", check=True).stdout)
    assert report["kind"] == "random_kind:RandomSearchKind" and report["state"] == "finished"
    assert report["candidates"]["evaluated"] == 6 and report["population"] == 3
    assert [g["generation"] for g in report["generations"]] == [0, 1]
    with Store(run / "experiment.sqlite", readonly=True) as store:
        rows = store.candidates()
        recorded = store.get_meta("config")
    assert len(rows) == 6 and all(c.status == "evaluated" and 0 < c.fitness <= 1 for c in rows)
    assert report["best"]["fitness"] == max(c.fitness for c in rows)
    assert recorded["random"] == {"population": 3, "generations": 2, "scale": 1.0, "partial_fraction": 0.04}
    assert "search" not in recorded
    # The kind's jobs trained its partial schedule: 4% of 1000 steps.
    assert {c.steps for c in rows} == {40}
    text = cli("status", str(run), check=True).stdout
    assert "  generation   1: best" in text and "best: fitness" in text

    bad = write_config(tmp_path / "bad.toml", {**RANDOM, "random": {"populaton": 3}})
    result = cli("init", str(tmp_path / "bad"), str(bad))
    assert result.returncode == 2 and result.stderr.startswith("error: random.populaton: unknown field")
    assert len(result.stderr.strip().splitlines()) == 1
    wrong = write_config(tmp_path / "wrong.toml", {**RANDOM, "search": {"population": 3}})
    result = cli("init", str(tmp_path / "wrong"), str(wrong))
    assert result.returncode == 2 and 'error: search: the [search] table is for kind = "taylorglo"' in result.stderr
