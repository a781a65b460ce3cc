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
from typing import Any

from .errors import TaylorGLOError

DEFAULT_ORDER = 3
#: Orders a loss may have: 2 (5 parameters), 3 (8, the default), 4 (12), and higher for ablations.
#: Order 1 is left out: a loss linear in y has a constant gradient and cannot be tuned by training.
SUPPORTED_ORDERS = (2, 3, 4, 5, 6, 7, 8, 9)
#: The largest size a search's σ₀ or initial mean entry may have: beyond it, sampled parameters'
#: cubes overflow float64 and no candidate could even be checked.
MAX_MAGNITUDE = 1e100


#: What a loss polynomial may take, in this order: the one-hot label, the softmax output, the
#: unscaled logits and the training progress (the share of the full schedule done, 0 to 1). Every
#: loss takes ``x`` and ``y``; the reference's ``inputVariables`` also allowed the other two.
INPUTS = ("x", "y", "logits", "t")
DEFAULT_INPUTS = ("x", "y")
#: The inputs the network's output flows through: a term in none of them carries no gradient.
_GRADIENT_INPUTS = ("y", "logits")


def check_inputs(inputs: Sequence[str] | None, field: str = "inputs") -> tuple[str, ...]:
    """``inputs`` as a tuple in :data:`INPUTS` order; ``None`` is the default ``("x", "y")``."""
    if inputs is None:
        return DEFAULT_INPUTS
    given = tuple(inputs) if not isinstance(inputs, str) else (inputs,)
    unknown = [v for v in given if v not in INPUTS]
    if unknown or len(set(given)) != len(given) or not {"x", "y"} <= set(given):
        raise TaylorGLOError(
            f"{field}: must list x and y and may add logits (the unscaled logits) and t (the "
            f"training progress), each once; got {list(given)}"
        )
    return tuple(v for v in INPUTS if v in given)


def inputs_words(inputs: Sequence[str]) -> str:
    """``" of x, y, t"`` for a loss of more inputs than x and y, else nothing (for messages)."""
    names = check_inputs(inputs)
    return "" if names == DEFAULT_INPUTS else f" of {', '.join(names)}"


def taylor_terms(order: int, inputs: Sequence[str] = DEFAULT_INPUTS) -> tuple[tuple[int, ...], ...]:
    """Exponents of every term of a loss of this order, one per input, in code layout: every
    monomial of degree 1 to ``order`` in which an input the network's output flows through (y,
    logits) appears, in lexicographic order of the exponents.

    For ``(x, y)`` that is ``(i, j)`` with ``i`` outermost, the reference's ``Y, Y², Y³, XY, XY²,
    X²Y`` at order 3.
    """
    if order not in SUPPORTED_ORDERS:
        raise TaylorGLOError(f"order: must be one of {', '.join(map(str, SUPPORTED_ORDERS))}, got {order}")
    return _terms(order, check_inputs(inputs))  # canonical first: a list or any order is cached once


@cache
def _terms(order: int, inputs: tuple[str, ...]) -> tuple[tuple[int, ...], ...]:
    moving = [k for k, name in enumerate(inputs) if name in _GRADIENT_INPUTS]
    return tuple(e for e in _exponents(len(inputs), order) if 0 < sum(e) <= order and any(e[k] for k in moving))


def _exponents(k: int, order: int) -> list[tuple[int, ...]]:
    """Every exponent tuple of ``k`` entries 0..order, in lexicographic order."""
    if k == 0:
        return [()]
    return [(first, *rest) for first in range(order + 1) for rest in _exponents(k - 1, order - first)]


def num_params(order: int = DEFAULT_ORDER, inputs: tuple[str, ...] = DEFAULT_INPUTS) -> int:
    """Length of the parameter vector: one coefficient per term plus one centre per input (order 3
    of (x, y) → 8)."""
    return len(taylor_terms(order, inputs)) + len(check_inputs(inputs))


def order_for_length(length: int, inputs: tuple[str, ...] = DEFAULT_INPUTS) -> int:
    """The order whose parameter vector has ``length`` entries (5 → 2, 8 → 3, 12 → 4)."""
    for order in SUPPORTED_ORDERS:
        if num_params(order, inputs) == length:
            return order
    valid = ", ".join(f"{num_params(k, inputs)} (order {k})" for k in SUPPORTED_ORDERS[:3])
    raise ValueError(f"params: a TaylorGLO loss{inputs_words(inputs)} takes {valid} values, got {length}")


