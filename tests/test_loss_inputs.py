"""Losses of more inputs than (label, softmax output): the unscaled logits and the training
progress (``training.loss_inputs``, the reference's ``inputVariables``) — the polynomial, its
text forms, the invariant, the trainer feeding the progress, and a search, a final and a
one-shot run with them."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch

from experiments import SMALL, cli, merged, write_config
from taylorglo.errors import TaylorGLOError
from taylorglo.experiment import ExperimentConfig, init_experiment, start
from taylorglo.invariant import invariant_holds, invariant_margins, slope
from taylorglo.loss import TaylorGLOLoss, parse_loss
from taylorglo.polynomial import format_formula, loss_spec, num_params, taylor_terms
from taylorglo.training import TrainConfig, train

ALL = ("x", "y", "logits", "t")


def hand_terms(order: int, inputs: tuple[str, ...]) -> list[tuple[int, ...]]:
    """Every exponent tuple of degree 1..order with a power on y or logits, lexicographic."""
    moving = [k for k, name in enumerate(inputs) if name in ("y", "logits")]
    grid = itertools.product(range(order + 1), repeat=len(inputs))
    return sorted(e for e in grid if 1 <= sum(e) <= order and any(e[k] for k in moving))


def test_terms_keep_the_two_input_layout_and_extend_it():
    for order in range(2, 10):  # the reference's (x, y) layout, unchanged
        assert list(taylor_terms(order)) == [(i, j) for i in range(order) for j in range(1, order - i + 1)]
    for inputs in [("x", "y", "logits"), ("x", "y", "t"), ALL]:
        for order in (2, 3, 4):
            assert list(taylor_terms(order, inputs)) == hand_terms(order, inputs)
    assert num_params(3, ("x", "y", "logits")) == 16 + 3  # 19 monomials of degree 1..3, less x, x², x³
    assert num_params(3, ("x", "y", "t")) == 10 + 3  # t alone carries no gradient either


def hand_loss(params, inputs, order, z: np.ndarray, target: np.ndarray, t: float) -> float:
    """−mean Σ_classes f, the polynomial written out term by term in numpy."""
    y = np.exp(z - z.max(1, keepdims=True))
    y /= y.sum(1, keepdims=True)
    x = np.eye(z.shape[1])[target]
    values = {"x": x, "y": y, "logits": z, "t": np.full_like(z, t)}
    m = len(inputs)
    centred = [values[name] - c for name, c in zip(inputs, params[-m:])]
    f = np.zeros_like(z)
    for coef, e in zip(params[:-m], hand_terms(order, inputs)):
        f += coef * np.prod([v**k for v, k in zip(centred, e)], axis=0)
    return float(-f.sum(1).mean())


@pytest.mark.parametrize("inputs", [("x", "y", "logits"), ("x", "y", "t"), ALL])
def test_the_loss_is_the_polynomial_of_its_inputs(inputs):
    rng = np.random.RandomState(0)
    params = list(rng.uniform(-1, 1, num_params(3, inputs)))
    loss = TaylorGLOLoss(params, inputs=list(reversed(inputs)))  # any order given: the canonical one used
    assert loss.inputs == inputs and loss.order == 3
    z, target = rng.randn(7, 5), rng.randint(0, 5, 7)
    loss.set_progress(0.3)
    ours = loss(torch.tensor(z), torch.tensor(target)).item()
    assert ours == pytest.approx(hand_loss(params, inputs, 3, z, target, 0.3 if "t" in inputs else 0.0), rel=1e-10)
    if "t" in inputs:  # a loss of the progress changes with it
        loss.set_progress(0.9)
        assert loss(torch.tensor(z), torch.tensor(target)).item() != pytest.approx(ours)


def test_text_forms_name_the_inputs_and_read_back():
    params = [0.5] * num_params(2, ("x", "y", "logits"))
    spec = loss_spec(params, ("x", "y", "logits"))
    assert spec.startswith("taylorglo[x,y,logits]:")
    loss = parse_loss(spec)
    assert loss.inputs == ("x", "y", "logits") and loss.params == params and loss.spec() == spec
    again = TaylorGLOLoss.from_json(loss.to_json())
    assert again.inputs == loss.inputs and again.params == params
    assert format_formula(params, "code", ("x", "y", "logits")).startswith("f(x,y,logits) = ")
    assert "(logits − 0.5)" in str(loss)
    assert parse_loss(loss_spec([0.1] * 8)).inputs == ("x", "y")  # the default form is unchanged
    with pytest.raises(TaylorGLOError, match=r"^--loss: must list x and y and may add logits"):
        parse_loss("taylorglo[x,z]:1,2", field="--loss")
    with pytest.raises(TaylorGLOError, match=r"^training.loss_inputs: must list x and y"):
        TrainConfig(loss_inputs=["y", "residuals"]).validate("training.")


@pytest.mark.parametrize("n", [2, 5, 10])
def test_the_invariant_of_a_logit_loss_is_its_first_update(n):
    """With the logits as an input, the check is the first update itself: the target logit's
    gain over a non-target one at uniform logits, measured here with autograd."""
    rng = np.random.RandomState(n)
    inputs = ("x", "y", "logits", "t")
    for _ in range(20):
        params = list(rng.normal(0, 1.2, num_params(3, inputs)))
        z = torch.zeros(1, n, dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(TaylorGLOLoss(params, inputs=inputs)(z, torch.tensor([0])), z)
        gain = float(-(grad[0, 0] - grad[0, 1]))  # gradient descent lifts z_target by lr·gain over z_1
        left, right = invariant_margins(params, n, inputs)
        assert left - right == pytest.approx(gain, rel=1e-9, abs=1e-12)
        for rule in ("reference", "gradient"):
            assert invariant_holds(params, n, rule, inputs) == (gain > 0)


def test_a_progress_loss_is_checked_at_the_start_of_training():
    """t = 0 where training starts: the slopes are those of the polynomial at t = 0."""
    inputs = ("x", "y", "t")
    params = list(np.random.RandomState(1).uniform(-2, 2, num_params(3, inputs)))
    loss = TaylorGLOLoss(params, inputs=inputs)
    for x in (0.0, 1.0):
        y = torch.tensor([0.1], dtype=torch.float64, requires_grad=True)
        (dy,) = torch.autograd.grad(loss.per_class(torch.full_like(y, x), y).sum(), y)
        assert slope(params, x, 0.1, inputs) == pytest.approx(float(dy), rel=1e-10)
    g1, g0 = slope(params, 1.0, 0.1, inputs), slope(params, 0.0, 0.1, inputs)
    assert invariant_holds(params, 10, "reference", inputs) == (g1 - g0 >= 8 * g0)


def test_the_trainer_tells_the_loss_where_in_the_full_schedule_it_is():
    inputs = ("x", "y", "t")
    loss = TaylorGLOLoss([0.0] * (num_params(2, inputs) - 3) + [0.0, 0.0, 0.0], inputs=inputs)
    seen: list[float] = []
    loss.set_progress = seen.append  # type: ignore[method-assign]
    loss.uses_progress  # noqa: B018 - a property: the trainer asks it
    config = TrainConfig(dataset="digits", model="mlp", steps=40, partial_fraction=0.5, batch_size=16,
                         log_every=10, eval_test=False)  # fmt: skip
    train(config, loss, seed=0)
    assert seen == [step / 40 for step in range(20)]  # the partial run sees t in [0, 0.5)


def test_a_search_final_and_report_with_logit_losses(tmp_path):
    config = merged(
        SMALL,
        training={"loss_inputs": ["x", "y", "logits"], "steps": 400},
        search={"population": 4, "generations": 1, "partial_fraction": 0.1, "invariant_violators": "train"},
    )
    directory = init_experiment(tmp_path / "run", write_config(tmp_path / "c.toml", config)).directory
    start(directory)
    best = json.loads((directory / "best.json").read_text())
    assert len(best["params"]) == num_params(3, ("x", "y", "logits"))
    assert best["loss"].startswith("taylorglo[x,y,logits]:") and best["formula"].startswith("f(x,y,logits) = ")
    line = cli("getinvocation", str(directory / "config.toml"), check=True).stdout
    assert "taylorglo[x,y,logits]:" in line
    cli("final", str(directory), "--repeats", "1", check=True)
    compared = json.loads(cli("compare", str(directory), "--json", check=True).stdout)
    assert any(s["formula"].startswith("f(x,y,logits)") for s in compared["losses"])
    cli("analyze", str(directory), "--out", str(tmp_path / "report"), check=True)
    page = (tmp_path / "report" / "index.html").read_text()
    assert "taylorglo[x,y,logits]:" in page and "f(x,y,logits) = " in page


def test_a_one_shot_run_reads_its_losses_with_the_training_inputs(tmp_path):
    spec = loss_spec([0.0] * 9 + [-1.0, 0.0, 0.0, 0.0], ("x", "y", "t"))  # a hand-picked (x, y, t) loss
    training = {**SMALL["training"], "steps": 40, "loss_inputs": ["x", "y", "t"]}
    oneshot = {"name": "o", "kind": "oneshot", "training": training,
               "oneshot": {"losses": ["cross-entropy", spec], "repeats": 1}}  # fmt: skip
    config = ExperimentConfig.from_dict(oneshot)
    assert config.settings.losses[1].inputs == ("x", "y", "t") and config.settings.losses[1].spec == spec
    plain = {**oneshot, "training": SMALL["training"]}
    with pytest.raises(TaylorGLOError, match=r"^oneshot.losses\[1\]: a loss of x, y, t trains with training.loss"):
        ExperimentConfig.from_dict(plain)
    epbt = {"name": "e", "kind": "epbt", "training": {**SMALL["training"], "loss_inputs": ["x", "y", "t"]}}
    with pytest.raises(TaylorGLOError, match=r"^training.loss_inputs: EPBT evolves losses of x and y"):
        ExperimentConfig.from_dict(epbt)
    directory = init_experiment(tmp_path / "one", write_config(tmp_path / "o.toml", oneshot)).directory
    start(directory)
    status = json.loads(cli("status", str(directory), "--json", check=True).stdout)
    assert [loss["formula"][:8] for loss in status["losses"]] == ["cross-en", "f(x,y,t)"]
    assert all(loss["finished"] == 1 and math.isfinite(loss["mean"]) for loss in status["losses"])
