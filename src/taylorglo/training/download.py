"""Where dataset files live and how missing ones are fetched.

Folders are searched in a fixed order (a data root from ``data_dir`` or ``$TAYLORGLO_DATA`` and its
per-dataset subfolders, then the download cache ``$TAYLORGLO_CACHE`` or ``~/.cache/taylorglo``).
Downloads go to the cache, honour ``$TAYLORGLO_MIRROR``, and are md5-checked and renamed into place
atomically, so a broken or concurrent download never leaves a file that looks good. Nothing here
reads the files' contents (that is :mod:`.formats`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from ..errors import TaylorGLOError, one_line

__all__ = ["DOWNLOAD_TIMEOUT_S", "DownloadFailed", "cache_dir", "download_files", "search_dirs"]

DOWNLOAD_TIMEOUT_S = 60.0
_log = logging.getLogger(__name__)


def cache_dir(name: str) -> Path:
    """Where downloads go: ``$TAYLORGLO_CACHE/<dataset>`` or ``~/.cache/taylorglo/<dataset>``."""
    root = os.environ.get("TAYLORGLO_CACHE") or os.path.join("~", ".cache", "taylorglo")
    return Path(root).expanduser() / name


def search_dirs(name: str, folders: tuple[str, ...], data_dir: str | os.PathLike[str] | None) -> list[Path]:
    """Folders to look in, in order: the data root, its ``folders`` subfolders, then the cache."""
    root = data_dir if data_dir is not None else os.environ.get("TAYLORGLO_DATA") or None
    dirs: list[Path] = []
    if root is not None:
        base = Path(root).expanduser()
        dirs += [base] + [base / sub for sub in folders]
    dirs.append(cache_dir(name))
    unique: list[Path] = []
    for d in dirs:
        d = d.absolute()
        if d not in unique:
            unique.append(d)
    return unique


class DownloadFailed(Exception):
    """Network or mirror problem; turned into a DatasetNotFoundError by the caller."""


def download_files(name: str, url: str, md5s: Mapping[str, str], target: Path) -> None:
    """Fetch every file named in ``md5s`` that is not yet in ``target`` from base ``url``, checking md5s.

    ``$TAYLORGLO_MIRROR`` (any urllib URL, ``file://`` included) replaces the official host as
    ``{mirror}/{dataset}/{file}``, for machines behind a proxy or without internet.
    """
    mirror = os.environ.get("TAYLORGLO_MIRROR")
    for filename, md5 in md5s.items():
        dest = target / filename
        if dest.is_file():
            continue
        file_url = f"{mirror.rstrip('/')}/{name}/{filename}" if mirror else url + filename
        _download_file(name, file_url, dest, md5)


def _download_file(name: str, url: str, dest: Path, md5: str) -> None:
    """Stream ``url`` to a temp file beside ``dest``, verify its md5, then rename atomically.

    A half-written or corrupted download never appears under the final name, so a later run (or a
    concurrent worker) cannot mistake it for a good copy.
    """
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as exc:
        raise DownloadFailed(f"cannot write to {dest.parent}: {one_line(exc)}") from exc
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
        raise DownloadFailed(f"{url}: {one_line(getattr(exc, 'reason', exc))}") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
