"""The TaylorGLO loss (SPEC §1) against hand computations and finite differences."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from taylorglo import TaylorGLOLoss, from_paper_layout, num_params, to_paper_layout
from taylorglo.errors import TaylorGLOError
from taylorglo.loss import loss_spec, parse_loss, taylor_terms

OLD_LOSS = [8.2896, 0.2415, 7.8726, 8.9666, 2.0184, 7.0513, -10.9408, 7.5216]


def reference_row(p, row, t):
    """SPEC §1 written out literally in plain Python for one example, order 3, no torch."""
    m = max(row)
    exps = [math.exp(v - m) for v in row]
    z = sum(exps)
    s = 0.0
    for c, e in enumerate(exps):
        x, y = (1.0 if c == t else 0.0), e / z
        X, Y = x - p[6], y - p[7]
        s += p[0] * Y + p[1] * Y**2 + p[2] * Y**3 + p[3] * X * Y + p[4] * X * Y**2 + p[5] * X**2 * Y
    return -s


def reference_loss(params, logits, targets):
    """The batch mean of :func:`reference_row`."""
    return sum(reference_row(params, row, t) for row, t in zip(logits, targets)) / len(targets)


def test_simplest_case_by_hand():
    # Two classes, equal logits: y = (0.5, 0.5). With f = Y = y, the class sum is 1, so loss = -1.
    loss = TaylorGLOLoss([1, 0, 0, 0, 0, 0, 0, 0])
    assert loss(torch.zeros(1, 2), torch.tensor([0])).item() == pytest.approx(-1.0)
    # f = X*Y with centres 0: only the target contributes x*y = 0.5 → loss -0.5.
    loss = TaylorGLOLoss([0, 0, 0, 1, 0, 0, 0, 0])
    assert loss(torch.zeros(1, 2), torch.tensor([1])).item() == pytest.approx(-0.5)


def test_matches_plain_python_formula():
    torch.manual_seed(0)
    logits = torch.randn(5, 4, dtype=torch.float64) * 3
    targets = torch.tensor([0, 3, 1, 1, 2])
    for params in (OLD_LOSS, [0.3, -1.2, 0.7, 2.0, -0.5, 1.1, 0.2, -0.4]):
        got = TaylorGLOLoss(params)(logits, targets).item()
        want = reference_loss(params, logits.tolist(), targets.tolist())
        assert got == pytest.approx(want, rel=1e-10)


def test_gradient_matches_finite_differences():
    torch.manual_seed(1)
    logits = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([4, 0, 2])
    loss = TaylorGLOLoss([0.5, -0.3, 1.2, 0.8, -1.1, 0.4, 0.1, 0.25])
    assert torch.autograd.gradcheck(lambda z: loss(z, targets), (logits,), eps=1e-6, atol=1e-7)


def test_stable_for_huge_logits():
    logits = torch.tensor([[1e4, -1e4, 0.0], [3e38, 0.0, -3e38]], requires_grad=True)
    value = TaylorGLOLoss(OLD_LOSS)(logits, torch.tensor([0, 1]))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()


def test_drop_in_for_cross_entropy_any_class_count():
    for n in (2, 3, 10, 100):
        model = nn.Linear(7, n)
        x, y = torch.randn(16, 7), torch.randint(0, n, (16,))
        loss = TaylorGLOLoss(OLD_LOSS)(model(x), y)
        loss.backward()
        assert loss.dim() == 0 and model.weight.grad is not None


def test_soft_labels_equal_integer_targets_when_one_hot():
    logits, t = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    loss = TaylorGLOLoss(OLD_LOSS)
    soft = torch.nn.functional.one_hot(t, 4).float()
    assert loss(logits, soft).item() == pytest.approx(loss(logits, t).item(), rel=1e-6)


@pytest.mark.parametrize("order,length", [(2, 5), (3, 8), (4, 12), (6, 23), (9, 47)])
def test_orders_and_lengths(order, length):
    assert num_params(order) == length
    params = [0.1 * (k + 1) for k in range(length)]
    loss = TaylorGLOLoss(params)
    assert loss.order == order
    logits, t = torch.randn(4, 3, dtype=torch.float64), torch.tensor([0, 2, 1, 1])
    y = torch.softmax(logits, 1)
    x = torch.nn.functional.one_hot(t, 3).double()
    X, Y = x - params[-2], y - params[-1]
    f = sum(c * X**i * Y**j for c, (i, j) in zip(params[:-2], taylor_terms(order)))
    assert loss(logits, t).item() == pytest.approx((-f.sum(1).mean()).item(), rel=1e-10)


def test_order3_term_layout_is_the_references():
    assert taylor_terms(3) == ((0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (2, 1))


def test_wrong_length_is_value_error():
    with pytest.raises(ValueError, match="params"):
        TaylorGLOLoss([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="order-3"):
        TaylorGLOLoss([1.0] * 5, order=3)


def test_paper_layout_conversion():
    theta = to_paper_layout(OLD_LOSS)
    # SPEC §1: θ0=p6, θ1=p7, θ2=p0, θ3=2p1, θ4=6p2, θ5=p3, θ6=2p4, θ7=2p5.
    p = OLD_LOSS
    assert theta == pytest.approx([p[6], p[7], p[0], 2 * p[1], 6 * p[2], p[3], 2 * p[4], 2 * p[5]])
    assert from_paper_layout(theta) == pytest.approx(OLD_LOSS)


def test_str_shows_both_layouts():
    text = str(TaylorGLOLoss(OLD_LOSS))
    assert "code layout" in text and "paper layout" in text
    assert "8.2896" in text and "47.2356" in text  # p0 and θ4 = 6·p2
    assert "θ7" in text and "(y − 7.5216)" in text


def test_json_round_trip():
    loss = TaylorGLOLoss(OLD_LOSS)
    again = TaylorGLOLoss.from_json(loss.to_json())
    assert again.params == loss.params and again.order == 3
    paper = json.dumps({"layout": "paper", "params": to_paper_layout(OLD_LOSS)})
    assert TaylorGLOLoss.from_json(paper).params == pytest.approx(OLD_LOSS)


def test_rounding_like_the_reference():
    assert TaylorGLOLoss([0.123456] * 8, round_to=4).params == [0.1235] * 8


def test_parse_loss_specs(tmp_path):
    assert isinstance(parse_loss("cross-entropy"), nn.CrossEntropyLoss)
    assert parse_loss(loss_spec(OLD_LOSS)).params == OLD_LOSS
    path = tmp_path / "loss.json"
    path.write_text(TaylorGLOLoss(OLD_LOSS).to_json())
    assert parse_loss(f"taylorglo:{path}").params == OLD_LOSS
    with pytest.raises(TaylorGLOError, match="^--loss: "):
        parse_loss("taylorglo:1,2", field="--loss")
    with pytest.raises(TaylorGLOError, match="expected 'cross-entropy'"):
        parse_loss("hinge")


# --- the drop-in contract: nn.CrossEntropyLoss's shapes, mask and reductions ---------------------


def _ce_rows(x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Cross-entropy as a loss of (label, probability, logit) rows: plugged into classwise_loss, it
    must be nn.CrossEntropyLoss exactly, which checks the wrapper's shape, mask and reduction logic
    and that the logit rows are the probabilities' own."""
    assert torch.allclose(torch.softmax(z, dim=1), y, atol=1e-12)
    return -(x * torch.log_softmax(z, dim=1)).sum(dim=1)


