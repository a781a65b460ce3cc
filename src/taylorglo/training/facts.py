"""What a host must know about a training before it dispatches any: found where it will run.

A search's host needs a few facts about its candidates' training (the data's size and classes,
for the invariant; the network's step cost, for the core-lending rule; the device) and nothing
else that needs torch or the data. Finding them costs an ``import torch`` and a dataset load,
which the workers pay anyway, so an evaluator asks one of its workers (``Evaluator.facts``) and
the host never imports torch: its workers start at once and the first candidate trains as soon
as one of them is ready. The dataclass is torch-free; :func:`probe` imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import TrainConfig
    from .data import DataSplits


@dataclass(frozen=True)
class TrainingFacts:
    """``summary``: the dataset in one line (for the log); ``num_classes``; ``train_size``: its
    training examples; ``step_macs``: multiply-accumulates of one training step
    (:func:`taylorglo.training.cost.network_macs`); ``device``: the type of the device it
    trains on (``"cpu"``, ``"cuda"``)."""

    summary: str
    num_classes: int
    train_size: int
    step_macs: int
    device: str


def probe(training: TrainConfig, data: DataSplits | None = None) -> TrainingFacts:
    """The facts of ``training`` on ``data`` (loaded when None), after the checks a host makes
    before training anything: the dataset loads (``training.dataset``), the network takes its
    inputs and gives one logit per class (``training.model``), the device exists
    (``training.device``); each raises :class:`~taylorglo.errors.TaylorGLOError` in one line."""
    from .cost import network_macs
    from .data import load_dataset
    from .trainer import check_network, resolve_device

    if data is None:
        data = load_dataset(training.dataset, training.data_dir, training.data_fraction, field="training.dataset")
    network = check_network(training, data)
    device = resolve_device(training.device)
    return TrainingFacts(
        summary=data.summary(),
        num_classes=data.num_classes,
        train_size=len(data.train_y),
        step_macs=network_macs(training, data, network),  # counted on the network just checked
        device=device.type,
    )
