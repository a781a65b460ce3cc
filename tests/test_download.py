"""Tests for taylorglo.training.download through load_dataset: missing files, file:// mirror, checksums."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from datafiles import make_mnist
from taylorglo.errors import DatasetNotFoundError, TaylorGLOError
from taylorglo.training import data as D
from taylorglo.training.data import load_dataset

pytestmark = pytest.mark.usefixtures("isolated_data")


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
