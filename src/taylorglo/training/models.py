"""The networks TaylorGLO trains: the paper's model table (SPEC §3) plus user plug-ins.

Every builder takes the input shape ``(C, H, W)`` and the number of classes and returns an
``nn.Module`` mapping a ``(B, C, H, W)`` float batch that is *already normalised* (the trainer puts
:class:`Normalize` in front) to ``(B, num_classes)`` logits. Flatten sizes are computed from the
input shape rather than hard-coded, so the same name works on 8×8 digits, 28×28 MNIST and 32×32
CIFAR wherever the architecture allows; where it does not, :func:`build_model` raises a one-line
:class:`~taylorglo.errors.TaylorGLOError` at build time instead of a shape error mid-training.

Built-in names (case-insensitive; ``_`` and ``-`` are interchangeable; the SPEC's spellings such as
``ResNet-20``, ``WRN-16-8`` and ``AllCNN-C`` are accepted):

* ``mlp`` — flatten, ``depth`` hidden layers of ``hidden`` units with ReLU, linear read-out.
* ``mnist-cnn`` — the TensorFlow "layers" tutorial CNN the reference used on MNIST.
* ``allcnnc`` — All-CNN-C (Springenberg et al. 2015) without BN, dropout 0.5 after both stride-2 convs.
* ``resnetN`` ((N-2) % 6 == 0) — CIFAR ResNet (He et al. 2016), option-A shortcuts.
* ``preresnetN`` ((N-2) % 6 == 0) — pre-activation CIFAR ResNet (He et al. 2016b).
* ``wrn-D-K`` ((D-4) % 6 == 0) — Wide ResNet (Zagoruyko & Komodakis 2016), dropout 0.3 in blocks.
* ``alexnet`` — the CIFAR AlexNet of bearpaw/pytorch-classification.
* ``pyramidnetD-aA`` (``-bottleneck``) — PyramidNet (Han et al. 2017), e.g. ``pyramidnet110-a48``.
* ``densenet-bc-D-K`` — DenseNet-BC (Huang et al. 2017), e.g. ``densenet-bc-100-12``.
* ``fixup-resnetN`` — the CIFAR ResNet without BatchNorm, Fixup-initialised (Zhang et al. 2019).
* ``resnetN`` with ``shortcut = "none"`` — the plain network, no skip connections.
* ``allcnnc`` and ``resnetN`` with ``variant = "reference"`` — the networks as the reference's
  trainer built them (:mod:`.reference_models`).

Anything containing ``:`` is a plug-in ``"package.module:function"`` called as
``function(input_shape=..., num_classes=..., **options)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TaylorGLOError, one_line
from ..plugins import is_plugin_ref, resolve_plugin
from .activations import activation_factory, activation_hint, is_activation
from .config import _is_number
from .densenet import DenseNetBC
from .fixup import FixupResNet
from .heads import AuxHead
from .init import he_init
from .names import MODEL_NAMES
from .pyramidnet import PyramidNet
from .reference_models import ReferenceAllCNNC, ReferenceResNet

__all__ = ["MODEL_NAMES", "Normalize", "build_model", "input_layer"]

#: A factory of a fresh activation module (:mod:`.activations`).
Activation = Callable[[], nn.Module]

_PATTERN_HELP = (
    "resnetN/preresnetN/fixup-resnetN with (N-2)%6==0, wrn-D-K with (D-4)%6==0, pyramidnetD-aA[-bottleneck], "
    "densenet-bc-D-K"
)


# --------------------------------------------------------------------------------------------
# Input normalisation
# --------------------------------------------------------------------------------------------


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std`` on a ``(B, C, H, W)`` batch (per feature on ``(B, F)``).

    Kept as a module (rather than a data transform) so normalisation runs on the device with the
    network and travels with it in ``state_dict``. ``mean`` and ``std`` are buffers, not parameters:
    they move with ``.to(device)`` but an optimiser never sees them.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        mean_t = torch.as_tensor([float(m) for m in mean], dtype=torch.float32)
        std_t = torch.as_tensor([float(s) for s in std], dtype=torch.float32)
        if mean_t.numel() == 0 or mean_t.numel() != std_t.numel():
            raise TaylorGLOError(
                f"normalization: mean and std need one value per channel and the same length "
                f"(got {mean_t.numel()} and {std_t.numel()})"
            )
        if not bool(torch.all(std_t > 0)):
            raise TaylorGLOError(f"normalization: every std must be > 0 (got {std_t.tolist()})")
        self.register_buffer("mean", mean_t.view(1, -1, 1, 1))
        self.register_buffer("std", std_t.view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # table rows: one statistic per feature
            return (x - self.mean.view(1, -1)) / self.std.view(1, -1)
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"


def input_layer(inputs: str, mean: Sequence[float], std: Sequence[float]) -> nn.Module:
    """The layer in front of every network taylorglo builds: :class:`Normalize` for images and
    features (so the network takes them as stored), nothing for token ids (the model embeds them)."""
    return nn.Identity() if inputs == "tokens" else Normalize(mean, std)


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _feature_dim(features: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Flattened size of ``features`` applied to one input, by a dry run on zeros.

    Only used on BN- and dropout-free feature stacks, so it changes no state and draws no random
    numbers (model construction stays reproducible under a seed).
    """
    with torch.no_grad():
        return int(features(torch.zeros(1, *input_shape)).numel())


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _halved_twice(height: int, width: int) -> int:
    """The smaller side of a map after two 3×3, stride-2, padding-1 convolutions (8 for 32×32):
    where AllCNN-C and the CIFAR ResNets pool."""
    return min(_conv_out(_conv_out(s, 3, 2, 1), 3, 2, 1) for s in (height, width))


