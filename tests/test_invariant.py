"""The trainability invariant against SPEC §5."""

from __future__ import annotations

import numpy as np
import pytest

from taylorglo import invariant_holds
from taylorglo.errors import TaylorGLOError
from taylorglo.invariant import invariant_margins, slope

OLD_LOSS = [8.2896, 0.2415, 7.8726, 8.9666, 2.0184, 7.0513, -10.9408, 7.5216]


def spec_left_right(p, n):
    """SPEC §5 transcribed independently, with the SPEC's own variable names."""
    θ0, θ1, θ2, θ3, θ4, θ5, θ6, θ7 = p[6], p[7], p[0], p[1], p[2], p[3], p[4], p[5]
    c1 = θ2 - 2 * θ1 * θ3 + 3 * θ4 * θ1**2 - θ5 * θ0 + 2 * θ0 * θ1 * θ6 + θ7 * θ0**2
    ch = 2 * θ3 - 6 * θ4 * θ1 - 2 * θ6 * θ0
    chh = 3 * θ4
    chy = 2 * θ6
    cy = θ5 - 2 * θ1 * θ6 - 2 * θ7 * θ0
    cyy = θ7
    return cy + cyy + chy / n, (n - 2) * (c1 + ch / n + chh / n**2)


def test_reference_rule_matches_spec_on_random_params():
    rng = np.random.default_rng(0)
    for p in rng.normal(0, 1.2, size=(2000, 8)):
        for n in (2, 3, 10, 100):
            left, right = spec_left_right(p, n)
            assert invariant_margins(p, n) == pytest.approx((left, right), rel=1e-12, abs=1e-12)
            assert invariant_holds(p, n) == (left >= right)


def test_about_half_of_the_initial_cmaes_distribution_is_rejected():
    rng = np.random.default_rng(42)
    samples = rng.normal(0, 1.2, size=(5000, 8))
    rejected = np.mean([not invariant_holds(p, 10) for p in samples])
    assert 0.45 < rejected < 0.55


def test_equivalent_slope_form():
    # SPEC: left >= right  <=>  g1(1/n) - (n-1) g0(1/n) >= 0.
    rng = np.random.default_rng(3)
    for p in rng.normal(0, 1.2, size=(500, 8)):
        n = 10
        g1, g0 = slope(p, 1.0, 1 / n), slope(p, 0.0, 1 / n)
        left, right = invariant_margins(p, n)
        assert left - right == pytest.approx(g1 - (n - 1) * g0, abs=1e-9)


def test_old_loss_passes_gradient_rule_but_fails_reference():
    assert invariant_holds(OLD_LOSS, 10, rule="gradient")
    assert not invariant_holds(OLD_LOSS, 10, rule="reference")


def test_cross_entropy_like_loss_passes_both():
    # f ≈ x·y (pushes the target up, nothing else): g1 = 1 > g0 = 0, and 1 >= (n-1)·0.
    p = [0, 0, 0, 1, 0, 0, 0, 0]
    assert invariant_holds(p, 10) and invariant_holds(p, 10, "gradient")


def test_off_and_bad_rule():
    assert invariant_holds(OLD_LOSS, 10, rule="off")
    with pytest.raises(TaylorGLOError, match="invariant"):
        invariant_holds(OLD_LOSS, 10, rule="strict")


def test_other_orders():
    rng = np.random.default_rng(5)
    for length in (5, 12):
        results = [invariant_holds(p, 10) for p in rng.normal(0, 1.2, size=(400, length))]
        assert 0.2 < np.mean(results) < 0.8


def test_violators_can_be_trained_and_tagged_instead_of_rejected(tmp_path):
    # The reference's ignoreInvariantCheck: every candidate still checked, the ones that fail
    # trained all the same and tagged, so their fitness is measured, not assumed to be 0.
    import json
    import sqlite3

    from experiments import SMALL, cli, merged, write_config
    from taylorglo.invariant import invariant_holds

    config = merged(SMALL, search={"population": 8, "generations": 1})
    runs = {}
    for action in ("reject", "train"):
        directory = tmp_path / action
        path = write_config(tmp_path / f"{action}.toml", merged(config, search={"invariant_violators": action}))
        cli("init", str(directory), str(path), check=True)
        runs[action] = (directory, cli("start", str(directory), "--plain", check=True).stdout)
        with sqlite3.connect(directory / "experiment.sqlite") as db:
            rows = db.execute(
                "SELECT idx, params, status, fitness, json_extract(metrics, '$.invariant') FROM candidates ORDER BY idx"
            ).fetchall()
        runs[action] += (rows,)
    (_, _, rejected), (trained_dir, out, trained) = runs["reject"], runs["train"]
    failing = [i for i, params, *_ in rejected if not invariant_holds(json.loads(params), 10)]
    assert failing and [r[0] for r in rejected if r[2] == "rejected-invariant"] == failing
    assert [r[1] for r in trained] == [r[1] for r in rejected]  # generation 0: the same candidates
    for idx, _, status, fitness, tag in trained:
        assert status in ("evaluated", "failed", "aborted") and fitness is not None
        assert (tag is not None) == (idx in failing)
        if tag is not None:
            assert "fails the reference invariant; trained" in tag
    assert f"0 rejected by the reference invariant (never trained), {len(failing)} trained despite failing it" in out
    status = json.loads(cli("status", str(trained_dir), "--json", check=True).stdout)
    assert status["invariant_violators_trained"] == len(failing)


def test_tags_are_counted_when_a_run_recorded_nan(tmp_path):
    """A diverged candidate's metrics hold NaN, which SQLite's JSON functions call malformed:
    counting the tags must not crash status (it did, with a loss of the logits)."""
    from taylorglo.experiment.store import Store
    from taylorglo.records import Candidate, Result

    with Store(tmp_path / "s.sqlite", create=True) as store:
        store.open_generation(0, b"", [Candidate(0, i, [0.0] * 8, i, "pending") for i in range(3)])
        store.record(Result(0, 0, "failed", 0.0, metrics={"val_loss": float("nan"), "invariant": "fails it"}))
        store.record(Result(0, 1, "evaluated", 0.5, metrics={"val_loss": float("inf")}))
        store.record(Result(0, 2, "evaluated", 0.5, metrics={"note": "invariant"}))  # the word, not the key
        assert store.tagged("invariant") == 1
