"""Batched augmentation and pixel conversion: the data work done on every training step.

Kept apart from dataset loading because it sits in the training loop's hot path and has nothing to
do with files: it operates on a batch already on the training device, in pixel space, with one
gather and one masked fill and no Python loop over images. All randomness comes from a caller's
``torch.Generator`` so a training run is reproducible from its seed.
"""

from __future__ import annotations

import torch

__all__ = ["augment_batch", "cutmix", "to_float"]


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in [0, 1]; float input is returned as is (no copy).

    Called on every batch, so it is a single fused conversion and nothing else.
    """
    if x.dtype == torch.uint8:
        return x.to(torch.float32).div_(255.0)
    return x


def augment_batch(
    x: torch.Tensor,
    generator: torch.Generator,
    *,
    crop_padding: int = 4,
    flip: bool = True,
    cutout: int = 0,
    fill: tuple[float, ...] | None = None,
    crop_fill: tuple[float, ...] | None = None,
) -> torch.Tensor:
    """Random pad-and-crop, horizontal flip and optional Cutout for a whole batch at once.

    ``x`` is ``(B, C, H, W)`` in pixel space (uint8 is converted with :func:`to_float`). All
    randomness comes from ``generator`` (which must live on ``x.device``), so a training run is
    reproducible from its seed; the work is one gather plus one masked fill, with no Python loop
    over images, because it runs on every training step. Padding and the Cutout hole take the
    per-channel ``fill`` value (default 0, i.e. black in pixel space); ``crop_fill``, where given,
    is the padding's alone. Returns a new tensor.
    """
    x = to_float(x)
    if x.dim() != 4:
        raise ValueError(f"augment_batch expects (B, C, H, W), got shape {tuple(x.shape)}")
    if crop_padding < 0 or cutout < 0:
        raise ValueError("augment_batch: crop_padding and cutout must be >= 0")
    batch, channels, height, width = x.shape
    fill_t = _fill_tensor(fill, channels, x)
    pad_t = fill_t if crop_fill is None else _fill_tensor(crop_fill, channels, x)
    if batch == 0:
        return x.clone()
    if crop_padding > 0 or flip:
        out = _crop_flip(x, generator, crop_padding, flip, pad_t)
    else:
        out = x.clone()
    if cutout > 0:
        out = _cutout(out, generator, cutout, fill_t)
    return out


def _fill_tensor(fill: tuple[float, ...] | None, channels: int, x: torch.Tensor) -> torch.Tensor | None:
    """``fill`` as a ``(1, C, 1, 1)`` tensor on ``x``'s device, or None for zeros."""
    if fill is None:
        return None
    values = tuple(float(v) for v in fill)
    if len(values) == 1:
        values = values * channels
    if len(values) != channels:
        raise ValueError(f"augment_batch: fill has {len(values)} values for {channels} channels")
    return torch.tensor(values, dtype=x.dtype, device=x.device).view(1, channels, 1, 1)


def _crop_flip(
    x: torch.Tensor, generator: torch.Generator, pad: int, flip: bool, fill_t: torch.Tensor | None
) -> torch.Tensor:
    """Pad by ``pad`` then gather a random ``H x W`` window per image, mirrored with p=0.5."""
    batch, channels, height, width = x.shape
    device = x.device
    padded_h, padded_w = height + 2 * pad, width + 2 * pad
    if pad > 0:
        padded = x.new_zeros((batch, channels, padded_h, padded_w))
        if fill_t is not None:
            padded.copy_(fill_t.expand_as(padded))
        padded[:, :, pad : pad + height, pad : pad + width] = x
        off_y = torch.randint(0, 2 * pad + 1, (batch,), generator=generator, device=device)
        off_x = torch.randint(0, 2 * pad + 1, (batch,), generator=generator, device=device)
    else:
        padded = x
        off_y = off_x = torch.zeros(batch, dtype=torch.long, device=device)
    cols = torch.arange(width, device=device).expand(batch, width)
    if flip:
        mirrored = torch.rand(batch, generator=generator, device=device) < 0.5
        cols = torch.where(mirrored[:, None], width - 1 - cols, cols)
    rows = off_y[:, None] + torch.arange(height, device=device)  # (B, H)
    cols = off_x[:, None] + cols  # (B, W)
    flat_index = (rows[:, :, None] * padded_w + cols[:, None, :]).view(batch, 1, height * width)
    flat = padded.reshape(batch, channels, padded_h * padded_w)
    out = torch.gather(flat, 2, flat_index.expand(batch, channels, height * width))
    return out.view(batch, channels, height, width)


def _cutout(x: torch.Tensor, generator: torch.Generator, size: int, fill_t: torch.Tensor | None) -> torch.Tensor:
    """Cutout (DeVries & Taylor 2017): one ``size`` square per image, centre uniform, clipped."""
    batch, _, height, width = x.shape
    device = x.device
    cy = torch.randint(0, height, (batch, 1), generator=generator, device=device)
    cx = torch.randint(0, width, (batch, 1), generator=generator, device=device)
    y0, x0 = cy - size // 2, cx - size // 2
    ys = torch.arange(height, device=device)
    xs = torch.arange(width, device=device)
    in_rows = (ys >= y0) & (ys < y0 + size)  # (B, H)
    in_cols = (xs >= x0) & (xs < x0 + size)  # (B, W)
    hole = (in_rows[:, :, None] & in_cols[:, None, :])[:, None]  # (B, 1, H, W)
    value = fill_t if fill_t is not None else x.new_zeros(())
    return torch.where(hole, value, x)


def cutmix(
    x: torch.Tensor, y: torch.Tensor, generator: torch.Generator, probability: float, alpha: float = 1.0
) -> tuple[torch.Tensor, tuple[torch.Tensor, float] | None]:
    """CutMix (Yun et al. 2019) for a batch, as its authors' training code does it: with
    ``probability``, one box of area ``1 - λ`` (``λ ~ Beta(alpha, alpha)``, centre uniform,
    clipped to the image) is pasted into every image from the image a random permutation of the
    batch pairs it with. Returns the batch and, where it mixed, the partners' labels and the
    share ``λ`` of each image still its own (after clipping): the loss is then
    ``λ·loss(y) + (1 - λ)·loss(y_partner)``. All randomness comes from ``generator``."""
    if probability <= 0 or torch.rand((), generator=generator, device=generator.device).item() >= probability:
        return x, None
    x = to_float(x)
    batch, _, height, width = x.shape
    device = x.device
    if alpha == 1.0:  # Beta(1, 1) is uniform
        lam = torch.rand((), generator=generator, device=device).item()
    else:  # torch's Beta sampler takes no generator: a numpy one seeded from the run's
        seed = int(torch.randint(0, 2**62, (), generator=generator, device=device).item())
        import numpy as np

        lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    partner = torch.randperm(batch, generator=generator, device=device)
    cut = (1.0 - lam) ** 0.5
    cut_h, cut_w = int(height * cut), int(width * cut)
    cy = int(torch.randint(0, height, (), generator=generator, device=device).item())
    cx = int(torch.randint(0, width, (), generator=generator, device=device).item())
    y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    mixed = x.clone()
    mixed[:, :, y0:y1, x0:x1] = x[partner, :, y0:y1, x0:x1]
    own = 1.0 - (y1 - y0) * (x1 - x0) / (height * width)
    return mixed, (y[partner], own)
