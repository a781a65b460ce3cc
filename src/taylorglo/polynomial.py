"""The TaylorGLO parameter vector without PyTorch: its terms, layouts and checks, the formula as
text and the loss's text form.

Everything that reads an experiment (``status``, ``compare``, the report) shows formulas, and a
command that only reads must start in a fraction of a second, so none of this imports torch;
:mod:`taylorglo.loss` builds the loss itself on top of it (SPEC §1; see that module for the
layouts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache

from .errors import TaylorGLOError

DEFAULT_ORDER = 3
#: Orders a loss may have: 2 (5 parameters), 3 (8, the default), 4 (12), and higher for ablations.
#: Order 1 is left out: a loss linear in y has a constant gradient and cannot be tuned by training.
SUPPORTED_ORDERS = (2, 3, 4, 5, 6, 7, 8, 9)
#: The largest size a search's σ₀ or initial mean entry may have: beyond it, sampled parameters'
#: cubes overflow float64 and no candidate could even be checked.
MAX_MAGNITUDE = 1e100


@cache
def taylor_terms(order: int) -> tuple[tuple[int, int], ...]:
    """Exponents ``(i, j)`` of ``X**i * Y**j`` for every term of a loss of this order, in code layout.

    ``i`` runs outermost so that order 3 gives the reference's ``Y, Y², Y³, XY, XY², X²Y``.
    """
    if order not in SUPPORTED_ORDERS:
        raise TaylorGLOError(f"order: must be one of {', '.join(map(str, SUPPORTED_ORDERS))}, got {order}")
    return tuple((i, j) for i in range(order) for j in range(1, order - i + 1))


def num_params(order: int = DEFAULT_ORDER) -> int:
    """Length of the parameter vector: one coefficient per term plus the two centres (order 3 → 8)."""
    return len(taylor_terms(order)) + 2


def order_for_length(length: int) -> int:
    """The order whose parameter vector has ``length`` entries (5 → 2, 8 → 3, 12 → 4)."""
    for order in SUPPORTED_ORDERS:
        if num_params(order) == length:
            return order
    valid = ", ".join(f"{num_params(k)} (order {k})" for k in SUPPORTED_ORDERS[:3])
    raise ValueError(f"params: a TaylorGLO loss takes {valid} values, got {length}")


def check_params(params: Sequence[float], order: int | None = None) -> tuple[list[float], int]:
    """Validate a parameter vector; return it as floats with its order.

    Raises :class:`ValueError` (not a TaylorGLOError) for a wrong length, as the issue asks: it is a
    programming error when it comes from Python, and the CLI turns it into a one-line message.
    """
    values = [float(v) for v in params]
    if order is None:
        order = order_for_length(len(values))
    elif len(values) != num_params(order):
        raise ValueError(f"params: an order-{order} TaylorGLO loss takes {num_params(order)} values, got {len(values)}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"params: every value must be finite, got {values}")
    return values, order


def to_paper_layout(params: Sequence[float]) -> list[float]:
    """Code layout → the paper's θ: centres first, then each coefficient times ``i!·j!``."""
    values, order = check_params(params)
    coeffs = values[:-2]
    scaled = [c * math.factorial(i) * math.factorial(j) for c, (i, j) in zip(coeffs, taylor_terms(order))]
    return [values[-2], values[-1], *scaled]


def from_paper_layout(theta: Sequence[float]) -> list[float]:
    """The paper's θ → code layout (inverse of :func:`to_paper_layout`)."""
    values, order = check_params(theta)
    coeffs = values[2:]
    unscaled = [c / (math.factorial(i) * math.factorial(j)) for c, (i, j) in zip(coeffs, taylor_terms(order))]
    return [*unscaled, values[0], values[1]]


def _monomial(i: int, j: int, x: str, y: str) -> str:
    parts = []
    for name, power in ((x, i), (y, j)):
        if power == 1:
            parts.append(name)
        elif power > 1:
            parts.append(f"{name}{_superscript(power)}")
    return "·".join(parts)


def _superscript(n: int) -> str:
    return str(n).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))


def _signed_sum(terms: list[tuple[float, str]]) -> str:
    out = ""
    for k, (coef, mono) in enumerate(terms):
        sign = "-" if coef < 0 else "+"
        body = f"{_num(abs(coef))}·{mono}"
        out += (f"-{body}" if sign == "-" else body) if k == 0 else f" {sign} {body}"
    return out or "0"


def format_formula(params: Sequence[float], layout: str = "code") -> str:
    """A readable formula for a parameter vector.

    ``layout="code"``: ``f(x,y) = p0·(y−c_y) + …`` exactly as it is computed.
    ``layout="paper"``: the paper's form, ``−(1/n)Σ[θ2(y−θ1) + ½θ3(y−θ1)² + …]``, θ listed.
    """
    values, order = check_params(params)
    terms = taylor_terms(order)
    if layout == "code":
        cx, cy = values[-2], values[-1]
        X, Y = f"(x{_centre(cx)})", f"(y{_centre(cy)})"
        body = _signed_sum([(c, _monomial(i, j, X, Y)) for c, (i, j) in zip(values[:-2], terms)])
        return f"f(x,y) = {body};  loss = -mean_batch Σ_classes f"
    if layout == "paper":
        theta = to_paper_layout(values)
        pieces = []
        for k, (i, j) in enumerate(terms):
            fact = math.factorial(i) * math.factorial(j)
            frac = "" if fact == 1 else f"(1/{fact})"
            pieces.append(f"{frac}θ{k + 2}·{_monomial(i, j, '(x−θ0)', '(y−θ1)')}")
        listing = ", ".join(f"θ{k}={_num(t)}" for k, t in enumerate(theta))
        return f"loss = -(1/n) Σ [ {' + '.join(pieces)} ]  with {listing}"
    raise ValueError(f"layout: must be 'code' or 'paper', got {layout!r}")


def describe_loss(params: Sequence[float]) -> str:
    """What ``str(TaylorGLOLoss(params))`` prints: the parameters and formula in both layouts."""
    values, order = check_params(params)
    return (
        f"TaylorGLO loss (order {order})\n"
        f"  code layout  p = {[round(v, 4) for v in values]}\n"
        f"    {format_formula(values, 'code')}\n"
        f"  paper layout θ = {[round(v, 4) for v in to_paper_layout(values)]}\n"
        f"    {format_formula(values, 'paper')}"
    )


def _centre(c: float) -> str:
    return f" − {_num(c)}" if c >= 0 else f" + {_num(-c)}"


def _num(v: float) -> str:
    """Four decimals, the precision the reference trained with, without trailing zeros."""
    return f"{round(v, 4):g}" if abs(v) < 1e6 else f"{v:.4g}"


CROSS_ENTROPY = "cross-entropy"


def loss_spec(params: Sequence[float] | None) -> str:
    """The text form of a loss (inverse of :func:`parse_loss`); ``None`` means cross-entropy."""
    if params is None:
        return CROSS_ENTROPY
    return "taylorglo:" + ",".join(repr(float(v)) for v in params)
