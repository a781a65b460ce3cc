"""Datasets as in-memory train/validation/test splits: the one entry point, :func:`load_dataset`.

This module turns a dataset name into a :class:`DataSplits`: it holds the table of built-in
datasets, builds the fixed splits, caches results in-process, and validates plug-in datasets. The
file work it delegates: :mod:`.download` finds folders and fetches missing files, :mod:`.formats`
decodes what is on disk, and per-batch conversion and augmentation live in :mod:`.augment`.

Every dataset is held in memory as tensors (uint8 where the source is 8-bit, so CIFAR-10 costs
150 MB instead of 600 MB) and converted to float one batch at a time with
:func:`.augment.to_float`. That keeps a worker process cheap: it loads a dataset once (results are
cached in-process) and then trains hundreds of candidate losses on it without touching the disk or
a DataLoader.

Splits follow SPEC §3: a fixed ``numpy.random.RandomState(42)`` permutation of the official
training file, whose last ``val_count`` indices are the validation set. ``RandomState`` (not
``default_rng``) is used because its stream is frozen across numpy versions, so every machine and
every run evaluates candidates on exactly the same examples.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DatasetNotFoundError, TaylorGLOError, one_line
from ..plugins import is_plugin_ref, resolve_plugin
from .config import SUBSETS, TrainConfig
from .download import DownloadFailed, cache_dir, download_files, search_dirs
from .formats import CIFAR10, CIFAR100, Raw, locate_cifar10, locate_cifar100, locate_idx, locate_svhn
from .names import DATASET_NAMES

__all__ = [
    "DATASET_NAMES",
    "DataSplits",
    "clear_cache",
    "load_dataset",
]

SPLIT_SEED = 42

# --------------------------------------------------------------------------------------------
# The splits object
# --------------------------------------------------------------------------------------------


#: What a dataset's inputs are, which decides what is done to them (see :class:`DataSplits`).
INPUT_KINDS = ("images", "features", "tokens")


@dataclass(eq=False, repr=False)
class DataSplits:
    """Train/validation/test tensors of one dataset, as stored (images in pixel space).

    ``inputs`` says what ``*_x`` hold, and so what makes sense to do with them:

    * ``"images"``: ``(N, C, H, W)``, uint8 (0..255) or float32 in [0, 1]; the model sees them
      through :func:`.augment.to_float` and a Normalize layer built from ``mean``/``std``, so the
      stored form stays compact and augmentation (padding, Cutout fill) works in pixel units.
      FGSM clips perturbed images to [0, 1].
    * ``"features"``: ``(N, F)`` float32 table rows, standardised per feature by the same Normalize
      layer (``mean``/``std`` per feature); no augmentation; FGSM steps in standard deviations.
    * ``"tokens"``: ``(N, T)`` int64 token ids below ``vocab_size``; no normalisation, no
      augmentation, and no FGSM (ids have no gradient).

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
    inputs: str = "images"
    vocab_size: int | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One example's shape (``(C, H, W)``, ``(F,)`` or ``(T,)``), what a model factory needs to
        size its first layer."""
        return tuple(int(s) for s in self.train_x.shape[1:])

    def to(self, device: torch.device | str) -> DataSplits:
        """A copy with every tensor on ``device`` (whole dataset on the GPU: no per-step copies)."""
        moved = {f: getattr(self, f).to(device) for f in _TENSOR_FIELDS}
        return dataclasses.replace(self, **moved)

    def summary(self) -> str:
        """One line for logs: name, split sizes, input shape and number of classes."""
        shape = "x".join(map(str, self.input_shape))
        what = {"images": "", "features": " features", "tokens": f" tokens (vocabulary {self.vocab_size})"}
        return (
            f"{self.name}: {len(self.train_y)} train / {len(self.val_y)} val / "
            f"{len(self.test_y)} test, {shape} {str(self.train_x.dtype).replace('torch.', '')}{what[self.inputs]}, "
            f"{self.num_classes} classes, augment={self.augment}"
        )

    def __repr__(self) -> str:
        return f"DataSplits({self.summary()})"


_TENSOR_FIELDS = ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")

# --------------------------------------------------------------------------------------------
# Public loader and in-process cache
# --------------------------------------------------------------------------------------------

_CACHE: dict[tuple[Any, ...], DataSplits] = {}
_CACHE_LOCK = threading.RLock()
#: (id of the splits, constants) -> (those splits, a copy with the constants): see load_training_data.
_RENORMALIZED: dict[tuple[Any, ...], tuple[DataSplits, DataSplits]] = {}


def clear_cache() -> None:
    """Forget every dataset loaded in this process (tests, or to free memory)."""
    with _CACHE_LOCK:
        _CACHE.clear()
        _RENORMALIZED.clear()


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    data_fraction: float = 1.0,
    download: bool = True,
    field: str = "dataset",
    subset: str = "random",
) -> DataSplits:
    """Load a built-in dataset (:data:`DATASET_NAMES`) or a ``"package.module:function"`` plug-in.

    Files are looked for in ``data_dir`` (or ``$TAYLORGLO_DATA``), each also with a subfolder named
    after the dataset, then in the download cache (``$TAYLORGLO_CACHE`` or
    ``~/.cache/taylorglo``)/<dataset>; missing files are downloaded there unless
    ``download=False``. ``data_fraction`` keeps a fixed random subset of the train split (the same
    one on every call), or with ``subset="first"`` its first examples (the reference's reduced
    data: a prefix of the split's own seed-42 permutation). The result is cached per (name,
    folders, fraction, subset), so repeated calls in
    one worker return the same object. ``field`` names the config field in error messages.
    """
    fraction = _check_fraction(data_fraction)
    if subset not in SUBSETS:
        raise TaylorGLOError(f"subset: must be one of {', '.join(map(repr, SUBSETS))}, got {subset!r}")
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
        source = _BUILTINS[key_name]
        dirs = search_dirs(key_name, source.folders, data_dir) if source is not None else []
        base_key = ("builtin", key_name, tuple(str(d) for d in dirs))
        make = lambda: _load_builtin(key_name, dirs, download)  # noqa: E731
    with _CACHE_LOCK:
        full = _CACHE.get(base_key + (1.0,))
        if full is None:
            full = make()
            _CACHE[base_key + (1.0,)] = full
        if fraction == 1.0:
            return full
        part = _CACHE.get(base_key + (fraction, subset))
        if part is None:
            part = _train_subset(full, fraction, subset)
            _CACHE[base_key + (fraction, subset)] = part
        return part


def load_training_data(config: TrainConfig, field: str = "training.dataset") -> DataSplits:
    """The data a training config names: its dataset, folder, share and subset of the train split,
    with the normalisation constants ``config.normalization`` picks."""
    data = load_dataset(config.dataset, config.data_dir, config.data_fraction, field=field, subset=config.data_subset)
    if config.normalization == "reference":
        stats = REFERENCE_NORMALIZATION.get(str(config.dataset).lower())
        if stats is not None and (data.mean, data.std) != stats:
            data = _renormalized(data, stats)
    return data


_CIFAR10_STATS = ((125.3 / 255, 123.0 / 255, 113.9 / 255), (63.0 / 255, 62.1 / 255, 66.7 / 255))

#: The input normalisation the reference trained with, per built-in dataset (``training.normalization
#: = "reference"``): its trainer's SVHN constants, CIFAR-10's for CIFAR-100 too, and none (mean 0,
#: std 1) for MNIST and Fashion-MNIST, which its TensorFlow pipeline fed as [0, 1] pixels.
REFERENCE_NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": _CIFAR10_STATS,
    "cifar100": _CIFAR10_STATS,
    "svhn": ((109.9 / 255, 109.7 / 255, 113.8 / 255), (50.1 / 255, 50.6 / 255, 50.8 / 255)),
    "mnist": ((0.0,), (1.0,)),
    "fashion-mnist": ((0.0,), (1.0,)),
}


def _renormalized(data: DataSplits, stats: tuple[tuple[float, ...], tuple[float, ...]]) -> DataSplits:
    """``data`` with other normalisation constants (its tensors shared), cached so that repeated
    calls hand out one object, as :func:`load_dataset` does."""
    key = (id(data), stats)
    with _CACHE_LOCK:
        cached = _RENORMALIZED.get(key)
        if cached is None or cached[0] is not data:  # an id can be reused once data is freed
            cached = (data, dataclasses.replace(data, mean=stats[0], std=stats[1]))
            _RENORMALIZED[key] = cached
        return cached[1]


def _check_fraction(value: Any) -> float:
    """``data_fraction`` must be a number in (0, 1]."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = math.isfinite(value) and 0.0 < value <= 1.0
    if not ok:
        raise TaylorGLOError(f"data_fraction: must be a number in (0, 1], e.g. 0.1; got {value!r}")
    return float(value)


