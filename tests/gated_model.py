"""A model plug-in that orders trainings by a file instead of by time: the first job to build its
network goes ahead; every other one waits until the file ``gate`` exists. A test that opens the
gate only once it holds a result knows, without timing anything, that the result came back while
the other jobs were still training. A gate never opened fails the waiting jobs (after
``patience`` seconds) rather than letting them finish, so a test cannot pass by waiting."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from torch import nn


def model(input_shape: tuple[int, ...], num_classes: int, gate: str = "", patience: float = 300.0,
          **_: object) -> nn.Module:
    try:
        os.close(os.open(gate + ".first", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:  # not the first: wait for the gate
        deadline = time.monotonic() + patience
        while not Path(gate).exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gate {gate} was never opened")
            time.sleep(0.02)
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), 32), nn.ReLU(), nn.Linear(32, num_classes))
