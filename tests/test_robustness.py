"""One-step FGSM (SPEC §6): hand-computed attacks on a linear model, and real trained networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from taylorglo.errors import TaylorGLOError
from taylorglo.loss import TaylorGLOLoss
from taylorglo.training import TrainConfig, evaluate, load_dataset, train
from taylorglo.training.augment import to_float
from taylorglo.training.fgsm import (
    DEFAULT_EPSILONS,
    Bounds,
    fgsm_accuracy,
    fgsm_perturb,
    fgsm_sweep,
    parse_epsilons,
)

#: The SPEC's sample TaylorGLO loss (code layout: Y, Y², Y³, XY, XY², X²Y, then c_x, c_y).
SPEC_P = [8.2896, 0.2415, 7.8726, 8.9666, 2.0184, 7.0513, -10.9408, 7.5216]
#: The exponents (i, j) of X**i * Y**j in that layout, written out by hand.
SPEC_TERMS = [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (2, 1)]

# A 3-class linear model on 2x2 one-channel "images" (flattened to 4 inputs), fixed weights.
W = np.array([[0.8, -0.5, 0.3, 1.1], [-0.7, 0.9, -1.2, 0.4], [0.2, 0.6, 0.9, -0.8]])
B = np.array([0.1, -0.2, 0.05])
# Pixels near 0 and near 1, so that some of the ±ε steps leave [0, 1] and must be clipped.
X = np.array([[0.02, 0.97, 0.5, 0.3], [0.95, 0.04, 0.6, 0.99], [0.4, 0.01, 0.98, 0.7]])
Y = np.array([0, 2, 1])
EPS = 0.1


def linear_model() -> nn.Module:
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor(W, dtype=torch.float32))
        model[1].bias.copy_(torch.tensor(B, dtype=torch.float32))
    return model


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(X, dtype=torch.float32).view(-1, 1, 2, 2), torch.tensor(Y)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def onehot(y: np.ndarray, n: int = 3) -> np.ndarray:
    return np.eye(n)[y]


def ce_loss(x: np.ndarray) -> float:
    p = softmax(x @ W.T + B)
    return float(-np.log(p[np.arange(len(Y)), Y]).mean())


def ce_grad(x: np.ndarray) -> np.ndarray:
    """dL/dx_i = Wᵀ (softmax(W x_i + b) − onehot_i) / B for the batch-mean cross-entropy."""
    return (softmax(x @ W.T + B) - onehot(Y)) @ W / len(Y)


def tg_loss(x: np.ndarray) -> float:
    lab, out = onehot(Y), softmax(x @ W.T + B)
    cx, cy = SPEC_P[-2], SPEC_P[-1]
    f = sum(p * (lab - cx) ** i * (out - cy) ** j for p, (i, j) in zip(SPEC_P, SPEC_TERMS))
    return float(-f.sum(axis=1).mean())


def tg_grad(x: np.ndarray) -> np.ndarray:
    """Chain rule: ∂L/∂y = −∂f/∂Y / B, through the softmax Jacobian, then through W."""
    lab, out = onehot(Y), softmax(x @ W.T + B)
    cx, cy = SPEC_P[-2], SPEC_P[-1]
    df_dY = sum(p * (lab - cx) ** i * j * (out - cy) ** (j - 1) for p, (i, j) in zip(SPEC_P, SPEC_TERMS))
    g = -df_dY / len(Y)
    dz = out * (g - (g * out).sum(axis=1, keepdims=True))
    return dz @ W


def finite_difference(loss, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    grad = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        grad[idx] = (loss(up) - loss(down)) / (2 * h)
    return grad


@pytest.mark.parametrize(
    "loss_fn, loss, grad",
    [(nn.CrossEntropyLoss(), ce_loss, ce_grad), (TaylorGLOLoss(SPEC_P), tg_loss, tg_grad)],
    ids=["cross-entropy", "taylorglo"],
)
def test_matches_a_hand_computed_attack_on_a_linear_model(loss_fn, loss, grad):
    expected_grad = grad(X)
    # The hand derivation is itself checked against finite differences of the hand loss ...
    np.testing.assert_allclose(expected_grad, finite_difference(loss, X), rtol=1e-5, atol=1e-8)
    # ... and every component is far from 0, so float32 cannot flip its sign.
    assert np.abs(expected_grad).min() > 1e-3
    unclipped = X + EPS * np.sign(expected_grad)
    expected = np.clip(unclipped, 0.0, 1.0)
    # The example does exercise the clip at both ends.
    assert (unclipped < 0).any() and (unclipped > 1).any()

    x, y = batch()
    out = fgsm_perturb(linear_model(), x, y, loss_fn, EPS)
    assert out.shape == x.shape and out.dtype == torch.float32 and not out.requires_grad
    np.testing.assert_allclose(out.view(len(Y), 4).numpy(), expected, rtol=0, atol=1e-6)
    assert out.min() == 0.0 and out.max() == 1.0


def test_custom_clip_range():
    x, y = batch()
    out = fgsm_perturb(linear_model(), x, y, nn.CrossEntropyLoss(), EPS, Bounds(clip=(0.1, 0.9)))
    expected = np.clip(X + EPS * np.sign(ce_grad(X)), 0.1, 0.9)
    np.testing.assert_allclose(out.view(len(Y), 4).numpy(), expected, rtol=0, atol=1e-6)


def test_uint8_input_is_attacked_as_pixels():
    x_u8 = torch.tensor([[[[5, 250], [128, 60]]], [[[255, 0], [30, 200]]]], dtype=torch.uint8)
    y = torch.tensor([1, 0])
    model, loss = linear_model(), nn.CrossEntropyLoss()
    out = fgsm_perturb(model, x_u8, y, loss, EPS)
    assert out.dtype == torch.float32
    assert torch.equal(out, fgsm_perturb(model, to_float(x_u8), y, loss, EPS))


def test_epsilon_zero_returns_the_input_unchanged():
    x, y = batch()
    x_before = x.clone()
    out = fgsm_perturb(linear_model(), x, y, nn.CrossEntropyLoss(), 0.0)
    assert torch.equal(out, x) and torch.equal(x, x_before)
    x_u8 = (x * 255).to(torch.uint8)
    assert torch.equal(fgsm_perturb(linear_model(), x_u8, y, nn.CrossEntropyLoss(), 0), to_float(x_u8))


def test_negative_epsilon_is_refused():
    x, y = batch()
    with pytest.raises(ValueError, match="epsilon"):
        fgsm_perturb(linear_model(), x, y, nn.CrossEntropyLoss(), -0.1)


def test_works_when_the_caller_disabled_gradients():
    x, y = batch()
    model, loss = linear_model(), nn.CrossEntropyLoss()
    expected = fgsm_perturb(model, x, y, loss, EPS)
    with torch.no_grad():
        assert torch.equal(fgsm_perturb(model, x, y, loss, EPS), expected)
    with torch.inference_mode():
        x_inf = x.clone()  # an inference tensor, as evaluation code would hand over
        assert torch.equal(fgsm_perturb(model, x_inf, y, loss, EPS), expected)
        assert fgsm_accuracy(model, x_inf, y, loss, EPS) == fgsm_accuracy(model, x, y, loss, EPS)


def dropout_bn_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3)
    )


def test_attacks_in_eval_mode_and_leaves_mode_and_grads_alone():
    x, y = batch()
    loss = nn.CrossEntropyLoss()
    model = dropout_bn_model()
    model(torch.rand(8, 1, 2, 2))  # give BatchNorm running statistics that differ from the batch's
    reference = fgsm_perturb(model.eval(), x, y, loss, EPS)

    model.train()
    model[2].eval()  # a mixed setting a caller may have chosen: it must survive too
    first = model[1]
    first.weight.grad = torch.full_like(first.weight, 0.5)
    stats = {k: v.clone() for k, v in model.state_dict().items()}

    for _ in range(3):  # dropout active would make these differ from the eval-mode reference
        assert torch.equal(fgsm_perturb(model, x, y, loss, EPS), reference)
    fgsm_accuracy(model, x, y, loss, EPS, batch_size=2)
    fgsm_sweep(model, x, y, loss, [0.0, EPS])

    assert [m.training for m in model] == [True, True, False, True, True, True]
    assert model.training
    assert torch.equal(first.weight.grad, torch.full_like(first.weight, 0.5))
    assert all(p.grad is None for name, p in model.named_parameters() if name != "1.weight")
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in stats.items())  # BN statistics not updated

    model.eval()
    fgsm_perturb(model, x, y, loss, EPS)
    assert not any(m.training for m in model.modules())


# --------------------------------------------------------------------------------------------
# Real networks trained on scikit-learn's digits
# --------------------------------------------------------------------------------------------

SWEEP = (0.0, 0.05, 0.1, 0.2, 0.3)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module", params=["cross-entropy", "taylorglo"])
def trained(request, digits):
    """(model, training loss): an MLP trained 400 steps with cross-entropy or the SPEC's loss."""
    loss, lr = (nn.CrossEntropyLoss(), 0.05) if request.param == "cross-entropy" else (TaylorGLOLoss(SPEC_P), 0.005)
    config = TrainConfig(
        dataset="digits", model="mlp", steps=400, lr=lr, batch_size=64, log_every=100, model_options={"hidden": 32}
    )
    result = train(config, loss, seed=0, data=digits, keep_model=True)
    assert result.ok and result.model is not None
    return result.model, loss


