"""The system refuses (issue 38, cases 9 and 15): a folder this process may not write (a read-only mount,
another user's) and a full disk end in one line that names the file and what was denied or ran out, never
in a traceback, never with a temporary folder left behind; a resume is promised only by the commands that
resume; a healthy database on a read-only mount is read there, not called damaged."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rewritelab.cli import main
from rewritelab.run.rundir import MetricsLog
from rewritelab.store.integrity import unusable
from rewritelab.sweep import runner
from support import TINY

TRAIN = ["--set", "train.max_steps=2", "--set", "train.eval_every=0", "--progress", "none"]


# --- case 9: folders this process may not write ----------------------------------------------------------


def run_command(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False)


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """`folder` as this process cannot write it: a read-only bind mount for root, whom permissions do not
    stop, or no write permission for another user; skipped where neither can be made."""
    if os.geteuid() != 0:
        paths = [folder, *folder.rglob("*")]
        for path in paths:
            path.chmod(path.stat().st_mode & ~0o222)
        try:
            yield folder
        finally:
            for path in paths:
                path.chmod(path.stat().st_mode | 0o200)
        return
    if shutil.which("mount") is None or run_command(["mount", "--bind", folder, folder]).returncode:
        pytest.skip("root without the right to mount: no way to make a folder read-only here")
    try:
        if run_command(["mount", "-o", "remount,ro,bind", folder]).returncode:
            pytest.skip("root without the right to remount read-only")
        yield folder
    finally:
        run_command(["umount", folder])


@pytest.fixture
def copies(outputs, tmp_path) -> Path:
    """The session's outputs copied into a folder of their own (`ro`), with an unfinished run beside."""
    ro = tmp_path / "ro"
    for name in ("run", "sweep", "data"):
        shutil.copytree(outputs / name, ro / name)
    shutil.copytree(outputs / "run", ro / "unfinished")
    (ro / "unfinished" / "summary.json").unlink()
    for journal in ro.glob("sweep/results.sqlite-*"):  # as a copy of a sweep no process has open
        journal.unlink()
    return ro


DENIED: dict[str, Callable[[Path, Path], list]] = {
    "train": lambda ro, src: ["train", TINY, "--out", ro / "new-run", *TRAIN],
    "train-resume": lambda ro, src: ["train", TINY, "--out", ro / "unfinished", *TRAIN],
    "evaluate": lambda ro, src: ["evaluate", ro / "run", "--progress", "none"],
    "sweep": lambda ro, src: ["sweep", src / "tiny-sweep.yaml", "--out", ro / "sweep"],
    "sweep-new": lambda ro, src: ["sweep", src / "tiny-sweep.yaml", "--out", ro / "new-sweep"],
    "results-rebuild": lambda ro, src: ["results", ro / "sweep", "--rebuild"],
    "results-out": lambda ro, src: ["results", ro / "sweep", "--out", ro / "results.csv"],
    "report": lambda ro, src: ["report", ro / "sweep"],
    "generate": lambda ro, src: ["generate", TINY, "--out", ro / "data"],
    "generate-new": lambda ro, src: ["generate", TINY, "--out", ro / "new-data"],
}


@pytest.mark.parametrize("command", DENIED)
def test_a_folder_this_process_may_not_write_is_one_line(command, outputs, copies, files_of, refuses):
    before = files_of(copies)
    with read_only(copies):
        err = refuses(DENIED[command](copies, outputs), str(copies))
        assert "read-only" in err or "permission denied" in err, err
    assert files_of(copies) == before


def test_a_healthy_database_on_a_read_only_mount_is_read_there(copies, tmp_path, capsys):
    with read_only(copies):
        assert main(["results", str(copies / "sweep")]) == 0
        assert "num_rules=2.seed=0" in capsys.readouterr().out
        assert main(["report", str(copies / "sweep"), "--out", str(tmp_path / "report")]) == 0


