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