def _train_subset(splits: DataSplits, fraction: float, subset: str = "random") -> DataSplits:
    """A fixed ``fraction`` of the train split: a random one (a RandomState(42) permutation of
    it, first k) or, for ``subset="first"``, its first k (the train split is already the head of
    the dataset's seed-42 permutation, so this is the reference's subset).

    Validation, test, mean and std are unchanged, so reduced-data runs are scored on the same
    validation set as full runs.
    """
    n = len(splits.train_y)
    keep = max(1, round(fraction * n))
    order = np.arange(n) if subset == "first" else np.random.RandomState(SPLIT_SEED).permutation(n)
    index = torch.from_numpy(order[:keep])
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
    raw: Raw,
    val_share: float,
    augment: str,
    stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None,
    num_classes: int = 10,
) -> DataSplits:
    """Split the official training arrays into train/val and wrap everything as tensors."""
    train_x, train_y, test_x, test_y = raw
    for split, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        if np.ndim(x) != 4 or np.ndim(y) != 1:
            raise TaylorGLOError(
                f"{name}: the {split} images have shape {np.shape(x)} and labels {np.shape(y)}, "
                "not (N, C, H, W) and (N,); are the files swapped or corrupt?"
            )
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


def _sklearn_data_file(name: str) -> Path | None:
    """A data file scikit-learn ships (``sklearn/datasets/data/<name>``), found without importing
    scikit-learn: that import costs about a second, which every worker of a search would pay."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")  # locates the package without importing it
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / "datasets" / "data" / name
        if path.is_file():
            return path
    return None


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits as ``(images (1797, 8, 8) in 0..16, labels)``, read straight
    from the package's ``digits.csv.gz`` (what ``load_digits`` reads). Falls back to
    ``load_digits`` where the file is not where scikit-learn has kept it."""
    import gzip

    path = _sklearn_data_file("digits.csv.gz")
    if path is not None:
        with gzip.open(path, "rt") as fh:
            table = np.loadtxt(fh, delimiter=",")
        return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(int)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images, bunch.target


