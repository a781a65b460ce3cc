"""What a one-shot experiment is to the host: ``start`` runs the one final loop
(:func:`~taylorglo.experiment.final.run_contest`) over the configured losses on the workers the
host started, so it is crash-safe and resumable like ``final`` (rows planned first, each run
recorded as it ends); ``final`` on it runs the same loop (``--repeats`` adds runs,
``--retry-failed`` retrains failed ones); ``status`` counts the runs and names the best loss.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..analysis.stats import loss_summary
from ..experiment.kind import ExperimentKind
from ..experiment.progress import Reporter, SearchProgress, Wording
from ..experiment.store import Store
from ..invariant import invariant_holds
from ..polynomial import check_inputs
from ..records import FinalLoss, FinalRun, Result
from .config import OneShotConfig

if TYPE_CHECKING:
    from ..experiment.config import ExperimentConfig
    from ..experiment.contenders import Contender, FinalOptions
    from ..training.config import TrainConfig


class OneShotKind(ExperimentKind):
    """See the module docstring."""

    table = "oneshot"
    settings: OneShotConfig
    report = "taylorglo.oneshot.report:write_oneshot_report"
    wording = Wording(
        label="one-shot",
        noun="run",
        counts=lambda c: f"runs ({c['evaluated']} finished, {c['failed']} failed)",
        bar=lambda c: f"finished {c['evaluated']}  failed {c['failed']}",
    )

    @classmethod
    def parse_settings(cls, table: dict[str, Any], training: TrainConfig) -> OneShotConfig:
        return OneShotConfig.from_table(table, inputs=training.loss_inputs)

    @staticmethod
    def training(config: ExperimentConfig) -> TrainConfig:
        """Every run trains the full schedule and is measured on the test set."""
        return config.final_training()

    @classmethod
    def outline(cls, config: ExperimentConfig) -> str:
        s: OneShotConfig = config.settings
        return f"one-shot, {len(s.losses)} losses x {s.repeats} repeats"

    def position(self) -> str:
        runs = [r for r in self.store.final_runs() if r.status != "pending"]
        return f"{len(runs)} of {self.settings.population} runs recorded"

    @classmethod
    def final_repeats(cls, config: ExperimentConfig) -> int:
        return config.settings.repeats

    @classmethod
    def final_contenders(
        cls, store: Store, directory: Path, config: ExperimentConfig, options: FinalOptions
    ) -> tuple[list[Contender], str]:
        options.refuse_choices("not for a one-shot experiment, which trains the losses its config names")
        losses = config.settings.losses
        return [g.contender() for g in losses], f"{len(losses)} given losses"

    def run(self, log: Any, reporter: Reporter) -> None:
        from ..experiment.contenders import FinalOptions
        from ..experiment.final import run_contest

        s = self.settings
        for g in s.losses:  # given, so trained as given; but a user should know it may not train
            if g.params is not None and not invariant_holds(
                list(g.params), self.facts.num_classes, "reference", check_inputs(g.inputs)
            ):
                self.log(
                    f"warning: {g.label} fails the reference invariant for {self.facts.num_classes} classes "
                    "(`taylorglo invariant` says why): it is trained as given, but may not learn"
                )
        progress = SearchProgress(1, s.population, self.runner.workers, wording=self.wording)
        for run in self.store.final_runs():
            if run.status != "pending" and run.repeat < s.repeats:
                progress.record(_as_result(run))
        reporter.begin(progress)
        reporter.update(progress)

        def recorded(run: FinalRun, loss: FinalLoss, done: int, total: int) -> None:
            progress.record(_as_result(run))
            reporter.update(progress)

        contenders, what = self.final_contenders(self.store, self.directory, self.config, FinalOptions())
        run_contest(
            self.store,
            self.directory,
            self.config,
            contenders,
            s.repeats,
            log,
            what,
            lambda jobs: contextlib.nullcontext(self.runner),
            save_models=s.save_models,
            progress=recorded,
        )
        progress.end_generation()
        reporter.end(progress)

    @classmethod
    def status_fields(cls, store: Store, config: ExperimentConfig) -> dict[str, Any]:
        """The runs recorded and planned, each loss's mean test accuracy, the best loss."""
        s: OneShotConfig = config.settings
        wanted = {g.label for g in s.losses}
        by_id = {loss.id: loss for loss in store.final_losses() if loss.label in wanted}
        # Every run of the configured losses, also those ``final --repeats`` added beyond the config's.
        runs = [r for r in store.final_runs() if r.loss_id in by_id]
        losses = []
        for loss_id, loss in by_id.items():
            summary = loss_summary(loss, [r for r in runs if r.loss_id == loss_id], config.training.loss_inputs)
            accuracy = summary["test_accuracy"]
            losses.append(
                {key: summary[key] for key in ("label", "params", "formula", "finished")}
                | {"mean": accuracy["mean"], "std": accuracy["std"]}
            )
        scored = [entry for entry in losses if entry["mean"] is not None]
        top = max(scored, key=lambda entry: entry["mean"], default=None)
        finished = sum(1 for r in runs if r.status == "finished")
        pending = sum(1 for r in runs if r.status == "pending")
        counts = {"finished": finished, "failed": len(runs) - finished - pending, "pending": pending}
        return {
            "generations_total": 0,
            "invariant": None,
            "started": bool(runs),
            "finished": len(runs) >= s.population and not pending,
            "runs": {"total": max(len(runs), s.population), **counts},
            "losses": losses,
            "best": None
            if top is None
            else {
                "label": top["label"],
                "params": top["params"],
                "fitness": top["mean"],
                "formula": top["formula"],
                "generation": None,
                "index": None,
            },
        }

    def finished_text(self, status: dict[str, Any]) -> str:
        best = status["best"]
        runs = status["runs"]
        top = "" if best is None else f"; best mean test accuracy {best['fitness']:.4f} ({best['label']})"
        return f"{runs['finished']} of {runs['total']} runs finished, {runs['failed']} failed{top}"

    @classmethod
    def summary(cls, directory: str, status: dict[str, Any], config: ExperimentConfig) -> list[str]:
        s: OneShotConfig = config.settings
        runs = status["runs"]
        lines = [
            f"{status['name']}: {status['state']}, {runs['finished']}/{runs['total']} runs finished "
            f"({len(s.losses)} losses x {s.repeats} repeats, paired seeds), {runs['failed']} failed, "
            f"{runs['pending']} pending"
        ]
        for entry in status["losses"]:
            mean = "-" if entry["mean"] is None else f"{entry['mean']:.4f}"
            std = "" if entry["std"] is None else f" ± {entry['std']:.4f}"
            lines.append(f"  {entry['label']}: test accuracy {mean}{std} over {entry['finished']} runs")
        lines.append(
            f"t-tests: taylorglo compare {directory}; report: taylorglo analyze {directory}; "
            f"the networks: {directory}/final/ (taylorglo robustness {directory})"
        )
        return lines


def _as_result(run: FinalRun) -> Result:
    """A recorded run as the progress display counts results."""
    status = "evaluated" if run.status == "finished" else run.status
    return Result(run.loss_id, run.repeat, status, fitness=run.test_accuracy, wall_time=run.wall_time)