def check_params(
    params: Sequence[float], order: int | None = None, inputs: tuple[str, ...] = DEFAULT_INPUTS
) -> tuple[list[float], int]:
    """Validate a parameter vector; return it as floats with its order.

    Raises :class:`ValueError` (not a TaylorGLOError) for a wrong length, as the issue asks: it is a
    programming error when it comes from Python, and the CLI turns it into a one-line message.
    """
    values = [float(v) for v in params]
    if order is None:
        order = order_for_length(len(values), inputs)
    elif len(values) != num_params(order, inputs):
        raise ValueError(
            f"params: an order-{order} TaylorGLO loss takes {num_params(order, inputs)} values, got {len(values)}"
        )
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"params: every value must be finite, got {values}")
    return values, order


def _factorials(exponents: tuple[int, ...]) -> int:
    return math.prod(math.factorial(e) for e in exponents)


def to_paper_layout(params: Sequence[float], inputs: tuple[str, ...] = DEFAULT_INPUTS) -> list[float]:
    """Code layout → the paper's θ: centres first, then each coefficient times its exponents'
    factorials (``i!·j!`` for (x, y))."""
    values, order = check_params(params, None, inputs)
    m = len(check_inputs(inputs))
    scaled = [c * _factorials(e) for c, e in zip(values[:-m], taylor_terms(order, inputs))]
    return [*values[-m:], *scaled]


def from_paper_layout(theta: Sequence[float], inputs: tuple[str, ...] = DEFAULT_INPUTS) -> list[float]:
    """The paper's θ → code layout (inverse of :func:`to_paper_layout`)."""
    values, order = check_params(theta, None, inputs)
    m = len(check_inputs(inputs))
    unscaled = [c / _factorials(e) for c, e in zip(values[m:], taylor_terms(order, inputs))]
    return [*unscaled, *values[:m]]


def _monomial(exponents: tuple[int, ...], names: Sequence[str]) -> str:
    parts = []
    for name, power in zip(names, exponents):
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


def format_formula(params: Sequence[float], layout: str = "code", inputs: tuple[str, ...] = DEFAULT_INPUTS) -> str:
    """A readable formula for a parameter vector.

    ``layout="code"``: ``f(x,y) = p0·(y−c_y) + …`` exactly as it is computed.
    ``layout="paper"``: the paper's form, ``−(1/n)Σ[θ2(y−θ1) + ½θ3(y−θ1)² + …]``, θ listed.
    """
    values, order = check_params(params, None, inputs)
    inputs = check_inputs(inputs)
    m = len(inputs)
    terms = taylor_terms(order, inputs)
    args = ",".join(inputs)
    if layout == "code":
        names = [f"({name}{_centre(c)})" for name, c in zip(inputs, values[-m:])]
        body = _signed_sum([(c, _monomial(e, names)) for c, e in zip(values[:-m], terms)])
        return f"f({args}) = {body};  loss = -mean_batch Σ_classes f"
    if layout == "paper":
        theta = to_paper_layout(values, inputs)
        names = [f"({name}−θ{k})" for k, name in enumerate(inputs)]
        pieces = []
        for k, e in enumerate(terms):
            fact = _factorials(e)
            frac = "" if fact == 1 else f"(1/{fact})"
            pieces.append(f"{frac}θ{k + m}·{_monomial(e, names)}")
        listing = ", ".join(f"θ{k}={_num(t)}" for k, t in enumerate(theta))
        return f"loss = -(1/n) Σ [ {' + '.join(pieces)} ]  with {listing}"
    raise ValueError(f"layout: must be 'code' or 'paper', got {layout!r}")


def describe_loss(params: Sequence[float], inputs: tuple[str, ...] = DEFAULT_INPUTS) -> str:
    """What ``str(TaylorGLOLoss(params))`` prints: the parameters and formula in both layouts."""
    values, order = check_params(params, None, inputs)
    return (
        f"TaylorGLO loss (order {order}{inputs_words(inputs)})\n"
        f"  code layout  p = {[round(v, 4) for v in values]}\n"
        f"    {format_formula(values, 'code', inputs)}\n"
        f"  paper layout θ = {[round(v, 4) for v in to_paper_layout(values, inputs)]}\n"
        f"    {format_formula(values, 'paper', inputs)}"
    )


