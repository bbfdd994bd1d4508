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
stale lock is ever left to clean up.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from rewritelab.errors import UserError
from rewritelab.io import atomic_dir, atomic_write_json
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
        raw = yaml.safe_load((path / SWEEP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
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
    when another process holds it."""
    path = Path(path)
    fd = os.open(path / FOLDER_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
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
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock


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