SHAPES = [(6, 4), (3, 5, 7), (2, 3, 4, 5)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_wrapper_with_cross_entropy_rows_is_cross_entropy(shape, reduction):
    from taylorglo.loss import classwise_loss

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(shape, generator=g, dtype=torch.float64)
    target = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
    target.view(-1)[::3] = -100  # masked entries, as a padded sequence or a segmentation void
    ours = classwise_loss(logits, target, _ce_rows, reduction, -100)
    theirs = nn.CrossEntropyLoss(reduction=reduction)(logits, target)
    assert ours.shape == theirs.shape
    assert torch.allclose(ours, theirs, atol=1e-12)
    soft = torch.softmax(torch.randn(shape, generator=g, dtype=torch.float64), dim=1)
    ours = classwise_loss(logits, soft, _ce_rows, reduction, -100)
    theirs = nn.CrossEntropyLoss(reduction=reduction)(logits, soft)
    assert ours.shape == theirs.shape and torch.allclose(ours, theirs, atol=1e-12)


def _by_hand(params, logits, target, ignore_index):
    """Per-position :func:`reference_row` losses (None where ignored), class axis second."""
    rows = logits.movedim(1, -1).reshape(-1, logits.shape[1]) if logits.dim() > 2 else logits
    return [
        None if t == ignore_index else reference_row(params, row, t)
        for row, t in zip(rows.tolist(), target.reshape(-1).tolist())
    ]


@pytest.mark.parametrize("shape", SHAPES)
def test_taylorglo_shapes_mask_and_reductions_by_hand(shape):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(shape, generator=g, dtype=torch.float64)
    target = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
    target.view(-1)[1::4] = 7  # a custom ignore_index, out of the class range
    hand = _by_hand(OLD_LOSS, logits, target, ignore_index=7)
    kept = [v for v in hand if v is not None]
    none = TaylorGLOLoss(OLD_LOSS, reduction="none", ignore_index=7)(logits, target)
    assert none.shape == target.shape
    assert none.reshape(-1).tolist() == pytest.approx([0.0 if v is None else v for v in hand], rel=1e-12)
    total = TaylorGLOLoss(OLD_LOSS, reduction="sum", ignore_index=7)(logits, target)
    mean = TaylorGLOLoss(OLD_LOSS, ignore_index=7)(logits, target)
    assert float(total) == pytest.approx(sum(kept), rel=1e-12)
    assert float(mean) == pytest.approx(sum(kept) / len(kept), rel=1e-12)


def test_half_precision_logits_are_computed_in_float32():
    from taylorglo.loss import CrossEntropyLoss

    logits = torch.randn(8, 5, generator=torch.Generator().manual_seed(2))
    target = torch.randint(0, 5, (8,), generator=torch.Generator().manual_seed(3))
    for dtype in (torch.float16, torch.bfloat16):
        low = logits.to(dtype).requires_grad_()
        for loss in (TaylorGLOLoss(OLD_LOSS), CrossEntropyLoss()):
            value = loss(low, target)
            assert value.dtype == torch.float32
            assert float(value.detach()) == pytest.approx(float(loss(low.detach().float(), target)), abs=1e-6)
            value.backward()
            assert low.grad is not None and low.grad.dtype == dtype
            low.grad = None


def test_drop_in_refuses_what_cross_entropy_refuses():
    loss = TaylorGLOLoss(OLD_LOSS)
    with pytest.raises(ValueError, match="shape"):
        loss(torch.randn(4, 3), torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        loss(torch.randn(4, 3), torch.rand(4, 2))
    with pytest.raises(ValueError, match="reduction"):
        TaylorGLOLoss(OLD_LOSS, reduction="avg")


def test_parsed_cross_entropy_is_the_drop_in_baseline():
    from taylorglo.loss import CrossEntropyLoss

    assert isinstance(parse_loss("cross-entropy"), CrossEntropyLoss)