def _table_arrays(file: str, loader: str) -> tuple[np.ndarray, np.ndarray]:
    """A bundled scikit-learn table (``breast_cancer.csv``, ``wine_data.csv``: a header line, then
    feature columns and the class last) as ``(features, labels)``; ``sklearn.datasets.<loader>``
    where the file is not there."""
    path = _sklearn_data_file(file)
    if path is not None:
        table = np.loadtxt(path, delimiter=",", skiprows=1)
        return table[:, :-1], table[:, -1].astype(int)
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader)()
    return bunch.data, bunch.target


def _bundled_splits(
    name: str, x: torch.Tensor, y: torch.Tensor, shares: tuple[float, float], inputs: str
) -> DataSplits:
    """A small bundled dataset split train / validation / test by the seed-42 permutation (the
    first ``shares[0]`` of it train, the next ``shares[1]`` validation, the rest test); mean and
    std per channel or feature from the train split."""
    n = len(y)
    perm = torch.from_numpy(np.random.RandomState(SPLIT_SEED).permutation(n))
    a, b = round(shares[0] * n), round((shares[0] + shares[1]) * n)
    tr, va, te = perm[:a], perm[a:b], perm[b:]
    mean, std = _channel_stats(x[tr])
    return DataSplits(
        name, x[tr], y[tr], x[va], y[va], x[te], y[te],
        num_classes=int(y.max()) + 1, mean=mean, std=std, augment="none", inputs=inputs,
    )  # fmt: skip


def _load_digits() -> DataSplits:
    """scikit-learn's bundled 8x8 digits: 1,197 / 300 / 300 images, always available offline."""
    pixels, target = _digits_arrays()
    images = torch.from_numpy((pixels / 16.0).astype(np.float32)).unsqueeze(1)
    labels = torch.from_numpy(target.astype(np.int64))
    return _bundled_splits("digits", images, labels, (1197 / 1797, 300 / 1797), "images")


def _bundled_table(name: str, file: str, loader: str) -> Callable[[], DataSplits]:
    """A loader of one bundled scikit-learn table: features, split 60 / 20 / 20."""

    def load() -> DataSplits:
        features, target = _table_arrays(file, loader)
        x = torch.from_numpy(features.astype(np.float32))
        y = torch.from_numpy(target.astype(np.int64))
        return _bundled_splits(name, x, y, (0.6, 0.2), "features")

    return load


