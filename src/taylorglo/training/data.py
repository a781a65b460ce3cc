"""Datasets: locating, downloading, decoding and splitting them, plus batched GPU augmentation.

Every dataset is held in memory as tensors (uint8 where the source is 8-bit, so CIFAR-10 costs
150 MB instead of 600 MB) and converted to float one batch at a time with :func:`to_float`. That
keeps a worker process cheap: it loads a dataset once (results are cached in-process) and then
trains hundreds of candidate losses on it without touching the disk or a DataLoader.

Splits follow SPEC §3: a fixed ``numpy.random.RandomState(42)`` permutation of the official
training file, whose last ``val_count`` indices are the validation set. ``RandomState`` (not
``default_rng``) is used because its stream is frozen across numpy versions, so every machine and
every run evaluates candidates on exactly the same examples.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import inspect
import io
import logging
import math
import numbers
import os
import pickle
import re
import tarfile
import tempfile
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from ..errors import DatasetNotFoundError, TaylorGLOError
from ..plugins import is_plugin_ref, resolve_plugin

__all__ = [
    "DATASET_NAMES",
    "DataSplits",
    "augment_batch",
    "clear_cache",
    "load_dataset",
    "to_float",
]

DATASET_NAMES: tuple[str, ...] = ("digits", "mnist", "fashion-mnist", "cifar10", "svhn")

SPLIT_SEED = 42
DOWNLOAD_TIMEOUT_S = 60.0
_log = logging.getLogger(__name__)

# Raw arrays as read from disk: train images, train labels, test images, test labels.
_Raw = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


# --------------------------------------------------------------------------------------------
# The splits object
# --------------------------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class DataSplits:
    """Train/validation/test tensors of one dataset, in pixel space.

    Images are ``(N, C, H, W)``, either uint8 (0..255) or float32 in [0, 1]; the model sees them
    through :func:`to_float` and a Normalize layer built from ``mean``/``std``, so the stored form
    stays compact and augmentation (padding, Cutout fill) works in plain pixel units.
    ``eq=False``: two splits are "the same" only when they are the same object (tensors have no
    boolean equality), which is also what the in-process cache hands out.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: str = "none"

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image, what a model factory needs to size its first layer."""
        c, h, w = self.train_x.shape[1:]
        return int(c), int(h), int(w)

    def to(self, device: torch.device | str) -> DataSplits:
        """A copy with every tensor on ``device`` (whole dataset on the GPU: no per-step copies)."""
        moved = {f: getattr(self, f).to(device) for f in _TENSOR_FIELDS}
        return dataclasses.replace(self, **moved)

    def summary(self) -> str:
        """One line for logs: name, split sizes, image shape and number of classes."""
        c, h, w = self.input_shape
        return (
            f"{self.name}: {len(self.train_y)} train / {len(self.val_y)} val / "
            f"{len(self.test_y)} test, {c}x{h}x{w} {str(self.train_x.dtype).replace('torch.', '')}, "
            f"{self.num_classes} classes, augment={self.augment}"
        )

    def __repr__(self) -> str:
        return f"DataSplits({self.summary()})"


_TENSOR_FIELDS = ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")


# --------------------------------------------------------------------------------------------
# Per-batch helpers
# --------------------------------------------------------------------------------------------


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
) -> torch.Tensor:
    """Random pad-and-crop, horizontal flip and optional Cutout for a whole batch at once.

    ``x`` is ``(B, C, H, W)`` in pixel space (uint8 is converted with :func:`to_float`). All
    randomness comes from ``generator`` (which must live on ``x.device``), so a training run is
    reproducible from its seed; the work is one gather plus one masked fill, with no Python loop
    over images, because it runs on every training step. Padding and the Cutout hole take the
    per-channel ``fill`` value (default 0, i.e. black in pixel space). Returns a new tensor.
    """
    x = to_float(x)
    if x.dim() != 4:
        raise ValueError(f"augment_batch expects (B, C, H, W), got shape {tuple(x.shape)}")
    if crop_padding < 0 or cutout < 0:
        raise ValueError("augment_batch: crop_padding and cutout must be >= 0")
    batch, channels, height, width = x.shape
    fill_t = _fill_tensor(fill, channels, x)
    if batch == 0:
        return x.clone()
    if crop_padding > 0 or flip:
        out = _crop_flip(x, generator, crop_padding, flip, fill_t)
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


def _cutout(
    x: torch.Tensor, generator: torch.Generator, size: int, fill_t: torch.Tensor | None
) -> torch.Tensor:
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


# --------------------------------------------------------------------------------------------
# Public loader and in-process cache
# --------------------------------------------------------------------------------------------

_CACHE: dict[tuple[Any, ...], DataSplits] = {}
_CACHE_LOCK = threading.RLock()


def clear_cache() -> None:
    """Forget every dataset loaded in this process (tests, or to free memory)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    data_fraction: float = 1.0,
    download: bool = True,
    field: str = "dataset",
) -> DataSplits:
    """Load a built-in dataset (:data:`DATASET_NAMES`) or a ``"package.module:function"`` plug-in.

    Files are looked for in ``data_dir`` (or ``$TAYLORGLO_DATA``), each also with a subfolder named
    after the dataset, then in the download cache (``$TAYLORGLO_CACHE`` or
    ``~/.cache/taylorglo``)/<dataset>; missing files are downloaded there unless
    ``download=False``. ``data_fraction`` keeps a fixed random subset of the train split (the same
    one on every call). The result is cached per (name, folders, fraction), so repeated calls in
    one worker return the same object. ``field`` names the config field in error messages.
    """
    fraction = _check_fraction(data_fraction)
    if not isinstance(name, str) or not name:
        raise TaylorGLOError(f"{field}: expected a dataset name, got {name!r}")
    if is_plugin_ref(name):
        base_key: tuple[Any, ...] = ("plugin", name, None if data_dir is None else str(data_dir))
        make: Callable[[], DataSplits] = lambda: _load_plugin(name, data_dir, field)  # noqa: E731
    else:
        key_name = name.lower()
        if key_name not in _BUILTINS:
            raise TaylorGLOError(
                f"{field}: unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)} "
                "or give a factory as 'package.module:function'"
            )
        dirs = _search_dirs(key_name, data_dir) if key_name != "digits" else []
        base_key = ("builtin", key_name, tuple(str(d) for d in dirs))
        make = lambda: _load_builtin(key_name, dirs, download)  # noqa: E731
    with _CACHE_LOCK:
        full = _CACHE.get(base_key + (1.0,))
        if full is None:
            full = make()
            _CACHE[base_key + (1.0,)] = full
        if fraction == 1.0:
            return full
        subset = _CACHE.get(base_key + (fraction,))
        if subset is None:
            subset = _train_subset(full, fraction)
            _CACHE[base_key + (fraction,)] = subset
        return subset


