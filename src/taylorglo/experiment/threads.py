"""How many torch threads each training of an experiment runs on: a recorded fact, never the
layout of whoever resumes it.

A training's result depends on its thread count (floating-point sums split differently). So the
first ``start`` or ``final`` of an experiment records its *layout* in the store — how many
trainings ran at once, on how many threads each, over how many cores — and every later run
gives every job its threads from that record, whatever ``--workers`` or evaluator it runs with:
another layout changes how many trainings run at once, never what they compute. Where the layout
now differs, the host says so in one line and keeps the record.

The search's core lending (:mod:`taylorglo.evaluators.lending`) plans over the recorded layout
too, and its decision is recorded once, so a generation resumed anywhere gets the plan it began
with; by default that decision is a rule on the network's shapes, so a fresh run of the same
config on the same machine makes it the same way however busy the machine is.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from typing import Any

from ..errors import TaylorGLOError
from ..evaluators.base import Evaluator, Job
from ..evaluators.lending import META_KEY as LENDING_KEY
from ..evaluators.lending import Lending, decide, describe, upgrade
from .store import Store

#: The store's ``meta`` key holding the layout.
LAYOUT_KEY = "layout"


def _most_common(values: list[Any]) -> int | None:
    counted = Counter(v for v in values if isinstance(v, int) and v > 0)
    return counted.most_common(1)[0][0] if counted else None


def _from_earlier_version(store: Store, now: Lending) -> dict[str, Any] | None:
    """The layout a store written before layouts were recorded ran with: its lending decision's,
    else the threads its recorded trainings used (the search's and ``final`` 's apart)."""
    out: dict[str, Any] | None = None
    lent = store.get_meta(LENDING_KEY)
    if lent is not None:
        out = {"workers": lent["workers"], "threads": lent["threads"], "cores": lent["cores"]}
    else:
        threads = _most_common([(c.metrics or {}).get("threads") for c in store.candidates()])
        if threads is not None:
            out = {"workers": now.workers, "threads": threads, "cores": now.cores}
    final = _most_common([(r.metrics or {}).get("threads") for r in store.final_runs()])
    if final is not None:
        out = out or {"workers": now.workers, "threads": final, "cores": now.cores}
        out["final_threads"] = final
    return out


def recorded_layout(store: Store, runner: Evaluator, log: Callable[[str], None]) -> dict[str, Any]:
    """The experiment's layout: recorded by its first run (this one, if there was none)."""
    now = runner.layout()
    recorded = store.get_meta(LAYOUT_KEY)
    if recorded is None:
        recorded = _from_earlier_version(store, now) or {
            "workers": now.workers,
            "threads": now.threads,
            "cores": now.cores,
            "vectorize": runner.vectorize,
        }
        store.set_meta(LAYOUT_KEY, recorded)
    if "vectorize" not in recorded:  # recorded before populations were vectorized: one at a time
        recorded = {**recorded, "vectorize": 1}
        store.set_meta(LAYOUT_KEY, recorded)
    if (now.workers, now.threads) != (recorded["workers"], recorded["threads"]):
        log(
            f"layout: {now.workers} workers x {now.threads} threads now, but every training keeps the "
            f"{recorded['threads']} torch threads recorded when this experiment first ran ({recorded['workers']} "
            f"workers on {recorded['cores']} cores), so its results stay exactly those of that layout"
        )
    if runner.vectorize != recorded["vectorize"]:
        log(
            f"layout: evaluator.vectorize = {runner.vectorize} now, but this experiment first ran with "
            f"{recorded['vectorize']} and keeps to it (a vectorized training differs from a lone one in the last "
            "bits of floating point)"
        )
        runner.vectorize = int(recorded["vectorize"])
    return recorded


def final_jobs(store: Store, runner: Evaluator, jobs: list[Job], log: Callable[[str], None]) -> list[Job]:
    """``jobs`` (``final`` runs) with the threads every final run of the experiment trains on:
    its search's, unless an earlier version recorded final runs with others."""
    layout = recorded_layout(store, runner, log)
    threads = int(layout.get("final_threads", layout["threads"]))
    return [dataclasses.replace(job, threads=threads) for job in jobs]


def _measure(training: Any) -> Callable[[int, int], float]:
    """``lend_idle_cores = "measure"`` 's timing, here in the host (torch and the data are loaded
    only if that mode, opted into, asks)."""

    def measure(threads: int, cores: int) -> float:
        from ..training.step_timing import thread_speedup
        from ..training.trainers import trainer_for

        data = trainer_for(training).load_data()
        if data is None:
            raise TaylorGLOError(
                'evaluator.lend_idle_cores: "measure" times a step of the built-in network, and '
                "training.objective trains its own; use true or false"
            )
        return thread_speedup(training, data, threads, cores)

    return measure


def search_plan(
    store: Store, lend_mode: bool | str, runner: Evaluator, log: Callable[[str], None]
) -> Callable[[int], list[int]]:
    """``plan(n)``: the threads of a generation's ``n`` trainings, in dispatch order. The last
    ``n mod workers`` get the idle cores of the recorded layout where lending was decided (once
    per experiment, recorded; see :mod:`taylorglo.evaluators.lending`) from the runner's
    :meth:`~taylorglo.evaluators.base.Evaluator.facts` (or, opted into, a timing made here)."""
    layout = recorded_layout(store, runner, log)
    lending = Lending(layout["workers"], layout["threads"], layout["cores"])
    recorded = store.get_meta(LENDING_KEY)
    if recorded is None:  # the first start decides, for good
        decision = (
            {"mode": "unavailable", "lend": False}
            if runner.lending() is None
            else decide(lend_mode, lending, runner.facts().step_macs, _measure(runner.training))
        )
        store.set_meta(LENDING_KEY, decision)
    else:  # an earlier version's record says what it decided in this version's words
        decision = upgrade(recorded)
        if decision != recorded:
            store.set_meta(LENDING_KEY, decision)
    if decision.get("mode") != "unavailable":
        log(describe(decision))
    lend = bool(decision["lend"])

    def plan(n: int) -> list[int]:
        return [t or lending.threads for t in (lending.plan(n) if lend and n else [None] * n)]

    return plan
