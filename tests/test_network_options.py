"""The model options that change a built-in network's body: ``activation`` and ``aux_heads``,
and the training fields that weigh the auxiliary heads' losses (``aux_losses``, ``aux_weights``)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from taylorglo.errors import TaylorGLOError
from taylorglo.training import TrainConfig, load_dataset, train
from taylorglo.training.activations import ACTIVATIONS
from taylorglo.training.heads import aux_heads, forward_with_aux
from taylorglo.training.models import build_model
from taylorglo.training.population import train_population

CIFAR = (3, 32, 32)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def cfg(**changes) -> TrainConfig:
    base = dict(dataset="digits", model="resnet20", steps=6, lr=0.05, batch_size=32, log_every=3, eval_test=False)
    base.update(changes)
    return TrainConfig(**base)


@pytest.mark.parametrize(("name", "shape"), [("allcnnc", CIFAR), ("resnet20", (1, 8, 8)), ("preresnet20", CIFAR),
                                             ("wrn-16-2", (1, 8, 8))])  # fmt: skip
@pytest.mark.parametrize("activation", sorted(set(ACTIVATIONS) - {"relu"}))
def test_an_activation_replaces_every_relu_and_keeps_the_parameters(name, shape, activation):
    torch.manual_seed(0)
    relu = build_model(name, shape, 10)
    torch.manual_seed(0)
    other = build_model(name, shape, 10, activation=activation)
    kinds = {type(m) for m in other.modules()}
    assert nn.ReLU not in kinds and type(ACTIVATIONS[activation]()) in kinds
    # The same parameters in the same order: weights trained under one activation load into the other.
    assert {k: v.shape for k, v in relu.state_dict().items()} == {k: v.shape for k, v in other.state_dict().items()}
    other.load_state_dict(relu.state_dict())
    relu.eval(), other.eval()
    x = torch.randn(2, *shape)
    with torch.no_grad():
        assert not torch.allclose(relu(x), other(x))


def test_the_reference_allcnnc_takes_the_activation_but_its_heads_keep_relu():
    model = build_model("allcnnc", CIFAR, 10, variant="reference", activation="swish", aux_heads=True)
    assert not any(isinstance(m, nn.ReLU) for m in model.features1.modules())
    assert all(any(isinstance(m, nn.ReLU) for m in head.modules()) for head in model.aux_branches)


def test_aux_heads_give_one_output_per_class_and_forward_stays_the_logits():
    for name, shape in (("allcnnc", CIFAR), ("resnet20", (1, 8, 8)), ("preresnet20", CIFAR)):
        torch.manual_seed(0)
        model = build_model(name, shape, 7, aux_heads=True)
        assert aux_heads(model) == 2
        model.eval()
        x = torch.randn(3, *shape)
        with torch.no_grad():
            logits, aux = forward_with_aux(model, x)
            assert torch.equal(logits, model(x))
        assert logits.shape == (3, 7) and [a.shape for a in aux] == [(3, 7), (3, 7)]
        assert aux_heads(build_model(name, shape, 7)) == 0


def test_the_reference_allcnnc_heads_are_the_references():
    """Its parameters are named and shaped as the reference's ``aux_branches``, and its first head
    pools a 16x16 map with AvgPool2d(6, stride=classes): 2x2 cells per class, 40 outputs."""
    model = build_model("allcnnc", CIFAR, 10, variant="reference", aux_heads=True)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith("aux_branches")}
    assert shapes == {
        "aux_branches.0.stack.0.weight": (96, 96, 1, 1), "aux_branches.0.stack.0.bias": (96,),
        "aux_branches.0.stack.2.weight": (10, 96, 1, 1), "aux_branches.0.stack.2.bias": (10,),
        "aux_branches.1.stack.0.weight": (96, 192, 1, 1), "aux_branches.1.stack.0.bias": (96,),
        "aux_branches.1.stack.2.weight": (10, 96, 1, 1), "aux_branches.1.stack.2.bias": (10,),
    }  # fmt: skip
    model.eval()
    with torch.no_grad():
        _, aux = forward_with_aux(model, torch.randn(2, *CIFAR))
    assert [tuple(a.shape) for a in aux] == [(2, 40), (2, 10)]


@pytest.mark.parametrize(
    ("name", "options", "words"),
    [
        ("allcnnc", {"activation": "sigmoidish"}, "activation='sigmoidish' for model 'allcnnc' is invalid; expected"),
        ("resnet20", {"aux_heads": "yes"}, "aux_heads"),
        ("resnet20", {"variant": "reference", "aux_heads": True}, "aux_heads"),
        ("wrn-16-2", {"aux_heads": True}, "aux_heads"),
    ],
)
def test_options_a_model_cannot_take_are_one_line(name, options, words):
    with pytest.raises(TaylorGLOError, match=words) as err:
        build_model(name, (3, 32, 32), 10, **options)
    assert "\n" not in str(err.value)


def test_each_head_adds_its_weighted_loss_and_weight_zero_trains_the_body_alone(digits):
    """A head of weight 0 sends no gradient into the body: the logits train exactly as in the
    network without heads; weight 1 (the default) or another loss for the heads changes them."""
    heads = {"aux_heads": True}
    plain = train(cfg(), "cross-entropy", seed=0, data=digits)
    silent = train(cfg(model_options=heads, aux_weights=[0.0, 0.0]), "cross-entropy", seed=0, data=digits)
    assert silent.val_accuracy == plain.val_accuracy and silent.val_loss == plain.val_loss
    weighted = train(cfg(model_options=heads), "cross-entropy", seed=0, data=digits)
    assert weighted.val_loss != plain.val_loss and math.isfinite(weighted.val_loss)
    other = train(
        cfg(model_options=heads, aux_losses=["taylorglo:0,0,0,1,0,0,0,0", "cross-entropy"], aux_weights=[0.3, 0.3]),
        "cross-entropy",
        seed=0,
        data=digits,
    )
    assert other.status == "ok" and other.val_loss not in (plain.val_loss, weighted.val_loss)


def test_the_reference_heads_train_with_their_extra_outputs():
    """The reference AllCNN-C's first head gives 40 outputs for 10 classes; its loss reads them as
    the reference did and the run trains (synthetic CIFAR-shaped data, two steps)."""
    from taylorglo.training.data import DataSplits

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (96, *CIFAR), generator=g, dtype=torch.uint8)
    y = torch.arange(96) % 10
    data = DataSplits("cifar10", x[:64], y[:64], x[64:], y[64:], x[64:], y[64:], 10, (0.5,) * 3, (0.25,) * 3, "none")
    config = TrainConfig(dataset="cifar10", model="allcnnc", steps=2, batch_size=16, eval_test=False,
                         model_options={"variant": "reference", "aux_heads": True})  # fmt: skip
    result = train(config, "taylorglo:0,0,0,1,0,0,0,0", seed=0, data=data)
    assert result.status == "ok" and result.steps == 2


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"aux_losses": ["cross-entropy"]}, "training.aux_losses: gives 1 for 'resnet20', which has no auxiliary"),
        ({"model_options": {"aux_heads": True}, "aux_weights": [1.0]}, "training.aux_weights: gives 1 for 'resnet20', "
         "which has 2 auxiliary heads"),
        ({"aux_losses": ["taylorglo:1,2"]}, "training.aux_losses\\[0\\]"),
        ({"aux_weights": [-1.0]}, "training.aux_weights: must be a list of numbers >= 0"),
    ],
)  # fmt: skip
def test_aux_losses_that_do_not_fit_are_one_line(digits, changes, words):
    with pytest.raises(TaylorGLOError, match=words) as err:
        train(cfg(**changes).validate("training."), "cross-entropy", seed=0, data=digits)
    assert "\n" not in str(err.value)


def test_a_vectorized_population_refuses_aux_heads(digits):
    with pytest.raises(ValueError, match="auxiliary heads, which a vectorized population does not train"):
        train_population(cfg(model_options={"aux_heads": True}), ["cross-entropy"] * 2, [0, 1], data=digits)


def test_the_train_command_and_getinvocation_carry_the_heads_losses():
    from experiments import cli
    from taylorglo.experiment.invocation import train_argv

    config = cfg(steps=2, model_options={"aux_heads": True}, aux_losses=["cross-entropy", "taylorglo:0,0,0,1,0,0,0,0"],
                 aux_weights=[0.5, 0.25])  # fmt: skip
    argv = train_argv(config, None, 0)
    assert argv.count("--aux-losses") == 2 and argv[argv.index("--aux-weights") + 1] == "0.5,0.25"
    out = json.loads(cli(*argv[1:], "--json", check=True).stdout)
    assert out["steps"] == 2 and out["config"]["aux_weights"] == [0.5, 0.25]
    assert out["config"]["aux_losses"] == config.aux_losses
    bad = cli("train", "--dataset", "digits", "--model", "mlp", "--steps", "2", "--aux-losses", "cross-entropy")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "aux_losses" in bad.stderr


def test_a_search_on_a_network_with_heads_trains_one_at_a_time(tmp_path):
    from experiments import SMALL, cli, merged, write_config

    base = merged(SMALL, training={"model": "resnet20", "model_options": {"aux_heads": True}, "steps": 40},
                  search={"population": 2, "generations": 1})  # fmt: skip
    stacked = write_config(tmp_path / "stacked.toml", merged(base, evaluator={"kind": "local", "vectorize": 2}))
    cli("init", str(tmp_path / "s"), str(stacked), check=True)
    result = cli("start", str(tmp_path / "s"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "evaluator.vectorize: 'resnet20' has auxiliary heads" in result.stderr
    auto = write_config(tmp_path / "auto.toml", merged(base, evaluator={"kind": "local", "vectorize": "auto"}))
    cli("init", str(tmp_path / "a"), str(auto), check=True)
    cli("start", str(tmp_path / "a"), check=True)
    log = (tmp_path / "a" / "host.log").read_text()
    assert "vectorize auto: one training at a time (a stack trains no auxiliary heads" in log
