"""Output folders: which kind of output a folder holds, writing only into one's own kind, and the lock a
process holds while it writes a run or a sweep.

Every command that writes a folder (generate: a dataset; train and evaluate: a run; sweep: a sweep;
report: a report) checks it first: the folder must be absent, empty, or already of that kind. The kind
is told by the marker rewritelab writes into each run, sweep and report folder (`.rewritelab.json`,
`{"kind": "run"}`) or, in a dataset, by its manifest.json (its spec and the hashes of its files); a
folder written before markers existed (the committed exports under docs/ among them) is recognised by
the files only that kind holds (`RECOGNISE`). Anything else is refused with one line, so rewritelab never
overwrites or deletes a file it did not write. The stage that owns a kind then checks the folder's
identity (a run's config, a sweep's settings). Regenerating a dataset or a report (`replacing_folder`)
replaces only the names that kind writes and leaves a user's own files beside them.

`hold_folder` locks a run or sweep folder while one process writes it (`fcntl.flock` on
`.rewritelab.lock`, which holds the owner's PID): a second process stops with "in use by PID N" instead
of interleaving with the first. The OS drops the lock when its process ends, however it ends, so no
stale lock is ever left to clean up. The lock file is never opened through a link, and the PID is written
only into a regular file with no other name (never into a file a link makes it share).

The folder itself must be one (`io.check_target`): a symbolic link, a device, FIFO or socket, a name that
is not UTF-8 or too long is refused before anything is read or written.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from rewritelab.bounded_yaml import parse_yaml
from rewritelab.errors import UserError
from rewritelab.io import SPECIAL, atomic_dir, atomic_write_json, check_target, shown
from rewritelab.layout import (
    CHECKPOINT,
    DATA_MANIFEST,
    DATASET_MANIFEST,
    FOLDER_LOCK,
    FOLDER_MARKER,
    REPORT_HTML,
    RUN_CONFIG,
    SUMMARY,
    SWEEP_FILE,
)

DATASET, RUN, SWEEP, REPORT = "dataset", "run", "sweep", "report"
LABELS = {
    DATASET: "rewritelab dataset",
    RUN: "run directory",
    SWEEP: "sweep directory",
    REPORT: "report directory",
}
Recognise = Callable[[Path], bool]


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_dataset(path: Path) -> bool:
    """manifest.json with the dataset's spec and the hashes of its files."""
    manifest = _json(path / DATASET_MANIFEST)
    return isinstance(manifest, dict) and {"spec", "files"} <= manifest.keys()


def _is_run(path: Path) -> bool:
    """config.yaml beside what training writes next (a hand-written config.yaml alone is not a run)."""
    written = (DATA_MANIFEST, SUMMARY, CHECKPOINT)
    return (path / RUN_CONFIG).is_file() and any((path / name).is_file() for name in written)


def _is_sweep(path: Path) -> bool:
    """sweep.yaml in the resolved form a sweep records (a sweep file of one's own has no `preset:`)."""
    try:
        raw = parse_yaml((path / SWEEP_FILE).read_text(encoding="utf-8"), str(path / SWEEP_FILE))
    except (OSError, ValueError, yaml.YAMLError, UserError):  # an alias bomb is not a sweep either
        return False
    return isinstance(raw, dict) and {"preset", "base", "grid", "seeds"} <= raw.keys()


def _is_report(path: Path) -> bool:
    """report.html with the page head rewritelab writes."""
    try:
        with open(path / REPORT_HTML, "rb") as f:
            head = f.read(2048)
    except OSError:
        return False
    return head.startswith(b"<!DOCTYPE html>") and b"<title>rewritelab report" in head


# A folder without a marker (a dataset, or a folder of an earlier version) is of the first kind whose
# files it holds.
RECOGNISE: dict[str, Recognise] = {
    DATASET: _is_dataset,
    RUN: _is_run,
    SWEEP: _is_sweep,
    REPORT: _is_report,
}


def folder_kind(path: str | os.PathLike) -> str | None:
    """The kind of output `path` holds: its marker's, or the one its files tell; None for other folders."""
    path = Path(path)
    marker = _json(path / FOLDER_MARKER)
    if isinstance(marker, dict) and marker.get("kind") in RECOGNISE:
        return marker["kind"]
    return next((kind for kind, holds in RECOGNISE.items() if holds(path)), None)


