"""Tests for taylorglo.training.models: shapes, published parameter counts, errors, plug-ins."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch
from torch import nn

from taylorglo.errors import TaylorGLOError
from taylorglo.training.models import MODEL_NAMES, Normalize, build_model

CIFAR = (3, 32, 32)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("mlp", (1, 8, 8)),
        ("mlp", (1, 28, 28)),
        ("mnist-cnn", (1, 8, 8)),
        ("mnist-cnn", (1, 28, 28)),
        ("allcnnc", CIFAR),
        ("allcnnc", (1, 28, 28)),
        ("resnet20", CIFAR),
        ("resnet32", CIFAR),
        ("resnet56", CIFAR),
        ("preresnet20", CIFAR),
        ("wrn-16-8", CIFAR),
        ("wrn-28-5", CIFAR),
        ("alexnet", CIFAR),
        ("alexnet", (1, 28, 28)),
        ("resnet20", (1, 28, 28)),
        ("wrn-16-2", (1, 8, 8)),
        ("pyramidnet20-a12", CIFAR),
        ("pyramidnet29-a12-bottleneck", (1, 28, 28)),
        ("densenet-bc-22-6", CIFAR),
        ("densenet-bc-22-6", (1, 8, 8)),
        ("fixup-resnet20", CIFAR),
    ],
)
def test_output_shape(name: str, shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    model = build_model(name, shape, 10)
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, *shape))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_every_listed_name_builds() -> None:
    for name in MODEL_NAMES:
        assert isinstance(build_model(name, CIFAR, 100), nn.Module)


@pytest.mark.parametrize(
    ("name", "published"),
    [
        ("resnet20", 0.27e6),
        ("resnet32", 0.46e6),
        ("resnet56", 0.85e6),
        ("preresnet20", 0.27e6),
        ("wrn-16-8", 11.0e6),
        ("wrn-28-5", 9.13e6),  # not in the WRN paper; computed here (9,132,634)
        ("alexnet", 2.47e6),  # bearpaw/pytorch-classification's table
        ("allcnnc", 1.37e6),  # paper quotes ~1.3M
        ("pyramidnet110-a48", 1.7e6),  # Han et al. 2017, Table 4
        ("densenet-bc-100-12", 0.8e6),  # Huang et al. 2017, Table 2
        ("densenet-bc-250-24", 15.3e6),
        ("fixup-resnet20", 0.27e6),  # ResNet-20 without BatchNorm, plus a few scalars
    ],
)
def test_parameter_counts_match_published(name: str, published: float) -> None:
    count = n_params(build_model(name, CIFAR, 10))
    assert abs(count - published) / published < 0.05, count


def test_exact_counts_of_reference_implementations() -> None:
    # akamaster/pytorch_resnet_cifar10 (option A) and xternalz/WideResNet-pytorch.
    assert n_params(build_model("resnet20", CIFAR, 10)) == 269_722
    assert n_params(build_model("resnet56", CIFAR, 10)) == 853_018
    assert n_params(build_model("wrn-16-8", CIFAR, 10)) == 10_961_370
    assert n_params(build_model("mnist-cnn", (1, 28, 28), 10)) == 3_274_634
    # width scales every layer: 8/16 channels and fc256 at a quarter.
    small = build_model("mnist-cnn", (1, 28, 28), 10, width=0.25)
    assert n_params(small) == (25 * 8 + 8) + (25 * 8 * 16 + 16) + (784 * 256 + 256) + (256 * 10 + 10)


def test_mlp_options() -> None:
    model = build_model("mlp", (1, 8, 8), 10, hidden=32, depth=2)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 32), (32, 32), (32, 10)]
    assert n_params(build_model("mlp", (1, 8, 8), 10, depth=0)) == 64 * 10 + 10


def test_aliases_and_case() -> None:
    assert n_params(build_model("ResNet-20", CIFAR, 10)) == 269_722
    assert isinstance(build_model("WRN_16_2", CIFAR, 10), nn.Module)
    assert isinstance(build_model("AllCNN-C", CIFAR, 10), nn.Module)


@pytest.mark.parametrize(
    "name", ["mnist-cnn", "resnet20", "allcnnc", "pyramidnet20-a12", "densenet-bc-22-6", "fixup-resnet20"]
)
def test_backward(name: str) -> None:
    shape = (1, 28, 28) if name == "mnist-cnn" else CIFAR
    torch.manual_seed(0)
    model = build_model(name, shape, 10)
    model.train()
    loss = nn.functional.cross_entropy(model(torch.randn(4, *shape)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_construction_is_seeded() -> None:
    torch.manual_seed(3)
    a = build_model("alexnet", CIFAR, 10)
    torch.manual_seed(3)
    b = build_model("alexnet", CIFAR, 10)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_dropout_option_and_train_mode() -> None:
    model = build_model("wrn-16-2", CIFAR, 10, dropout=0.0)
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())
    model = build_model("mnist-cnn", (1, 28, 28), 10)
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.4]


def test_unknown_model_is_one_line_naming_field() -> None:
    with pytest.raises(TaylorGLOError) as info:
        build_model("vgg99", CIFAR, 10, field="train.model")
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("train.model: unknown model 'vgg99'")
    assert "resnet20" in msg and "package.module:function" in msg


@pytest.mark.parametrize(
    ("name", "options", "fragment"),
    [
        ("resnet21", {}, "(N-2)%6==0"),
        ("wrn-15-4", {}, "(D-4)%6==0"),
        ("mlp", {"width": 3}, "no option 'width'"),
        ("mlp", {"hidden": 0}, "hidden=0"),
        ("wrn-16-8", {"dropout": 1.5}, "dropout=1.5"),
        ("alexnet", {"dropout": 0.1}, "no option 'dropout'"),
        ("pyramidnet111-a48", {}, "(D-2)%6==0"),
        ("pyramidnet111-a48-bottleneck", {}, "(D-2)%9==0"),
        ("densenet-bc-101-12", {}, "(D-4)%6==0"),
        ("fixup-resnet21", {}, "(N-2)%6==0"),
        ("resnet20", {"shortcut": "C"}, "'none' (no skip connections)"),
    ],
)
def test_bad_name_or_option(name: str, options: dict, fragment: str) -> None:
    with pytest.raises(TaylorGLOError) as info:
        build_model(name, CIFAR, 10, field="model", **options)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("model: ") and fragment in msg


def test_too_small_input_is_a_clear_error() -> None:
    with pytest.raises(TaylorGLOError, match="at least 9x9"):
        build_model("allcnnc", (1, 8, 8), 10)


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    name = "tg_test_plugin_models"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            import math
            from torch import nn

            def tiny(input_shape, num_classes, hidden=8):
                return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), hidden),
                                     nn.ReLU(), nn.Linear(hidden, num_classes))

            def not_a_module(input_shape, num_classes):
                return "oops"

            def broken(input_shape, num_classes):
                raise ValueError("bad\\nthing")
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_plugin_model(plugin_module: str) -> None:
    model = build_model(f"{plugin_module}:tiny", (1, 8, 8), 3, hidden=5)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    assert model[1].out_features == 5


def test_plugin_errors(plugin_module: str) -> None:
    with pytest.raises(TaylorGLOError) as info:
        build_model(f"{plugin_module}:not_a_module", CIFAR, 10, field="model")
    msg = str(info.value)
    assert "\n" not in msg and "not_a_module" in msg and "nn.Module" in msg
    with pytest.raises(TaylorGLOError) as info:
        build_model(f"{plugin_module}:broken", CIFAR, 10, field="model")
    assert "\n" not in str(info.value) and "ValueError" in str(info.value)
    with pytest.raises(TaylorGLOError, match="^model: "):
        build_model(f"{plugin_module}:missing", CIFAR, 10)


def test_normalize_math() -> None:
    norm = Normalize((0.5, 0.25, 0.0), (0.5, 0.25, 2.0))
    x = torch.rand(2, 3, 4, 5)
    expected = torch.stack([(x[:, 0] - 0.5) / 0.5, (x[:, 1] - 0.25) / 0.25, x[:, 2] / 2.0], dim=1)
    torch.testing.assert_close(norm(x), expected)
    assert list(norm.parameters()) == []
    assert set(dict(norm.named_buffers())) == {"mean", "std"}
    # Buffers travel with the module and survive a state_dict round trip.
    other = Normalize((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    other.load_state_dict(norm.state_dict())
    torch.testing.assert_close(other(x), expected)


def test_normalize_rejects_bad_stats() -> None:
    with pytest.raises(TaylorGLOError):
        Normalize((0.1, 0.2), (0.3,))
    with pytest.raises(TaylorGLOError):
        Normalize((0.1,), (0.0,))


def test_the_plain_network_has_no_skip_connections_and_fixup_starts_at_zero() -> None:
    # The same layers as ResNet-20 without any shortcut: equal sizes, different function.
    torch.manual_seed(0)
    plain = build_model("resnet20", CIFAR, 10, shortcut="none")
    assert n_params(plain) == n_params(build_model("resnet20", CIFAR, 10))
    block = plain.layer2[0]
    assert block.shortcut is None
    x = torch.randn(3, *CIFAR)
    # Fixup: no BatchNorm anywhere, every residual branch's last conv and the classifier zero,
    # so a fresh network outputs zeros, and its first step still has a gradient to follow.
    fixup = build_model("fixup-resnet20", CIFAR, 10)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fixup.modules())
    out = fixup(x)
    assert torch.equal(out, torch.zeros(3, 10))
    nn.functional.cross_entropy(out, torch.tensor([0, 1, 2])).backward()
    assert fixup.fc.weight.grad.abs().sum() > 0
