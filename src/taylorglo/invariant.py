"""The trainability invariant: reject a candidate loss before spending a training run on it.

SPEC §5, from "Effective Regularization Through Loss-Function Metalearning". At initialisation every
softmax output is about ``1/n``. Let ``g_x(y) = ∂f/∂y`` be the slope of the loss polynomial for a
target (``x = 1``) or non-target (``x = 0``) class. A loss can only start learning when it pushes
the target up harder than the ``n − 1`` non-targets together:

* ``rule="reference"`` — the reference code's closed form, ``left ≥ right`` with
  ``left = g₁(1/n) − g₀(1/n)`` and ``right = (n − 2)·g₀(1/n)``, i.e. ``g₁ ≥ (n−1)·g₀``.
  About half of the draws from CMA-ES's first distribution N(0, 1.2²) fail it.
* ``rule="gradient"`` — the looser plain softmax-gradient condition ``g₁(1/n) > g₀(1/n)``.
* ``rule="off"`` — accept everything (for ablations).

For order 3 the closed form below is SPEC §5 term by term; other orders evaluate the same slopes
from the polynomial's derivative, which for order 3 gives identical numbers (tested).

A loss of more inputs (``training.loss_inputs``) is checked where training starts: training
progress ``t = 0`` and, for a loss of the logits, logits 0 (a softmax of exactly ``1/n``). The
logits open a second path to the gradient that the closed form does not know, so such a loss is
checked, under either rule, by its first update itself: the target logit must gain on every
non-target one, ``(g₁ − g₀)/n + (h₁ − h₀) > 0`` with ``h_x = ∂f/∂logit`` (with ``h = 0`` this
is the gradient rule).
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import TaylorGLOError
from .polynomial import DEFAULT_INPUTS, check_inputs, check_params, taylor_terms

RULES = ("reference", "gradient", "off")


def _closed_form_order3(p: Sequence[float], n: int) -> tuple[float, float]:
    """(left, right) exactly as the reference computes them (SPEC §5, no factorials)."""
    t2, t3, t4, t5, t6, t7, t0, t1 = p  # θ2..θ7 = p0..p5; θ0 = p6, θ1 = p7
    c1 = t2 - 2 * t1 * t3 + 3 * t4 * t1**2 - t5 * t0 + 2 * t0 * t1 * t6 + t7 * t0**2
    ch = 2 * t3 - 6 * t4 * t1 - 2 * t6 * t0
    chh = 3 * t4
    chy = 2 * t6
    cy = t5 - 2 * t1 * t6 - 2 * t7 * t0
    cyy = t7
    left = cy + cyy + chy / n
    right = (n - 2) * (c1 + ch / n + chh / n**2)
    return left, right


def slope(
    params: Sequence[float], x: float, y: float, inputs: tuple[str, ...] = DEFAULT_INPUTS, wrt: str = "y"
) -> float:
    """``∂f/∂y`` (or ``∂f/∂wrt``) of the loss polynomial at ``(x, y)``, for any order; inputs
    beyond x and y are at their starting values (logits 0, progress 0)."""
    inputs = check_inputs(inputs)
    values, order = check_params(params, None, inputs)
    m = len(inputs)
    point = {"x": x, "y": y, "logits": 0.0, "t": 0.0}
    centred = [point[name] - c for name, c in zip(inputs, values[-m:])]
    k = inputs.index(wrt)
    total = 0.0
    for c, exponents in zip(values[:-m], taylor_terms(order, inputs)):
        if not exponents[k]:
            continue
        term = c * exponents[k] * centred[k] ** (exponents[k] - 1)
        for j, e in enumerate(exponents):
            if j != k and e:
                term *= centred[j] ** e
        total += term
    return total


def _classes(num_classes: int) -> int:
    if not isinstance(num_classes, int) or num_classes < 2:
        raise TaylorGLOError(f"num_classes: must be 2 or more, got {num_classes}")
    return num_classes


def invariant_margins(
    params: Sequence[float], num_classes: int, inputs: tuple[str, ...] = DEFAULT_INPUTS
) -> tuple[float, float]:
    """``(left, right)`` of the reference rule; the candidate passes when ``left >= right``.
    Raises ``OverflowError`` for a polynomial beyond float64."""
    inputs = check_inputs(inputs)
    values, order = check_params(params, None, inputs)
    n = _classes(num_classes)
    if "logits" in inputs:
        return _first_update(values, n, inputs)
    if order == 3 and inputs == DEFAULT_INPUTS:
        return _closed_form_order3(values, n)
    g1, g0 = slope(values, 1.0, 1.0 / n, inputs), slope(values, 0.0, 1.0 / n, inputs)
    return g1 - g0, (n - 2) * g0


def _first_update(values: Sequence[float], n: int, inputs: tuple[str, ...]) -> tuple[float, float]:
    """(left, right) of a loss of the logits: its first update lifts the target logit over each
    non-target one when ``left > right`` (see the module's docstring)."""
    g1, g0 = slope(values, 1.0, 1.0 / n, inputs), slope(values, 0.0, 1.0 / n, inputs)
    h1, h0 = slope(values, 1.0, 1.0 / n, inputs, "logits"), slope(values, 0.0, 1.0 / n, inputs, "logits")
    return (g1 - g0) / n + h1, h0


def invariant_holds(
    params: Sequence[float], num_classes: int, rule: str = "reference", inputs: tuple[str, ...] = DEFAULT_INPUTS
) -> bool:
    """Whether a TaylorGLO parameter vector is worth training (SPEC §5)."""
    _classes(num_classes)
    if rule == "off":
        return True
    if rule not in RULES:
        raise TaylorGLOError(f"invariant: must be one of {', '.join(RULES)}, got {rule!r}")
    inputs = check_inputs(inputs)
    try:
        if rule == "reference" or "logits" in inputs:  # a loss of the logits: its first update, strictly
            left, right = invariant_margins(params, num_classes, inputs)
            return left > right if "logits" in inputs else left >= right
        n = num_classes
        return slope(params, 1.0, 1.0 / n, inputs) > slope(params, 0.0, 1.0 / n, inputs)
    except (OverflowError, ValueError):  # a polynomial beyond float64 (or non-finite) trains nothing
        return False
