"""One-step FGSM robustness of trained networks (SPEC §6).

The SPEC's robustness check perturbs each test image once, in the direction that raises the
network's *own training loss* the most to first order (the fast gradient sign method)::

    x' = clip(x + ε · sign(∇ₓ L(model(x), y)), 0, 1)

and reports the accuracy on ``x'`` for every ε of a sweep. The loss is the one the network was
trained with (a :class:`~taylorglo.loss.TaylorGLOLoss` or cross-entropy) because the question the
SPEC asks is whether a metalearned loss leaves the network it shaped less exploitable *through that
loss's own gradient*.

The attack works in pixel space. Every network in this project is
``nn.Sequential(Normalize(mean, std), net)``, so the model takes pixels in [0, 1] and ε is a
fraction of the pixel range whatever the dataset's normalisation; clipping to [0, 1] keeps the
perturbed image a valid image. Datasets may be stored as uint8; inputs go through
:func:`~taylorglo.training.augment.to_float` exactly as in training and evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ..errors import TaylorGLOError
from .augment import to_float

__all__ = ["DEFAULT_EPSILONS", "fgsm_accuracy", "fgsm_perturb", "fgsm_sweep", "parse_epsilons"]

#: The SPEC §6 sweep, in pixel units (images in [0, 1]).
DEFAULT_EPSILONS: tuple[float, ...] = (0.05, 0.10, 0.15, 0.20, 0.25, 0.30)


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Put every submodule in eval mode, then restore each one's own flag.

    The attack must see the network as evaluation does (dropout off, BatchNorm using and not
    updating its running statistics), otherwise the gradient is that of a random sub-network and
    the attack itself would change the model. Flags are restored per submodule, not with a single
    ``model.train(was_training)``, so a caller's mixed setting (say, a frozen BN inside a training
    model) survives.
    """
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, flag in flags:
            module.training = flag


def _check_epsilon(epsilon: float) -> float:
    value = float(epsilon)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"epsilon: must be a finite number >= 0, got {epsilon!r}")
    return value


def _perturb(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module, epsilon: float, clip: tuple[float, float]
) -> torch.Tensor:
    """The FGSM step for a model already in eval mode; ``x`` is float pixels."""
    # A caller inside torch.no_grad() or torch.inference_mode() (evaluation code often is) would
    # otherwise get no graph at all; the gradient is needed here, so switch both back on locally.
    with torch.inference_mode(False), torch.enable_grad():
        # A fresh leaf: the gradient is taken w.r.t. this input only. clone() also turns an
        # inference tensor into a normal one that autograd accepts.
        x_adv = x.detach().clone().requires_grad_(True)
        loss = loss_fn(model(x_adv), y)
        # autograd.grad (not backward) so nothing accumulates in the parameters' .grad.
        (grad,) = torch.autograd.grad(loss, x_adv)
    lo, hi = clip
    return (x.detach() + epsilon * grad.sign()).clamp_(lo, hi)


def fgsm_perturb(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: nn.Module,
    epsilon: float,
    clip: tuple[float, float] = (0.0, 1.0),
) -> torch.Tensor:
    """One FGSM step: ``clip(x + ε · sign(∇ₓ loss_fn(model(x), y)))``, detached.

    ``x`` is a batch of pixels, float in [0, 1] or uint8 (converted with ``to_float``); ``loss_fn``
    is the network's training loss, called as ``loss_fn(logits, y)``. The model runs in eval mode
    for the attack and every submodule's train/eval flag is restored afterwards; the gradient is
    taken with respect to the input only, so the parameters' ``.grad`` are left as they were.
    Where the gradient of an input component is exactly zero (a saturated softmax, say) that
    component is not moved — ``sign(0) = 0``, as in the method's definition.

    ``epsilon == 0`` returns (a copy of) the float input without running the model, so a sweep's
    ε = 0 entry is exactly the clean accuracy.
    """
    epsilon = _check_epsilon(epsilon)
    x = to_float(x)
    if epsilon == 0:
        return x.detach().clone()
    with _eval_mode(model):
        return _perturb(model, x, y, loss_fn, epsilon, clip)


def fgsm_accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: nn.Module,
    epsilon: float,
    batch_size: int = 100,
) -> float:
    """Accuracy in [0, 1] of ``model`` on FGSM-perturbed ``x`` (eval mode throughout).

    ``x`` may be a whole test split (uint8 or float, on any device): it is attacked and scored in
    batches of ``batch_size``, each moved to ``y``'s device, so memory stays that of one batch.
    Each batch's gradient is that of the batch-mean loss; the sign makes the result independent of
    the batch size. Correct predictions are counted on ``y``'s device and read back once.
    """
    epsilon = _check_epsilon(epsilon)
    if batch_size < 1:
        raise ValueError(f"batch_size: must be a positive integer, got {batch_size!r}")
    correct = torch.zeros((), dtype=torch.long, device=y.device)
    with _eval_mode(model):
        for start in range(0, len(y), batch_size):
            xb = to_float(x[start : start + batch_size].to(y.device))
            yb = y[start : start + batch_size]
            if epsilon > 0:
                xb = _perturb(model, xb, yb, loss_fn, epsilon, (0.0, 1.0))
            with torch.no_grad():
                correct += (model(xb).argmax(1) == yb).sum()
    return correct.item() / max(1, len(y))


def fgsm_sweep(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: nn.Module,
    epsilons: Iterable[float] = DEFAULT_EPSILONS,
    batch_size: int = 100,
) -> dict[float, float]:
    """``{ε: accuracy}`` for every ε given, in the order given (0.0 gives the clean accuracy).

    One full pass over ``x`` per ε: each ε's perturbation is computed from the clean input, never
    from another ε's result, as one-step FGSM prescribes.
    """
    return {float(eps): fgsm_accuracy(model, x, y, loss_fn, eps, batch_size) for eps in epsilons}


def parse_epsilons(text: str, field: str = "--eps") -> list[float]:
    """Parse ``"0.05,0.1"`` into ``[0.05, 0.1]`` for the CLI and configs.

    Every mistake is a one-line :class:`TaylorGLOError` that names ``field`` and says what to write
    instead, because the CLI prints exactly that line. Values must be in [0, 1] (ε is a
    distance in pixel units); empty pieces (``"0.1,"``) are ignored, but at least one value is needed.
    """
    example = "give comma-separated values like 0.05,0.1"
    values: list[float] = []
    for piece in str(text).split(","):
        piece = piece.strip()
        if not piece:
            continue
        try:
            value = float(piece)
        except ValueError:
            raise TaylorGLOError(f"{field}: {piece!r} is not a number; {example}") from None
        if not math.isfinite(value):
            raise TaylorGLOError(f"{field}: {piece!r} is not a finite number; {example}")
        if value < 0:
            raise TaylorGLOError(f"{field}: {piece!r} is negative; epsilons must be >= 0, {example}")
        if value > 1:
            raise TaylorGLOError(
                f"{field}: {piece!r} is larger than 1, the whole pixel range (images are in [0, 1]); {example}"
            )
        values.append(value)
    if not values:
        raise TaylorGLOError(f"{field}: no epsilon given; {example}")
    return values
