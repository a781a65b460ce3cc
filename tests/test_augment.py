"""Tests for taylorglo.training.augment: pixel conversion and batched crop / flip / Cutout."""

from __future__ import annotations

import pytest
import torch

from taylorglo.training.augment import augment_batch, cutmix, to_float


def test_to_float():
    u = torch.tensor([[0, 255, 51]], dtype=torch.uint8)
    f = to_float(u)
    assert f.dtype == torch.float32 and torch.allclose(f, torch.tensor([[0.0, 1.0, 0.2]]))
    x = torch.rand(3)
    assert to_float(x) is x


def test_augment_shape_and_determinism():
    x = torch.rand(16, 3, 8, 8)
    a = augment_batch(x, torch.Generator().manual_seed(5), cutout=3)
    b = augment_batch(x, torch.Generator().manual_seed(5), cutout=3)
    c = augment_batch(x, torch.Generator().manual_seed(6), cutout=3)
    assert a.shape == x.shape and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert augment_batch(x.mul(255).to(torch.uint8), torch.Generator().manual_seed(0)).dtype == torch.float32


def test_flip_only_gives_image_or_mirror():
    image = torch.arange(2 * 5 * 6, dtype=torch.float32).view(1, 2, 5, 6)
    x = image.repeat(64, 1, 1, 1)
    out = augment_batch(x, torch.Generator().manual_seed(0), crop_padding=0, flip=True)
    same = (out == image).flatten(1).all(1)
    mirrored = (out == image.flip(3)).flatten(1).all(1)
    assert bool((same | mirrored).all()) and 0 < int(mirrored.sum()) < 64
    assert torch.equal(x, image.repeat(64, 1, 1, 1))  # input untouched


def test_crop_is_a_window_of_the_padded_image():
    pad, h, w = 2, 5, 6
    image = torch.arange(1, 1 + 3 * h * w, dtype=torch.float32).view(1, 3, h, w)
    fill = (-1.0, -2.0, -3.0)
    padded = torch.tensor(fill).view(1, 3, 1, 1).repeat(1, 1, h + 2 * pad, w + 2 * pad)
    padded[:, :, pad : pad + h, pad : pad + w] = image
    windows = [padded[0, :, i : i + h, j : j + w] for i in range(2 * pad + 1) for j in range(2 * pad + 1)]
    out = augment_batch(
        image.repeat(200, 1, 1, 1), torch.Generator().manual_seed(1), crop_padding=pad, flip=False, fill=fill
    )
    hits = [next(k for k, win in enumerate(windows) if torch.equal(o, win)) for o in out]  # StopIteration = bad crop
    assert len(set(hits)) == len(windows)  # every offset occurs


def test_cutout_zeroes_one_clipped_square():
    x = torch.ones(100, 1, 10, 10)
    out = augment_batch(x, torch.Generator().manual_seed(2), crop_padding=0, flip=False, cutout=4)
    for img in out[:, 0]:
        rows = (img == 0).any(1).nonzero().flatten()
        cols = (img == 0).any(0).nonzero().flatten()
        assert 2 <= len(rows) <= 4 and 2 <= len(cols) <= 4
        assert int((img == 0).sum()) == len(rows) * len(cols)  # a solid rectangle
        assert rows.diff().eq(1).all() and cols.diff().eq(1).all()
    filled = augment_batch(x, torch.Generator().manual_seed(2), crop_padding=0, flip=False, cutout=4, fill=(0.5,))
    assert torch.equal(filled == 0.5, out == 0)


def test_cutmix_pastes_one_box_from_partners_and_reports_the_share_kept():

    torch.manual_seed(0)
    x = torch.rand(16, 3, 10, 12)
    y = torch.arange(16)
    mixed, partner = cutmix(x, y, torch.Generator().manual_seed(3), probability=1.0, alpha=1.0)
    assert partner is not None
    labels, own = partner
    assert sorted(labels.tolist()) == list(range(16))  # a permutation of the batch
    changed = (mixed != x).any(1)  # (B, H, W): pixels taken from the partner
    for i in range(16):
        if labels[i] == i:
            continue
        rows, cols = changed[i].nonzero(as_tuple=True)
        # one box, the same for every image, holding the partner's pixels
        box = (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1)
        assert torch.equal(
            mixed[i, :, box[0] : box[1], box[2] : box[3]], x[labels[i], :, box[0] : box[1], box[2] : box[3]]
        )
        assert own == pytest.approx(1 - (box[1] - box[0]) * (box[3] - box[2]) / 120)
    # The same generator state gives the same mix; probability 0 never mixes, nor a draw above it.
    again, again_partner = cutmix(x, y, torch.Generator().manual_seed(3), probability=1.0)
    assert torch.equal(again, mixed) and torch.equal(again_partner[0], labels) and again_partner[1] == own
    assert cutmix(x, y, torch.Generator().manual_seed(3), probability=0.0) == (x, None)
    drawn = [cutmix(x, y, torch.Generator().manual_seed(s), probability=0.5)[1] is not None for s in range(200)]
    assert 60 < sum(drawn) < 140
    # A Beta(alpha, alpha) other than the uniform one, drawn from the generator too.
    a = cutmix(x, y, torch.Generator().manual_seed(5), probability=1.0, alpha=0.3)
    b = cutmix(x, y, torch.Generator().manual_seed(5), probability=1.0, alpha=0.3)
    assert torch.equal(a[0], b[0]) and a[1][1] == b[1][1]