#: Datasets that ship inside a package (nothing to find or download): name -> loader.
_BUNDLED: dict[str, Callable[[], DataSplits]] = {
    "digits": _load_digits,
    # 569 tumours x 30 measurements, malignant / benign (scikit-learn's load_breast_cancer).
    "breast-cancer": _bundled_table("breast-cancer", "breast_cancer.csv", "load_breast_cancer"),
    # 178 wines x 13 chemical measurements, 3 cultivars (scikit-learn's load_wine).
    "wine": _bundled_table("wine", "wine_data.csv", "load_wine"),
}


# --------------------------------------------------------------------------------------------
# Built-in datasets: the table and its loader
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """How to find, fetch and split one built-in dataset."""

    folders: tuple[str, ...]  # subfolder names tried under a data root (first = cache folder)
    url: str  # official base URL of the downloadable files
    md5: Mapping[str, str]  # file name -> md5 of what the download fetches
    expected: str  # human description of the files, for the not-found message
    locate: Callable[[Path], Callable[[], Raw] | None]  # a reader if ``dir`` holds a copy
    val_share: float
    augment: str = "none"
    stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    num_classes: int = 10


_IDX_EXPECTED = (
    "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz"
)

_BUILTINS: dict[str, _Source | None] = {
    **{name: None for name in _BUNDLED},
    "mnist": _Source(
        folders=("mnist", "MNIST"),
        url="https://ossci-datasets.s3.amazonaws.com/mnist/",
        md5={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        expected=_IDX_EXPECTED,
        locate=locate_idx,
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
        expected=_IDX_EXPECTED,
        locate=locate_idx,
        val_share=5000 / 60000,
    ),
    "cifar10": _Source(
        folders=("cifar10", "cifar-10", "cifar10-jpeg"),
        url="https://www.cs.toronto.edu/~kriz/",
        md5={CIFAR10.archive: "c58f30108f718f92721af3b95e74349a"},
        expected=f"{CIFAR10.archive} (or {CIFAR10.folder}/, or train/<class>/ + test/<class>/ image folders, "
        "or a .tar.gz of those)",
        locate=locate_cifar10,
        val_share=5000 / 50000,
        augment="crop-flip",
        stats=_CIFAR10_STATS,
    ),
    "cifar100": _Source(
        folders=("cifar100", "cifar-100", "cifar100-jpeg"),
        url="https://www.cs.toronto.edu/~kriz/",
        md5={CIFAR100.archive: "eb9058c3a382ffc7106e4002c42a8d85"},
        expected=f"{CIFAR100.archive} (or {CIFAR100.folder}/, or train/<class>/ + test/<class>/ image folders, "
        "or a .tar.gz of those)",
        locate=locate_cifar100,
        val_share=5000 / 50000,
        augment="crop-flip",
        num_classes=100,
    ),
    "svhn": _Source(
        folders=("svhn", "SVHN"),
        url="http://ufldl.stanford.edu/housenumbers/",
        md5={
            "train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
            "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3",
        },
        expected="train_32x32.mat, test_32x32.mat",
        locate=locate_svhn,
        val_share=26032 / 73257,
        augment="crop-flip",
    ),
}


def _load_builtin(name: str, dirs: list[Path], download: bool) -> DataSplits:
    """Find the first folder holding a copy; otherwise download into the cache and retry."""
    source = _BUILTINS[name]
    if source is None:
        return _BUNDLED[name]()
    assert source is not None
    reader = _locate_first(source, dirs)
    reason = "downloading is off (download=False)"
    if reader is None and download:
        cache = cache_dir(name)
        try:
            download_files(name, source.url, source.md5, cache)
            reader = source.locate(cache.absolute())
            reason = "the download did not produce usable files"
        except DownloadFailed as exc:
            reason = f"download failed: {exc}"
    if reader is None:
        looked = ", ".join(str(d) if d.is_dir() else f"{d} (no such folder)" for d in dirs)
        raise DatasetNotFoundError(
            f"dataset {name!r} not found: expected {source.expected}; looked in {looked}; "
            f"{reason}; put the files in a folder and pass "
            f"--data-dir DIR (or set TAYLORGLO_DATA=DIR; a {name}/ subfolder also works)"
        )
    try:
        raw = reader()
    except TaylorGLOError:
        raise
    except Exception as exc:  # a damaged file can fail in any parser's own way
        raise TaylorGLOError(
            f"{name}: cannot read the dataset's files: {type(exc).__name__}: {one_line(exc)}; "
            "a file is damaged or not the dataset's: delete it (a missing file is downloaded "
            "again) or replace it"
        ) from None
    return _splits_from_arrays(name, raw, source.val_share, source.augment, source.stats, source.num_classes)


def _locate_first(source: _Source, dirs: list[Path]) -> Callable[[], Raw] | None:
    for d in dirs:
        reader = source.locate(d) if d.is_dir() else None
        if reader is not None:
            return reader
    return None


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
        raise TaylorGLOError(f"{field}: factory {ref!r} raised {type(exc).__name__}: {one_line(exc)}") from exc
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
            make = _plugin_inputs if key.endswith("_x") else _plugin_labels
            tensors[key] = make(parts[key], key, who)
    inputs = _input_kind(tensors["train_x"])
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
        if x.shape[1:] != tensors["train_x"].shape[1:] or _input_kind(x) != inputs:
            raise TaylorGLOError(
                f"{who}: {split}_x holds {_input_kind(x)} of shape {tuple(x.shape[1:])} but train_x holds "
                f"{inputs} of shape {tuple(tensors['train_x'].shape[1:])}"
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
    augment = parts.get("augment") or "none"
    if augment not in ("none", "crop-flip"):
        raise TaylorGLOError(f"{who}: augment must be 'none' or 'crop-flip', got {augment!r}")
    if augment != "none" and inputs != "images":
        raise TaylorGLOError(f"{who}: augment {augment!r} crops and flips images; {inputs} take augment 'none'")
    vocab_size = None
    if inputs == "tokens":
        vocab_size = _vocabulary(parts.get("vocab_size"), tensors, who)
        mean, std = (0.0,), (1.0,)  # ids are not normalised: the model embeds them
    else:
        channels = tensors["train_x"].shape[1]
        mean = _plugin_stat(parts.get("mean"), channels, "mean", who)
        std = _plugin_stat(parts.get("std"), channels, "std", who)
        if mean is None or std is None:
            computed = _channel_stats(tensors["train_x"])
            mean, std = mean or computed[0], std or computed[1]
    return DataSplits(
        name=str(parts["name"]), num_classes=num_classes, mean=mean, std=std, augment=augment,
        inputs=inputs, vocab_size=vocab_size, **tensors,
    )  # fmt: skip


def _input_kind(x: torch.Tensor) -> str:
    """What validated inputs hold: 4-D images, 2-D float features, 2-D integer token ids."""
    if x.dim() == 4:
        return "images"
    return "features" if x.is_floating_point() else "tokens"


def _vocabulary(value: Any, tensors: dict[str, torch.Tensor], who: str) -> int:
    """The token vocabulary: the factory's ``vocab_size``, else the largest id + 1; ids in range."""
    ids = [tensors[k] for k in ("train_x", "val_x", "test_x") if tensors[k].numel()]
    low, high = min(int(t.min()) for t in ids), max(int(t.max()) for t in ids)
    size = high + 1 if value is None else value
    if not (isinstance(size, numbers.Integral) and not isinstance(size, bool) and size >= 1):
        raise TaylorGLOError(f"{who}: vocab_size must be a positive integer, got {value!r}")
    if low < 0 or high >= int(size):
        raise TaylorGLOError(f"{who}: token ids must lie in 0..vocab_size-1 (got {low}..{high}, vocab_size {size})")
    return int(size)


def _plugin_inputs(value: Any, key: str, who: str) -> torch.Tensor:
    """Images ``(N, C, H, W)`` uint8 or float32 in [0, 1] (``(N, H, W)`` gets a channel axis);
    features ``(N, F)`` float (any range: they are standardised); token ids ``(N, T)`` integers."""
    try:
        x = torch.as_tensor(value)
    except Exception as exc:
        raise TaylorGLOError(f"{who}: {key} is not array-like ({type(value).__name__})") from exc
    if x.dim() == 2:
        if x.is_floating_point():
            return x.to(torch.float32)
        if x.is_complex() or x.dtype == torch.bool:
            raise TaylorGLOError(f"{who}: {key} must be float features or integer token ids, got {x.dtype}")
        return x.to(torch.int64)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.dim() != 4:
        raise TaylorGLOError(
            f"{who}: {key} must have shape (N, C, H, W) images, (N, F) features or (N, T) token ids, "
            f"got {tuple(x.shape)}"
        )
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
