"""The weight initialisation the CIFAR networks' papers share: He (Kaiming) normal convolutions,
BatchNorm at γ = 1, β = 0, a zero classifier bias (the linear weights keep PyTorch's default)."""

from __future__ import annotations

from torch import nn


def he_init(network: nn.Module, mode: str = "fan_out") -> None:
    """Initialise ``network`` 's convolutions ``N(0, 2/fan)`` (``mode``: ``"fan_out"`` = k²·out
    channels, as the Wide ResNet and PyramidNet papers' code; ``"fan_in"`` as DenseNet's), its
    BatchNorms to the identity and its linear biases to zero, in place."""
    for m in network.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)
