"""Stochastic gradient descent with momentum, the one optimizer every training here uses.

Why not ``torch.optim.SGD``: building the first ``torch.optim`` optimizer in a process imports
``torch._dynamo`` (its methods are wrapped to keep the compiler out), which costs about as much
as importing torch itself. A search's workers train with nothing but this update, so they paid
that for nothing; a one-second delay on every worker is most of a short search's start-up.

This class computes exactly what ``torch.optim.SGD`` computes on the CPU (its single-tensor
path, the one PyTorch takes for CPU tensors): the same operations in the same order, so a
network trained here is bit for bit the one ``torch.optim.SGD`` trains (tested). Its
:meth:`state_dict` has the same layout too, so a checkpoint either wrote loads in the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

#: The hyperparameters of a parameter group, as ``torch.optim.SGD`` names them.
_HYPER = ("lr", "momentum", "dampening", "weight_decay", "nesterov")


class SGD:
    """``torch.optim.SGD(params, lr, momentum, dampening, weight_decay, nesterov)`` for one
    parameter group: ``param_groups``, ``state``, :meth:`zero_grad`, :meth:`step`,
    :meth:`state_dict` and :meth:`load_state_dict`, nothing else.

    ``lr`` and ``weight_decay`` may also be 1-D tensors, one value per member of a vectorized
    population (:mod:`.population`) whose parameters are stacked along their first dimension:
    each member then steps with its own (EPBT's members each carry their own hyperparameters)."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        group: dict[str, Any] = {
            "params": list(params),
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": False,
        }
        self.param_groups = [group]
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.param_groups[0]["params"]:
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.detach_()
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        weight_decay, nesterov = group["weight_decay"], group["nesterov"]
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = p.grad
            if torch.is_tensor(weight_decay):
                grad = grad.addcmul(p, _per_member(weight_decay, p))
            elif weight_decay != 0:
                grad = grad.add(p, alpha=weight_decay)
            if momentum != 0:
                state = self.state.setdefault(p, {})
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = grad.detach().clone()
                else:
                    buf.mul_(momentum).add_(grad, alpha=1 - dampening)
                grad = grad.add(buf, alpha=momentum) if nesterov else buf
            if torch.is_tensor(lr):
                p.addcmul_(grad, _per_member(lr, p), value=-1)
            else:
                p.add_(grad, alpha=-lr)

    def state_dict(self) -> dict[str, Any]:
        """``torch.optim.SGD.state_dict()`` 's layout: per-parameter state keyed by position."""
        params = self.param_groups[0]["params"]
        state = {i: dict(self.state[p]) for i, p in enumerate(params) if p in self.state}
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        return {"state": state, "param_groups": [{**group, "params": list(range(len(params)))}]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load what :meth:`state_dict` (or ``torch.optim.SGD`` 's, one group) returned; like
        torch's, keeps the given tensors where they already have the parameter's device and dtype."""
        groups = state_dict["param_groups"]
        params = self.param_groups[0]["params"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(params):
            raise ValueError("loaded state dict does not match this optimizer's parameters")
        for k in _HYPER:
            if k in groups[0]:
                self.param_groups[0][k] = groups[0][k]
        self.state = {}
        for position, saved in zip(groups[0]["params"], params):
            values = state_dict["state"].get(position)
            if values:
                self.state[saved] = {
                    k: v.to(dtype=saved.dtype, device=saved.device) if torch.is_tensor(v) else v
                    for k, v in values.items()
                }


def _per_member(values: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """``values`` (one per member) shaped to broadcast over the stacked parameter ``p``."""
    return values.to(dtype=p.dtype, device=p.device).view(-1, *([1] * (p.dim() - 1)))
