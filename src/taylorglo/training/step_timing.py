"""How fast a training step of a network runs on a number of threads: a timing, so it depends on
the machine and on how busy it is.

No choice that changes results is made from it unless the user opts in
(``[evaluator] lend_idle_cores = "measure"``); ``benchmarks/lending.py`` uses it to show the
speed-ups behind the ``"auto"`` rule's threshold.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from .augment import to_float
from .config import TrainConfig
from .data import DataSplits
from .trainer import as_loss, build_network, resolve_device


def step_seconds(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, threads: int, seconds: float = 0.15) -> float:
    """Seconds per training step (forward, cross-entropy, backward, an SGD update) of ``model``
    on the batch ``xb, yb`` on ``threads`` torch threads: the median of as many steps as fit in
    ``seconds`` (at least 5), after two untimed ones. A timing: only ``"measure"`` and
    ``benchmarks/lending.py`` use it."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        params = [p for p in model.parameters() if p.requires_grad]
        loss_fn = as_loss(None)
        times: list[float] = []
        started = time.perf_counter()
        for i in range(1000):
            t = time.perf_counter()
            model.zero_grad(set_to_none=True)
            loss_fn(model(xb), yb).backward()
            with torch.no_grad():  # plain SGD by hand: torch.optim's first use in a process costs ~1 s
                torch._foreach_add_(params, [p.grad for p in params], alpha=-1e-4)
            if i >= 2:
                times.append(time.perf_counter() - t)
                if len(times) >= 5 and time.perf_counter() - started >= seconds:
                    break
        return sorted(times)[len(times) // 2]
    finally:
        torch.set_num_threads(before)


def thread_speedup(training: TrainConfig, data: DataSplits, threads: int, boost: int, seconds: float = 0.15) -> float:
    """How many times faster a step of ``training``'s network runs on ``boost`` threads than on
    ``threads``: measured twice each, alternating, taking each side's faster measurement (the
    least disturbed). Depends on the machine's load."""
    device = resolve_device(training.device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_network(training, data).to(device)
    batch = min(training.batch_size, len(data.train_y))
    xb, yb = to_float(data.train_x[:batch]).to(device), data.train_y[:batch].to(device)
    own = lent = float("inf")
    for _ in range(2):
        own = min(own, step_seconds(model, xb, yb, threads, seconds))
        lent = min(lent, step_seconds(model, xb, yb, boost, seconds))
    return own / lent
