"""The store under a hostile world: damaged files, read-only copies, shared experiments carrying
a malicious pickle, copies taken mid-run, and stores written by the previous version."""

from __future__ import annotations

import hashlib
import pickle
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments import SMALL, cli, merged, run_cli, write_config
from taylorglo.experiment import Store, init_experiment, status

FIXTURES = Path(__file__).parent / "fixtures" / "v3"
TINY = merged(SMALL, training={"steps": 600}, search={"population": 4, "generations": 2, "partial_fraction": 0.1})


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` with its content hash (what "nothing changed" means). SQLite's
    readers may create an empty ``-wal`` and the ``-shm`` index of a WAL database, which hold no
    data: those are left out, once checked to be empty of data."""
    out = {}
    for p in sorted(directory.rglob("*")):
        if p.name.endswith("-shm"):
            continue
        if p.name.endswith("-wal") and p.stat().st_size == 0:
            continue
        if p.is_file():
            out[str(p.relative_to(directory))] = _digest(p)
    return out


def _one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny search with a `final` of 2 repeats (read by every test here, copied first)."""
    root = tmp_path_factory.mktemp("safety")
    init_experiment(root / "run", write_config(root / "tiny.toml", TINY))
    cli("start", str(root / "run"), check=True)
    cli("final", str(root / "run"), "--repeats", "2", check=True)
    return root / "run"


def _copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


READ_COMMANDS = (("status",), ("status", "--json"), ("compare",), ("log", "0", "0"), ("analyze", "--out", "{out}"))


def _read_all(directory: Path, out: Path) -> None:
    for args in READ_COMMANDS:
        args = tuple(a.replace("{out}", str(out)) for a in args)
        result = run_cli(args[0], str(directory), *args[1:])
        assert result.returncode == 0, (args, result.stderr)


def test_reading_an_experiment_changes_nothing_in_it(finished, tmp_path):
    run = _copy(finished, tmp_path / "run")
    (run / "experiment.sqlite-wal").unlink(missing_ok=True)
    (run / "experiment.sqlite-shm").unlink(missing_ok=True)
    before = _tree(run)
    _read_all(run, tmp_path / "report")
    assert _tree(run) == before


@pytest.mark.parametrize("damage", ["empty", "garbage", "truncated", "corrupt-page"])
def test_a_damaged_store_gives_one_line_for_every_command_and_is_never_written(finished, tmp_path, damage):
    run = _copy(finished, tmp_path / "run")
    store = run / "experiment.sqlite"
    data = store.read_bytes()
    if damage == "empty":
        store.write_bytes(b"")
    elif damage == "garbage":
        store.write_bytes(b"this is not a database\n" * 100)
    elif damage == "truncated":
        store.write_bytes(data[: len(data) // 2 + 100])
    else:  # a page in the middle overwritten: the header still says SQLite
        page = 4096
        middle = (len(data) // page // 2) * page
        store.write_bytes(data[:middle] + b"\xff" * page + data[middle + page :])
    before = _tree(run)
    expected = {"empty": "empty", "garbage": "not an SQLite database"}.get(damage, "damaged")
    for args in (
        ("status",),
        ("start",),
        ("final", "--repeats", "3"),
        ("compare",),
        ("analyze",),
        ("log", "0", "0"),
        ("backup", str(tmp_path / "copy")),
        ("robustness",),
    ):
        _one_line_error(run_cli(args[0], str(run), *args[1:]), "experiment.sqlite", expected)
    assert _tree(run) == before
    assert not (tmp_path / "copy").exists()


def test_collate_names_the_damaged_store_among_good_ones(finished, tmp_path):
    runs = tmp_path / "runs"
    _copy(finished, runs / "good")
    bad = _copy(finished, runs / "bad")
    (bad / "experiment.sqlite").write_bytes(b"")
    _one_line_error(run_cli("collate", str(runs)), str(bad / "experiment.sqlite"), "empty")


def _read_only_mount(directory: Path) -> bool:
    """Make ``directory`` a read-only mount (a tmpfs remounted ro) holding what it held; False
    where this process may not mount (not root, or no mount namespace)."""
    staged = directory.with_name(directory.name + "-staged")
    shutil.move(directory, staged)
    directory.mkdir()
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(directory)], capture_output=True
        ).returncode
        != 0
    ):
        directory.rmdir()
        shutil.move(staged, directory)
        return False
    shutil.copytree(staged, directory, dirs_exist_ok=True)
    shutil.rmtree(staged)
    return subprocess.run(["mount", "-o", "remount,ro", str(directory)], capture_output=True).returncode == 0


def test_a_read_only_archived_copy_without_its_wal_files_reads_and_refuses_writes(finished, tmp_path):
    archive = tmp_path / "archive"
    run = _copy(finished, archive / "run")
    for suffix in ("-wal", "-shm"):
        (run / f"experiment.sqlite{suffix}").unlink(missing_ok=True)
    if not _read_only_mount(archive):
        pytest.skip("this machine does not let the test make a read-only mount (needs root)")
    try:
        assert not (run / "experiment.sqlite-shm").exists()
        st = status(run)
        assert st["state"] == "finished" and st["candidates"]["total"] == 8
        _read_all(run, tmp_path / "report")
        for args in (("start",), ("final", "--repeats", "3")):
            _one_line_error(run_cli(args[0], str(run), *args[1:]), "backup")
        # ... and a backup of the archive can be resumed elsewhere.
        assert run_cli("backup", str(run), str(tmp_path / "restored")).returncode == 0
    finally:
        subprocess.run(["umount", str(archive)], capture_output=True)
    assert status(tmp_path / "restored")["candidates"] == st["candidates"]
    cli("final", str(tmp_path / "restored"), "--repeats", "3", check=True)


class _Planted:
    """Unpickling this creates the file ``path``: what a shared experiment could do to its reader."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_reading_a_shared_experiment_never_unpickles_its_search_state(finished, tmp_path):
    run = _copy(finished, tmp_path / "run")
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Planted(str(marker)))
    pickle.loads(payload)  # the payload works ...
    assert marker.exists()
    marker.unlink()
    with sqlite3.connect(run / "experiment.sqlite") as db:
        db.execute("UPDATE generations SET asked_state = ?, told_state = ?", (payload, payload))
    db.close()
    _read_all(run, tmp_path / "report")  # ... but no reader loads it
    for args in (("ttest", str(run)), ("collate",)):
        target = str(tmp_path) if args[0] == "collate" else str(run)
        assert run_cli(args[0], target, *args[1:]).returncode == 0
    assert not marker.exists()
    # The report still draws the search path, from the plain-data summaries beside the state.
    html = (tmp_path / "report" / "index.html").read_text()
    assert "cmaes.png" in html


def test_the_main_file_alone_holds_every_closed_generation_mid_run(tmp_path):
    """A copy of experiment.sqlite taken while `start` runs (without its -wal) has the closed
    generations; so has the main file when the -wal is lost after a kill -9. The test watches
    generations.csv, which the host writes after a generation's checkpoint, and not the database:
    a reader of the database may hold the (passive) checkpoint back until the next one."""
    slow = merged(SMALL, training={"steps": 12000}, search={"generations": 3, "partial_fraction": 0.05})
    run = tmp_path / "run"
    init_experiment(run, write_config(tmp_path / "slow.toml", slow))
    proc = subprocess.Popen(
        [sys.executable, "-m", "taylorglo", "start", str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    copy = tmp_path / "copy"
    copy.mkdir()
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
            views = run / "generations.csv"
            if views.exists() and len(views.read_text().splitlines()) > 1:  # generation 0 closed
                shutil.copyfile(run / "experiment.sqlite", copy / "experiment.sqlite")
                break
        assert proc.poll() is None, "the search ended before the test could copy it mid-run"
        proc.kill()
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    (run / "experiment.sqlite-wal").unlink(missing_ok=True)
    (run / "experiment.sqlite-shm").unlink(missing_ok=True)
    for path in (copy / "experiment.sqlite", run / "experiment.sqlite"):
        with Store(path, readonly=True) as store:
            generations = store.generations()
            assert generations and generations[0].closed, path
            assert all(c.status != "pending" for c in store.candidates(0)), path
    # The directory without its -wal resumes and finishes.
    cli("start", str(run), check=True)
    assert status(run)["state"] == "finished"


def test_backup_of_a_running_search_is_a_consistent_experiment(tmp_path):
    slow = merged(SMALL, training={"steps": 12000}, search={"generations": 3, "partial_fraction": 0.05})
    run = tmp_path / "run"
    init_experiment(run, write_config(tmp_path / "slow.toml", slow))
    proc = subprocess.Popen(
        [sys.executable, "-m", "taylorglo", "start", str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
            with Store(run / "experiment.sqlite", readonly=True) as store:
                if store.counts()["evaluated"] >= 2:
                    break
        result = cli("backup", str(run), str(tmp_path / "copy"), check=True)
        assert "backed up" in result.stdout
    finally:
        proc.wait(timeout=300)
    copy = tmp_path / "copy"
    assert not (copy / "lock").exists() and not (copy / "experiment.sqlite-wal").exists()
    assert (copy / "config.toml").is_file() and (copy / "host.log").is_file()
    with sqlite3.connect(copy / "experiment.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    assert status(copy)["candidates"]["evaluated"] >= 2
    # The copy resumes by itself to the same end as the original.
    cli("start", str(copy), check=True)
    assert status(copy)["best"] == status(run)["best"]
    _one_line_error(run_cli("backup", str(run), str(copy)), "DEST", "already exists")


def _fill(disk: Path) -> Path:
    """Fill the tmpfs at ``disk`` to the last byte."""
    filler = disk / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
    return filler


def test_a_full_disk_is_one_line_for_every_writer_and_loses_nothing(finished, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("this machine does not let the test mount a small tmpfs (needs root)")
    try:
        run = _copy(finished, disk / "run")
        config = write_config(disk / "tiny.toml", TINY)
        fresh = init_experiment(disk / "fresh", config).directory
        with sqlite3.connect(run / "experiment.sqlite") as db:
            recorded = db.execute("SELECT * FROM final_runs ORDER BY loss_id, repeat").fetchall()
        db.close()
        filler = _fill(disk)
        for args in (
            ("init", str(disk / "new"), str(config)),
            ("start", str(fresh)),
            ("final", str(run), "--repeats", "3"),
            ("analyze", str(run)),
            ("backup", str(run), str(disk / "copy")),
        ):
            _one_line_error(run_cli(*args), "space")
        assert not (disk / "new").exists() and not (disk / "copy").exists()
        filler.unlink()
        # With space again, everything goes on from where it was.
        assert run_cli("final", str(run), "--repeats", "3").returncode == 0
        with sqlite3.connect(run / "experiment.sqlite") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            after = db.execute("SELECT * FROM final_runs ORDER BY loss_id, repeat").fetchall()
        db.close()
        assert all(row in after for row in recorded) and len(after) == len(recorded) + 2
        assert run_cli("start", str(fresh)).returncode == 0 and status(fresh)["state"] == "finished"
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