def _check_fraction(value: Any) -> float:
    """``data_fraction`` must be a number in (0, 1]."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value) and 0.0 < value <= 1.0
    if not ok:
        raise TaylorGLOError(f"data_fraction must be a number in (0, 1], e.g. 0.1; got {value!r}")
    return float(value)


def _train_subset(splits: DataSplits, fraction: float) -> DataSplits:
    """A fixed random ``fraction`` of the train split (RandomState(42) permutation, first k).

    Validation, test, mean and std are unchanged, so reduced-data runs are scored on the same
    validation set as full runs.
    """
    n = len(splits.train_y)
    keep = max(1, round(fraction * n))
    index = torch.from_numpy(np.random.RandomState(SPLIT_SEED).permutation(n)[:keep])
    index = index.to(splits.train_x.device)
    return dataclasses.replace(splits, train_x=splits.train_x[index], train_y=splits.train_y[index])


# --------------------------------------------------------------------------------------------
# Building splits
# --------------------------------------------------------------------------------------------


def _val_count(n_train_file: int, share: float) -> int:
    """Validation size for a training file of ``n`` examples, never empty and never everything.

    ``round(n * share)`` gives SPEC's exact numbers on the official files; the clamp only matters
    for tiny files, where an empty validation split would break early-abort scoring.
    """
    count = round(n_train_file * share)
    if n_train_file >= 2:
        count = min(max(count, 1), n_train_file - 1)
    return int(count)


def _split_train(n: int, val_count: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices): the seed-42 permutation, validation = its tail."""
    perm = np.random.RandomState(SPLIT_SEED).permutation(n)
    return perm[: n - val_count], perm[n - val_count :]


