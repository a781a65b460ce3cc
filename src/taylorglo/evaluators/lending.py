"""Lending a generation's idle cores to its last trainings, and deciding whether that pays.

CMA-ES needs a whole generation's results before it asks the next, so a generation ends at a
barrier: when its ``n`` trainings are not a multiple of the ``w`` workers, the last
``k = n mod w`` run while the other workers have nothing to do. An evaluator whose workers share
one machine's cores can give those last trainings the idle cores (:func:`lend_idle_cores`).

Whether that helps depends on the network: a second thread splits a step's matrix products, which
pays for a convolutional network and not for a small MLP, whose 2-thread run only competes with the
other worker's last training. A candidate's result depends on its thread count, so the decision
decides results, and it must not depend on how busy the machine happens to be when an experiment
starts. So by default (``[evaluator] lend_idle_cores = "auto"``) it follows a rule on a count
taken from the network's shapes (:func:`taylorglo.training.cost.step_macs`): lend where a training
step does at least :data:`MIN_STEP_MACS` multiply-accumulates. The threshold sits between the
built-in networks that measured faster on more threads and those that did not
(``benchmarks/lending.py``; the README keeps its table). ``true`` or ``false`` decide instead;
``"measure"`` (opt-in) times a few steps on 1 and on all threads and lends from
:data:`MIN_SPEEDUP` up, so results then depend on the machine's load at the first ``start``:
``status`` and the report say so. The decision is recorded in the experiment's database once;
every later ``start`` plans the same way (:mod:`taylorglo.experiment.threads`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Lend where a training step does at least this many multiply-accumulates (``"auto"``).
MIN_STEP_MACS = 10_000_000
#: Lend where a step on the lent threads runs at least this many times faster than on a worker's
#: own (``"measure"`` only).
MIN_SPEEDUP = 1.3
#: The store's ``meta`` key holding the decision.
META_KEY = "lending"
#: What a recorded decision says about results that depend on a timing (``status``, the report).
TIMING_NOTE = (
    "results depend on a timing: whether idle cores were lent was measured on this machine at the "
    "first start, so a fresh run of the same config may differ (see the README's Reproducibility)"
)


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


def decide(
    mode: bool | str, lending: Lending, step_macs: int, measure: Callable[[int, int], float] | None = None
) -> dict[str, Any]:
    """The decision to record for an experiment: ``true`` or ``false`` forces it; ``"auto"``
    lends where a step does at least :data:`MIN_STEP_MACS` multiply-accumulates (``step_macs``,
    a count, the same on any machine at any load); ``"measure"`` calls ``measure(threads,
    cores)``, the speed-up of a step on ``cores`` threads over one on ``threads`` (a timing: the
    host passes :func:`~taylorglo.training.step_timing.thread_speedup`; tests pass their own), and
    lends from :data:`MIN_SPEEDUP` up. Returns what to record; the host records it once and keeps it."""
    layout = {"workers": lending.workers, "threads": lending.threads, "cores": lending.cores}
    if mode == "auto":
        return {
            "mode": "auto",
            **layout,
            "step_macs": step_macs,
            "min_step_macs": MIN_STEP_MACS,
            "lend": step_macs >= MIN_STEP_MACS,
        }
    if mode == "measure":
        if measure is None:
            raise ValueError('lend_idle_cores = "measure" needs a measurement')
        speedup = measure(lending.threads, lending.cores)
        return {
            "mode": "measure",
            **layout,
            "speedup": round(speedup, 3),
            "min_speedup": MIN_SPEEDUP,
            "lend": speedup >= MIN_SPEEDUP,
        }
    if mode is True or mode is False:
        return {"mode": mode, **layout, "lend": mode}
    raise ValueError(f"lend_idle_cores: unknown mode {mode!r}")


def upgrade(decision: dict[str, Any]) -> dict[str, Any]:
    """A decision as this version records it. Before the ``"auto"`` rule counted, ``"auto"``
    meant a measurement: such a record (it has a ``speedup`` and no ``step_macs``) is that of
    ``"measure"``, kept as it was decided, so the experiment resumes with the same plan."""
    if decision.get("mode") == "auto" and "speedup" in decision and "step_macs" not in decision:
        return {
            **decision,
            "mode": "measure",
            "min_speedup": decision.get("min_speedup", MIN_SPEEDUP),
            "recorded_as": "auto",
        }
    return decision


def depends_on_timing(decision: dict[str, Any] | None) -> bool:
    """Whether results of the experiment that recorded ``decision`` depend on a timing."""
    return decision is not None and upgrade(decision).get("mode") == "measure"


def describe(decision: dict[str, Any]) -> str:
    """One line for the host's log (and ``status``)."""
    decision = upgrade(decision)
    verdict = "lent" if decision["lend"] else "not lent"
    mode = decision.get("mode")
    head = f"idle cores at a generation's barrier: {verdict}"
    if mode == "unavailable":
        return f"{head} (the evaluator has no cores to lend)"
    if mode == "auto" and not decision["step_macs"]:
        return (
            f"{head}: the cost of a training step is unknown (the objective trains its own "
            "network; evaluator.lend_idle_cores = true lends them)"
        )
    if mode == "auto":
        return (
            f"{head}: a training step does {decision['step_macs']:.3g} multiply-accumulates (lent from "
            f"{decision['min_step_macs']:.3g}; evaluator.lend_idle_cores = true/false decides instead)"
        )
    if mode == "measure":
        how = (
            'measured by an earlier taylorglo\'s "auto"'
            if decision.get("recorded_as") == "auto"
            else 'evaluator.lend_idle_cores = "measure"'
        )
        return (
            f"{head}: a step on {decision['cores']} threads ran {decision['speedup']:.2f}x as fast as on "
            f"{decision['threads']} (lent from {decision['min_speedup']}x; {how}); {TIMING_NOTE}"
        )
    return f"{head} (evaluator.lend_idle_cores = {str(mode).lower()})"
