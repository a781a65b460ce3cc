"""Tests for taylorglo.training.data: loaders on tiny hand-written files, splits, downloads, augmentation."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib.util
import pickle
import tarfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from taylorglo.errors import DatasetNotFoundError, TaylorGLOError
from taylorglo.training import data as D
from taylorglo.training.data import DataSplits, augment_batch, load_dataset, to_float

HAS_PIL = importlib.util.find_spec("PIL") is not None


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No real cache, data root or mirror leaks into a test; each test starts with an empty cache."""
    monkeypatch.setenv("TAYLORGLO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TAYLORGLO_DATA", raising=False)
    monkeypatch.delenv("TAYLORGLO_MIRROR", raising=False)
    D.clear_cache()
    yield
    D.clear_cache()


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


# ---------------------------------------------------------------------------- writers


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
    from scipy.io import savemat

    rng = np.random.RandomState(3)
    folder = tmp_path / "svhn"
    folder.mkdir()
    files = {}
    for name, n in (("train", 14), ("test", 4)):
        x = rng.randint(0, 256, (32, 32, 3, n)).astype(np.uint8)
        y = (np.arange(n) % 10 + 1).reshape(-1, 1).astype(np.uint8)  # 1..10, 10 = digit 0
        savemat(folder / f"{name}_32x32.mat", {"X": x, "y": y})
        files[name] = (x.transpose(3, 2, 0, 1), y.ravel() % 10)
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


# ---------------------------------------------------------------------------- missing files, downloads


def test_missing_files_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", tmp_path / "empty", download=False)
    msg = str(info.value)
    assert "\n" not in msg and "'mnist'" in msg and str(tmp_path / "empty") in msg
    assert "train-images-idx3-ubyte.gz" in msg and "--data-dir" in msg and "TAYLORGLO_DATA" in msg


def _mirror(tmp_path: Path, monkeypatch) -> dict[str, str]:
    """Tiny MNIST files on a file:// mirror; the expected md5s are swapped for theirs."""
    make_mnist(tmp_path / "mirror" / "mnist")
    md5 = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in (tmp_path / "mirror" / "mnist").iterdir()}
    monkeypatch.setitem(D._BUILTINS, "mnist", dataclasses.replace(D._BUILTINS["mnist"], md5=md5))
    monkeypatch.setenv("TAYLORGLO_MIRROR", (tmp_path / "mirror").as_uri())
    return md5


def test_download_from_file_mirror(tmp_path, monkeypatch):
    md5 = _mirror(tmp_path, monkeypatch)
    s = load_dataset("mnist")
    assert len(s.test_y) == 6
    cache = tmp_path / "cache" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(md5)  # no temp files left
    D.clear_cache()
    (tmp_path / "mirror" / "mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    assert len(load_dataset("mnist").test_y) == 6  # served from the cache, no download


def test_download_bad_checksum_leaves_nothing(tmp_path, monkeypatch):
    _mirror(tmp_path, monkeypatch)
    bad = tmp_path / "mirror" / "mnist" / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes() + b"tampered")
    with pytest.raises(TaylorGLOError, match="checksum") as info:
        load_dataset("mnist")
    assert "\n" not in str(info.value) and not isinstance(info.value, DatasetNotFoundError)
    names = [p.name for p in (tmp_path / "cache" / "mnist").iterdir()]
    assert "train-labels-idx1-ubyte.gz" not in names and not [n for n in names if n.startswith(".")]


def test_download_missing_on_mirror(tmp_path, monkeypatch):
    _mirror(tmp_path, monkeypatch)
    (tmp_path / "mirror" / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match="download failed") as info:
        load_dataset("mnist")
    assert "\n" not in str(info.value)


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
        def flat():
            return {"train_x": np.zeros((5, 16), np.uint8), "train_y": np.zeros(5, int),
                    "test_x": np.zeros((2, 16), np.uint8), "test_y": np.zeros(2, int)}
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


# ---------------------------------------------------------------------------- batch helpers


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
    out = augment_batch(image.repeat(200, 1, 1, 1), torch.Generator().manual_seed(1), crop_padding=pad, flip=False, fill=fill)
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