# --------------------------------------------------------------------------------------------
# MLP
# --------------------------------------------------------------------------------------------


class MLP(nn.Sequential):
    """Flatten → ``depth`` × (Linear(hidden) → ReLU) → Linear(num_classes); PyTorch default init.

    Takes images and feature rows alike (flattened); token ids when ``vocab_size`` is given, as
    a bag of embeddings (the mean of ``hidden``-wide embeddings of a sequence's ids) in place of
    the flatten. ``depth=0`` is multinomial logistic regression, handy as a fast baseline in tests.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        num_classes: int,
        hidden: int = 256,
        depth: int = 1,
        vocab_size: int | None = None,
    ):
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        if vocab_size is not None:
            layers, width = [nn.EmbeddingBag(vocab_size, hidden, mode="mean")], hidden
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)


# --------------------------------------------------------------------------------------------
# MNIST CNN (TensorFlow tutorial)
# --------------------------------------------------------------------------------------------


class MnistCNN(nn.Module):
    """The TensorFlow "layers" tutorial CNN the TaylorGLO reference trained on MNIST.

    conv5×5-32 ('same') ReLU, maxpool 2; conv5×5-64 ('same') ReLU, maxpool 2; fc1024 ReLU;
    dropout 0.4; fc num_classes. Weights use Glorot-uniform and zero biases, the TF/Keras defaults
    the reference ran with (PyTorch's default would change the starting point the losses were
    evolved against). Pooling floors like TF's 'valid' pooling, so the flatten size is
    ``64 * (H//4) * (W//4)``: 3136 on 28×28, 256 on 8×8.

    ``width`` scales every layer (0.25: 8 and 16 channels, fc256), for the "small CNN" of quick
    experiments and CPU benchmarks; 1 is the paper's network.
    """

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.4, width: float = 1.0):
        super().__init__()
        channels = input_shape[0]
        c1, c2, fc = (max(1, int(round(v * width))) for v in (32, 64, 1024))
        self.features = nn.Sequential(
            nn.Conv2d(channels, c1, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(_feature_dim(self.features, input_shape), fc),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc, num_classes),
        )
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# --------------------------------------------------------------------------------------------
# All-CNN-C
# --------------------------------------------------------------------------------------------


class AllCNNC(nn.Module):
    """All-CNN-C (Springenberg et al. 2015) as SPEC §3 describes it: no BN, ReLU after each conv,
    dropout 0.5 after each of the two stride-2 convs (the paper's 20% input dropout is not used).

    conv3×3-96, 96, 96/s2; conv3×3-192, 192, 192/s2; conv3×3-192 (valid), 1×1-192,
    1×1-num_classes; global average pool. The 1×1 class conv has no ReLU by default: the paper's
    table puts one there, but rectified logits cannot go negative, which distorts any loss that
    reads raw logits; pass ``final_relu=True`` for the literal paper version. PyTorch default init.
    Needs inputs of at least 9×9 (the valid 3×3 conv needs 3×3 after two stride-2 convs).
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        dropout: float = 0.5,
        final_relu: bool = False,
        activation: str = "relu",
        aux_heads: bool = False,
    ):
        super().__init__()
        c = input_shape[0]
        act = activation_factory(activation)

        def conv(cin: int, cout: int, k: int = 3, stride: int = 1, pad: int = 1) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, k, stride=stride, padding=pad), act()]

        layers: list[nn.Module] = [
            *conv(c, 96), *conv(96, 96), *conv(96, 96, stride=2), nn.Dropout(dropout),
            *conv(96, 192), *conv(192, 192), *conv(192, 192, stride=2), nn.Dropout(dropout),
            *conv(192, 192, pad=0), *conv(192, 192, k=1, pad=0),
            nn.Conv2d(192, num_classes, 1),
        ]  # fmt: skip
        if final_relu:
            layers.append(act())
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.net = nn.Sequential(*layers)
        # The heads read the two stages' outputs (after their dropout), as the reference's did.
        self._taps = [i for i, layer in enumerate(layers) if isinstance(layer, nn.Dropout)] if aux_heads else []
        if aux_heads:
            self.aux = nn.ModuleList([AuxHead(96, num_classes, act), AuxHead(192, num_classes, act)])
        self.aux_heads = len(self._taps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        aux: list[torch.Tensor] = []
        for i, layer in enumerate(self.net):
            x = layer(x)
            if i in self._taps:
                aux.append(self.aux[len(aux)](x))
        return x, aux


# --------------------------------------------------------------------------------------------
# CIFAR ResNet and pre-activation ResNet
# --------------------------------------------------------------------------------------------


class _PadShortcut(nn.Module):
    """Option-A shortcut of He et al. 2016: subsample spatially, zero-pad the new channels.

    Parameter-free, which is what makes ResNet-20 0.27M parameters as published.
    ``x[..., ::2, ::2]`` yields ``ceil(H/2)``, the same as a 3×3/s2/p1 conv, for odd sizes too.
    """

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.stride = stride
        extra = planes - in_planes
        self.pad = (extra // 2, extra - extra // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, *self.pad))


def _shortcut(kind: str, in_planes: int, planes: int, stride: int, bn: bool) -> nn.Module | None:
    """Identity when shapes match; otherwise option A (zero-pad) or B (1×1 conv projection);
    None for ``"NONE"``: no skip connection (the plain network He et al. compare ResNets with)."""
    if kind == "NONE":
        return None
    if stride == 1 and in_planes == planes:
        return nn.Identity()
    if kind == "A":
        return _PadShortcut(in_planes, planes, stride)
    proj: list[nn.Module] = [nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)]
    if bn:
        proj.append(nn.BatchNorm2d(planes))
    return nn.Sequential(*proj)


class _BasicBlock(nn.Module):
    """Post-activation block: conv-BN-ReLU-conv-BN, add shortcut, ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: str, act: Activation = nn.ReLU):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(shortcut, in_planes, planes, stride, bn=True)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(out if self.shortcut is None else out + self.shortcut(x))


class _PreActBlock(nn.Module):
    """Pre-activation block (He et al. 2016b): BN-ReLU-conv-BN-ReLU-conv, add shortcut of the
    block input, no activation after the addition (the identity path stays clean)."""

    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: str, act: Activation = nn.ReLU):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.shortcut = _shortcut(shortcut, in_planes, planes, stride, bn=False)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.act(self.bn1(x)))
        out = self.conv2(self.act(self.bn2(out)))
        return out if self.shortcut is None else out + self.shortcut(x)


class CifarResNet(nn.Module):
    """CIFAR ResNet-N (He et al. 2016, §4.2) or its pre-activation twin (He et al. 2016b).

    3×3-16 conv, three stages of ``(N-2)/6`` basic blocks at 16/32/64 channels (stride 2 at the
    start of stages 2 and 3), global average pool, linear. Global pooling is adaptive, so any
    input size works (8×8 on 32×32 CIFAR, 7×7 on 28×28).

    Post-activation (``resnetN``) defaults to option-A shortcuts as in the paper (0.27M params
    for N=20); init is Kaiming-normal on conv and linear weights as in the paper.
    Pre-activation (``preresnetN``) defaults to option-B 1×1-conv projections on the raw block
    input, as in He's pre-act CIFAR code and bearpaw/pytorch-classification; init there is
    conv weights ~ N(0, 2/(k²·out)) and BN γ=1, β=0 (PyTorch default linear). It ends with
    BN-ReLU before pooling.
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        depth: int,
        preact: bool = False,
        shortcut: str = "A",
        activation: str = "relu",
        aux_heads: bool = False,
    ):
        super().__init__()
        n = (depth - 2) // 6
        block = _PreActBlock if preact else _BasicBlock
        act = activation_factory(activation)
        self.preact = preact
        self.conv1 = nn.Conv2d(input_shape[0], 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)  # post-activation: after conv1; pre-activation: final BN
        stages: list[nn.Module] = []
        in_planes = 16
        for i, planes in enumerate((16, 32, 64)):
            blocks: list[nn.Module] = []
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(block(in_planes, planes, stride, shortcut, act))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        if preact:
            self.bn1 = nn.BatchNorm2d(64)
        self.act = act()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        self._init(self)
        # The heads (on the first two stages' outputs, as the reference's pre-activation ResNet's)
        # draw their weights after the body's, so a seed gives the body the same start with or without.
        if aux_heads:
            self.aux = nn.ModuleList([AuxHead(16, num_classes, act), AuxHead(32, num_classes, act)])
            self._init(self.aux)
        self.aux_heads = 2 if aux_heads else 0

    def _init(self, module: nn.Module) -> None:
        preact = self.preact
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                if preact:
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                else:
                    nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear) and not preact:
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, None)

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        aux: list[torch.Tensor] = []
        return self._run(x, aux), aux

    def _run(self, x: torch.Tensor, aux: list[torch.Tensor] | None) -> torch.Tensor:
        """The logits; with ``aux`` a list, the heads' outputs appended to it on the way."""
        out = self.conv1(x)
        if not self.preact:
            out = self.act(self.bn1(out))
        for i, layer in enumerate((self.layer1, self.layer2, self.layer3)):
            out = layer(out)
            if aux is not None and i < len(self.aux):
                aux.append(self.aux[i](out))
        if self.preact:
            out = self.act(self.bn1(out))
        return self.fc(torch.flatten(self.pool(out), 1))