def _channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std in [0, 1] pixel space.

    uint8 data goes through a 256-bin histogram per channel: exact, and without materialising a
    float copy of the whole dataset. A constant channel gets std 1 so normalisation stays finite.
    """
    channels = x.shape[1]
    means, stds = [], []
    if len(x) == 0:
        return (0.0,) * channels, (1.0,) * channels
    if x.dtype == torch.uint8:
        levels = np.arange(256, dtype=np.float64) / 255.0
        arr = x.cpu().numpy()
        for c in range(channels):
            counts = np.bincount(arr[:, c].ravel(), minlength=256).astype(np.float64)
            total = counts.sum()
            mean = float((counts * levels).sum() / total)
            var = float((counts * (levels - mean) ** 2).sum() / total)
            means.append(mean)
            stds.append(math.sqrt(var))
    else:
        xd = x.detach().to(torch.float64).transpose(0, 1).reshape(channels, -1)
        means = [float(v) for v in xd.mean(dim=1)]
        stds = [float(v) for v in xd.std(dim=1, unbiased=False)]
    stds = [s if s > 1e-12 else 1.0 for s in stds]
    return tuple(means), tuple(stds)


def _splits_from_arrays(
    name: str,
    raw: _Raw,
    val_share: float,
    augment: str,
    stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
    num_classes: int = 10,
) -> DataSplits:
    """Split the official training arrays into train/val and wrap everything as tensors."""
    train_x, train_y, test_x, test_y = raw
    for split, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        if len(x) != len(y):
            raise TaylorGLOError(f"{name}: the {split} file has {len(x)} images but {len(y)} labels")
        if len(y) and (int(np.min(y)) < 0 or int(np.max(y)) >= num_classes):
            raise TaylorGLOError(f"{name}: {split} labels outside 0..{num_classes - 1}; are the files corrupt?")
    tr, va = _split_train(len(train_x), _val_count(len(train_x), val_share))
    all_x = torch.from_numpy(np.ascontiguousarray(train_x))
    all_y = torch.from_numpy(np.asarray(train_y, dtype=np.int64))
    tr_t, va_t = torch.from_numpy(tr), torch.from_numpy(va)
    splits_x = all_x[tr_t]
    mean, std = stats if stats is not None else _channel_stats(splits_x)
    return DataSplits(
        name=name,
        train_x=splits_x,
        train_y=all_y[tr_t],
        val_x=all_x[va_t],
        val_y=all_y[va_t],
        test_x=torch.from_numpy(np.ascontiguousarray(test_x)),
        test_y=torch.from_numpy(np.asarray(test_y, dtype=np.int64)),
        num_classes=num_classes,
        mean=mean,
        std=std,
        augment=augment,
    )


def _load_digits() -> DataSplits:
    """scikit-learn's bundled 8x8 digits: 1,197 / 300 / 300, always available offline."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy((bunch.images / 16.0).astype(np.float32)).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    perm = torch.from_numpy(np.random.RandomState(SPLIT_SEED).permutation(len(labels)))
    tr, va, te = perm[:1197], perm[1197:1497], perm[1497:]
    mean, std = _channel_stats(images[tr])
    return DataSplits(
        "digits", images[tr], labels[tr], images[va], labels[va], images[te], labels[te],
        num_classes=10, mean=mean, std=std, augment="none",
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Built-in dataset table
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """How to find, fetch and split one built-in dataset."""

    folders: tuple[str, ...]  # subfolder names tried under a data root (first = cache folder)
    url: str  # official base URL of the downloadable files
    md5: Mapping[str, str]  # file name -> md5 of what the download fetches
    expected: str  # human description of the files, for the not-found message
    locate: Callable[[Path], Callable[[], _Raw] | None]  # a reader if ``dir`` holds a copy
    val_share: float
    augment: str = "none"
    stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None


_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _locate_idx(directory: Path) -> Callable[[], _Raw] | None:
    """MNIST-style IDX files, gzipped or not (also the ``train-images.idx3-ubyte`` spelling)."""
    paths = []
    for stem in _IDX_FILES:
        dotted = stem.replace("-idx", ".idx")
        found = _first_file(directory, (f"{stem}.gz", stem, f"{dotted}.gz", dotted))
        if found is None:
            return None
        paths.append(found)
    return lambda: tuple(_read_idx(p) for p in paths)  # type: ignore[return-value]


def _first_file(directory: Path, names: tuple[str, ...]) -> Path | None:
    """The first of ``names`` that exists in ``directory``."""
    for candidate in names:
        path = directory / candidate
        if path.is_file():
            return path
    return None


def _read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (big-endian header: 0, 0, type code, ndim, then ndim uint32 sizes)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = bytearray(f.read())  # writable, so torch.from_numpy does not warn
    except (OSError, EOFError) as exc:
        raise TaylorGLOError(f"cannot read {path}: {_one_line(exc)}") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise TaylorGLOError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(data) != header + math.prod(shape):
        raise TaylorGLOError(f"{path} is truncated or corrupt: header says shape {shape}")
    array = np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)
    return array[:, None] if ndim == 3 else array  # images -> (N, 1, H, W)


_CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
_IMAGE_MEMBER = re.compile(r"^(?:.*/)?(train|test)/([^/]+)/([^/]+)$")


def _locate_cifar10(directory: Path) -> Callable[[], _Raw] | None:
    """Original pickles, the original archive, an image folder, or an image folder as .tar.gz."""
    for batch_dir in (directory / _CIFAR_DIR, directory):
        if all((batch_dir / f).is_file() for f in _CIFAR_BATCHES):
            return lambda d=batch_dir: _read_cifar_batches({f: (d / f).read_bytes() for f in _CIFAR_BATCHES})
    archive = directory / _CIFAR_ARCHIVE
    if archive.is_file():
        return lambda: _read_cifar_archive(archive, directory)
    if not directory.is_dir():
        return None
    roots = [directory] + sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    for root in roots:
        if (root / "train").is_dir() and (root / "test").is_dir():
            return lambda r=root: _images_to_raw(_image_folder_members(r), str(r))
    for pattern in ("*.tar.gz", "*.tgz", "*.tar"):
        for packed in sorted(directory.glob(pattern)):
            if packed.name != _CIFAR_ARCHIVE and packed.is_file() and _looks_like_image_tar(packed):
                return lambda p=packed: _images_to_raw(_image_tar_members(p), str(p))
    return None


def _read_cifar_batches(blobs: Mapping[str, bytes]) -> _Raw:
    """Decode the CIFAR-10 python pickles (dicts with b'data' (N, 3072) and b'labels')."""
    xs, ys = [], []
    for name in _CIFAR_BATCHES:
        try:
            batch = pickle.loads(blobs[name], encoding="bytes")
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels = np.asarray(batch[b"labels"], dtype=np.int64)
        except Exception as exc:  # unpickling errors come in many types
            raise TaylorGLOError(f"cifar10: cannot read batch {name}: {_one_line(exc)}") from exc
        xs.append(data)
        ys.append(labels)
    return np.concatenate(xs[:5]), np.concatenate(ys[:5]), xs[5], ys[5]


def _read_cifar_archive(archive: Path, directory: Path) -> _Raw:
    """Read the batches out of ``cifar-10-python.tar.gz``, extracting them next to it.

    Only the six batch files are written (so a hostile archive cannot write elsewhere), via a
    temporary folder renamed into place; a read-only folder just means no extraction.
    """
    blobs: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in _CIFAR_BATCHES:
                    blobs[base] = tar.extractfile(member).read()  # type: ignore[union-attr]
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise TaylorGLOError(f"cifar10: cannot read {archive}: {_one_line(exc)}") from exc
    missing = [f for f in _CIFAR_BATCHES if f not in blobs]
    if missing:
        raise TaylorGLOError(f"cifar10: {archive} lacks {', '.join(missing)}; is it the CIFAR-10 python archive?")
    with contextlib.suppress(OSError):
        with tempfile.TemporaryDirectory(dir=directory, prefix=".extract-") as tmp:
            target = Path(tmp) / _CIFAR_DIR
            target.mkdir()
            for name, blob in blobs.items():
                (target / name).write_bytes(blob)
            os.replace(target, directory / _CIFAR_DIR)
    return _read_cifar_batches(blobs)


def _looks_like_image_tar(path: Path) -> bool:
    """Peek at the first members only: is this a ``[top/]train|test/<class>/<image>`` archive?"""
    try:
        with tarfile.open(path, "r:*") as tar:
            for i, member in enumerate(tar):
                if member.isfile():
                    return _image_member_key(member.name) is not None
                if i > 50:
                    break
    except (OSError, tarfile.TarError, EOFError):
        return False
    return False


def _image_member_key(name: str) -> tuple[str, str, str] | None:
    """``(split, class, file name)`` for an image path inside a folder or archive, else None."""
    match = _IMAGE_MEMBER.match(name.replace("\\", "/"))
    if match is None:
        return None
    split, cls, base = match.groups()
    if base.startswith(".") or not base.lower().endswith(_IMAGE_SUFFIXES):
        return None
    return split, cls, base


