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
:func:`~taylorglo.training.augment.to_float` exactly as in training and evaluation. Feature rows
are attacked in units of each feature's standard deviation and not clipped (:class:`Bounds`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import TaylorGLOError
from .augment import to_float

if TYPE_CHECKING:
    from .data import DataSplits

__all__ = [
    "DEFAULT_EPSILONS",
    "PIXELS",
    "Bounds",
    "bounds_of",
    "fgsm_accuracy",
    "fgsm_perturb",
    "fgsm_sweep",
    "parse_epsilons",
]

#: The SPEC §6 sweep, in pixel units (images in [0, 1]).
DEFAULT_EPSILONS: tuple[float, ...] = (0.05, 0.10, 0.15, 0.20, 0.25, 0.30)


@dataclass(frozen=True)
class Bounds:
    """What ε measures and where a perturbed input must stay.

    Images: ε is a share of the pixel range and perturbed pixels are clipped to [0, 1] (SPEC §6).
    Feature rows have neither a common unit nor a valid range: ε is in standard deviations of
    each feature (``scale`` = the features' std) and nothing is clipped, so ε means the same on a
    feature measured in thousands as on one measured in thousandths.
    """

    clip: tuple[float, float] | None = (0.0, 1.0)
    scale: tuple[float, ...] | None = None
    #: What ε is counted in, for tables: "pixel range", "feature std", "input units".
    unit: str = "pixel range"
    #: With an origin, ``clip`` bounds ``(x − origin) / scale`` instead of ``x`` (per channel):
    #: the normalised-space clip of the reference's attack (:func:`bounds_of`).
    origin: tuple[float, ...] | None = None

    def step(self, x: torch.Tensor, epsilon: float, direction: torch.Tensor) -> torch.Tensor:
        """``x`` moved by ``ε · scale · direction``, clipped."""
        shape = (1, -1) + (1,) * (x.dim() - 2)
        scale = None if self.scale is None else torch.as_tensor(self.scale, dtype=x.dtype, device=x.device).view(shape)
        if scale is not None:
            direction = direction * scale
        moved = x.detach() + epsilon * direction
        if self.clip is None:
            return moved
        if self.origin is None:
            return moved.clamp_(*self.clip)
        origin = torch.as_tensor(self.origin, dtype=x.dtype, device=x.device).view(shape)
        unit = torch.ones_like(origin) if scale is None else scale
        return torch.maximum(torch.minimum(moved, origin + self.clip[1] * unit), origin + self.clip[0] * unit)


#: Images in [0, 1].
PIXELS = Bounds()


def bounds_of(data: DataSplits, space: str = "pixels") -> Bounds:
    """The :class:`Bounds` of a dataset's inputs (token ids have none: FGSM refuses them).

    ``space = "normalized"`` (``training.attack_space``) is the reference's attack: it stepped the
    *normalised* input by ε and clamped that to [0, 1], i.e. in pixels a step of ε·std clipped to
    [mean, mean + std] per channel. That clamp alone moves most pixels of a normalised image, so
    it measures something else than robustness; it is here to reproduce published numbers.
    """
    if space == "normalized":
        return Bounds(clip=(0.0, 1.0), scale=tuple(data.std), unit="normalised units", origin=tuple(data.mean))
    return PIXELS if data.inputs == "images" else Bounds(clip=None, scale=tuple(data.std), unit="feature std")


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


def _check_inputs(x: torch.Tensor) -> None:
    """FGSM moves inputs along a gradient: integer token ids have none (uint8 pixels are fine)."""
    if not x.is_floating_point() and x.dtype != torch.uint8:
        raise TaylorGLOError(
            f"FGSM: the inputs are integer token ids ({x.dtype}), which have no gradient to follow; "
            "robustness sweeps and FGSM fitness need images or features"
        )


def _perturb(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: nn.Module,
    epsilon: float,
    bounds: Bounds,
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
    return bounds.step(x, epsilon, grad.sign())


def fgsm_perturb(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: nn.Module,
    epsilon: float,
    bounds: Bounds = PIXELS,
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
    _check_inputs(x)
    x = to_float(x)
    if epsilon == 0:
        return x.detach().clone()
    with _eval_mode(model):
        return _perturb(model, x, y, loss_fn, epsilon, bounds)


def fgsm_accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: nn.Module,
    epsilon: float,
    batch_size: int = 100,
    bounds: Bounds = PIXELS,
) -> float:
    """Accuracy in [0, 1] of ``model`` on FGSM-perturbed ``x`` (eval mode throughout).

    ``x`` may be a whole test split (uint8 or float, on any device): it is attacked and scored in
    batches of ``batch_size``, each moved to ``y``'s device, so memory stays that of one batch.
    Each batch's gradient is that of the batch-mean loss; the sign makes the result independent of
    the batch size. Correct predictions are counted on ``y``'s device and read back once.
    ``bounds`` says what ε measures and where perturbed inputs stay (:func:`bounds_of` a dataset).
    """
    epsilon = _check_epsilon(epsilon)
    _check_inputs(x)
    if batch_size < 1:
        raise ValueError(f"batch_size: must be a positive integer, got {batch_size!r}")
    correct = torch.zeros((), dtype=torch.long, device=y.device)
    with _eval_mode(model):
        for start in range(0, len(y), batch_size):
            xb = to_float(x[start : start + batch_size].to(y.device))
            yb = y[start : start + batch_size]
            if epsilon > 0:
                xb = _perturb(model, xb, yb, loss_fn, epsilon, bounds)
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
    bounds: Bounds = PIXELS,
) -> dict[float, float]:
    """``{ε: accuracy}`` for every ε given, in the order given (0.0 gives the clean accuracy).

    One full pass over ``x`` per ε: each ε's perturbation is computed from the clean input, never
    from another ε's result, as one-step FGSM prescribes.
    """
    return {float(eps): fgsm_accuracy(model, x, y, loss_fn, eps, batch_size, bounds) for eps in epsilons}


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
