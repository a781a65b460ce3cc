"""The hidden activations a built-in network can use: the model option ``activation``.

The reference's trainer replaced every ReLU of AllCNN-C, its ResNets and Wide ResNets with an
expression (``overrideActivationFunction``) to study how a found loss fares under other
non-linearities; taylorglo names them instead of evaluating text. A network built with
``activation = "swish"`` has the same modules and parameters as with ReLU, only its
non-linearities differ. A new one is one :func:`register_activation` call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ..errors import TaylorGLOError

__all__ = ["ACTIVATIONS", "activation_factory", "register_activation"]


class SoftplusELU(nn.Module):
    """``softplus(elu(x))``: smooth, positive, and near the identity for large inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.elu, self.softplus = nn.ELU(), nn.Softplus()

    def forward(self, x: Any) -> Any:
        return self.softplus(self.elu(x))


#: Name → a factory of a fresh activation module. ``relu`` is every model's default.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {}


def register_activation(name: str, factory: Callable[[], nn.Module]) -> None:
    """Make ``activation = name`` build ``factory()`` wherever a network has a non-linearity."""
    ACTIVATIONS[name] = factory


register_activation("relu", lambda: nn.ReLU(inplace=True))
register_activation("swish", nn.SiLU)  # x·sigmoid(x); the reference's "x*tf.sigmoid(x)"
register_activation("logsigmoid", nn.LogSigmoid)  # the reference's "tf.log(tf.sigmoid(x))"
register_activation("softplus-elu", SoftplusELU)  # the reference's "nn.Softplus()(nn.ELU()(x))"
register_activation("elu", nn.ELU)
register_activation("gelu", nn.GELU)
register_activation("tanh", nn.Tanh)


def activation_hint() -> str:
    return "one of " + ", ".join(repr(n) for n in ACTIVATIONS)


def is_activation(value: Any) -> bool:
    return isinstance(value, str) and value in ACTIVATIONS


def activation_factory(name: str, field: str = "model_options.activation") -> Callable[[], nn.Module]:
    """The factory ``name`` stands for, or one line listing the names there are."""
    if not is_activation(name):
        raise TaylorGLOError(f"{field}: unknown activation {name!r}; choose {activation_hint()}")
    return ACTIVATIONS[name]