# --------------------------------------------------------------------------------------------
# Wide ResNet
# --------------------------------------------------------------------------------------------


class _WideBlock(nn.Module):
    """WRN basic block (pre-activation, dropout between the two 3×3 convs).

    When the shape changes, the 1×1 projection shortcut takes the *pre-activated* input, as in the
    reference Lua code and its common PyTorch port (xternalz/WideResNet-pytorch).
    """

    def __init__(self, in_planes: int, planes: int, stride: int, dropout: float, act: Activation = nn.ReLU):
        super().__init__()
        self.act = act()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.equal = in_planes == planes and stride == 1
        self.proj = None if self.equal else nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act(self.bn1(x))
        out = self.conv1(pre)
        out = self.conv2(self.dropout(self.act(self.bn2(out))))
        return out + (x if self.proj is None else self.proj(pre))


class WideResNet(nn.Module):
    """WRN-D-K (Zagoruyko & Komodakis 2016): 3×3-16 conv, three stages of ``(D-4)/6`` wide blocks
    at 16K/32K/64K channels, BN-ReLU, global average pool, linear.

    Init as in the reference: Kaiming-normal (fan_out) convs, BN γ=1, β=0, zero linear bias.
    WRN-16-8 has 10.96M parameters (published: 11.0M), WRN-28-5 9.13M.
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        depth: int,
        widen: int,
        dropout: float = 0.3,
        activation: str = "relu",
    ):
        super().__init__()
        act = activation_factory(activation)
        n = (depth - 4) // 6
        widths = (16 * widen, 32 * widen, 64 * widen)
        self.conv1 = nn.Conv2d(input_shape[0], 16, 3, padding=1, bias=False)
        blocks: list[nn.Module] = []
        in_planes = 16
        for i, planes in enumerate(widths):
            for j in range(n):
                blocks.append(_WideBlock(in_planes, planes, 2 if i > 0 and j == 0 else 1, dropout, act))
                in_planes = planes
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(in_planes)
        self.act = act()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn(self.blocks(self.conv1(x))))
        return self.fc(torch.flatten(self.pool(out), 1))


# --------------------------------------------------------------------------------------------
# AlexNet (CIFAR variant)
# --------------------------------------------------------------------------------------------


class AlexNetCifar(nn.Module):
    """The CIFAR AlexNet of bearpaw/pytorch-classification (2.47M parameters on CIFAR-10).

    conv11×11-64/s4/p5 ReLU, maxpool 2; conv5×5-192/p2 ReLU, maxpool 2; conv3×3-384, 3×3-256,
    3×3-256 (p1) with ReLU, maxpool 2; linear. Deviation for small inputs only: the max-pools use
    ``ceil_mode=True``, which is identical on 32×32 (every pooled map has even size, ending at 1×1)
    but keeps a 1×1 map alive instead of pooling it to nothing, so 28×28 and 8×8 inputs work too.
    The linear layer's size follows the input. PyTorch default init, as in bearpaw.
    """

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(input_shape[0], 64, 11, stride=4, padding=5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2, ceil_mode=True),
            nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2, ceil_mode=True),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2, ceil_mode=True),
        )
        self.classifier = nn.Linear(_feature_dim(self.features, input_shape), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


# --------------------------------------------------------------------------------------------
# Option validation and the registry
# --------------------------------------------------------------------------------------------


def _check_options(
    field: str,
    model: str,
    options: Mapping[str, Any],
    spec: Mapping[str, Callable[[Any], bool]],
    hint: Mapping[str, str],
) -> None:
    """Reject unknown option names and ill-typed values with one line naming the field."""
    for key, value in options.items():
        if key not in spec:
            valid = ", ".join(sorted(spec)) or "none"
            raise TaylorGLOError(f"{field}: model {model!r} has no option {key!r}; its options are: {valid}")
        if not spec[key](value):
            raise TaylorGLOError(
                f"{field}: option {key}={value!r} for model {model!r} is invalid; expected {hint[key]}"
            )


def _pos_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _pos_number(v: Any) -> bool:
    return _is_number(v) and v > 0


def _nonneg_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _prob(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= float(v) < 1.0


def _boolean(v: Any) -> bool:
    return isinstance(v, bool)


def _shortcut_kind(v: Any) -> bool:
    return isinstance(v, str) and v.upper() in ("A", "B", "NONE")


VARIANTS = ("default", "reference")
_VARIANT_HINT = "'default' or 'reference' (the network as the reference's trainer built it)"


def _variant(v: Any) -> bool:
    return v in VARIANTS


_PROB_HINT = "a number in [0, 1)"

#: The options every network with stages takes: its hidden non-linearity (:mod:`.activations`)
#: and two auxiliary classifier heads (:mod:`.heads`).
_BODY_OPTIONS: dict[str, Callable[[Any], bool]] = {"activation": is_activation, "aux_heads": _boolean}


def _body_hints() -> dict[str, str]:
    return {"activation": activation_hint(), "aux_heads": "true or false (two auxiliary classifier heads)"}


def _canonical(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def _unknown(field: str, name: str) -> TaylorGLOError:
    return TaylorGLOError(
        f"{field}: unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)} "
        f"(or {_PATTERN_HELP}) or give 'package.module:function'"
    )


#: A built-in model's builder: ``(the name's match, input shape, classes, field, options,
#: vocab_size) -> network``. Each checks its own options and input.
Builder = Callable[["re.Match[str]", tuple[int, ...], int, str, dict[str, Any], "int | None"], nn.Module]
#: The built-in models: a name pattern (on the canonical, lower-case, dashed name) and its builder.
_BUILTINS: list[tuple[re.Pattern[str], Builder]] = []


def register_builtin(pattern: str) -> Callable[[Builder], Builder]:
    """Add a built-in model under the names ``pattern`` matches in full; a new architecture is
    one decorated builder, never a branch in :func:`build_model`."""

    def add(builder: Builder) -> Builder:
        _BUILTINS.append((re.compile(pattern), builder))
        return builder

    return add


def _build_builtin(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    field: str,
    options: dict[str, Any],
    vocab_size: int | None,
) -> nn.Module:
    key = _canonical(name)
    for pattern, builder in _BUILTINS:
        match = pattern.fullmatch(key)
        if match:
            return builder(match, input_shape, num_classes, field, options, vocab_size)
    raise _unknown(field, name)


def _images(field: str, name: str, input_shape: tuple[int, ...], vocab_size: int | None) -> tuple[int, int, int]:
    """The ``(C, H, W)`` an image model needs, or one line saying this dataset holds something else."""
    if len(input_shape) != 3:
        what = "token ids" if vocab_size is not None else "features"
        raise TaylorGLOError(
            f"{field}: {name!r} takes images (C, H, W) but this dataset holds {what} of shape {input_shape}; "
            "use model = 'mlp' or a plug-in model"
        )
    c, h, w = input_shape
    return c, h, w


@register_builtin(r"mlp")
def _mlp(match: re.Match[str], shape: tuple[int, ...], classes: int, field: str, options: dict[str, Any],
         vocab_size: int | None) -> nn.Module:  # fmt: skip
    _check_options(field, "mlp", options, {"hidden": _pos_int, "depth": _nonneg_int},
                   {"hidden": "a positive integer", "depth": "an integer >= 0"})  # fmt: skip
    return MLP(shape, classes, **options, vocab_size=vocab_size)


@register_builtin(r"mnist-cnn|mnistcnn|mnist")
def _mnist_cnn(match: re.Match[str], shape: tuple[int, ...], classes: int, field: str, options: dict[str, Any],
               vocab_size: int | None) -> nn.Module:  # fmt: skip
    c, h, w = _images(field, match.group(0), shape, vocab_size)
    _check_options(
        field,
        "mnist-cnn",
        options,
        {"dropout": _prob, "width": _pos_number},
        {"dropout": _PROB_HINT, "width": "a positive number (1: the paper's network)"},
    )
    if h < 4 or w < 4:
        raise TaylorGLOError(f"{field}: mnist-cnn needs inputs of at least 4x4 (got {h}x{w})")
    return MnistCNN((c, h, w), classes, **options)


@register_builtin(r"allcnnc|allcnn-c|all-cnn-c|allcnn")
def _allcnnc(match: re.Match[str], shape: tuple[int, ...], classes: int, field: str, options: dict[str, Any],
             vocab_size: int | None) -> nn.Module:  # fmt: skip
    c, h, w = _images(field, match.group(0), shape, vocab_size)
    _check_options(
        field,
        "allcnnc",
        options,
        {"dropout": _prob, "final_relu": _boolean, "variant": _variant, **_BODY_OPTIONS},
        {"dropout": _PROB_HINT, "final_relu": "true or false", "variant": _VARIANT_HINT, **_body_hints()},
    )
    options = dict(options)
    if options.pop("variant", "default") == "reference":
        if "final_relu" in options:
            raise TaylorGLOError(f"{field}: allcnnc's reference variant always rectifies its logits: remove final_relu")
        # AvgPool2d(6, stride=classes) must leave one value per class, as on 32x32 CIFAR.
        if not 6 <= _halved_twice(h, w) < 6 + classes:
            raise TaylorGLOError(
                f"{field}: allcnnc's reference variant pools a 6x6 corner of its class map, which "
                f"{h}x{w} inputs with {classes} classes do not give one value per class; use 32x32 "
                "inputs or variant = 'default'"
            )
        return ReferenceAllCNNC((c, h, w), classes, **options)
    if _halved_twice(h, w) < 3:
        raise TaylorGLOError(f"{field}: allcnnc needs inputs of at least 9x9 (got {h}x{w})")
    return AllCNNC((c, h, w), classes, **options)


@register_builtin(r"alexnet")
def _alexnet(match: re.Match[str], shape: tuple[int, ...], classes: int, field: str, options: dict[str, Any],
             vocab_size: int | None) -> nn.Module:  # fmt: skip
    image = _images(field, match.group(0), shape, vocab_size)
    _check_options(field, "alexnet", options, {}, {})
    return AlexNetCifar(image, classes)


@register_builtin(r"(pre-?(?:act-?)?)?resnet-?(\d+)")
def _resnet(match: re.Match[str], shape: tuple[int, ...], classes: int, field: str, options: dict[str, Any],
            vocab_size: int | None) -> nn.Module:  # fmt: skip
    image = _images(field, match.group(0), shape, vocab_size)
    preact, depth = match.group(1) is not None, int(match.group(2))
    label = f"{'preresnet' if preact else 'resnet'}{depth}"
    if depth < 8 or (depth - 2) % 6:
        raise TaylorGLOError(
            f"{field}: {label} is not a valid CIFAR ResNet depth; N must satisfy (N-2)%6==0 and N>=8 (e.g. 20, 32, 56)"
        )
    _check_options(
        field,
        label,
        options,
        {"shortcut": _shortcut_kind, "variant": _variant, **_BODY_OPTIONS},
        {"shortcut": "'A', 'B' or 'none' (no skip connections)", "variant": _VARIANT_HINT, **_body_hints()},
    )
    reference = options.get("variant", "default") == "reference"
    shortcut = str(options.get("shortcut", "B" if preact or reference else "A")).upper()
    body = {k: options[k] for k in _BODY_OPTIONS if k in options}
    if reference:
        if body:
            raise TaylorGLOError(
                f"{field}: {label}'s reference variant has the reference's ReLUs and no auxiliary heads: remove "
                f"{' and '.join(sorted(body))} (or use preresnet{depth}, as the reference did)"
            )
        return _reference_resnet(field, label, image, classes, depth, preact, shortcut)
    return CifarResNet(image, classes, depth, preact=preact, shortcut=shortcut, **body)


def _reference_resnet(
    field: str, label: str, image: tuple[int, int, int], classes: int, depth: int, preact: bool, shortcut: str
) -> nn.Module:
    """The reference variant of ``resnetN``, after checking what it cannot be built with."""
    if preact:
        raise TaylorGLOError(f"{field}: {label} has no reference variant (resnetN has): remove variant")
    if shortcut == "A":
        raise TaylorGLOError(
            f"{field}: {label}'s reference variant projects its shortcuts (B) or has none: set shortcut "
            "to 'B' or 'none'"
        )
    if not 8 <= _halved_twice(*image[1:]) < 16:  # its fixed AvgPool2d(8) must leave one value per channel
        raise TaylorGLOError(
            f"{field}: {label}'s reference variant pools a fixed 8x8 window, which {image[1]}x{image[2]} "
            "inputs do not fill once; use 32x32 inputs or variant = 'default'"
        )
    return ReferenceResNet(image, classes, depth, skip=shortcut != "NONE")


@register_builtin(r"wrn-?(\d+)-(\d+)")
def _wrn(match: re.Match[str], shape: tuple[int, ...], classes: int, field: str, options: dict[str, Any],
         vocab_size: int | None) -> nn.Module:  # fmt: skip
    image = _images(field, match.group(0), shape, vocab_size)
    depth, widen = int(match.group(1)), int(match.group(2))
    label = f"wrn-{depth}-{widen}"
    if depth < 10 or (depth - 4) % 6 or widen < 1:
        raise TaylorGLOError(
            f"{field}: {label} is not a valid Wide ResNet; D must satisfy (D-4)%6==0 and D>=10, K>=1 "
            "(e.g. wrn-16-8, wrn-28-5)"
        )
    _check_options(
        field, label, options, {"dropout": _prob, "activation": is_activation},
        {"dropout": _PROB_HINT, "activation": activation_hint()},
    )  # fmt: skip
    return WideResNet(image, classes, depth, widen, **options)


@register_builtin(r"pyramidnet-?(\d+)-?a(?:lpha)?-?(\d+)(-?b(?:ottleneck)?)?")
def _pyramidnet(match: re.Match[str], shape: tuple[int, ...], classes: int, field: str, options: dict[str, Any],
                vocab_size: int | None) -> nn.Module:  # fmt: skip
    image = _images(field, match.group(0), shape, vocab_size)
    depth, alpha, bottleneck = int(match.group(1)), int(match.group(2)), match.group(3) is not None
    per = 9 if bottleneck else 6
    label = f"pyramidnet{depth}-a{alpha}{'-bottleneck' if bottleneck else ''}"
    if depth < per + 2 or (depth - 2) % per or alpha < 1:
        raise TaylorGLOError(
            f"{field}: {label} is not a valid PyramidNet; depth D must satisfy (D-2)%{per}==0 "
            f"({'bottleneck' if bottleneck else 'basic'} blocks), alpha >= 1 (e.g. pyramidnet110-a48)"
        )
    _check_options(field, label, options, {}, {})
    return PyramidNet(image, classes, depth, alpha, bottleneck)


@register_builtin(r"densenet-?bc-?(\d+)-?k?(\d+)")
def _densenet(match: re.Match[str], shape: tuple[int, ...], classes: int, field: str, options: dict[str, Any],
              vocab_size: int | None) -> nn.Module:  # fmt: skip
    image = _images(field, match.group(0), shape, vocab_size)
    depth, growth = int(match.group(1)), int(match.group(2))
    label = f"densenet-bc-{depth}-{growth}"
    if depth < 10 or (depth - 4) % 6 or growth < 1:
        raise TaylorGLOError(
            f"{field}: {label} is not a valid DenseNet-BC; depth D must satisfy (D-4)%6==0 and D>=10, "
            "growth >= 1 (e.g. densenet-bc-100-12)"
        )
    _check_options(field, label, options, {}, {})
    return DenseNetBC(image, classes, depth, growth)


@register_builtin(r"fixup-?resnet-?(\d+)")
def _fixup(match: re.Match[str], shape: tuple[int, ...], classes: int, field: str, options: dict[str, Any],
           vocab_size: int | None) -> nn.Module:  # fmt: skip
    image = _images(field, match.group(0), shape, vocab_size)
    depth = int(match.group(1))
    if depth < 8 or (depth - 2) % 6:
        raise TaylorGLOError(
            f"{field}: fixup-resnet{depth} is not a valid depth; N must satisfy (N-2)%6==0 and N>=8 (e.g. 20, 32, 56)"
        )
    _check_options(field, f"fixup-resnet{depth}", options, {}, {})
    return FixupResNet(image, classes, depth)


def build_model(
    name: str,
    input_shape: tuple[int, ...],
    num_classes: int,
    field: str = "model",
    vocab_size: int | None = None,
    **options: Any,
) -> nn.Module:
    """Build a fresh, randomly initialised network mapping ``(B, *input_shape)`` to logits.

    ``input_shape`` is ``(C, H, W)`` for images, ``(F,)`` for feature rows, ``(T,)`` for token
    ids (then ``vocab_size`` is given, and passed on to a plug-in factory). ``name`` is a built-in
    (see :data:`MODEL_NAMES` and the module docstring) or a plug-in ``"package.module:function"``;
    ``options`` are the model's keyword options (validated for built-ins, passed through to
    plug-ins). ``field`` names the config field or CLI option the name came from, so every error
    is a single line the user can act on.
    """
    if not isinstance(name, str) or not name.strip():
        raise _unknown(field, str(name))
    shape = tuple(input_shape)
    if len(shape) not in (1, 3) or not all(_pos_int(s) for s in shape):
        raise TaylorGLOError(f"{field}: input shape must be (C, H, W) or (F,) positive integers, got {input_shape!r}")
    if not _pos_int(num_classes):
        raise TaylorGLOError(f"{field}: num_classes must be a positive integer, got {num_classes!r}")
    in_shape = tuple(int(s) for s in shape)

    if not is_plugin_ref(name):
        return _build_builtin(name, in_shape, int(num_classes), field, dict(options), vocab_size)

    factory = resolve_plugin(name, field)
    extra = {} if vocab_size is None else {"vocab_size": int(vocab_size)}
    try:
        model = factory(input_shape=in_shape, num_classes=int(num_classes), **extra, **options)
    except TaylorGLOError:
        raise
    except Exception as exc:  # the user's factory failed; report it on one line, not a traceback
        raise TaylorGLOError(f"{field}: model factory {name!r} raised {type(exc).__name__}: {one_line(exc)}") from None
    if not isinstance(model, nn.Module):
        raise TaylorGLOError(f"{field}: model factory {name!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model
