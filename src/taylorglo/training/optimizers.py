"""The optimizers a training can use, by name: ``[training] optimizer``.

``"sgd"`` (the default, and the papers' choice: momentum 0.9) is :class:`.sgd.SGD`, which a
vectorized population steps too; ``"adam"`` is ``torch.optim.Adam`` with the config's learning
rate and weight decay (PyTorch's defaults otherwise), the reference's ``overrideOptimizer``. Both
keep the ``param_groups`` / ``state_dict`` interface a training and a saved EPBT state use.
A new optimizer is one entry in :data:`OPTIMIZERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: A :class:`~.config.TrainConfig` (not imported: the config module validates names against
#: :data:`OPTIMIZERS`, so this module stays below it).
TrainConfig = Any


def _sgd(params: Iterable[torch.Tensor], lr: float, config: TrainConfig) -> Any:
    from .sgd import SGD

    return SGD(params, lr=lr, momentum=config.momentum, nesterov=config.nesterov, weight_decay=config.weight_decay)


def _adam(params: Iterable[torch.Tensor], lr: float, config: TrainConfig) -> Any:
    import torch

    # torch.optim's first optimizer imports the compiler (about a second, once per process):
    # paid only by the trainings that ask for Adam.
    return torch.optim.Adam(params, lr=lr, weight_decay=config.weight_decay)


#: Every optimizer by name: ``(parameters, learning rate, config) -> optimizer``.
OPTIMIZERS: dict[str, Callable[[Iterable[torch.Tensor], float, TrainConfig], Any]] = {"sgd": _sgd, "adam": _adam}


def build_optimizer(params: Iterable[torch.Tensor], lr: float, config: TrainConfig) -> Any:
    """The optimizer ``config.optimizer`` names, over ``params``, starting at ``lr``."""
    return OPTIMIZERS[config.optimizer](params, lr, config)
