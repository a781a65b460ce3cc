"""AllCNN-C and the CIFAR ResNet as the reference's trainer built them: the ``variant = "reference"``
model option (``[training.model_options]``).

taylorglo's own :class:`~.models.AllCNNC` and :class:`~.models.CifarResNet` follow the papers; the
reference's code departs from them in ways that change results, so reproducing a published
experiment needs its networks, not the papers'. Written from the reference's behaviour (its
module layout and forward pass), not from its code:

* AllCNN-C: no ReLU after the two stride-2 convolutions (dropout follows them directly); the
  third stage's 3×3 convolution keeps the map size (padding 1); a ReLU on the class map; and
  ``AvgPool2d(6, stride=num_classes)``, which on the 8×8 map of a 32×32 input is the mean of its
  top-left 6×6 corner, not a global average. PyTorch's default initialisation. Its auxiliary
  heads (``aux_heads``) are :class:`~.heads.ReferenceAuxHead` s on the two stages' outputs.
* ResNet-N: 1×1-convolution + BatchNorm projection shortcuts, convolution weights drawn from
  N(0, 2 / (k²·out_channels)) (fan-out), BatchNorm γ = 1, β = 0, the Linear layer's default
  initialisation, and a fixed ``AvgPool2d(8)``. With ``shortcut = "none"`` (the reference's
  ``noskip_resnetN``) the blocks still hold their projection, unused, as the reference's do.

Parameter names, order and shapes are the reference modules', so a state dict saved by its
trainer loads into these with ``load_state_dict`` one to one.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .activations import activation_factory
from .heads import ReferenceAuxHead

__all__ = ["ReferenceAllCNNC", "ReferenceResNet"]


def _conv(cin: int, cout: int, k: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=k, stride=stride, padding=(k - 1) // 2)


class ReferenceAllCNNC(nn.Module):
    """All-CNN-C as the reference's trainer built it (see the module docstring)."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        dropout: float = 0.5,
        activation: str = "relu",
        aux_heads: bool = False,
    ) -> None:
        super().__init__()
        act = activation_factory(activation)
        relu = act()  # one module, reused: it holds no state
        self.features1 = nn.Sequential(
            _conv(input_shape[0], 96, 3), relu, _conv(96, 96, 3), relu, _conv(96, 96, 3, stride=2), nn.Dropout(dropout)
        )
        self.features2 = nn.Sequential(
            _conv(96, 192, 3), relu, _conv(192, 192, 3), relu, _conv(192, 192, 3, stride=2), nn.Dropout(dropout)
        )
        self.features3 = nn.Sequential(
            _conv(192, 192, 3), relu, _conv(192, 192, 1), relu, _conv(192, num_classes, 1), relu,
            nn.AvgPool2d(6, num_classes),
        )  # fmt: skip
        if aux_heads:
            self.aux_branches = nn.ModuleList(
                # The reference built its heads with their own default ReLU, whatever the override.
                [ReferenceAuxHead(96, num_classes, nn.ReLU), ReferenceAuxHead(192, num_classes, nn.ReLU)]
            )
        self.aux_heads = 2 if aux_heads else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features3(self.features2(self.features1(x)))
        return x.reshape(x.size(0), -1)

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.features1(x)
        aux = [self.aux_branches[0](x)]
        x = self.features2(x)
        aux.append(self.aux_branches[1](x))
        x = self.features3(x)
        return x.reshape(x.size(0), -1), aux


class _ReferenceBlock(nn.Module):
    """The reference's post-activation basic block: conv-BN-ReLU-conv-BN, add the (projected)
    input unless skips are off, ReLU."""

    def __init__(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None, skip: bool) -> None:
        super().__init__()
        self.skip = skip
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.skip:
            out = out + (x if self.downsample is None else self.downsample(x))
        return self.relu(out)


def _stage(inplanes: int, planes: int, blocks: int, stride: int, skip: bool) -> nn.Sequential:
    """One stage of blocks; the first projects its input (1×1 conv, BN) where the shape changes."""
    downsample = None
    if stride != 1 or inplanes != planes:
        downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))
    layers = [_ReferenceBlock(inplanes, planes, stride, downsample, skip)]
    layers += [_ReferenceBlock(planes, planes, 1, None, skip) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class ReferenceResNet(nn.Module):
    """The CIFAR ResNet-N as the reference's trainer built it (see the module docstring)."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, depth: int, skip: bool = True) -> None:
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(input_shape[0], 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = _stage(16, 16, n, 1, skip)
        self.layer2 = _stage(16, 32, n, 2, skip)
        self.layer3 = _stage(32, 64, n, 2, skip)
        self.avgpool = nn.AvgPool2d(8)
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x).reshape(x.size(0), -1))
