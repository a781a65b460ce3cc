"""Readers for the on-disk formats of the built-in datasets.

Each ``locate_*`` function looks at one folder and returns a reader (a zero-argument callable giving
the raw train/test arrays) if that folder holds a copy in a format it knows, else None. Locating is
cheap (file names only); decoding happens when the reader is called. The formats are MNIST-style
IDX files, CIFAR-10's and CIFAR-100's python pickles or their archives, ``train|test/<class>/`` image folders (or a
tar of one), and SVHN's ``.mat`` files. This module knows nothing about where folders are or how
files get there (:mod:`.download`) or how arrays become splits (:mod:`.data`), so a new format is
one locator and one reader here.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import math
import os
import pickle
import re
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import TaylorGLOError, one_line

__all__ = [
    "CIFAR10",
    "CIFAR100",
    "CIFAR_ARCHIVE",
    "CIFAR_DIR",
    "Raw",
    "locate_cifar10",
    "locate_cifar100",
    "locate_idx",
    "locate_svhn",
]

# Raw arrays as read from disk: train images, train labels, test images, test labels.
Raw = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


_IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def locate_idx(directory: Path) -> Callable[[], Raw] | None:
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
    except (OSError, EOFError, zlib.error) as exc:
        raise TaylorGLOError(
            f"cannot read {path}: {one_line(exc)}; the file is damaged: delete it (a missing "
            "file is downloaded again) or replace it"
        ) from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise TaylorGLOError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(data) != header + math.prod(shape):
        raise TaylorGLOError(f"{path} is truncated or corrupt: header says shape {shape}")
    array = np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)
    return array[:, None] if ndim == 3 else array  # images -> (N, 1, H, W)


@dataclass(frozen=True)
class CifarFormat:
    """How one of the CIFAR datasets is packed: its python archive, the folder it unpacks to, its
    pickled batches (the last one the test split) and the key of the labels in them."""

    name: str
    archive: str
    folder: str
    batches: tuple[str, ...]
    labels: bytes


CIFAR10 = CifarFormat(
    "cifar10",
    "cifar-10-python.tar.gz",
    "cifar-10-batches-py",
    tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",),
    b"labels",
)
#: CIFAR-100's 100 fine classes (its 20 coarse ones are not a task the papers use).
CIFAR100 = CifarFormat("cifar100", "cifar-100-python.tar.gz", "cifar-100-python", ("train", "test"), b"fine_labels")
CIFAR_ARCHIVE, CIFAR_DIR = CIFAR10.archive, CIFAR10.folder
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
_IMAGE_MEMBER = re.compile(r"^(?:.*/)?(train|test)/([^/]+)/([^/]+)$")


def locate_cifar10(directory: Path) -> Callable[[], Raw] | None:
    """CIFAR-10: :func:`locate_cifar`."""
    return locate_cifar(directory, CIFAR10)


def locate_cifar100(directory: Path) -> Callable[[], Raw] | None:
    """CIFAR-100: :func:`locate_cifar`."""
    return locate_cifar(directory, CIFAR100)


def locate_cifar(directory: Path, fmt: CifarFormat) -> Callable[[], Raw] | None:
    """Original pickles, the original archive, an image folder, or an image folder as .tar.gz."""
    for batch_dir in (directory / fmt.folder, directory):
        if all((batch_dir / f).is_file() for f in fmt.batches):
            return lambda d=batch_dir: _read_cifar_batches({f: (d / f).read_bytes() for f in fmt.batches}, fmt)
    archive = directory / fmt.archive
    if archive.is_file():
        return lambda: _read_cifar_archive(archive, directory, fmt)
    if not directory.is_dir():
        return None
    roots = [directory] + sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    for root in roots:
        if (root / "train").is_dir() and (root / "test").is_dir():
            return lambda r=root: _images_to_raw(_image_folder_members(r), str(r))
    for pattern in ("*.tar.gz", "*.tgz", "*.tar"):
        for packed in sorted(directory.glob(pattern)):
            if packed.name != fmt.archive and packed.is_file() and _looks_like_image_tar(packed):
                return lambda p=packed: _images_to_raw(_image_tar_members(p, fmt.name), str(p))
    return None


def _read_cifar_batches(blobs: Mapping[str, bytes], fmt: CifarFormat) -> Raw:
    """Decode the python pickles (dicts with b'data' (N, 3072) and the labels); the last batch
    is the test split."""
    xs, ys = [], []
    for name in fmt.batches:
        try:
            batch = pickle.loads(blobs[name], encoding="bytes")
            data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels = np.asarray(batch[fmt.labels], dtype=np.int64)
        except Exception as exc:  # unpickling errors come in many types
            raise TaylorGLOError(f"{fmt.name}: cannot read batch {name}: {one_line(exc)}") from exc
        xs.append(data)
        ys.append(labels)
    return np.concatenate(xs[:-1]), np.concatenate(ys[:-1]), xs[-1], ys[-1]


def _read_cifar_archive(archive: Path, directory: Path, fmt: CifarFormat) -> Raw:
    """Read the batches out of the python archive, extracting them next to it.

    Only the batch files are written (so a hostile archive cannot write elsewhere), via a
    temporary folder renamed into place; a read-only folder just means no extraction.
    """
    blobs: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in fmt.batches:
                    blobs[base] = tar.extractfile(member).read()  # type: ignore[union-attr]
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise TaylorGLOError(f"{fmt.name}: cannot read {archive}: {one_line(exc)}") from exc
    missing = [f for f in fmt.batches if f not in blobs]
    if missing:
        raise TaylorGLOError(
            f"{fmt.name}: {archive} lacks {', '.join(missing)}; is it the {fmt.archive} python archive?"
        )
    with contextlib.suppress(OSError):
        with tempfile.TemporaryDirectory(dir=directory, prefix=".extract-") as tmp:
            target = Path(tmp) / fmt.folder
            target.mkdir()
            for name, blob in blobs.items():
                (target / name).write_bytes(blob)
            os.replace(target, directory / fmt.folder)
    return _read_cifar_batches(blobs, fmt)


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


def _image_tar_members(path: Path, dataset: str) -> list[tuple[str, str, str, bytes]]:
    """Same as :func:`_image_folder_members`, streamed out of an archive without extracting it."""
    members = []
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                key = _image_member_key(member.name) if member.isfile() else None
                if key is not None:
                    members.append((*key, tar.extractfile(member).read()))  # type: ignore[union-attr]
    except (OSError, tarfile.TarError, EOFError) as exc:
        raise TaylorGLOError(f"{dataset}: cannot read {path}: {one_line(exc)}") from exc
    return members


def _images_to_raw(members: list[tuple[str, str, str, bytes]], where: str) -> Raw:
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
                raise TaylorGLOError(f"{where}: cannot decode {split}/{cls}/{base}: {one_line(exc)}") from exc
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


def locate_svhn(directory: Path) -> Callable[[], Raw] | None:
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
        raise TaylorGLOError(f"svhn: cannot read {path}: {one_line(exc)}") from exc
    y[y == 10] = 0
    return x, y
