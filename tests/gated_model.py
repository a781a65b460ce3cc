"""A model plug-in that orders trainings by a file instead of by time: the first training to take
a step goes ahead; every other one waits, before its first step, until the file ``gate`` exists.
A test that opens the gate only once it holds a result knows, without timing anything, that the
result came back while the other trainings were still running. A gate never opened fails the
waiting trainings (after ``patience`` seconds) rather than letting them finish, so a test cannot
pass by waiting. Only training waits (a forward pass in train mode with gradients): the host's
checks of the network (eval mode, no gradients) go through."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch
from torch import nn


class Gated(nn.Module):
    def __init__(self, net: nn.Module, gate: str, patience: float) -> None:
        super().__init__()
        self.net, self.gate, self.patience, self.waited = net, gate, patience, False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and torch.is_grad_enabled() and not self.waited:
            self.waited = True
            try:
                os.close(os.open(self.gate + ".first", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:  # not the first training: wait for the gate
                deadline = time.monotonic() + self.patience
                while not Path(self.gate).exists():
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"the gate {self.gate} was never opened") from None
                    time.sleep(0.02)
        return self.net(x)


def model(
    input_shape: tuple[int, ...], num_classes: int, gate: str = "", patience: float = 300.0, **_: object
) -> nn.Module:
    net = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), 32), nn.ReLU(), nn.Linear(32, num_classes))
    return Gated(net, gate, patience)
