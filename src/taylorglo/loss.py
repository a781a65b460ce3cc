"""The TaylorGLO loss: a bivariate Taylor polynomial in (label x, prediction y).

SPEC §1. For every class of every example, with ``x`` the one-hot label and ``y`` the softmax output,

    X = x - c_x        Y = y - c_y
    f(x, y) = sum_k p_k * X**i_k * Y**j_k         (terms with j_k >= 1 only)
    loss    = mean over the batch of ( - sum over classes f )

The terms with no ``y`` (1, x, x², …) are dropped because they carry no gradient to the network.
Parameters are stored in the *code layout* of the reference implementation: the term coefficients
first, in the order produced by :func:`taylor_terms`, then the two expansion centres ``c_x``, ``c_y``.
For order 3 that is ``p0·Y + p1·Y² + p2·Y³ + p3·XY + p4·XY² + p5·X²Y``, centres ``p6, p7``.

The paper writes the same family with Taylor factorials, ``θ = [c_x, c_y, i!·j!·p_k …]``;
:func:`to_paper_layout` / :func:`from_paper_layout` convert, and ``str(loss)`` shows both so a
formula can be compared with the papers without hand conversion. Search and storage always use the
code layout.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .errors import TaylorGLOError

DEFAULT_ORDER = 3
#: Orders a loss may have: 2 (5 parameters), 3 (8, the default), 4 (12), and higher for ablations.
#: Order 1 is left out: a loss linear in y has a constant gradient and cannot be tuned by training.
SUPPORTED_ORDERS = (2, 3, 4, 5, 6)
#: The largest size a search's σ₀ or initial mean entry may have: beyond it, sampled parameters'
#: cubes overflow float64 and no candidate could even be checked.
MAX_MAGNITUDE = 1e100


@lru_cache(maxsize=None)
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
        raise ValueError(
            f"params: an order-{order} TaylorGLO loss takes {num_params(order)} values, got {len(values)}"
        )
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


def _centre(c: float) -> str:
    return f" − {_num(c)}" if c >= 0 else f" + {_num(-c)}"


def _num(v: float) -> str:
    """Four decimals, the precision the reference trained with, without trailing zeros."""
    return f"{round(v, 4):g}" if abs(v) < 1e6 else f"{v:.4g}"


class TaylorGLOLoss(nn.Module):
    """TaylorGLO loss as a drop-in for :class:`torch.nn.CrossEntropyLoss`.

    ``forward(logits, target)`` takes raw logits ``(B, n)`` and integer class targets ``(B,)`` (or a
    ``(B, n)`` float tensor of soft labels, used for mixed-label augmentation), and returns the
    scalar loss. The softmax is taken as ``exp(log_softmax)`` so huge logits stay finite.

    ``round_to`` reproduces the reference, which rendered parameters to 4 decimals before training.
    """

    def __init__(self, params: Sequence[float], order: int | None = None, round_to: int | None = None) -> None:
        super().__init__()
        values, self.order = check_params(params, order)
        if round_to is not None:
            values = [round(v, round_to) for v in values]
        self.params = values
        self.terms = taylor_terms(self.order)
        # Per power of Y (1..order), the (coefficient, power of X) pairs that multiply it: Horner in Y.
        by_power: dict[int, list[tuple[float, int]]] = {}
        for coef, (i, j) in zip(values[:-2], self.terms):
            by_power.setdefault(j, []).append((coef, i))
        self._by_power = [by_power.get(j, []) for j in range(1, self.order + 1)]
        self.centre_x, self.centre_y = values[-2], values[-1]

    def per_class(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``f(x, y)`` elementwise: the polynomial before the class sum and sign."""
        X = x - self.centre_x
        Y = y - self.centre_y
        # The coefficient of Y**j is a polynomial in X; Horner over j from the top power down.
        # Constant parts stay Python floats so order 3 costs a handful of elementwise ops.
        acc: torch.Tensor | float = 0.0
        for pairs in reversed(self._by_power):
            coef_j: torch.Tensor | float = sum(c for c, i in pairs if i == 0)
            for c, i in pairs:
                if i:
                    coef_j = coef_j + c * (X if i == 1 else X**i)
            acc = (acc + coef_j) * Y
        assert isinstance(acc, torch.Tensor)
        return acc

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # softmax subtracts the row maximum, so very large logits give exact 0/1, never inf/NaN.
        y = torch.softmax(logits, dim=1)
        if target.dim() == 1:
            x = F.one_hot(target, num_classes=logits.shape[1]).to(y.dtype)
        else:
            x = target.to(y.dtype)
        return -self.per_class(x, y).sum(dim=1).mean()

    def extra_repr(self) -> str:
        return f"order={self.order}, params={self.params}"

    def __str__(self) -> str:
        return (
            f"TaylorGLO loss (order {self.order})\n"
            f"  code layout  p = {[round(v, 4) for v in self.params]}\n"
            f"    {format_formula(self.params, 'code')}\n"
            f"  paper layout θ = {[round(v, 4) for v in to_paper_layout(self.params)]}\n"
            f"    {format_formula(self.params, 'paper')}"
        )

    def to_json(self) -> str:
        """``{"kind": "taylorglo", "order": k, "layout": "code", "params": [...]}``."""
        return json.dumps(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "taylorglo", "order": self.order, "layout": "code", "params": list(self.params)}

    @classmethod
    def from_json(cls, text: str) -> "TaylorGLOLoss":
        """Inverse of :meth:`to_json`; accepts ``"layout": "paper"`` too."""
        data = json.loads(text)
        if not isinstance(data, dict) or "params" not in data:
            raise ValueError('loss JSON: expected an object with "params"')
        params = data["params"]
        if data.get("layout", "code") == "paper":
            params = from_paper_layout(params)
        return cls(params, order=data.get("order"))


CROSS_ENTROPY = "cross-entropy"


def parse_loss(spec: str, field: str = "loss", round_to: int | None = None) -> nn.Module:
    """Build a loss from its text form, as the CLI and configs write it.

    ``"cross-entropy"`` (the baseline), ``"taylorglo:P0,P1,…"`` (code layout, any supported
    length), or ``"taylorglo:path/to/loss.json"`` (a file written by :meth:`TaylorGLOLoss.to_json`).
    """
    spec = spec.strip()
    if spec in (CROSS_ENTROPY, "ce", "crossentropy"):
        return nn.CrossEntropyLoss()
    kind, sep, rest = spec.partition(":")
    if kind != "taylorglo" or not sep:
        raise TaylorGLOError(f"{field}: expected 'cross-entropy' or 'taylorglo:P0,...,P7', got {spec!r}")
    if rest.endswith(".json"):
        try:
            with open(rest, encoding="utf-8") as fh:
                loss = TaylorGLOLoss.from_json(fh.read())
        except (OSError, ValueError) as exc:
            raise TaylorGLOError(f"{field}: cannot read loss file {rest!r}: {exc}") from None
        return TaylorGLOLoss(loss.params, round_to=round_to) if round_to is not None else loss
    try:
        values = [float(v) for v in rest.replace(" ", "").split(",") if v]
        return TaylorGLOLoss(values, round_to=round_to)
    except ValueError as exc:
        raise TaylorGLOError(f"{field}: {exc}") from None


def loss_spec(params: Sequence[float] | None) -> str:
    """The text form of a loss (inverse of :func:`parse_loss`); ``None`` means cross-entropy."""
    if params is None:
        return CROSS_ENTROPY
    return "taylorglo:" + ",".join(repr(float(v)) for v in params)
