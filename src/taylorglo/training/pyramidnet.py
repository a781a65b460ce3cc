"""PyramidNet (Han, Kim & Kim 2017, "Deep Pyramidal Residual Networks") for CIFAR-sized inputs.

Instead of doubling the width at each stage, every residual block widens the network by the same
step, ``alpha / N`` channels for ``N`` blocks, from 16 to ``16 + alpha``; the shortcut pads the
new channels with zeros (and average-pools where a block downsamples), so no projection adds
parameters. Blocks are the paper's: BN-conv-BN-ReLU-conv-BN (no ReLU before the first conv or
after the addition), or the bottleneck BN-1x1-BN-ReLU-3x3-BN-ReLU-1x1(×4)-BN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .init import he_init


class _PyramidBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, bottleneck: bool) -> None:
        super().__init__()
        self.out_planes = planes * (4 if bottleneck else 1)
        if bottleneck:
            layers: list[nn.Module] = [
                nn.BatchNorm2d(in_planes),
                nn.Conv2d(in_planes, planes, 1, bias=False),
                nn.BatchNorm2d(planes),
                nn.ReLU(inplace=True),
                nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(planes),
                nn.ReLU(inplace=True),
                nn.Conv2d(planes, self.out_planes, 1, bias=False),
                nn.BatchNorm2d(self.out_planes),
            ]
        else:
            layers = [
                nn.BatchNorm2d(in_planes),
                nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(planes),
                nn.ReLU(inplace=True),
                nn.Conv2d(planes, planes, 3, padding=1, bias=False),
                nn.BatchNorm2d(planes),
            ]
        self.body = nn.Sequential(*layers)
        self.pool = nn.AvgPool2d(2, 2, ceil_mode=True) if stride != 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        shortcut = x if self.pool is None else self.pool(x)
        extra = out.shape[1] - shortcut.shape[1]
        if extra:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, extra))
        return out + shortcut


class PyramidNet(nn.Module):
    """PyramidNet-``depth`` with widening factor ``alpha``: 3×3-16 conv and BN, three stages of
    ``N`` blocks (``N = (depth-2)/6``, bottleneck ``(depth-2)/9``; stride 2 at the start of stages
    2 and 3), BN-ReLU, global average pool, linear. PyramidNet-110 α48 has 1.7M parameters as
    published. Init: convolutions N(0, 2/(k²·out)), BN γ=1 β=0, linear bias 0."""

    def __init__(
        self, input_shape: tuple[int, int, int], num_classes: int, depth: int, alpha: int, bottleneck: bool = False
    ) -> None:
        super().__init__()
        n = (depth - 2) // (9 if bottleneck else 6)
        step = alpha / (3 * n)
        self.conv1 = nn.Conv2d(input_shape[0], 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks: list[nn.Module] = []
        width, in_planes = 16.0, 16
        for stage in range(3):
            for j in range(n):
                width += step
                block = _PyramidBlock(in_planes, int(round(width)), 2 if stage > 0 and j == 0 else 1, bottleneck)
                blocks.append(block)
                in_planes = block.out_planes
        self.blocks = nn.Sequential(*blocks)
        self.bn_final = nn.BatchNorm2d(in_planes)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        he_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(self.bn1(self.conv1(x)))
        out = F.relu(self.bn_final(out))
        return self.fc(torch.flatten(self.pool(out), 1))
