"""Output targets (issue 38, cases 1, 2, 9, 10, 11 and 15): rewritelab writes only regular files and
folders. A device, FIFO or socket given as `--out` is refused, never replaced or opened; a symbolic link is
never written through (nor a lock file linked to another file); a dangling link, a name longer than a file
system allows or one that is not UTF-8 is refused in one line before any work. A folder this process may
not write, and a full disk, end in one line that names the file (and promises a resume only where re-running
resumes); a healthy database on a read-only mount is read there."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rewritelab.errors import UserError
from rewritelab.folders import RUN, lock_folder
from rewritelab.io import atomic_write_bytes
from rewritelab.run.rundir import MetricsLog
from support import TINY

TRAIN = ["--set", "train.max_steps=2", "--set", "train.eval_every=0", "--progress", "none"]


@pytest.fixture
def no_hang() -> Iterator[None]:
    """Fail, instead of hanging the suite, when a command blocks (opening a FIFO waits for a writer)."""

    def hung(signum, frame):
        raise TimeoutError("the command hung")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def identity(path: Path) -> tuple:
    """What must not change about a target: its kind, inode and, for a link, where it points."""
    st = os.lstat(path)
    return (stat.S_IFMT(st.st_mode), st.st_ino, os.readlink(path) if stat.S_ISLNK(st.st_mode) else None)


# --- case 1: devices, FIFOs, sockets and links are never replaced -----------------------------------------


def make_target(kind: str, path: Path) -> Path:
    if kind == "link-to-empty-file":
        (path.parent / "empty").write_bytes(b"")
        path.symlink_to("empty")
    elif kind == "link-to-empty-folder":
        (path.parent / "empty-dir").mkdir()
        path.symlink_to("empty-dir")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(path.name)  # relative (the cwd is its folder): a socket path is at most 107 bytes
    else:
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # /dev/null's numbers, in tmp_path
        except PermissionError:
            pytest.skip("making a character device needs root (CAP_MKNOD)")
    return path


# Each command line, given the module's `outputs` and the target.
FILE_COMMANDS: dict[str, Callable[[Path, Path], list]] = {
    "results": lambda src, out: ["results", src / "sweep", "--out", out],
    "results-seeds": lambda src, out: ["results", src / "sweep", "--format", "seeds", "--out", out],
    "converged-rerun": lambda src, out: ["converged", src / "sweep", "--rerun", out],
}
FOLDER_COMMANDS: dict[str, Callable[[Path, Path], list]] = {
    "train": lambda src, out: ["train", TINY, "--out", out, *TRAIN],
    "sweep": lambda src, out: ["sweep", src / "tiny-sweep.yaml", "--out", out],
    "generate": lambda src, out: ["generate", TINY, "--out", out],
    "report": lambda src, out: ["report", src / "sweep", "--out", out],
}


@pytest.mark.parametrize("kind", ["char-device", "fifo", "socket", "link-to-empty-file"])
@pytest.mark.parametrize("command", FILE_COMMANDS)
def test_a_file_output_that_is_not_a_regular_file_is_refused_untouched(
    command, kind, outputs, tmp_path, refuses, monkeypatch, no_hang
):
    monkeypatch.chdir(tmp_path)
    out = make_target(kind, tmp_path / "out")
    before = identity(out)
    refuses(FILE_COMMANDS[command](outputs, out), str(out))
    assert identity(out) == before
    assert not (tmp_path / "empty").exists() or (tmp_path / "empty").read_bytes() == b""


@pytest.mark.parametrize("kind", ["char-device", "fifo", "socket", "link-to-empty-folder"])
@pytest.mark.parametrize("command", FOLDER_COMMANDS)
def test_a_folder_output_that_is_not_a_folder_is_refused_untouched(
    command, kind, outputs, tmp_path, refuses, monkeypatch, no_hang
):
    monkeypatch.chdir(tmp_path)
    out = make_target(kind, tmp_path / "out")
    before = identity(out)
    refuses(FOLDER_COMMANDS[command](outputs, out), str(out))
    assert identity(out) == before
    assert not (tmp_path / "empty-dir").exists() or not any((tmp_path / "empty-dir").iterdir())


@pytest.mark.parametrize("kind", ["fifo", "link-to-empty-file"])
def test_the_atomic_writer_replaces_only_a_regular_file(kind, tmp_path, no_hang):
    target = make_target(kind, tmp_path / "summary.json")
    before = identity(target)
    with pytest.raises(UserError, match="summary.json"):
        atomic_write_bytes(target, b"{}")
    assert identity(target) == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_metrics_are_never_appended_through_a_link(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    (tmp_path / "metrics.jsonl").symlink_to(victim)
    with pytest.raises(UserError, match="metrics.jsonl: a symbolic link"):
        MetricsLog(tmp_path / "metrics.jsonl", enabled=True).write({"kind": "train", "step": 1})
    assert victim.read_text(encoding="utf-8") == "precious"


# --- case 2: a lock file is never opened through a link ---------------------------------------------------


def linked_lock(folder: Path, victim: Path, how: str) -> None:
    lock = folder / ".rewritelab.lock"
    lock.unlink(missing_ok=True)
    if how == "symlink":
        lock.symlink_to(os.path.relpath(victim, folder))
    else:
        os.link(victim, lock)


@pytest.mark.parametrize("how", ["symlink", "hard-link"])
@pytest.mark.parametrize("command", ["evaluate", "rebuild"])
def test_a_lock_file_linked_to_another_file_leaves_that_file_intact(command, how, outputs, tmp_path, refuses):
    folder = Path(shutil.copytree(outputs / ("run" if command == "evaluate" else "sweep"), tmp_path / "out"))
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    linked_lock(folder, victim, how)
    argv = (
        ["evaluate", folder, "--progress", "none"]
        if command == "evaluate"
        else ["results", folder, "--rebuild"]
    )
    refuses(argv, ".rewritelab.lock")
    assert victim.read_text(encoding="utf-8") == "precious"


def test_the_lock_writes_its_pid_only_into_a_regular_file_of_its_own(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    (tmp_path / "run").mkdir()
    linked_lock(tmp_path / "run", victim, "symlink")
    with pytest.raises(UserError, match="symbolic link"), lock_folder(tmp_path / "run", RUN):
        pass
    assert victim.read_text(encoding="utf-8") == "precious"
    (tmp_path / "run" / ".rewritelab.lock").unlink()
    with lock_folder(tmp_path / "run", RUN):
        assert (tmp_path / "run" / ".rewritelab.lock").read_text().strip() == str(os.getpid())


# --- case 10: dangling links and names too long -----------------------------------------------------------

ALL_COMMANDS = {**FILE_COMMANDS, **FOLDER_COMMANDS}


@pytest.mark.parametrize("points_to", ["missing", "missing/child"])
@pytest.mark.parametrize("command", ALL_COMMANDS)
def test_a_dangling_link_as_output_is_refused_and_left_as_it_is(
    command, points_to, outputs, tmp_path, refuses
):
    out = tmp_path / "out"
    out.symlink_to(points_to)
    refuses(ALL_COMMANDS[command](outputs, out), str(out), "symbolic link")
    assert os.readlink(out) == points_to and not (tmp_path / "missing").exists()


@pytest.mark.parametrize("length", [250, 300])
@pytest.mark.parametrize("command", ALL_COMMANDS)
def test_a_name_too_long_for_the_file_system_is_one_line(command, length, outputs, tmp_path, refuses):
    refuses(ALL_COMMANDS[command](outputs, tmp_path / ("a" * length)), "too long")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".a", "a"))]


def test_a_long_name_in_the_middle_of_the_path_is_one_line(tmp_path, refuses):
    refuses(["train", TINY, "--out", tmp_path / ("d" * 300) / "run", *TRAIN], "too long")


# --- case 11: a name that is not UTF-8 --------------------------------------------------------------------


def test_a_sweep_into_a_name_that_is_not_utf8_is_refused_before_training(outputs, tmp_path, refuses):
    out = os.fsdecode(os.fsencode(tmp_path) + b"/sbad\xff")  # as Python passes such an argument
    refuses(["sweep", outputs / "tiny-sweep.yaml", "--out", out], "UTF-8", "sbad\\xff")
    assert os.listdir(tmp_path) == []  # nothing trained, nothing made