def test_epsilon_zero_gives_the_clean_accuracy(trained, digits):
    model, loss = trained
    clean, _ = evaluate(model, digits.test_x, digits.test_y, loss)
    assert clean >= 0.9
    assert fgsm_accuracy(model, digits.test_x, digits.test_y, loss, 0.0) == clean
    assert fgsm_sweep(model, digits.test_x, digits.test_y, loss, [0.0])[0.0] == clean


def test_perturbation_stays_within_epsilon_and_pixel_range(trained, digits):
    model, loss = trained
    x, y = digits.test_x[:100], digits.test_y[:100]
    out = fgsm_perturb(model, x, y, loss, 0.1)
    x = to_float(x)
    assert (out - x).abs().max() <= 0.1 + 1e-6
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert (out != x).float().mean() > 0.5  # most pixels do move


def test_accuracy_does_not_depend_on_the_batch_size(trained, digits):
    model, loss = trained
    a = fgsm_accuracy(model, digits.test_x, digits.test_y, loss, 0.1, batch_size=100)
    b = fgsm_accuracy(model, digits.test_x, digits.test_y, loss, 0.1, batch_size=37)
    assert a == b


def test_accuracy_falls_as_epsilon_grows(trained, digits):
    # Measured (seed 0): cross-entropy 0.96 → 0.84 → 0.51 → 0.04 → 0.003;
    # the SPEC loss 0.97 → 0.86 → 0.60 → 0.39 → 0.34.
    model, loss = trained
    sweep = fgsm_sweep(model, digits.test_x, digits.test_y, loss, SWEEP)
    assert list(sweep) == list(SWEEP)
    accs = list(sweep.values())
    assert all(later <= earlier + 0.01 for earlier, later in zip(accs, accs[1:])), sweep
    assert accs[-1] < accs[0] - 0.4, sweep