def _centre(c: float) -> str:
    return f" − {_num(c)}" if c >= 0 else f" + {_num(-c)}"


def _num(v: float) -> str:
    """Four decimals, the precision the reference trained with, without trailing zeros."""
    return f"{round(v, 4):g}" if abs(v) < 1e6 else f"{v:.4g}"


CROSS_ENTROPY = "cross-entropy"
#: The spellings of cross-entropy a loss spec accepts.
CROSS_ENTROPY_NAMES = (CROSS_ENTROPY, "ce", "crossentropy")


def loss_spec(params: Sequence[float] | None, inputs: tuple[str, ...] = DEFAULT_INPUTS) -> str:
    """The text form of a loss (inverse of :func:`parse_loss`); ``None`` means cross-entropy.
    A loss of more inputs than (x, y) names them: ``taylorglo[x,y,logits]:P0,...``."""
    if params is None:
        return CROSS_ENTROPY
    head = "taylorglo" if tuple(inputs) == DEFAULT_INPUTS else f"taylorglo[{','.join(check_inputs(inputs))}]"
    return head + ":" + ",".join(repr(float(v)) for v in params)


def split_spec(spec: str) -> tuple[str, tuple[str, ...], str] | None:
    """``"taylorglo[x,y,t]:1,2,..."`` → ``("taylorglo", ("x", "y", "t"), "1,2,...")``; the inputs
    default to (x, y); None for text without a ``kind:`` head. Raises for a bad input list."""
    head, sep, rest = spec.partition(":")
    if not sep:
        return None
    kind, bracket, names = head.partition("[")
    if not bracket:
        return kind, DEFAULT_INPUTS, rest
    if not names.endswith("]"):
        raise TaylorGLOError(f"loss: the inputs go in brackets, as taylorglo[x,y,logits]:P0,...; got {head!r}")
    return kind, check_inputs([n.strip() for n in names[:-1].split(",") if n.strip()], "loss inputs"), rest


def taylorglo_spec(spec: str, field: str) -> tuple[tuple[str, ...], str]:
    """A ``taylorglo[...]:...`` spec's inputs and the text after its colon; one line naming
    ``field`` for anything else (cross-entropy is the caller's to recognise first)."""
    try:
        parts = split_spec(spec)
    except TaylorGLOError as exc:
        raise TaylorGLOError(f"{field}: {str(exc).partition(': ')[2]}") from None
    if parts is None or parts[0] != "taylorglo":
        raise TaylorGLOError(f"{field}: expected 'cross-entropy' or 'taylorglo:P0,...,P7', got {spec!r}")
    return parts[1], parts[2]


def spec_params(spec: Any, where: str, inputs: Sequence[str] = DEFAULT_INPUTS) -> tuple[float, ...] | None:
    """A loss spec as configs give it, checked without torch: None for cross-entropy, else the
    TaylorGLO parameters, a polynomial of ``inputs`` (``training.loss_inputs``), which a spec that
    names its inputs must match. Raises a one-line :class:`TaylorGLOError` naming ``where``."""
    if not isinstance(spec, str):
        raise TaylorGLOError(f"{where}: must be 'cross-entropy' or 'taylorglo:P0,...,P7', got {spec!r}")
    spec = spec.strip()
    if spec in CROSS_ENTROPY_NAMES:
        return None
    inputs = check_inputs(inputs)
    named, rest = taylorglo_spec(spec, where)
    if named != DEFAULT_INPUTS and named != inputs:
        raise TaylorGLOError(
            f"{where}: a loss of {', '.join(named)} trains with training.loss_inputs = {list(named)} "
            f"(every loss of an experiment takes the same inputs; now {list(inputs)})"
        )
    try:
        values, _ = check_params([float(v) for v in rest.replace(" ", "").split(",") if v], None, inputs)
    except (ValueError, TaylorGLOError) as exc:
        raise TaylorGLOError(f"{where}: {exc}") from None
    return tuple(values)
