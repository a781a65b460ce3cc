"""A model plug-in whose factory kills its own process (SIGKILL, as the OOM killer would) when
the training's seed is ``kill_seed``: a worker dying in the middle of one particular job. With
``once`` set to a file path, it dies only the first time (the file marks that it did). With
``kill_first_build``, the process dies the first time it builds this network, whatever for (the
check of the network a worker makes when the host asks for its facts)."""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path

import torch
from torch import nn


def model(
    input_shape: tuple[int, ...],
    num_classes: int,
    kill_seed: int = -1,
    once: str | None = None,
    kill_first_build: bool = False,
    **_: object,
) -> nn.Module:
    if kill_first_build or (torch.initial_seed() == kill_seed and not (once and Path(once).exists())):
        if once:
            Path(once).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), 32), nn.ReLU(), nn.Linear(32, num_classes))
