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
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .errors import TaylorGLOError

# The torch-free part, re-exported: ``from taylorglo.loss import format_formula`` keeps working.
from .polynomial import (  # noqa: F401
    CROSS_ENTROPY,
    CROSS_ENTROPY_NAMES,
    DEFAULT_INPUTS,
    DEFAULT_ORDER,
    INPUTS,
    MAX_MAGNITUDE,
    SUPPORTED_ORDERS,
    _num,
    check_inputs,
    check_params,
    describe_loss,
    format_formula,
    from_paper_layout,
    loss_spec,
    num_params,
    order_for_length,
    split_spec,
    taylor_terms,
    taylorglo_spec,
    to_paper_layout,
)

REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
    return reduction


def _upcast(logits: torch.Tensor) -> torch.Tensor:
    """Half-precision logits in float32: a polynomial of probabilities near 0 and 1 loses its
    gradient in float16/bfloat16 (as ``torch.autocast`` does for cross-entropy)."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


Coefficient = float | torch.Tensor


def _horner(X: torch.Tensor, Y: torch.Tensor, by_power: Sequence[Sequence[tuple[Coefficient, int]]]) -> torch.Tensor:
    """``sum_k p_k X**i_k Y**j_k`` with ``by_power[j - 1]`` the ``(p_k, i_k)`` pairs of the terms in
    ``Y**j``: the coefficient of ``Y**j`` is a polynomial in ``X``, and Horner runs over ``j`` from
    the top power down. Coefficients are floats (one loss: the constant parts stay Python numbers,
    so order 3 costs a handful of elementwise ops) or tensors that broadcast (a population's, one
    row per member)."""
    acc: torch.Tensor | float = 0.0
    for pairs in reversed(by_power):
        coef_j: torch.Tensor | float = sum(c for c, i in pairs if i == 0)
        for c, i in pairs:
            if i:
                coef_j = coef_j + c * (X if i == 1 else X**i)
        acc = (acc + coef_j) * Y
    assert isinstance(acc, torch.Tensor)
    return acc


def classwise_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    per_example: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    reduction: str,
    ignore_index: int,
) -> torch.Tensor:
    """``nn.CrossEntropyLoss``'s calling convention around a loss of (softmax, one-hot) rows.

    ``logits`` are ``(B, C)`` or ``(B, C, d1, ...)`` (the class axis second, as for
    cross-entropy); ``target`` holds class indices of shape ``(B,)`` / ``(B, d1, ...)``, where
    ``ignore_index`` entries count for nothing (and not in the mean), or probabilities of the
    logits' shape (soft labels: every entry counts). ``per_example(x, y)`` maps ``(M, C)`` rows of
    labels, probabilities and logits to ``(M,)`` losses. Returns float32 for half-precision logits."""
    z = _upcast(logits)
    if z.dim() < 1:
        raise ValueError(f"logits must have a class axis: (B, C) or (B, C, d1, ...), got shape {tuple(z.shape)}")
    classes = z.shape[1] if z.dim() > 1 else z.shape[0]
    batch_shape = (z.shape[0], *z.shape[2:]) if z.dim() > 1 else ()
    rows = z.movedim(1, -1).reshape(-1, classes) if z.dim() > 2 else z.reshape(-1, classes)
    y = torch.softmax(rows, dim=1)  # subtracts the row maximum: huge logits give exact 0/1
    if target.is_floating_point():
        if target.shape != z.shape:
            raise ValueError(f"soft targets must have the logits' shape {tuple(z.shape)}, got {tuple(target.shape)}")
        t = target.movedim(1, -1) if z.dim() > 2 else target
        losses = per_example(t.reshape(-1, classes).to(y.dtype), y, rows)
        mask = None
    else:
        if tuple(target.shape) != batch_shape:
            raise ValueError(
                f"class-index targets must have shape {batch_shape} for logits {tuple(z.shape)}, "
                f"got {tuple(target.shape)}"
            )
        flat = target.reshape(-1)
        mask = flat != ignore_index
        x = torch.zeros_like(y).scatter_(1, torch.where(mask, flat, 0).unsqueeze(1), 1.0)
        losses = per_example(x, y, rows) * mask
    if reduction == "none":
        return losses.reshape(batch_shape)
    if reduction == "sum":
        return losses.sum()
    return losses.mean() if mask is None else losses.sum() / mask.sum()


class CrossEntropyLoss(nn.CrossEntropyLoss):
    """The cross-entropy baseline: :class:`torch.nn.CrossEntropyLoss` (every shape, mask and
    reduction of it) with half-precision logits computed in float32, as :class:`TaylorGLOLoss`
    computes them, so the two are compared on equal terms."""

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return super().forward(_upcast(input), target)


class TaylorGLOLoss(nn.Module):
    """TaylorGLO loss as a drop-in for :class:`torch.nn.CrossEntropyLoss`.

    ``forward(logits, target)`` takes what cross-entropy takes (:func:`classwise_loss`): raw
    logits ``(B, C)`` or ``(B, C, d1, ...)``, class-index targets (with ``ignore_index``) or soft
    labels of the logits' shape, and ``reduction`` ``"mean"`` / ``"sum"`` / ``"none"``; so a
    segmentation loop or a Hugging Face ``compute_loss_func`` uses a found loss unchanged.

    ``round_to`` reproduces the reference, which rendered parameters to 4 decimals before training.

    ``inputs`` adds to (label x, softmax y) the unscaled ``"logits"`` and the training progress
    ``"t"`` (the reference's ``inputVariables``): a loss with ``t`` changes over training, and the
    trainer tells it where it is with :meth:`set_progress` (0 until then).
    """

    def __init__(
        self,
        params: Sequence[float],
        order: int | None = None,
        round_to: int | None = None,
        reduction: str = "mean",
        ignore_index: int = -100,
        inputs: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.inputs = check_inputs(inputs)
        values, self.order = check_params(params, order, self.inputs)
        if round_to is not None:
            values = [round(v, round_to) for v in values]
        self.params = values
        self.reduction = _check_reduction(reduction)
        self.ignore_index = int(ignore_index)
        self.terms = taylor_terms(self.order, self.inputs)
        self.progress = 0.0
        m = len(self.inputs)
        self.centres = values[-m:]
        self.centre_x, self.centre_y = self.centres[0], self.centres[1]
        # Per power of Y (1..order), the (coefficient, power of X) pairs that multiply it: Horner in Y.
        by_power: dict[int, list[tuple[float, int]]] = {}
        if self.inputs == DEFAULT_INPUTS:
            for coef, (i, j) in zip(values[:-2], self.terms):
                by_power.setdefault(j, []).append((coef, i))
        self._by_power = [by_power.get(j, []) for j in range(1, self.order + 1)]

    @property
    def uses_progress(self) -> bool:
        """Whether the loss takes the training progress (and so needs :meth:`set_progress`)."""
        return "t" in self.inputs

    def set_progress(self, fraction: float) -> None:
        """The share of the full training schedule done, 0 to 1: the ``t`` of a loss that takes it."""
        self.progress = float(fraction)

    def per_class(self, x: torch.Tensor, y: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        """``f(x, y, ...)`` elementwise: the polynomial before the class sum and sign (``logits``
        only for a loss that takes them; ``t`` is :attr:`progress`)."""
        if self.inputs == DEFAULT_INPUTS:
            return _horner(x - self.centre_x, y - self.centre_y, self._by_power)
        values = {"x": x, "y": y, "logits": logits, "t": self.progress}
        if "logits" in self.inputs and logits is None:
            raise ValueError("per_class: this loss takes the logits; pass them")
        centred = [values[name] - c for name, c in zip(self.inputs, self.centres)]
        powers: dict[tuple[int, int], Any] = {}

        def power(k: int, e: int) -> Any:
            if (k, e) not in powers:
                powers[k, e] = centred[k] if e == 1 else power(k, e - 1) * centred[k]
            return powers[k, e]

        total: Any = 0.0
        for coef, exponents in zip(self.params, self.terms):
            term: Any = coef
            for k, e in enumerate(exponents):
                if e:
                    term = term * power(k, e)
            total = total + term
        return total

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return classwise_loss(logits, target, self._per_example, self.reduction, self.ignore_index)

    def _per_example(self, x: torch.Tensor, y: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return -self.per_class(x, y, logits).sum(dim=1)

    def extra_repr(self) -> str:
        more = "" if self.inputs == DEFAULT_INPUTS else f", inputs={list(self.inputs)}"
        return f"order={self.order}, params={self.params}{more}, reduction={self.reduction!r}"

    def __str__(self) -> str:
        return describe_loss(self.params, self.inputs)

    def spec(self) -> str:
        """The loss's text form (:func:`parse_loss` reads it back)."""
        return loss_spec(self.params, self.inputs)

    def to_json(self) -> str:
        """``{"kind": "taylorglo", "order": k, "layout": "code", "params": [...]}`` (and
        ``"inputs"`` for a loss of more than x and y)."""
        return json.dumps(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": "taylorglo", "order": self.order, "layout": "code", "params": list(self.params)}
        if self.inputs != DEFAULT_INPUTS:
            data["inputs"] = list(self.inputs)
        return data

    @classmethod
    def from_json(cls, text: str) -> TaylorGLOLoss:
        """Inverse of :meth:`to_json`; accepts ``"layout": "paper"`` too."""
        data = json.loads(text)
        if not isinstance(data, dict) or "params" not in data:
            raise ValueError('loss JSON: expected an object with "params"')
        inputs = check_inputs(data.get("inputs"), "loss JSON: inputs")
        params = data["params"]
        if data.get("layout", "code") == "paper":
            params = from_paper_layout(params, inputs)
        return cls(params, order=data.get("order"), inputs=inputs)


def population_loss(losses: Sequence[nn.Module]) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """One call for a population's losses, as a vectorized training needs it: ``(P, B, C)`` logits
    and ``(P, B)`` class targets in, each member's batch-mean loss ``(P,)`` out.

    TaylorGLO losses of one order are one polynomial with a coefficient row per member (a handful
    of elementwise ops for the whole population, however large); cross-entropy members are one
    ``cross_entropy`` call; any other mix falls back to one call per member.
    """
    losses = list(losses)
    if (
        losses
        and all(type(loss) is TaylorGLOLoss and loss.inputs == DEFAULT_INPUTS for loss in losses)
        and len({loss.order for loss in losses}) == 1  # type: ignore[union-attr]
    ):
        first = losses[0]
        assert isinstance(first, TaylorGLOLoss)
        table = torch.tensor([loss.params for loss in losses], dtype=torch.float64)  # type: ignore[union-attr]
        terms, powers = first.terms, range(1, first.order + 1)
        cast: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}  # the table per device and dtype, made once

        def taylorglo(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            z = _upcast(logits)
            coef = cast.get((z.device, z.dtype))
            if coef is None:
                coef = cast[z.device, z.dtype] = table.to(device=z.device, dtype=z.dtype).view(len(losses), -1, 1, 1)
            y = torch.softmax(z, dim=-1)
            x = torch.zeros_like(y).scatter_(-1, target.unsqueeze(-1), 1.0)
            by_power = [[(coef[:, k], i) for k, (i, j) in enumerate(terms) if j == power] for power in powers]
            return -_horner(x - coef[:, -2], y - coef[:, -1], by_power).sum(-1).mean(-1)

        return taylorglo
    if losses and all(isinstance(loss, nn.CrossEntropyLoss) for loss in losses):

        def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            z = _upcast(logits)
            flat = nn.functional.cross_entropy(z.reshape(-1, z.shape[-1]), target.reshape(-1), reduction="none")
            return flat.view(target.shape).mean(-1)

        return cross_entropy

    def each(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.stack([loss(z, t) for loss, z, t in zip(losses, logits, target)])

    return each


def parse_loss(
    spec: str, field: str = "loss", round_to: int | None = None, inputs: Sequence[str] | None = None
) -> nn.Module:
    """Build a loss from its text form, as the CLI and configs write it.

    ``"cross-entropy"`` (the baseline), ``"taylorglo:P0,P1,…"`` (code layout, any supported
    length; ``taylorglo[x,y,logits]:…`` names inputs beyond x and y, as does ``inputs``), or
    ``"taylorglo:path/to/loss.json"`` (a file written by :meth:`TaylorGLOLoss.to_json`).
    """
    spec = spec.strip()
    if spec in CROSS_ENTROPY_NAMES:
        return CrossEntropyLoss()
    named, rest = taylorglo_spec(spec, field)
    if named == DEFAULT_INPUTS and inputs is not None:
        named = check_inputs(inputs, f"{field} inputs")
    if rest.endswith(".json"):
        try:
            with open(rest, encoding="utf-8") as fh:
                loss = TaylorGLOLoss.from_json(fh.read())
        except (OSError, ValueError, TaylorGLOError) as exc:
            raise TaylorGLOError(f"{field}: cannot read loss file {rest!r}: {exc}") from None
        return TaylorGLOLoss(loss.params, round_to=round_to, inputs=loss.inputs) if round_to is not None else loss
    try:
        values = [float(v) for v in rest.replace(" ", "").split(",") if v]
        return TaylorGLOLoss(values, round_to=round_to, inputs=named)
    except ValueError as exc:
        raise TaylorGLOError(f"{field}: {exc}") from None