def test_rows_only_in_the_write_ahead_log_of_a_read_only_database_are_one_line(copies, refuses):
    db = copies / "sweep" / "results.sqlite"
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("UPDATE results SET seconds = 1.5")  # in results.sqlite-wal until a checkpoint
    shutil.copy(db.with_name("results.sqlite-wal"), copies / "wal")
    writer.close()  # checkpoints and deletes the log: put the copy back, as a crash would leave it
    shutil.copy(copies / "wal", db.with_name("results.sqlite-wal"))
    db.with_name("results.sqlite-shm").unlink(missing_ok=True)
    with read_only(copies):
        refuses(["results", copies / "sweep"], "results.sqlite-wal", "writable place")


def test_a_failed_final_rename_leaves_no_temporary_folder(tmp_path, refuses, monkeypatch):
    real = os.replace

    def denied(source, target, *args, **kwargs):
        if Path(source).name.startswith(".data."):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(source), None, str(target))
        return real(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", denied)
    refuses(["generate", TINY, "--out", tmp_path / "data"], f"{tmp_path / 'data'}: permission denied")
    assert os.listdir(tmp_path) == []


# --- case 15: a full disk: what ran out, where, and a resume only where one happens -----------------------


@pytest.mark.parametrize(
    ("command", "where"),
    [("generate", "rewritelab.data.files._write_chunks"), ("report", "rewritelab.report.html._save")],
)
def test_a_full_disk_in_generate_or_report_names_the_output_and_promises_no_resume(
    command, where, outputs, tmp_path, refuses, monkeypatch
):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(where, full)
    out = tmp_path / "out"
    argv = (
        ["generate", TINY, "--out", out]
        if command == "generate"
        else ["report", outputs / "sweep", "--out", out]
    )
    err = refuses(argv, f"no space left on the disk while writing {out}")
    assert "resumes" not in err and os.listdir(tmp_path) == []


def test_a_full_disk_while_sqlite_writes_is_not_called_damage(tmp_path):
    error = sqlite3.OperationalError("database or disk is full")
    error.sqlite_errorname = "SQLITE_FULL"
    said = unusable(tmp_path / "results.sqlite", error)
    assert isinstance(said, OSError) and said.errno == errno.ENOSPC
    assert said.filename == str(tmp_path / "results.sqlite")


@contextlib.contextmanager
def small_disk(folder: Path) -> Iterator[Path]:
    """A 8 MB file system at `folder` (a tmpfs: needs root), to fill up; skipped where none can be made."""
    folder.mkdir()
    if (
        os.geteuid() != 0
        or run_command(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", folder]).returncode
    ):
        pytest.skip("no small file system to fill: mounting a tmpfs needs root")
    try:
        yield folder
    finally:
        run_command(["umount", folder])


def fill(disk: Path) -> None:
    with open(disk / "filler", "wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * (1 << 16))


def filling_first(function: Callable, disk: Path) -> Callable:
    """`function`, the disk filled up just before its first call."""

    def wrapper(*args, **kwargs):
        if not (disk / "filler").exists():
            fill(disk)
        return function(*args, **kwargs)

    return wrapper


def test_a_full_disk_while_appending_metrics_names_the_file(tmp_path, refuses, monkeypatch):
    with small_disk(tmp_path / "disk") as disk:
        monkeypatch.setattr(MetricsLog, "write", filling_first(MetricsLog.write, disk))
        metrics = disk / "run" / "metrics.jsonl"
        refuses(["train", TINY, "--out", disk / "run", *TRAIN], f"while writing {metrics}", "resumes")


def test_a_full_disk_while_creating_the_results_database_says_so(outputs, tmp_path, refuses, monkeypatch):
    with small_disk(tmp_path / "disk") as disk:
        sweep = Path(shutil.copytree(outputs / "sweep", disk / "sweep"))
        for path in sweep.glob("results.sqlite*"):
            path.unlink()  # the runs are finished: the sweep only records them
        monkeypatch.setattr(runner, "record_run", filling_first(runner.record_run, disk))
        err = refuses(
            ["sweep", outputs / "tiny-sweep.yaml", "--out", sweep],
            f"no space left on the disk while writing {sweep / 'results.sqlite'}",
        )
        assert "rebuild" not in err
