"""DenseNet-BC (Huang, Liu, van der Maaten & Weinberger 2017) for CIFAR-sized inputs.

Every layer of a dense block sees the concatenation of all earlier layers' outputs and adds
``growth`` channels of its own, through a bottleneck (BN-ReLU-1x1 conv to ``4·growth``,
BN-ReLU-3x3 conv to ``growth``: the "B"); between blocks a transition halves the channels
(compression 0.5: the "C") and the resolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .init import he_init


class _DenseLayer(nn.Module):
    def __init__(self, in_planes: int, growth: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(in_planes),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_planes, 4 * growth, 1, bias=False),
            nn.BatchNorm2d(4 * growth),
            nn.ReLU(inplace=True),
            nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], 1)


class _Transition(nn.Sequential):
    def __init__(self, in_planes: int, out_planes: int) -> None:
        super().__init__(
            nn.BatchNorm2d(in_planes),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_planes, out_planes, 1, bias=False),
            nn.AvgPool2d(2, ceil_mode=True),
        )


class DenseNetBC(nn.Module):
    """DenseNet-BC-``depth`` with growth rate ``growth``: a 3×3 conv to ``2·growth`` channels,
    three dense blocks of ``(depth-4)/6`` bottleneck layers with transitions between them,
    BN-ReLU, global average pool, linear. DenseNet-BC-100 k=12 has 0.8M parameters as published
    (250 k=24: 15.3M). Init: convolutions Kaiming-normal, BN γ=1 β=0, linear bias 0."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, depth: int, growth: int) -> None:
        super().__init__()
        n = (depth - 4) // 6
        planes = 2 * growth
        layers: list[nn.Module] = [nn.Conv2d(input_shape[0], planes, 3, padding=1, bias=False)]
        for block in range(3):
            for _ in range(n):
                layers.append(_DenseLayer(planes, growth))
                planes += growth
            if block < 2:
                layers.append(_Transition(planes, planes // 2))
                planes //= 2
        self.features = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(planes)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(planes, num_classes)
        he_init(self, mode="fan_in")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.features(x)))
        return self.fc(torch.flatten(self.pool(out), 1))
