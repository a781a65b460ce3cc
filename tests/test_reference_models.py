"""The ``variant = "reference"`` networks: the reference's module layout (so its weights load one to
one) and its forward pass, checked against forward passes written here from its description."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from taylorglo.errors import TaylorGLOError
from taylorglo.training.models import build_model


def _allcnnc_layout(classes: int) -> list[tuple[str, tuple[int, ...]]]:
    """The reference's AllCNN-C parameters: three Sequentials, convolutions at 0, 2 and 4."""
    convs = {
        "features1": [(96, 3, 3), (96, 96, 3), (96, 96, 3)],
        "features2": [(192, 96, 3), (192, 192, 3), (192, 192, 3)],
        "features3": [(192, 192, 3), (192, 192, 1), (classes, 192, 1)],
    }
    layout = []
    for stage, layers in convs.items():
        for index, (cout, cin, k) in zip((0, 2, 4), layers):
            layout += [(f"{stage}.{index}.weight", (cout, cin, k, k)), (f"{stage}.{index}.bias", (cout,))]
    return layout


def _resnet_layout(depth: int, classes: int) -> list[tuple[str, tuple[int, ...]]]:
    """The reference's CIFAR ResNet state dict: conv1/bn1, layer1..3 of basic blocks whose first
    block of a new width holds a ``downsample`` (1x1 conv, BN), then fc."""

    def bn(prefix: str, c: int) -> list[tuple[str, tuple[int, ...]]]:
        return [(f"{prefix}.weight", (c,)), (f"{prefix}.bias", (c,)), (f"{prefix}.running_mean", (c,)),
                (f"{prefix}.running_var", (c,)), (f"{prefix}.num_batches_tracked", ())]  # fmt: skip

    layout = [("conv1.weight", (16, 3, 3, 3)), *bn("bn1", 16)]
    inplanes = 16
    for stage, planes in enumerate((16, 32, 64), start=1):
        for block in range((depth - 2) // 6):
            p = f"layer{stage}.{block}"
            layout += [(f"{p}.conv1.weight", (planes, inplanes, 3, 3)), *bn(f"{p}.bn1", planes)]
            layout += [(f"{p}.conv2.weight", (planes, planes, 3, 3)), *bn(f"{p}.bn2", planes)]
            if inplanes != planes:
                layout += [(f"{p}.downsample.0.weight", (planes, inplanes, 1, 1)), *bn(f"{p}.downsample.1", planes)]
            inplanes = planes
    return layout + [("fc.weight", (classes, 64)), ("fc.bias", (classes,))]


@pytest.mark.parametrize("classes", [10, 100])
def test_allcnnc_reference_has_the_references_parameters_and_loads_its_weights(classes):
    net = build_model("allcnnc", (3, 32, 32), classes, variant="reference")
    layout = _allcnnc_layout(classes)
    assert [(k, tuple(v.shape)) for k, v in net.state_dict().items()] == layout
    torch.manual_seed(1)
    theirs = {k: torch.randn(shape) for k, shape in layout}
    net.load_state_dict(theirs, strict=True)
    assert torch.equal(net.state_dict()["features3.4.weight"], theirs["features3.4.weight"])


def test_allcnnc_reference_forward_is_the_references():
    """No ReLU after the stride-2 convs, a same-size 3x3 in stage 3, rectified class maps, and the
    mean of the class map's top-left 6x6 corner."""
    torch.manual_seed(0)
    net = build_model("allcnnc", (3, 32, 32), 10, variant="reference").eval()
    w = net.state_dict()
    x = torch.randn(3, 3, 32, 32)

    def conv(h, key, stride=1):
        weight = w[f"{key}.weight"]
        return F.conv2d(h, weight, w[f"{key}.bias"], stride=stride, padding=weight.shape[-1] // 2)

    h = conv(F.relu(conv(F.relu(conv(x, "features1.0")), "features1.2")), "features1.4", stride=2)
    h = conv(F.relu(conv(F.relu(conv(h, "features2.0")), "features2.2")), "features2.4", stride=2)
    assert h.shape[-2:] == (8, 8)
    h = F.relu(conv(F.relu(conv(F.relu(conv(h, "features3.0")), "features3.2")), "features3.4"))
    expected = h[:, :, :6, :6].mean(dim=(2, 3))
    with torch.no_grad():
        got = net(x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert (got >= 0).all()  # rectified logits, as the reference's


@pytest.mark.parametrize("depth", [20, 32])
def test_resnet_reference_has_the_references_parameters_and_initialisation(depth):
    torch.manual_seed(0)
    net = build_model(f"resnet{depth}", (3, 32, 32), 10, variant="reference")
    state = net.state_dict()
    assert [(k, tuple(v.shape)) for k, v in state.items()] == _resnet_layout(depth, 10)
    # Convolutions: N(0, 2 / (k*k*out)), i.e. fan-out; the largest holds 36,864 draws.
    weight = state[f"layer3.{(depth - 2) // 6 - 1}.conv2.weight"]
    assert weight.std().item() == pytest.approx(math.sqrt(2 / (9 * 64)), rel=0.03)
    assert weight.mean().abs().item() < 0.003
    # BatchNorm gamma 1, beta 0; the Linear layer's PyTorch default U(-1/sqrt(64), 1/sqrt(64)).
    assert torch.equal(state["layer2.0.downsample.1.weight"], torch.ones(32))
    assert torch.equal(state["bn1.bias"], torch.zeros(16))
    assert state["fc.weight"].abs().max().item() <= 1 / 8
    assert state["fc.weight"].std().item() == pytest.approx(1 / 8 / math.sqrt(3), rel=0.1)


@pytest.mark.parametrize("skip", [True, False])
def test_resnet_reference_forward_is_the_references(skip):
    """conv-BN-ReLU, blocks of conv-BN-ReLU-conv-BN (+ the input, projected where the width
    changes) and ReLU, an 8x8 average and fc; with skips off the projections exist, unused."""
    torch.manual_seed(0)
    options = {} if skip else {"shortcut": "none"}
    net = build_model("resnet8", (3, 32, 32), 10, variant="reference", **options)
    for m in net.modules():  # non-trivial running statistics, so eval-mode BN is tested
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    net.eval()
    w = net.state_dict()
    x = torch.randn(2, 3, 32, 32)

    def bn(h, key):
        return F.batch_norm(h, w[f"{key}.running_mean"], w[f"{key}.running_var"], w[f"{key}.weight"], w[f"{key}.bias"])

    h = F.relu(bn(F.conv2d(x, w["conv1.weight"], padding=1), "bn1"))
    for stage, stride in ((1, 1), (2, 2), (3, 2)):
        p = f"layer{stage}.0"
        out = F.relu(bn(F.conv2d(h, w[f"{p}.conv1.weight"], stride=stride, padding=1), f"{p}.bn1"))
        out = bn(F.conv2d(out, w[f"{p}.conv2.weight"], padding=1), f"{p}.bn2")
        if skip:
            shortcut = h
            if f"{p}.downsample.0.weight" in w:
                shortcut = bn(F.conv2d(h, w[f"{p}.downsample.0.weight"], stride=stride), f"{p}.downsample.1")
            out = out + shortcut
        h = F.relu(out)
    expected = F.linear(F.avg_pool2d(h, 8).flatten(1), w["fc.weight"], w["fc.bias"])
    with torch.no_grad():
        torch.testing.assert_close(net(x), expected, rtol=1e-5, atol=1e-5)
    assert "layer2.0.downsample.0.weight" in w  # kept without skips, as the reference's blocks keep it


@pytest.mark.parametrize(
    "name, shape, options, words",
    [
        ("allcnnc", (1, 8, 8), {}, "6x6 corner"),
        ("allcnnc", (3, 32, 32), {"final_relu": True}, "remove final_relu"),
        ("resnet20", (3, 64, 64), {}, "fixed 8x8 window"),
        ("resnet20", (3, 32, 32), {"shortcut": "A"}, "set shortcut"),
        ("preresnet20", (3, 32, 32), {}, "no reference variant"),
        ("allcnnc", (3, 32, 32), {"variant": "bearpaw"}, "'default' or 'reference'"),
    ],
)
def test_what_the_reference_variant_cannot_build_is_one_line(name, shape, options, words):
    with pytest.raises(TaylorGLOError) as err:
        build_model(name, shape, 10, field="training.model", **{"variant": "reference", **options})
    message = str(err.value)
    assert words in message and "\n" not in message and message.startswith("training.model")


def _cifar_like(n: int = 32):
    from taylorglo.training.data import DataSplits

    g = torch.Generator().manual_seed(0)

    def split(size):
        return torch.randint(0, 256, (size, 3, 32, 32), generator=g, dtype=torch.uint8), torch.arange(size) % 10

    (tx, ty), (vx, vy), (sx, sy) = split(n), split(16), split(16)
    return DataSplits("cifar10", tx, ty, vx, vy, sx, sy, 10, (0.5,) * 3, (0.25,) * 3, "crop-flip")


@pytest.mark.parametrize("model", ["allcnnc", "resnet8"])
def test_the_reference_variants_train_alone_and_in_a_stack(model):
    from taylorglo.training import TrainConfig, train
    from taylorglo.training.population import train_population

    data = _cifar_like()
    config = TrainConfig(dataset="cifar10", model=model, model_options={"variant": "reference"}, steps=2,
                         batch_size=8, eval_batch_size=16, lr=0.01, log_every=1, eval_test=False)  # fmt: skip
    members = train_population(config, ["cross-entropy", "cross-entropy"], [1, 2], data)
    for member, seed in zip(members, [1, 2]):
        alone = train(config, "cross-entropy", seed=seed, data=data)
        assert member.status == alone.status == "ok"
        assert member.val_loss == pytest.approx(alone.val_loss, rel=1e-4)
