"""Tests for taylorglo.training.data (with .formats): loaders on tiny hand-written files, splits, plug-ins."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from datafiles import make_cifar_batches, make_mnist, make_png_folder, make_svhn
from taylorglo.errors import TaylorGLOError
from taylorglo.training import data as D
from taylorglo.training.data import DataSplits, load_dataset

HAS_PIL = importlib.util.find_spec("PIL") is not None

pytestmark = pytest.mark.usefixtures("isolated_data")


def perm(n: int) -> np.ndarray:
    return np.random.RandomState(42).permutation(n)


def check_split(splits: DataSplits, x: np.ndarray, y: np.ndarray, val_count: int) -> None:
    """train/val are the seed-42 permutation of the file, validation its last val_count indices."""
    p = perm(len(x))
    tr, va = p[: len(x) - val_count], p[len(x) - val_count :]
    assert torch.equal(splits.train_x, torch.from_numpy(x[tr]))
    assert torch.equal(splits.train_y, torch.from_numpy(y[tr].astype(np.int64)))
    assert torch.equal(splits.val_x, torch.from_numpy(x[va]))
    assert torch.equal(splits.val_y, torch.from_numpy(y[va].astype(np.int64)))


# ---------------------------------------------------------------------------- digits


def test_digits_splits_dtypes_and_determinism():
    s = load_dataset("digits")
    assert (len(s.train_y), len(s.val_y), len(s.test_y)) == (1197, 300, 300)
    assert s.train_x.shape == (1197, 1, 8, 8) and s.train_x.dtype == torch.float32
    assert s.train_y.dtype == torch.int64 and s.num_classes == 10 and s.input_shape == (1, 8, 8)
    assert 0.0 <= float(s.train_x.min()) and float(s.train_x.max()) <= 1.0
    assert s.augment == "none" and len(s.mean) == 1 and len(s.std) == 1
    assert abs(s.mean[0] - float(s.train_x.mean())) < 1e-6
    assert load_dataset("digits") is s  # cached in-process
    D.clear_cache()
    again = load_dataset("digits")
    assert again is not s
    for f in D._TENSOR_FIELDS:
        assert torch.equal(getattr(s, f), getattr(again, f))
    assert "1197 train / 300 val / 300 test" in s.summary() and "\n" not in s.summary()
    moved = s.to("cpu")
    assert isinstance(moved, DataSplits) and moved.input_shape == (1, 8, 8)


def test_digits_are_scikit_learns_read_without_importing_it():
    """Read from scikit-learn's own file (importing the package costs a worker about a second):
    the same arrays as load_digits, and scikit-learn stays out of the process."""
    from sklearn.datasets import load_digits

    images, labels = D._digits_arrays()
    bunch = load_digits()
    assert np.array_equal(images, bunch.images) and np.array_equal(labels, bunch.target)
    code = (
        "import sys; from taylorglo.training.data import load_dataset; load_dataset('digits'); "
        "assert 'sklearn' not in sys.modules, 'scikit-learn was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ---------------------------------------------------------------------------- IDX (mnist, fashion)


def test_mnist_idx_gz_roundtrip(tmp_path):
    arrays = make_mnist(tmp_path / "m")
    s = load_dataset("mnist", tmp_path / "m")
    x = arrays["train-images-idx3-ubyte"][:, None]
    assert s.train_x.dtype == torch.uint8 and s.input_shape == (1, 7, 5)
    assert (len(s.train_y), len(s.val_y), len(s.test_y)) == (22, 2, 6)  # round(24 * 5000/60000) = 2
    check_split(s, x, arrays["train-labels-idx1-ubyte"], 2)
    assert torch.equal(s.test_x, torch.from_numpy(arrays["t10k-images-idx3-ubyte"][:, None]))
    assert s.test_y.tolist() == list(range(6))
    assert s.augment == "none" and s.num_classes == 10
    assert abs(s.mean[0] - s.train_x.double().div(255).mean().item()) < 1e-9
    assert abs(s.std[0] - s.train_x.double().div(255).std(unbiased=False).item()) < 1e-9
    assert load_dataset("mnist", tmp_path / "m") is s


def test_fashion_uncompressed_in_parent_folder(tmp_path):
    arrays = make_mnist(tmp_path / "root" / "fashion-mnist", n_train=36, compress=False)
    s = load_dataset("fashion-mnist", tmp_path / "root")  # parent holding fashion-mnist/
    assert (len(s.train_y), len(s.val_y)) == (33, 3)
    check_split(s, arrays["train-images-idx3-ubyte"][:, None], arrays["train-labels-idx1-ubyte"], 3)


def test_data_root_from_environment(tmp_path, monkeypatch):
    make_mnist(tmp_path / "root" / "mnist")
    monkeypatch.setenv("TAYLORGLO_DATA", str(tmp_path / "root"))
    assert len(load_dataset("mnist").test_y) == 6


# ---------------------------------------------------------------------------- cifar10


def test_cifar_pickles(tmp_path):
    arrays = make_cifar_batches(tmp_path / "c" / "cifar-10-batches-py")
    s = load_dataset("cifar10", tmp_path / "c")
    assert s.input_shape == (3, 32, 32) and s.train_x.dtype == torch.uint8
    assert (len(s.train_y), len(s.val_y), len(s.test_y)) == (18, 2, 3)
    check_split(s, arrays["train_x"], arrays["train_y"], 2)
    assert torch.equal(s.test_x, torch.from_numpy(arrays["test_x"]))
    assert s.augment == "crop-flip"
    assert s.mean == pytest.approx((125.3 / 255, 123.0 / 255, 113.9 / 255))
    assert s.std == pytest.approx((63.0 / 255, 62.1 / 255, 66.7 / 255))


def test_cifar_original_archive_is_extracted(tmp_path):
    arrays = make_cifar_batches(tmp_path / "src" / "cifar-10-batches-py")
    (tmp_path / "c").mkdir()
    with tarfile.open(tmp_path / "c" / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    s = load_dataset("cifar10", tmp_path / "c")
    check_split(s, arrays["train_x"], arrays["train_y"], 2)
    assert (tmp_path / "c" / "cifar-10-batches-py" / "test_batch").is_file()
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.startswith(".")]


def _cifar100(folder, n_train: int = 30, n_test: int = 5):
    """CIFAR-100's python pickles: ``train`` and ``test``, fine and coarse labels."""
    rng = np.random.RandomState(4)
    folder.mkdir(parents=True)
    arrays = {}
    for name, n in (("train", n_train), ("test", n_test)):
        x = rng.randint(0, 256, (n, 3072)).astype(np.uint8)
        fine = list(rng.randint(0, 100, n))
        blob = {b"data": x, b"fine_labels": fine, b"coarse_labels": [f // 5 for f in fine], b"filenames": []}
        (folder / name).write_bytes(__import__("pickle").dumps(blob))
        arrays[name] = (x.reshape(-1, 3, 32, 32), np.array(fine))
    return arrays


def test_cifar100_pickles_and_archive_with_the_fine_labels(tmp_path):
    arrays = _cifar100(tmp_path / "src" / "cifar-100-python")
    s = load_dataset("cifar100", tmp_path / "src")
    assert s.num_classes == 100 and s.input_shape == (3, 32, 32) and s.augment == "crop-flip"
    assert (len(s.train_y), len(s.val_y), len(s.test_y)) == (27, 3, 5)
    check_split(s, *arrays["train"], 3)
    assert (
        torch.equal(s.test_x, torch.from_numpy(arrays["test"][0])) and s.test_y.tolist() == arrays["test"][1].tolist()
    )
    (tmp_path / "c").mkdir()
    with tarfile.open(tmp_path / "c" / "cifar-100-python.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-100-python", arcname="cifar-100-python")
    t = load_dataset("cifar100", tmp_path / "c")
    assert (tmp_path / "c" / "cifar-100-python" / "test").is_file()
    for f in D._TENSOR_FIELDS:
        assert torch.equal(getattr(s, f), getattr(t, f))
    with pytest.raises(TaylorGLOError, match="dataset 'cifar100' not found: expected cifar-100-python.tar.gz"):
        load_dataset("cifar100", tmp_path / "nothing", download=False)


@pytest.mark.skipif(not HAS_PIL, reason="Pillow not installed")
def test_cifar_png_folder_and_tar(tmp_path):
    arrays = make_png_folder(tmp_path / "imgs" / "cifar10-png")
    s = load_dataset("cifar10", tmp_path / "imgs")  # the image tree is one level down
    assert s.input_shape == (3, 6, 5)
    assert (len(s.train_y), len(s.val_y), len(s.test_y)) == (8, 1, 3)  # round(9 * 0.1) = 1
    check_split(s, arrays["train_x"], arrays["train_y"], 1)
    assert torch.equal(s.test_x, torch.from_numpy(arrays["test_x"]))
    assert s.test_y.tolist() == [0, 1, 2]  # airplane, bird, cat

    (tmp_path / "packed").mkdir()
    with tarfile.open(tmp_path / "packed" / "cifar10-png.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "imgs" / "cifar10-png", arcname="cifar10-png")
    t = load_dataset("cifar10", tmp_path / "packed")
    assert t is not s
    for f in D._TENSOR_FIELDS:
        assert torch.equal(getattr(s, f), getattr(t, f))
    assert not [p for p in (tmp_path / "packed").iterdir() if p.is_dir()]  # read without extracting


def test_images_without_pillow_say_how_to_install(tmp_path, monkeypatch):
    (tmp_path / "c" / "train" / "a").mkdir(parents=True)
    (tmp_path / "c" / "test" / "a").mkdir(parents=True)
    (tmp_path / "c" / "train" / "a" / "0.png").write_bytes(b"x")
    (tmp_path / "c" / "test" / "a" / "0.png").write_bytes(b"x")
    monkeypatch.setitem(__import__("sys").modules, "PIL", None)
    with pytest.raises(TaylorGLOError, match=r"pip install taylorglo\[images\]"):
        load_dataset("cifar10", tmp_path / "c", download=False)


# ---------------------------------------------------------------------------- svhn


def test_svhn_mat(tmp_path):
    files = make_svhn(tmp_path / "svhn")
    s = load_dataset("svhn", tmp_path)  # parent holding svhn/
    val_count = round(14 * 26032 / 73257)
    assert (len(s.train_y), len(s.val_y), len(s.test_y)) == (14 - val_count, val_count, 4)
    check_split(s, *files["train"], val_count)
    assert torch.equal(s.test_x, torch.from_numpy(np.ascontiguousarray(files["test"][0])))
    assert s.test_y.tolist() == [1, 2, 3, 4] and 0 in torch.cat([s.train_y, s.val_y]).tolist()
    assert s.augment == "crop-flip" and s.input_shape == (3, 32, 32)


def test_official_sizes_give_spec_split_counts():
    assert D._val_count(60000, 5000 / 60000) == 5000
    assert D._val_count(50000, 5000 / 50000) == 5000
    assert D._val_count(73257, 26032 / 73257) == 26032


# ---------------------------------------------------------------------------- fraction


def test_data_fraction_subset_is_fixed(tmp_path):
    make_mnist(tmp_path / "m", n_train=120)
    full = load_dataset("mnist", tmp_path / "m")
    sub = load_dataset("mnist", tmp_path / "m", data_fraction=0.1)
    assert len(full.train_y) == 110 and len(sub.train_y) == 11
    idx = torch.from_numpy(perm(110)[:11])
    assert torch.equal(sub.train_x, full.train_x[idx]) and torch.equal(sub.train_y, full.train_y[idx])
    assert sub.val_x is full.val_x and sub.mean == full.mean and sub.std == full.std
    assert load_dataset("mnist", tmp_path / "m", data_fraction=0.1) is sub
    D.clear_cache()
    again = load_dataset("mnist", tmp_path / "m", data_fraction=0.1)
    assert torch.equal(again.train_x, sub.train_x)
    assert len(load_dataset("mnist", tmp_path / "m", data_fraction=1e-9).train_y) == 1


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, 1.5, float("nan"), float("inf"), "0.5", True, None])
def test_bad_fraction(bad):
    with pytest.raises(TaylorGLOError, match="data_fraction") as info:
        load_dataset("digits", data_fraction=bad)
    assert "\n" not in str(info.value)


def test_unknown_name():
    with pytest.raises(TaylorGLOError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")


# ---------------------------------------------------------------------------- plug-ins


def _write_plugin(tmp_path: Path, monkeypatch, module: str, body: str) -> None:
    (tmp_path / "plugins").mkdir(exist_ok=True)
    (tmp_path / "plugins" / f"{module}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))


def test_plugin_dict_factory(tmp_path, monkeypatch):
    _write_plugin(
        tmp_path,
        monkeypatch,
        "tg_test_plugin_a",
        """
        import numpy as np
        SEEN = []
        def make(data_dir=None):
            SEEN.append(data_dir)
            rng = np.random.RandomState(0)
            return {"train_x": rng.randint(0, 256, (50, 2, 4, 4)).astype(np.uint8),
                    "train_y": np.arange(50) % 3,
                    "test_x": rng.rand(7, 2, 4, 4).astype(np.float32),
                    "test_y": np.arange(7) % 3}
        """,
    )
    s = load_dataset("tg_test_plugin_a:make", data_dir=str(tmp_path))
    import tg_test_plugin_a

    assert tg_test_plugin_a.SEEN == [str(tmp_path)]
    assert (len(s.train_y), len(s.val_y), len(s.test_y)) == (45, 5, 7)
    assert s.num_classes == 3 and s.input_shape == (2, 4, 4) and len(s.mean) == 2
    assert s.train_y.dtype == torch.int64 and s.test_x.dtype == torch.float32
    assert s.name == "tg_test_plugin_a:make"
    assert load_dataset("tg_test_plugin_a:make", data_dir=str(tmp_path)) is s
    assert len(load_dataset("tg_test_plugin_a:make", data_dir=str(tmp_path), data_fraction=0.2).train_y) == 9


def test_plugin_errors_name_the_factory(tmp_path, monkeypatch):
    _write_plugin(
        tmp_path,
        monkeypatch,
        "tg_test_plugin_b",
        """
        import numpy as np
        def flat():  # five axes: neither images, features nor token ids
            return {"train_x": np.zeros((5, 1, 1, 4, 4), np.uint8), "train_y": np.zeros(5, int),
                    "test_x": np.zeros((2, 1, 1, 4, 4), np.uint8), "test_y": np.zeros(2, int)}
        def nothing():
            return 42
        def boom():
            raise RuntimeError("disk on fire")
        """,
    )
    for func, pattern in (("flat", "train_x must have shape"), ("nothing", "returned int"), ("boom", "disk on fire")):
        with pytest.raises(TaylorGLOError, match=pattern) as info:
            load_dataset(f"tg_test_plugin_b:{func}", field="data.dataset")
        assert f"'tg_test_plugin_b:{func}'" in str(info.value) and "\n" not in str(info.value)
        assert str(info.value).startswith("data.dataset")