def _image_folder_members(root: Path) -> list[tuple[str, str, str, bytes]]:
    """``(split, class, file name, encoded bytes)`` for every image under root/{train,test}/<class>/."""
    members = []
    for split in ("train", "test"):
        for class_dir in sorted(p for p in (root / split).iterdir() if p.is_dir()):
            for path in class_dir.iterdir():
                if path.is_file() and _image_member_key(f"{split}/{class_dir.name}/{path.name}"):
                    members.append((split, class_dir.name, path.name, path.read_bytes()))
    return members


def _image_tar_members(path: Path) -> list[tuple[str, str, str, bytes]]:
    """Same as :func:`_image_folder_members`, streamed out of an archive without extracting it."""
    members = []
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                key = _image_member_key(member.name) if member.isfile() else None
                if key is not None:
                    members.append((*key, tar.extractfile(member).read()))  # type: ignore[union-attr]
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise TaylorGLOError(f"cifar10: cannot read {path}: {_one_line(exc)}") from exc
    return members


def _images_to_raw(members: list[tuple[str, str, str, bytes]], where: str) -> _Raw:
    """Decode images to uint8 (N, 3, H, W); labels = index of the class folder in sorted order.

    Sorting classes alphabetically reproduces CIFAR-10's label order (airplane, automobile, ...),
    and sorting files by name makes the order, hence the seed-42 split, independent of the
    file system or archive order.
    """
    try:
        from PIL import Image
    except ImportError:
        raise TaylorGLOError(
            f"reading the images in {where} needs Pillow; install it with: pip install taylorglo[images]"
        ) from None
    classes = sorted({cls for split, cls, _, _ in members if split == "train"})
    test_classes = sorted({cls for split, cls, _, _ in members if split == "test"})
    if not classes or not test_classes:
        raise TaylorGLOError(f"{where}: expected images in train/<class>/ and test/<class>/, found none")
    if not set(test_classes) <= set(classes):
        extra = sorted(set(test_classes) - set(classes))
        raise TaylorGLOError(f"{where}: test classes {extra} have no train/ folder")
    label_of = {cls: i for i, cls in enumerate(classes)}
    members = sorted(members, key=lambda m: (m[0], label_of[m[1]], m[2]))
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split in ("train", "test"):
        chosen = [m for m in members if m[0] == split]
        images = []
        for _, cls, base, blob in chosen:
            try:
                with Image.open(io.BytesIO(blob)) as img:
                    images.append(np.asarray(img if img.mode == "RGB" else img.convert("RGB")))
            except Exception as exc:  # Pillow raises several types for bad files
                raise TaylorGLOError(f"{where}: cannot decode {split}/{cls}/{base}: {_one_line(exc)}") from exc
        shapes = {a.shape for a in images}
        if len(shapes) != 1:
            raise TaylorGLOError(f"{where}: images differ in size ({sorted(shapes)[:3]}...); resize them first")
        x = np.stack(images).transpose(0, 3, 1, 2)
        y = np.array([label_of[m[1]] for m in chosen], dtype=np.int64)
        out[split] = (np.ascontiguousarray(x), y)
    if out["train"][0].shape[1:] != out["test"][0].shape[1:]:
        raise TaylorGLOError(f"{where}: train and test images differ in size")
    return out["train"][0], out["train"][1], out["test"][0], out["test"][1]


_SVHN_FILES = ("train_32x32.mat", "test_32x32.mat")


def _locate_svhn(directory: Path) -> Callable[[], _Raw] | None:
    """The cropped-digits ``.mat`` files (format 2)."""
    paths = [directory / f for f in _SVHN_FILES]
    if not all(p.is_file() for p in paths):
        return None
    return lambda: _read_svhn(paths[0]) + _read_svhn(paths[1])  # type: ignore[return-value]


