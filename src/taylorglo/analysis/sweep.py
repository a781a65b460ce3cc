"""FGSM sweeps over an experiment's final networks (``taylorglo robustness``).

``final`` saves every network it trains; this module attacks each one on the test set at every ε
(SPEC §6) with the loss it was trained with, and summarises per loss: mean ± std accuracy per ε
over the repeats, and a Welch t-test against cross-entropy at each ε. The result is written to
``DIR/robustness.json`` and ``DIR/robustness.csv`` (the report shows it when present).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ..atomic import write_atomic
from ..errors import TaylorGLOError
from ..experiment.reading import open_experiment
from ..records import CROSS_ENTROPY_LABEL
from ..training.checkpoint import MODULE_FORMAT, load_network
from ..training.config import TrainConfig
from ..training.data import DataSplits, load_training_data
from ..training.fgsm import DEFAULT_EPSILONS, Bounds, bounds_of, fgsm_sweep
from ..training.trainer import as_loss
from .stats import describe, ttests

RESULT_FILE = "robustness.json"
#: Which loss FGSM differentiates: each network's own training loss (SPEC §6), or cross-entropy.
ATTACK_LOSSES = ("own", "cross-entropy")


def robustness_sweep(
    directory: str | os.PathLike[str],
    epsilons: Sequence[float] = DEFAULT_EPSILONS,
    labels: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    attack_loss: str = "own",
) -> dict[str, Any]:
    """Attack every saved final network of ``directory`` at each ε (0 included: clean accuracy).

    ``attack_loss="own"`` (SPEC §6) differentiates each network's own training loss. A TaylorGLO
    loss is a polynomial in the softmax output, so on a confidently classified input its gradient
    through the saturated softmax can vanish and FGSM (``sign(0) = 0``) leaves the input alone:
    gradient masking, which overstates robustness. ``attack_loss="cross-entropy"`` attacks every
    network through cross-entropy instead, whose log-softmax gradient does not vanish, as a check.
    """
    if attack_loss not in ATTACK_LOSSES:
        raise TaylorGLOError(f"--attack-loss: must be one of {', '.join(ATTACK_LOSSES)}, got {attack_loss!r}")
    experiment = open_experiment(directory)
    config = experiment.config
    root = experiment.directory
    with experiment.reader() as store:
        losses = store.final_losses()
        runs = store.final_runs()
    if labels:
        unknown = [label for label in labels if label not in {loss.label for loss in losses}]
        if unknown:
            known = ", ".join(loss.label for loss in losses) or "none yet"
            raise TaylorGLOError(f"--loss: no final loss {unknown[0]!r} in {root}; final losses: {known}")
        losses = [loss for loss in losses if loss.label in labels]
    eps = [0.0] + [float(e) for e in epsilons if float(e) != 0.0]
    training = config.training
    work = []
    missing: dict[str, int] = {}  # finished runs without a network (--no-save-models, files removed): said so
    why_missing: dict[str, str] = {}  # what the run recorded about it (a user objective that saved none)
    for loss in losses:
        for run in runs:
            if run.loss_id != loss.id or run.status != "finished":
                continue
            if run.model_path and (root / run.model_path).is_file():
                work.append((loss, run))
            else:
                missing[loss.label] = missing.get(loss.label, 0) + 1
                reason = (run.metrics or {}).get("model_not_saved")
                if reason:
                    why_missing.setdefault(loss.label, str(reason))
    if not work:
        if why_missing:
            raise TaylorGLOError(f"DIR: {str(root)!r} has no saved final networks: {next(iter(why_missing.values()))}")
        raise TaylorGLOError(
            f"DIR: {str(root)!r} has no saved final networks; run `taylorglo final {root}` first "
            "(without --no-save-models)"
        )
    dataset: list[DataSplits] = []  # loaded once, when a network taylorglo built needs it
    per_loss: dict[str, dict[float, list[float]]] = {loss.label: {e: [] for e in eps} for loss, _ in work}
    unit = "pixel range"
    for done, (loss, run) in enumerate(work, 1):
        model, info = load_network(root / run.model_path)
        x, y, bounds = _attacked_on(info, dataset, training, root / run.model_path)
        unit = bounds.unit
        loss_fn = as_loss(loss.params if attack_loss == "own" else None, training.round_params, training.loss_inputs)
        for e, accuracy in fgsm_sweep(model, x, y, loss_fn, eps, training.eval_batch_size, bounds).items():
            per_loss[loss.label][e].append(accuracy)
        if progress is not None:
            progress(done, len(work))
    baseline = per_loss.get(CROSS_ENTROPY_LABEL)
    result = {
        "name": config.name,
        "directory": str(root),
        "epsilons": eps,
        "epsilon_unit": unit,
        "attack_loss": attack_loss,
        "missing_networks": missing,
        "missing_reasons": why_missing,
        "losses": [
            {
                "label": label,
                "source": next(loss.source for loss in losses if loss.label == label),
                "accuracy": [
                    {
                        "epsilon": e,
                        **describe(values),
                        "values": values,
                        "welch_p_vs_cross_entropy": None
                        if baseline is None or label == CROSS_ENTROPY_LABEL
                        else ttests(values, baseline[e])["welch_p"],
                    }
                    for e, values in by_eps.items()
                ],
            }
            for label, by_eps in per_loss.items()
        ],
    }
    write_atomic(root / RESULT_FILE, json.dumps(result, indent=2) + "\n")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["loss", "epsilon", "n", "mean", "std", "welch_p_vs_cross_entropy"])
    for entry in result["losses"]:
        for a in entry["accuracy"]:
            writer.writerow([entry["label"], a["epsilon"], a["n"], a["mean"], a["std"], a["welch_p_vs_cross_entropy"]])
    write_atomic(root / "robustness.csv", out.getvalue())
    return result


def _attacked_on(
    info: dict[str, Any], dataset: list[DataSplits], training: TrainConfig, path: Path
) -> tuple[torch.Tensor, torch.Tensor, Bounds]:
    """(inputs, targets, bounds) a saved network is attacked on: the test split a user objective
    saved with its module (clipped to the ``input_range`` it gave), else the experiment's dataset."""
    if info.get("format") == MODULE_FORMAT:
        if info.get("inputs") is None:
            raise TaylorGLOError(
                f"model: {str(path)!r} was saved without a test split to attack; call "
                "trial.save_model(model, inputs=x_test, targets=y_test) in the objective and run final again"
            )
        clip = info.get("input_range")
        return (
            info["inputs"],
            info["targets"],
            Bounds(clip=None if clip is None else (float(clip[0]), float(clip[1])), unit="input units"),
        )
    if not dataset:
        dataset.append(load_training_data(training))
    data = dataset[0]
    return data.test_x, data.test_y, bounds_of(data, training.attack_space)


def read_robustness(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The last sweep's result, if ``taylorglo robustness`` has run."""
    path = Path(directory) / RESULT_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
