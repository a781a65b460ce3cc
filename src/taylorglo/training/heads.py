"""Auxiliary classifiers: extra read-outs from inside a network, each trained with its own loss.

A network with auxiliary heads (the model option ``aux_heads = true`` of ``allcnnc``, ``resnetN``
and ``preresnetN``; any plug-in that follows the same protocol) says how many it has in
``aux_heads`` and returns ``(logits, [head logits, ...])`` from ``forward_with_aux``. Its plain
``forward`` returns the class logits only, so evaluation, attacks and everything else that reads a
network see it as any other; only the training step asks for the heads, and adds
``weight · loss(head logits)`` for each (``training.aux_losses``, ``training.aux_weights``): the
deep supervision the reference studied with its ``auxiliaryClassifiers``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["AuxHead", "ReferenceAuxHead", "aux_heads", "forward_with_aux"]


class AuxHead(nn.Module):
    """1×1 conv to 96 channels, the network's activation, 1×1 conv to the classes, global
    average pool: one logit per class from a feature map of any size."""

    def __init__(self, channels: int, num_classes: int, act: Callable[[], nn.Module], hidden: int = 96) -> None:
        super().__init__()
        self.stack = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), act(), nn.Conv2d(hidden, num_classes, 1), nn.AdaptiveAvgPool2d(1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stack(x).flatten(1)


class ReferenceAuxHead(nn.Module):
    """The reference's head: as :class:`AuxHead` with the activation on its class map too, then
    ``AvgPool2d(6, stride=num_classes)`` and a flatten. On a map larger than 6×6 (AllCNN-C's
    first head sees 16×16) that pool leaves several cells per class, so the head gives
    ``num_classes × cells`` outputs, and its loss is a softmax over all of them with the label's
    index among the first ``num_classes``: kept as the reference trained it."""

    def __init__(self, channels: int, num_classes: int, act: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.stack = nn.Sequential(
            nn.Conv2d(channels, 96, 1), act(), nn.Conv2d(96, num_classes, 1), act(), nn.AvgPool2d(6, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stack(x).flatten(1)


def aux_heads(model: nn.Module) -> int:
    """How many auxiliary heads ``model`` (or the network :func:`~.trainer.build_network` wraps
    it in) trains; 0 for a network without."""
    return int(getattr(model, "aux_heads", 0) or 0)


def forward_with_aux(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``model``'s logits and its heads' outputs for ``x`` (no heads: an empty list)."""
    if not aux_heads(model):
        return model(x), []
    logits, aux = model.forward_with_aux(x)  # type: ignore[operator]
    return logits, list(aux)
