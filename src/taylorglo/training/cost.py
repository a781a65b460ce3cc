"""What a training step of a network costs, counted from its shapes: never timed.

Choices that change results (whether a generation's last trainings get the idle cores, see
:mod:`taylorglo.evaluators.lending`) must not depend on how busy the machine is when an
experiment starts, so they are made from this count instead of a stopwatch: the same network,
input and batch size give the same number on any machine, quiet or loaded.

The count is the multiply-accumulates of the network's ``nn.Linear`` and ``nn.Conv1d/2d/3d``
layers (their weights' work, which is where a CPU spends a step and what extra threads split),
read from each layer's output shape in one forward pass of one sample. Work done through
functional calls (``x @ w`` inside a plug-in's ``forward``) is not seen, so such a network counts
as cheaper than it is: the choices made from the count then fall back to their safe default.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import TrainConfig
from .data import DataSplits
from .trainer import build_network

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def forward_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of the Linear and Conv layers in one forward pass of one sample of
    ``input_shape`` (channels first, no batch axis). Runs the model once, in eval mode (so a
    batch of one is valid for batch norm), without gradients, and leaves its mode as it was."""
    total = 0

    def count(module: nn.Module, _inputs: object, output: object) -> None:
        nonlocal total
        if not isinstance(output, torch.Tensor):
            return
        if isinstance(module, nn.Linear):
            total += output.numel() * module.in_features
        elif isinstance(module, _CONVS):
            per_output = (module.in_channels // module.groups) * math.prod(module.kernel_size)
            total += output.numel() * per_output

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Linear, *_CONVS))]
    was_training = model.training
    try:
        model.eval()
        parameter = next(model.parameters(), None)
        device = parameter.device if parameter is not None else torch.device("cpu")
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return total


def step_macs(model: nn.Module, input_shape: tuple[int, ...], batch_size: int) -> int:
    """Multiply-accumulates of one training step: forward and backward (about twice the
    forward's: the gradients of the inputs and of the weights) over a batch of ``batch_size``."""
    return 3 * batch_size * forward_macs(model, input_shape)


def network_macs(training: TrainConfig, data: DataSplits, model: nn.Module | None = None) -> int:
    """Multiply-accumulates of one training step of ``training``'s network on ``data`` (the
    count the ``"auto"`` rule reads): of ``model`` where the caller has built that network
    already, else of one built here. Leaves the caller's RNG as it was."""
    if model is None:
        with torch.random.fork_rng(devices=[]):
            model = build_network(training, data)
    return step_macs(model, data.input_shape, min(training.batch_size, len(data.train_y)))
