"""Lending a generation's idle cores to its last trainings, and deciding whether that pays.

CMA-ES needs a whole generation's results before it asks the next, so a generation ends at a
barrier: when its ``n`` trainings are not a multiple of the ``w`` workers, the last
``k = n mod w`` run while the other workers have nothing to do. An evaluator whose workers share
one machine's cores can give those last trainings the idle cores (:func:`lend_idle_cores`).

Whether that helps depends on the network. ``mnist-cnn`` runs a step about 1.6 times faster on 2
threads than on 1, and lending took the barrier of a 2-core MNIST search from 7% of its wall time
to under 1%. The digits MLP's matrices are too small for a second thread to help, while a
2-thread run that starts before the other worker has finished makes the two compete for the
cores: a digits search with lending forced on took about 2% longer. So by default
(``[evaluator] lend_idle_cores = "auto"``) the host measures once, on this machine, how much faster a training step of the
experiment's network runs on the lent threads (:func:`thread_speedup`), lends only from
:data:`MIN_SPEEDUP` up, and stores the measurement and the decision in the experiment's
database: every later ``start`` plans the same way (:mod:`taylorglo.experiment.threads`), which
is what keeps a resumed generation's results identical (a result depends on the threads it ran
with).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from ..training.augment import to_float
from ..training.config import TrainConfig
from ..training.data import DataSplits
from ..training.trainer import as_loss, build_network, resolve_device

#: Lend only where a step on the lent threads runs at least this many times faster than on a
#: worker's own (lending costs something while the lent run overlaps the others' last trainings).
MIN_SPEEDUP = 1.3
#: The store's ``meta`` key holding the measurement and the decision.
META_KEY = "lending"


@dataclass(frozen=True)
class Lending:
    """What an evaluator could lend: ``workers`` that train at once, ``threads`` each, on
    ``cores`` cores they share (a lent training gets up to ``cores`` threads)."""

    workers: int
    threads: int
    cores: int

    def plan(self, n: int) -> list[int | None]:
        """Threads for each of a generation's ``n`` trainings (None: the worker's own)."""
        return lend_idle_cores(n, self.workers, self.cores, self.threads)


def lend_idle_cores(n: int, workers: int, cores: int, threads: int) -> list[int | None]:
    """The last ``k = n mod workers`` of ``n`` trainings split the ``cores`` among them
    (``cores // k`` threads each), where that is more than a worker's own ``threads``. A pure
    function of its arguments, so a resumed generation gets the plan it started with."""
    k = n % workers
    boost = cores // k if k else 0
    if boost <= threads:
        return [None] * n
    return [None] * (n - k) + [boost] * k


def step_seconds(training: TrainConfig, data: DataSplits, threads: int, seconds: float = 0.15) -> float:
    """Seconds per training step (forward, cross-entropy, backward, an SGD update) of
    ``training``'s network on ``threads`` torch threads: the median of as many steps as fit in
    ``seconds`` (at least 5), after two untimed ones."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        device = resolve_device(training.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = build_network(training, data).to(device)
        params = [p for p in model.parameters() if p.requires_grad]
        loss_fn = as_loss(None)
        batch = min(training.batch_size, len(data.train_y))
        xb, yb = to_float(data.train_x[:batch]).to(device), data.train_y[:batch].to(device)
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


def thread_speedup(training: TrainConfig, data: DataSplits, threads: int, boost: int,
                   seconds: float = 0.15) -> float:
    """How many times faster a step runs on ``boost`` threads than on ``threads``: measured twice
    each, alternating, taking each side's faster measurement (the least disturbed)."""
    own = lent = float("inf")
    for _ in range(2):
        own = min(own, step_seconds(training, data, threads, seconds))
        lent = min(lent, step_seconds(training, data, boost, seconds))
    return own / lent


def decide(mode: bool | str, lending: Lending, training: TrainConfig, data: DataSplits) -> dict[str, Any]:
    """The decision to record for an experiment: ``mode`` true or false forces it; ``"auto"``
    measures (:func:`thread_speedup`) and lends from :data:`MIN_SPEEDUP` up. Returns what to record
    (``lend``, ``speedup`` where measured, the layout); the host records it once and keeps it."""
    layout = {"workers": lending.workers, "threads": lending.threads, "cores": lending.cores}
    if mode is not True and mode is not False:  # "auto"
        speedup = thread_speedup(training, data, lending.threads, lending.cores)
        return {"mode": "auto", **layout, "speedup": round(speedup, 3), "lend": speedup >= MIN_SPEEDUP}
    return {"mode": mode, **layout, "lend": mode}


def describe(decision: dict[str, Any]) -> str:
    """One line for the host's log."""
    verdict = "lent" if decision["lend"] else "not lent"
    if decision.get("mode") != "auto":
        return f"idle cores at a generation's barrier: {verdict} (evaluator.lend_idle_cores = {str(decision['mode']).lower()})"
    return (f"idle cores at a generation's barrier: {verdict}: a step on {decision['cores']} threads runs "
            f"{decision['speedup']:.2f}x as fast as on {decision['threads']} (lent from {MIN_SPEEDUP}x; "
            f"evaluator.lend_idle_cores = true/false decides instead)")
