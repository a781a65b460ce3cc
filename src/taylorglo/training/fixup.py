"""Fixup ResNets (Zhang, Dauphin & Ma 2019, "Fixup Initialization: Residual Learning Without
Normalization") for CIFAR-sized inputs.

The CIFAR ResNet without BatchNorm: each residual branch gets scalar biases before each
convolution and activation and a scalar multiplier at its end, and is initialised so that the
network starts as (nearly) the identity: the first convolution of a branch He-initialised and
scaled by ``L^(-1/2)`` for ``L`` residual branches, the second zero, the classifier zero. What
makes it trainable without normalisation is the initialisation, not the architecture.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class _FixupBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.bias1a, self.bias1b, self.bias2a, self.bias2b = (nn.Parameter(torch.zeros(1)) for _ in range(4))
        self.scale = nn.Parameter(torch.ones(1))
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.stride, self.extra = stride, planes - in_planes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv1(x + self.bias1a) + self.bias1b)
        out = self.conv2(out + self.bias2a) * self.scale + self.bias2b
        shortcut = x
        if self.stride != 1:
            shortcut = F.avg_pool2d(shortcut + self.bias1a, 1, self.stride)
        if self.extra:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra))  # option A: new channels zero
        return F.relu(out + shortcut)


class FixupResNet(nn.Module):
    """Fixup ResNet-``depth``: 3×3-16 conv, three stages of ``(depth-2)/6`` Fixup blocks at
    16/32/64 channels, global average pool, a scalar bias, linear (zero-initialised)."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, depth: int) -> None:
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(input_shape[0], 16, 3, padding=1, bias=False)
        self.bias1 = nn.Parameter(torch.zeros(1))
        blocks: list[nn.Module] = []
        in_planes = 16
        for stage, planes in enumerate((16, 32, 64)):
            for j in range(n):
                blocks.append(_FixupBlock(in_planes, planes, 2 if stage > 0 and j == 0 else 1))
                in_planes = planes
        self.blocks = nn.Sequential(*blocks)
        self.bias2 = nn.Parameter(torch.zeros(1))
        self.fc = nn.Linear(64, num_classes)
        branches = 3 * n
        for m in self.modules():
            if isinstance(m, _FixupBlock):
                fan_out = m.conv1.weight.shape[0] * m.conv1.weight[0][0].numel()
                nn.init.normal_(m.conv1.weight, 0.0, math.sqrt(2.0 / fan_out) * branches**-0.5)
                nn.init.zeros_(m.conv2.weight)
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(F.relu(self.conv1(x) + self.bias1))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out + self.bias2)
