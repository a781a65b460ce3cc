"""What a host must know about a training before it dispatches any: found where it will run.

A search's host needs a few facts about its candidates' training (the data's size and classes,
for the invariant; the network's step cost, for the core-lending rule; the device) and nothing
else that needs torch or the data. Finding them costs an ``import torch`` and a dataset load,
which the workers pay anyway, so an evaluator asks one of its workers (``Evaluator.facts``) and
the host never imports torch: its workers start at once and the first candidate trains as soon
as one of them is ready. Torch-free; the trainer that finds them (:func:`.trainers.probe`)
imports torch where it runs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainingFacts:
    """``summary``: the dataset in one line (for the log); ``num_classes``; ``train_size``: its
    training examples; ``step_macs``: multiply-accumulates of one training step
    (:func:`taylorglo.training.cost.network_macs`); ``device``: the type of the device it
    trains on (``"cpu"``, ``"cuda"``); ``aux_heads``: the network's auxiliary classifier heads
    (:mod:`taylorglo.training.heads`), which a vectorized population does not train."""

    summary: str
    num_classes: int
    train_size: int
    step_macs: int
    device: str
    aux_heads: int = 0