def _read_svhn(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """X is (32, 32, 3, N) uint8 -> (N, 3, 32, 32); label 10 means the digit 0."""
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
        x = np.ascontiguousarray(np.asarray(mat["X"], dtype=np.uint8).transpose(3, 2, 0, 1))
        y = np.asarray(mat["y"]).reshape(-1).astype(np.int64)
    except Exception as exc:  # scipy raises ValueError/KeyError/OSError for bad files
        raise TaylorGLOError(f"svhn: cannot read {path}: {_one_line(exc)}") from exc
    y[y == 10] = 0
    return x, y


_BUILTINS: dict[str, _Source | None] = {
    "digits": None,
    "mnist": _Source(
        folders=("mnist", "MNIST"),
        url="https://ossci-datasets.s3.amazonaws.com/mnist/",
        md5={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        expected="train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
        "t10k-labels-idx1-ubyte.gz",
        locate=_locate_idx,
        val_share=5000 / 60000,
    ),
    "fashion-mnist": _Source(
        folders=("fashion-mnist", "fashion_mnist", "FashionMNIST"),
        url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        md5={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        expected="train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
        "t10k-labels-idx1-ubyte.gz",
        locate=_locate_idx,
        val_share=5000 / 60000,
    ),
    "cifar10": _Source(
        folders=("cifar10", "cifar-10", "cifar10-jpeg"),
        url="https://www.cs.toronto.edu/~kriz/",
        md5={_CIFAR_ARCHIVE: "c58f30108f718f92721af3b95e74349a"},
        expected=f"{_CIFAR_ARCHIVE} (or {_CIFAR_DIR}/, or train/<class>/ + test/<class>/ image folders, "
        "or a .tar.gz of those)",
        locate=_locate_cifar10,
        val_share=5000 / 50000,
        augment="crop-flip",
        stats=(
            (125.3 / 255, 123.0 / 255, 113.9 / 255),
            (63.0 / 255, 62.1 / 255, 66.7 / 255),
        ),
    ),
    "svhn": _Source(
        folders=("svhn", "SVHN"),
        url="http://ufldl.stanford.edu/housenumbers/",
        md5={
            "train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
            "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3",
        },
        expected="train_32x32.mat, test_32x32.mat",
        locate=_locate_svhn,
        val_share=26032 / 73257,
        augment="crop-flip",
    ),
}


# --------------------------------------------------------------------------------------------
# Finding and downloading files
# --------------------------------------------------------------------------------------------


def _cache_dir(name: str) -> Path:
    """Where downloads go: ``$TAYLORGLO_CACHE/<dataset>`` or ``~/.cache/taylorglo/<dataset>``."""
    root = os.environ.get("TAYLORGLO_CACHE") or os.path.join("~", ".cache", "taylorglo")
    return Path(root).expanduser() / name


def _search_dirs(name: str, data_dir: str | os.PathLike[str] | None) -> list[Path]:
    """Folders to look in, in order: the data root, its dataset subfolders, then the cache."""
    source = _BUILTINS[name]
    assert source is not None
    root = data_dir if data_dir is not None else os.environ.get("TAYLORGLO_DATA") or None
    dirs: list[Path] = []
    if root is not None:
        base = Path(root).expanduser()
        dirs += [base] + [base / sub for sub in source.folders]
    dirs.append(_cache_dir(name))
    unique: list[Path] = []
    for d in dirs:
        d = d.absolute()
        if d not in unique:
            unique.append(d)
    return unique


def _load_builtin(name: str, dirs: list[Path], download: bool) -> DataSplits:
    """Find the first folder holding a copy; otherwise download into the cache and retry."""
    if name == "digits":
        return _load_digits()
    source = _BUILTINS[name]
    assert source is not None
    reader = _locate_first(source, dirs)
    reason = "downloading is off (download=False)"
    if reader is None and download:
        cache = _cache_dir(name)
        try:
            _download(name, source, cache)
            reader = source.locate(cache.absolute())
            reason = "the download did not produce usable files"
        except _DownloadFailed as exc:
            reason = f"download failed: {exc}"
    if reader is None:
        looked = ", ".join(str(d) if d.is_dir() else f"{d} (no such folder)" for d in dirs)
        raise DatasetNotFoundError(
            f"dataset {name!r} not found: expected {source.expected}; looked in {looked}; "
            f"{reason}; put the files in a folder and pass "
            f"--data-dir DIR (or set TAYLORGLO_DATA=DIR; a {name}/ subfolder also works)"
        )
    return _splits_from_arrays(name, reader(), source.val_share, source.augment, source.stats)


def _locate_first(source: _Source, dirs: list[Path]) -> Callable[[], _Raw] | None:
    for d in dirs:
        reader = source.locate(d) if d.is_dir() else None
        if reader is not None:
            return reader
    return None


class _DownloadFailed(Exception):
    """Network or mirror problem; turned into a DatasetNotFoundError by the caller."""


def _download(name: str, source: _Source, target: Path) -> None:
    """Fetch every file of ``source`` that is not yet in ``target``, checking md5s.

    ``$TAYLORGLO_MIRROR`` (any urllib URL, ``file://`` included) replaces the official host as
    ``{mirror}/{dataset}/{file}``, for machines behind a proxy or without internet.
    """
    mirror = os.environ.get("TAYLORGLO_MIRROR")
    for filename, md5 in source.md5.items():
        dest = target / filename
        if dest.is_file():
            continue
        url = f"{mirror.rstrip('/')}/{name}/{filename}" if mirror else source.url + filename
        _download_file(name, url, dest, md5)


def _download_file(name: str, url: str, dest: Path, md5: str) -> None:
    """Stream ``url`` to a temp file beside ``dest``, verify its md5, then rename atomically.

    A half-written or corrupted download never appears under the final name, so a later run (or a
    concurrent worker) cannot mistake it for a good copy.
    """
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as exc:
        raise _DownloadFailed(f"cannot write to {dest.parent}: {_one_line(exc)}") from exc
    tmp = Path(tmp_name)
    _log.info("downloading %s -> %s", url, dest)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        request = urllib.request.Request(url, headers={"User-Agent": "taylorglo"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as resp:
            while chunk := resp.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != md5:
            raise TaylorGLOError(
                f"dataset {name!r}: checksum mismatch for {url} (md5 {digest.hexdigest()}, expected {md5}); "
                "the file was discarded; check TAYLORGLO_MIRROR or retry"
            )
        os.replace(tmp, dest)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise _DownloadFailed(f"{url}: {_one_line(getattr(exc, 'reason', exc))}") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


# --------------------------------------------------------------------------------------------
# Plug-in datasets
# --------------------------------------------------------------------------------------------


def _load_plugin(ref: str, data_dir: str | os.PathLike[str] | None, field: str) -> DataSplits:
    """Call a user factory and validate what it returns (DataSplits or a dict of arrays)."""
    factory = resolve_plugin(ref, field)
    root = data_dir if data_dir is not None else os.environ.get("TAYLORGLO_DATA") or None
    try:
        result = factory(data_dir=root) if _accepts_data_dir(factory) else factory()
    except TaylorGLOError:
        raise
    except Exception as exc:
        raise TaylorGLOError(f"{field}: factory {ref!r} raised {type(exc).__name__}: {_one_line(exc)}") from exc
    if isinstance(result, DataSplits):
        parts: dict[str, Any] = {f.name: getattr(result, f.name) for f in dataclasses.fields(DataSplits)}
        parts["name"] = result.name or ref
    elif isinstance(result, Mapping):
        parts = dict(result)
        parts.setdefault("name", ref)
    else:
        raise TaylorGLOError(
            f"{field}: factory {ref!r} returned {type(result).__name__}; expected a DataSplits or a dict "
            "with train_x, train_y, test_x, test_y"
        )
    return _validated_plugin_splits(parts, f"{field}: factory {ref!r}")


def _accepts_data_dir(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return True
    param = params.get("data_dir")
    return param is not None and param.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )


def _validated_plugin_splits(parts: dict[str, Any], who: str) -> DataSplits:
    """Check shapes, dtypes and label ranges; fill in validation split, classes and stats."""
    for key in ("train_x", "train_y", "test_x", "test_y"):
        if parts.get(key) is None:
            raise TaylorGLOError(f"{who} returned no {key!r}; required: train_x, train_y, test_x, test_y")
    if (parts.get("val_x") is None) != (parts.get("val_y") is None):
        raise TaylorGLOError(f"{who} returned only one of val_x / val_y; give both or neither")
    tensors = {}
    for key in _TENSOR_FIELDS:
        if parts.get(key) is not None:
            make = _plugin_images if key.endswith("_x") else _plugin_labels
            tensors[key] = make(parts[key], key, who)
    if "val_x" not in tensors:
        n = len(tensors["train_x"])
        tr, va = (torch.from_numpy(i) for i in _split_train(n, _val_count(n, 0.1)))
        x, y = tensors["train_x"], tensors["train_y"]
        if len(y) != n:
            raise TaylorGLOError(f"{who}: train_x has {n} images but train_y has {len(y)} labels")
        tensors.update(train_x=x[tr], train_y=y[tr], val_x=x[va], val_y=y[va])
    for split in ("train", "val", "test"):
        x, y = tensors[f"{split}_x"], tensors[f"{split}_y"]
        if len(x) != len(y):
            raise TaylorGLOError(f"{who}: {split}_x has {len(x)} images but {split}_y has {len(y)} labels")
        if x.shape[1:] != tensors["train_x"].shape[1:]:
            raise TaylorGLOError(
                f"{who}: {split}_x images are {tuple(x.shape[1:])} but train_x images are "
                f"{tuple(tensors['train_x'].shape[1:])}"
            )
    if len(tensors["train_x"]) == 0:
        raise TaylorGLOError(f"{who}: train_x is empty")
    max_label = max(int(tensors[k].max()) for k in ("train_y", "val_y", "test_y") if len(tensors[k]))
    min_label = min(int(tensors[k].min()) for k in ("train_y", "val_y", "test_y") if len(tensors[k]))
    num_classes = parts.get("num_classes")
    num_classes = max_label + 1 if num_classes is None else int(num_classes)
    if min_label < 0 or max_label >= num_classes or num_classes < 2:
        raise TaylorGLOError(
            f"{who}: labels must lie in 0..num_classes-1 with num_classes >= 2 "
            f"(got labels {min_label}..{max_label}, num_classes {num_classes})"
        )
    channels = tensors["train_x"].shape[1]
    mean = _plugin_stat(parts.get("mean"), channels, "mean", who)
    std = _plugin_stat(parts.get("std"), channels, "std", who)
    if mean is None or std is None:
        computed = _channel_stats(tensors["train_x"])
        mean, std = mean or computed[0], std or computed[1]
    augment = parts.get("augment") or "none"
    if augment not in ("none", "crop-flip"):
        raise TaylorGLOError(f"{who}: augment must be 'none' or 'crop-flip', got {augment!r}")
    return DataSplits(
        name=str(parts["name"]), num_classes=num_classes, mean=mean, std=std, augment=augment, **tensors
    )


def _plugin_images(value: Any, key: str, who: str) -> torch.Tensor:
    """(N, C, H, W) uint8, or float32 in [0, 1]; (N, H, W) gets a channel axis."""
    try:
        x = torch.as_tensor(value)
    except Exception as exc:
        raise TaylorGLOError(f"{who}: {key} is not array-like ({type(value).__name__})") from exc
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4:
        raise TaylorGLOError(f"{who}: {key} must have shape (N, C, H, W), got {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        return x
    if not x.is_floating_point():
        raise TaylorGLOError(f"{who}: {key} must be uint8 (0..255) or float in [0, 1], got {x.dtype}")
    x = x.to(torch.float32)
    if x.numel() and (float(x.min()) < -1e-6 or float(x.max()) > 1 + 1e-6):
        raise TaylorGLOError(
            f"{who}: float {key} must be in [0, 1] pixel space (found {float(x.min()):.3g}..{float(x.max()):.3g}); "
            "return unnormalised pixels and give mean/std instead"
        )
    return x


def _plugin_labels(value: Any, key: str, who: str) -> torch.Tensor:
    """1-D integer labels -> int64."""
    try:
        y = torch.as_tensor(value)
    except Exception as exc:
        raise TaylorGLOError(f"{who}: {key} is not array-like ({type(value).__name__})") from exc
    if y.dim() == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dim() != 1 or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TaylorGLOError(f"{who}: {key} must be a 1-D array of integer labels, got {y.dtype} {tuple(y.shape)}")
    return y.to(torch.int64)


def _plugin_stat(value: Any, channels: int, key: str, who: str) -> tuple[float, ...] | None:
    """A user-given per-channel mean/std (one number is broadcast), or None if not given."""
    if value is None:
        return None
    try:
        values = tuple(float(v) for v in (value if hasattr(value, "__iter__") else [value]))
    except (TypeError, ValueError):
        raise TaylorGLOError(f"{who}: {key} must be {channels} numbers, got {value!r}") from None
    if len(values) == 1 and channels > 1:
        values = values * channels
    if len(values) != channels or (key == "std" and min(values) <= 0):
        raise TaylorGLOError(f"{who}: {key} must be {channels} numbers (std > 0), got {value!r}")
    return values


def _one_line(value: Any) -> str:
    """An exception (or reason) squeezed onto one line, for one-line user errors."""
    return " ".join(str(value).split()) or type(value).__name__
