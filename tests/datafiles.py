"""Writers of tiny hand-made dataset files in the official formats, shared by the dataset tests."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    blob = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(blob) if compress else blob)


def make_mnist(folder: Path, n_train: int = 24, n_test: int = 6, hw=(7, 5), compress=True, seed=0):
    rng = np.random.RandomState(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.randint(0, 256, (n_train, *hw)).astype(np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.randint(0, 256, (n_test, *hw)).astype(np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for stem, arr in arrays.items():
        write_idx(folder / (stem + (".gz" if compress else "")), arr, compress)
    return arrays


def make_cifar_batches(folder: Path, per_batch: int = 4, n_test: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(1)
    folder.mkdir(parents=True, exist_ok=True)
    xs, ys = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = n_test if name == "test_batch" else per_batch
        x = rng.randint(0, 256, (n, 3072)).astype(np.uint8)
        y = list(rng.randint(0, 10, n))
        (folder / name).write_bytes(pickle.dumps({b"data": x, b"labels": y, b"batch_label": name.encode()}))
        xs.append(x.reshape(-1, 3, 32, 32))
        ys.append(np.array(y))
    return {"train_x": np.concatenate(xs[:5]), "train_y": np.concatenate(ys[:5]), "test_x": xs[5], "test_y": ys[5]}


def make_svhn(
    folder: Path, n_train: int = 14, n_test: int = 4, seed: int = 3
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """train_32x32.mat and test_32x32.mat as the official files lay them out (HWCN, labels 1..10);
    returns per split the images as (N, C, H, W) and the labels 0..9."""
    from scipy.io import savemat

    rng = np.random.RandomState(seed)
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, n in (("train", n_train), ("test", n_test)):
        x = rng.randint(0, 256, (32, 32, 3, n)).astype(np.uint8)
        y = (np.arange(n) % 10 + 1).reshape(-1, 1).astype(np.uint8)  # 1..10, 10 = digit 0
        savemat(folder / f"{name}_32x32.mat", {"X": x, "y": y})
        files[name] = (x.transpose(3, 2, 0, 1), y.ravel() % 10)
    return files


CLASSES_UNSORTED = ["cat", "airplane", "bird"]  # written in this order; labels must follow sorted order


def make_png_folder(root: Path, n_train: int = 3, n_test: int = 1, hw=(6, 5)) -> dict[str, np.ndarray]:
    """PNG tree root/{train,test}/<class>/NN.png; returns the arrays in the loader's expected order."""
    from PIL import Image

    rng = np.random.RandomState(2)
    out: dict[str, list] = {"train_x": [], "train_y": [], "test_x": [], "test_y": []}
    images = {}
    for split, n in (("train", n_train), ("test", n_test)):
        for cls in CLASSES_UNSORTED:
            (root / split / cls).mkdir(parents=True)
            for i in reversed(range(n)):
                img = rng.randint(0, 256, (*hw, 3)).astype(np.uint8)
                Image.fromarray(img).save(root / split / cls / f"{i:02d}.png")
                images[(split, cls, i)] = img
    for split, n in (("train", n_train), ("test", n_test)):
        for label, cls in enumerate(sorted(CLASSES_UNSORTED)):
            for i in range(n):
                out[f"{split}_x"].append(images[(split, cls, i)].transpose(2, 0, 1))
                out[f"{split}_y"].append(label)
    return {k: np.stack(v) if k.endswith("x") else np.array(v) for k, v in out.items()}