def check_folder(path: str | os.PathLike, kind: str, recognise: Recognise | None = None) -> None:
    """Refuse (UserError) unless `path` is absent, empty or a folder of `kind`; reads, writes nothing.

    `recognise` may accept another sign that an unmarked folder is of this kind (a sweep knows its run ids).
    """
    path = Path(path)
    check_target(path)
    if not path.exists():
        return
    if not path.is_dir():
        raise UserError(f"{path}: exists and is not a directory; choose a new or empty directory")
    names = sorted(p.name for p in path.iterdir() if p.name != FOLDER_LOCK)
    if not names:
        return
    found = folder_kind(path)
    if found == kind or (found is None and recognise is not None and recognise(path)):
        return
    holds = f"a rewritelab {found}" if found else f"files rewritelab did not write, such as {names[0]!r}"
    raise UserError(
        f"{path}: not a {LABELS[kind]} (it holds {holds}); rewritelab writes only into a new or empty "
        f"directory or a {LABELS[kind]} of its own: choose another one"
    )


def mark_folder(path: str | os.PathLike, kind: str) -> None:
    """Write the marker that says `path` holds output of `kind` (a folder of that kind already checked;
    a dataset's marker is its manifest.json)."""
    marker = Path(path) / FOLDER_MARKER
    if kind != DATASET and _json(marker) != {"kind": kind}:
        atomic_write_json(marker, {"kind": kind})


@contextlib.contextmanager
def hold_folder(path: str | os.PathLike, kind: str, recognise: Recognise | None = None) -> Iterator[Path]:
    """Check `path` (as `check_folder`), create it, hold its lock (`lock_folder`) and mark it."""
    path = Path(path)
    check_folder(path, kind, recognise)
    path.mkdir(parents=True, exist_ok=True)
    with lock_folder(path, kind):
        mark_folder(path, kind)
        yield path


@contextlib.contextmanager
def lock_folder(path: str | os.PathLike, kind: str) -> Iterator[Path]:
    """Hold the exclusive lock of the existing folder `path` for the block; UserError "in use by PID N"
    when another process holds it, and one line when the lock file cannot be ours (a link, a special
    file, a folder this user may not write)."""
    path = Path(path)
    fd = _open_lock(path / FOLDER_LOCK, kind)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            owner = f"PID {pid}" if pid.isdigit() else "another process"
            raise UserError(
                f"{path}: in use by {owner} (another rewritelab process is writing this {kind}); "
                "wait for it to finish, or stop it and re-run"
            ) from None
        except OSError as e:
            raise UserError(
                f"{path}: cannot lock {FOLDER_LOCK} ({e.strerror}); rewritelab locks each {kind} "
                "directory against concurrent writers: use a filesystem with flock support"
            ) from None
        os.ftruncate(fd, 0)  # ours now: a regular file of one name, locked (see _open_lock)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock


def _open_lock(lock: Path, kind: str) -> int:
    """The lock file, created if absent and opened without truncating it: never a file behind a link
    (O_NOFOLLOW) or a special file, and only a regular file with no other name, whose content is then ours
    to replace. Checked before opening (a device is never opened) and again on the open file (a race)."""
    with contextlib.suppress(FileNotFoundError):
        _own_lock(lock, os.lstat(lock))
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(lock, flags, 0o666)
    except OSError as e:
        if e.errno == errno.ELOOP:  # a link made meanwhile
            _own_lock(lock, os.lstat(lock))
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        raise UserError(
            f"{shown(lock)}: cannot open this {kind}'s lock file ({e.strerror.lower()}); rewritelab writes "
            f"into the {kind} and locks it first: make it writable, or copy it to a place of your own"
        ) from None
    try:
        _own_lock(lock, os.fstat(fd))
    except UserError:
        os.close(fd)
        raise
    return fd


def _own_lock(lock: Path, st: os.stat_result) -> None:
    """Refuse a lock file that is not a regular file with one name."""
    if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
        return
    if stat.S_ISLNK(st.st_mode):
        what = "a symbolic link"
    elif stat.S_ISREG(st.st_mode):
        what = "a hard link to another file"
    else:
        what = SPECIAL.get(stat.S_IFMT(st.st_mode), "not a regular file")
    raise UserError(
        f"{shown(lock)}: {what}, not a lock file rewritelab made; it writes its PID only into its own: "
        "delete this one, then re-run"
    )


@contextlib.contextmanager
def replacing_folder(path: str | os.PathLike, kind: str, owned: Sequence[str]) -> Iterator[Path]:
    """Yield a staging directory whose entries replace `path`'s output of `kind` if the block succeeds.

    `owned`: every name this kind may write, its index file last. They alone are replaced or, when the new
    output lacks them, deleted (see `io.atomic_dir`); a user's files in the folder stay.
    """
    check_folder(path, kind)
    with atomic_dir(path, (*(() if kind == DATASET else (FOLDER_MARKER,)), *owned)) as tmp:
        yield tmp
        mark_folder(tmp, kind)
