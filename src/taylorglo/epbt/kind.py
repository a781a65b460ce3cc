"""EPBT (``kind = "epbt"``) under the host's one generation loop
(:class:`~taylorglo.experiment.generations.GenerationKind`): a generation is one ready interval
of every member's training (:mod:`.runner`): **open** plans it from the previous generation's
recorded results (exploit and explore) and records every member before anything trains; the
jobs continue each member's network from its checkpoint; **close** records the generation done.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ..errors import TaylorGLOError
from ..evaluators.base import Job
from ..experiment.generations import GenerationKind
from ..experiment.progress import Wording
from ..experiment.threads import recorded_layout
from ..polynomial import DEFAULT_INPUTS, check_inputs
from ..records import Result
from .config import EPBTConfig
from .report import epbt_status, export_epbt, save_best_network
from .runner import CHECKPOINTS, job_for, plan_generation, plan_meta, prune_checkpoints
from .selection import is_novelty_step

#: The store's ``meta`` key holding the run's shape in steps (:func:`.runner.plan_meta`).
PLAN_KEY = "epbt_plan"


class EPBTKind(GenerationKind):
    """See the module docstring."""

    table = "epbt"
    settings: EPBTConfig
    threads: int | None = None
    report = "taylorglo.epbt.page:write_epbt_report"
    wording = Wording(
        label="EPBT",
        noun="member",
        counts=lambda c: f"member segments ({c['evaluated']} trained, {c['failed']} failed)",
        bar=lambda c: f"trained {c['evaluated']}  failed {c['failed']}",
    )

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        meta = plan_meta(self.config, self.facts.train_size)
        recorded = self.store.get_meta(PLAN_KEY)
        if recorded is not None and recorded != meta:
            raise TaylorGLOError(
                f"training: the schedule resolves to {meta} now but the experiment started with "
                f"{recorded}; the data or config changed: restore them or start a new directory"
            )
        if recorded is None:
            self.store.set_meta(PLAN_KEY, meta)
        self.meta = meta

    @classmethod
    def parse_settings(cls, table: dict[str, Any], training: Any) -> EPBTConfig:
        if training.objective is not None:
            raise TaylorGLOError(
                "training.objective: EPBT continues each member's network from its saved state, and an "
                'objective has no save/restore contract yet; use kind = "taylorglo" (or "oneshot") with it'
            )
        if check_inputs(training.loss_inputs) != DEFAULT_INPUTS:
            raise TaylorGLOError(
                "training.loss_inputs: EPBT evolves losses of x and y; losses of more inputs are searched "
                'with kind = "taylorglo" (or trained with kind = "oneshot")'
            )
        return EPBTConfig.from_dict(table)

    @staticmethod
    def training(config: Any) -> Any:
        """Members train stretches of the full schedule."""
        return config.training

    @classmethod
    def status_fields(cls, store: Any, config: Any) -> dict[str, Any]:
        """The best member of the final population, its genes and schedule; the run's shape."""
        return {**epbt_status(store, config), "invariant": config.settings.invariant}

    def generations(self) -> int:
        return self.meta["generations"]

    def describe(self) -> str:
        e, meta = self.settings, self.meta
        return (
            f"EPBT, {e.population} members, {meta['generations']} generations of {meta['ready_steps']} steps "
            f"({meta['total_steps']} in all)"
        )

    def begin(self) -> None:
        self.threads = recorded_layout(self.store, self.runner, self.log)["threads"]
        (self.directory / CHECKPOINTS).mkdir(exist_ok=True)

    def open(self, generation: int) -> None:
        candidates, members = plan_generation(self.store, self.config, generation, self.meta, self.facts.num_classes)
        plan = {
            "start": members[0].start_step,
            "stop": members[0].stop_step,
            "novelty": is_novelty_step(generation, self.settings),
        }
        self.store.open_generation(generation, json.dumps(plan).encode(), candidates, members)

    def jobs(self, generation: int) -> list[Job]:
        prune_checkpoints(self.directory, self.store, generation)
        candidates, members = self.store.candidates(generation), self.store.members(generation)
        return [
            dataclasses.replace(job_for(self.directory, self.config, c, m), threads=self.threads)
            for c, m in zip(candidates, members)
            if c.status == "pending"
        ]

    def close(self, generation: int) -> None:
        self.store.close_generation(generation, b"{}", self.settings.mutate_sigma)

    def export(self) -> None:
        export_epbt(self.directory, self.store, self.config)

    def end(self) -> None:
        latest = self.store.latest_generation()
        if latest is not None:  # the run is over: only the final population's networks stay
            prune_checkpoints(self.directory, self.store, latest.generation, sources=False)
        export_epbt(self.directory, self.store, self.config, final=True)
        from ..training.data import load_training_data

        t = self.config.training
        data = load_training_data(t)
        saved = save_best_network(self.directory, self.store, self.config, data)
        if saved is not None:
            self.log(f"best member's network saved to {saved}")

    def result_detail(self, result: Result) -> str:
        m = result.metrics or {}
        return f" lr {m['lr']:.3g} wd {m['weight_decay']:.3g}" if "lr" in m else ""

    @classmethod
    def outline(cls, config: Any) -> str:
        e = config.epbt
        ready = (
            f"{e.ready_steps} steps"
            if e.ready_steps
            else f"{e.ready_epochs:g} epochs"
            if e.ready_epochs
            else "a tenth of the schedule"
        )
        return f"EPBT with {e.population} members evolving {', '.join(e.evolve) or 'nothing'} every {ready}"

    @classmethod
    def summary(cls, directory: str, status: dict[str, Any], config: Any) -> list[str]:
        c, total = status["candidates"], status["generations_total"]
        lines = [
            f"{status['name']}: {status['state']}, {status['generations_completed']}/{total or '?'} EPBT "
            f"generations of {status['ready_steps'] or '?'} steps, {status['population']} members: "
            f"{c['evaluated']} segments trained, {c['failed']} failed; {status['exploits']} exploits, "
            f"{status['novelty_copies']} novelty copies, {status['invariant_redraws']} mutated losses "
            f"rejected by the {status['invariant']} invariant (never trained)"
        ]
        best = status["best"]
        if best is None:
            return [*lines, "no generation is complete yet"]
        test = "" if best["test_accuracy"] is None else f", test accuracy {best['test_accuracy']:.4f}"
        return [
            *lines,
            f"best member: {best['generation']}:{best['index']}, validation accuracy {best['fitness']:.4f}"
            f"{test}; lr {best['lr']:.3g}, weight decay {best['weight_decay']:.3g}; its loss now:",
            f"  {best['formula']}",
            f"results in {directory}/: best.json (best member and its {best['schedule_length']}-step loss "
            f"schedule), members.csv (every member, its parent and genes), generations.csv, "
            f"experiment.sqlite (everything), host.log, checkpoints/",
        ]

    @classmethod
    def final_contenders(cls, store: Any, directory: Any, config: Any, options: Any) -> tuple[list[Any], str]:
        from .final import epbt_contenders

        return epbt_contenders(store, directory, config, options)

    @classmethod
    def invocation(cls, directory: Any, config: Any, generation: int, index: int, params: Any, full: bool) -> str:
        raise TaylorGLOError(
            "CONFIG|DIR: an EPBT member continues a checkpoint, which `taylorglo train` cannot; "
            "see members.csv and best.json, or replay the best schedule with `taylorglo final`"
        )

    def finished_text(self, status: dict[str, Any]) -> str:
        best = status.get("best")
        if not best:
            return "best member -"
        test = best.get("test_accuracy")
        return f"best member {best['fitness']:.4f}" + (f" (test {test:.4f})" if test is not None else "")
