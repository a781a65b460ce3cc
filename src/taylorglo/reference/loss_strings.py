"""The reference's ``lossFunction`` strings, read as TaylorGLO losses.

The reference wrote a loss as the Python expression its trainer evaluates per class, in
``loss_x`` (the one-hot label) and ``loss_y`` (the softmax output): ``loss_x*tf.log(loss_y)`` for
cross-entropy, a search's best loss rendered as ``tf.scalar_mul(8.2896,(loss_y-7.5216))+...``
(its Taylor form, 4 decimals), hand-expanded polynomials such as
``(-1.0*(0.1-1.0*loss_y+...+loss_x*(2.77648-8.0*loss_y+...)))``. The loss trained is
``mean(-sum over classes f)``, taylorglo's convention too, so ``f`` carries over as it is.

An expression is parsed (never evaluated by Python) and expanded exactly into the coefficients of
``x**i * y**j``: a polynomial of degree up to 6 is then a TaylorGLO loss with both centres at 0
(its ``y``-free terms carry no gradient and are dropped); ``x * log(y)`` is cross-entropy;
anything else is refused with the reason. Torch-free: ``init`` and ``convert`` read configs.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass

from ..polynomial import DEFAULT_ORDER, SUPPORTED_ORDERS, taylor_terms

#: The reference's names for the loss's inputs, and what taylorglo calls them.
VARIABLES = {"loss_x": "x", "loss_y": "y", "x": "x", "y": "y"}
#: Inputs the reference allowed beyond (x, y) (``inputVariables``), not yet in taylorglo.
OTHER_INPUTS = {"loss_t": "the training progress", "loss_logits": "the unscaled logits"}
#: Modules the expressions call functions of (``tf`` was bound to ``torch`` by the reference).
_MODULES = ("tf", "torch")

Poly = dict[tuple[int, int], float]


class NotALoss(ValueError):
    """The expression is not one taylorglo can train; the message says why."""


class _NotPolynomial(Exception):
    """Raised inside the expansion where the expression leaves the polynomials."""


@dataclass(frozen=True)
class ReadLoss:
    """What a ``lossFunction`` string is: cross-entropy (``params`` None) or a TaylorGLO loss."""

    params: tuple[float, ...] | None
    order: int | None = None
    #: Whether terms without ``y`` (no gradient) were dropped.
    dropped: bool = False
    #: A multiple of cross-entropy (``0.3*loss_x*tf.log(loss_y)``, an auxiliary head's): its factor.
    weight: float = 1.0

    @property
    def spec(self) -> str:
        from ..polynomial import loss_spec

        return loss_spec(None if self.params is None else list(self.params))


def read_loss(text: str, order: int | None = None) -> ReadLoss:
    """``text`` as a loss (see the module docstring); ``order`` forces the TaylorGLO order (a
    search's), else the smallest of 3 and up that holds it. Raises :class:`NotALoss`."""
    if not isinstance(text, str) or not text.strip():
        raise NotALoss("must be a non-empty expression such as loss_x*tf.log(loss_y)")
    if "===" in text:
        raise NotALoss("holds several losses separated by ===, one per network output: read them with read_losses")
    try:
        tree = ast.parse(text.strip().replace("^", "**"), mode="eval").body
    except SyntaxError as exc:
        raise NotALoss(f"is not an expression taylorglo can read ({exc.msg})") from None
    try:
        poly = _expand(tree)
    except _NotPolynomial:
        weight = _cross_entropy_weight(tree)
        if weight is not None:
            return ReadLoss(None, weight=weight)
        raise NotALoss(
            "is neither a polynomial in loss_x and loss_y nor cross-entropy (loss_x*tf.log(loss_y)); "
            "taylorglo trains those two families"
        ) from None
    return _as_taylorglo(poly, order)


def _as_taylorglo(poly: Poly, order: int | None) -> ReadLoss:
    scale = max((abs(c) for c in poly.values()), default=0.0)
    poly = {k: c for k, c in poly.items() if abs(c) > 1e-12 * max(scale, 1.0)}
    kept = {k: c for k, c in poly.items() if k[1] >= 1}
    if not kept:
        raise NotALoss("does not depend on loss_y, so it gives the network no gradient")
    degree = max(i + j for i, j in kept)
    if order is None:
        order = next((k for k in SUPPORTED_ORDERS if k >= max(degree, DEFAULT_ORDER)), None)
    if order is None or degree > order or order not in SUPPORTED_ORDERS:
        raise NotALoss(
            f"is a polynomial of degree {degree}; taylorglo's TaylorGLO losses have orders "
            f"{', '.join(map(str, SUPPORTED_ORDERS))}"
            + ("" if order is None or degree <= order else f" and this one must fit order {order}")
        )
    params = [kept.get(term, 0.0) for term in taylor_terms(order)] + [0.0, 0.0]
    return ReadLoss(tuple(params), order, dropped=len(kept) < len(poly))


def _expand(node: ast.AST) -> Poly:
    """``node`` as the exact coefficients of a polynomial in (x, y); :class:`_NotPolynomial` where
    it is not one; :class:`NotALoss` for a name or function taylorglo does not know."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return {(0, 0): float(node.value)} if node.value else {}
    if isinstance(node, ast.Name):
        if node.id in VARIABLES:
            return {(1, 0): 1.0} if VARIABLES[node.id] == "x" else {(0, 1): 1.0}
        if node.id in OTHER_INPUTS:
            raise NotALoss(f"uses {node.id} ({OTHER_INPUTS[node.id]}); taylorglo's losses take loss_x and loss_y only")
        raise NotALoss(f"uses the unknown name {node.id!r}; the inputs are loss_x and loss_y")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _expand(node.operand)
        return {k: -c for k, c in inner.items()} if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Pow):
            return _power(_expand(node.left), _exponent(node.right))
        left, right = _expand(node.left), _expand(node.right)
        if isinstance(node.op, ast.Add):
            return _add(left, right)
        if isinstance(node.op, ast.Sub):
            return _add(left, {k: -c for k, c in right.items()})
        if isinstance(node.op, ast.Mult):
            return _mul(left, right)
        if isinstance(node.op, ast.Div):
            if set(right) - {(0, 0)} or not right.get((0, 0)):
                raise _NotPolynomial
            return {k: c / right[(0, 0)] for k, c in left.items()}
        raise NotALoss(f"uses the operator {type(node.op).__name__}, which taylorglo does not read")
    if isinstance(node, ast.Call) and not node.keywords:
        name = _function(node.func)
        args = node.args
        if name == "scalar_mul" and len(args) == 2:
            return _mul(_expand(args[0]), _expand(args[1]))
        if name == "pow" and len(args) == 2:
            return _power(_expand(args[0]), _exponent(args[1]))
        if name == "square" and len(args) == 1:
            return _power(_expand(args[0]), 2)
        if name in ("log", "abs", "exp", "sqrt", "sigmoid", "tanh", "reciprocal", "softplus"):
            for arg in args:
                _expand(arg)  # an unknown name inside is still reported as such
            raise _NotPolynomial
        raise NotALoss(f"calls {name}(), which taylorglo does not read")
    raise NotALoss(f"holds {type(node).__name__} syntax, which taylorglo does not read")


def _function(func: ast.AST) -> str:
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in _MODULES:
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ast.unparse(func)


def _exponent(node: ast.AST) -> int:
    """A power's exponent: a whole number from 0 to 12, else the expression is not a polynomial."""
    value = _expand(node)
    if set(value) - {(0, 0)}:
        raise _NotPolynomial
    power = value.get((0, 0), 0.0)
    if power != int(power) or not 0 <= power <= 12:
        raise _NotPolynomial
    return int(power)


def _add(a: Poly, b: Poly) -> Poly:
    out = dict(a)
    for k, c in b.items():
        out[k] = out.get(k, 0.0) + c
    return out


def _mul(a: Poly, b: Poly) -> Poly:
    out: Poly = {}
    for (i1, j1), c1 in a.items():
        for (i2, j2), c2 in b.items():
            key = (i1 + i2, j1 + j2)
            out[key] = out.get(key, 0.0) + c1 * c2
    return out


def _power(a: Poly, n: int) -> Poly:
    out: Poly = {(0, 0): 1.0}
    for _ in range(n):
        out = _mul(out, a)
    return out


def _cross_entropy_weight(tree: ast.AST) -> float | None:
    """``w`` where the expression is ``w · x · log(y)`` with ``w > 0`` (1: cross-entropy), by its
    value at points of (0, 1]²; None where it is not."""
    points = [(x, y) for x in (0.0, 0.3, 1.0) for y in (0.05, 0.4, 0.9)]
    try:
        weight = _value(tree, 1.0, 0.5) / math.log(0.5)
        same = all(
            math.isclose(_value(tree, x, y), weight * x * math.log(y), rel_tol=1e-9, abs_tol=1e-12) for x, y in points
        )
    except (ValueError, ZeroDivisionError, OverflowError, NotALoss):
        return None
    return weight if same and weight > 0 else None


def read_losses(text: str, order: int | None = None) -> list[ReadLoss]:
    """A ``lossFunction`` of several losses, one per network output, separated by ``===`` (the
    class logits' first, then each auxiliary head's), each as :func:`read_loss` reads it."""
    if not isinstance(text, str):
        raise NotALoss("must be a non-empty expression such as loss_x*tf.log(loss_y)")
    parts = text.split("===")
    if len(parts) == 1:
        return [read_loss(text, order)]
    out = []
    for i, part in enumerate(parts):
        try:
            out.append(read_loss(part, order))
        except NotALoss as exc:
            raise NotALoss(f"loss {i + 1} of {len(parts)} {exc}") from None
    return out


def _value(node: ast.AST, x: float, y: float) -> float:
    """The expression's value at (x, y) (names and calls as :func:`_expand` allows, plus log)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.Name) and node.id in VARIABLES:
        return x if VARIABLES[node.id] == "x" else y
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _value(node.operand, x, y)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        a, b = _value(node.left, x, y), _value(node.right, x, y)
        ops = {ast.Add: a + b, ast.Sub: a - b, ast.Mult: a * b}
        if type(node.op) in ops:
            return ops[type(node.op)]
        if isinstance(node.op, ast.Div):
            return a / b
        if isinstance(node.op, ast.Pow):
            return float(a**b)
    if isinstance(node, ast.Call) and not node.keywords:
        name, args = _function(node.func), [_value(a, x, y) for a in node.args]
        if name == "log" and len(args) == 1:
            return math.log(args[0])
        if name == "scalar_mul" and len(args) == 2:
            return args[0] * args[1]
        if name == "pow" and len(args) == 2:
            return float(args[0] ** args[1])
    raise NotALoss("not readable")