# --------------------------------------------------------------------------------------------
# parse_epsilons
# --------------------------------------------------------------------------------------------


def test_default_epsilons_are_the_spec_sweep():
    assert DEFAULT_EPSILONS == (0.05, 0.10, 0.15, 0.20, 0.25, 0.30)


def test_parse_epsilons_accepts_comma_separated_numbers():
    assert parse_epsilons("0.05,0.1") == [0.05, 0.1]
    assert parse_epsilons(" 0, 0.3 ,") == [0.0, 0.3]
    assert parse_epsilons("1e-1") == [0.1]


@pytest.mark.parametrize(
    "text, why",
    [
        ("abc", "'abc' is not a number"),
        ("0.1,x", "'x' is not a number"),
        ("0.1,-0.2", "'-0.2' is negative"),
        ("nan", "not a finite number"),
        ("inf", "not a finite number"),
        ("", "no epsilon given"),
        (" , ", "no epsilon given"),
        ("0.1\n0.2", "is not a number"),
    ],
)
def test_parse_epsilons_rejects_bad_input_in_one_line(text, why):
    for field in ("--eps", "robustness.epsilons"):
        with pytest.raises(TaylorGLOError) as info:
            parse_epsilons(text, field=field)
        message = str(info.value)
        assert message.startswith(f"{field}: ") and why in message
        assert "0.05,0.1" in message and "\n" not in message


# --------------------------------------------------------------------------------------------
# The reference's normalised-space attack (training.attack_space = "normalized")
# --------------------------------------------------------------------------------------------


def test_the_normalized_space_attack_is_the_references(trained, digits):
    """The reference stepped the normalised image by ε and clamped *it* to [0, 1]: written out
    here on the normalised input the network's first layer makes, and compared pixel for pixel
    (through that layer) with what bounds_of(data, "normalized") does in pixel space."""
    from taylorglo.training.fgsm import bounds_of

    model, loss = trained
    normalize, net = model[0], model[1]
    x, y = to_float(digits.test_x[:200]), digits.test_y[:200]
    xn = normalize(x).detach().requires_grad_(True)
    was = net.training
    (grad,) = torch.autograd.grad(loss(net.eval()(xn), y), xn)
    net.train(was)
    theirs = (xn.detach() + EPS * grad.sign()).clamp(0, 1)
    bounds = bounds_of(digits, "normalized")
    ours = fgsm_perturb(model, digits.test_x[:200], y, loss, EPS, bounds)
    assert torch.allclose(normalize(ours), theirs, atol=1e-5)
    assert bounds.unit == "normalised units"
    # The clamp alone moves most inputs (a normalised pixel below the mean is clamped up to 0),
    # so the two attacks differ; at ε = 0 both leave the input alone.
    assert (normalize(ours) - normalize(x)).abs().gt(EPS + 1e-4).float().mean() > 0.3
    assert fgsm_accuracy(model, digits.test_x, digits.test_y, loss, EPS, bounds=bounds) != fgsm_accuracy(
        model, digits.test_x, digits.test_y, loss, EPS
    )


def test_a_search_with_fgsm_fitness_attacks_in_the_configured_space(digits):
    from taylorglo.evaluators import FreshRun, Job, evaluate_job

    fitness = {}
    for space in ("pixels", "normalized"):
        training = TrainConfig(dataset="digits", model="mlp", steps=60, lr=0.05, batch_size=32, log_every=30,
                               eval_test=False, attack_space=space)  # fmt: skip
        result = evaluate_job(training, Job(0, 0, FreshRun(None), 0, fgsm_epsilon=0.1))
        assert result.status == "evaluated" and result.metrics["fgsm_epsilon"] == 0.1
        fitness[space] = result.fitness
    assert fitness["pixels"] != fitness["normalized"]
    with pytest.raises(TaylorGLOError, match=r"^attack_space: must be one of 'pixels', 'normalized'"):
        TrainConfig(attack_space="normalised").validate()
