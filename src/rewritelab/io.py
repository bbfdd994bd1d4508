"""Atomic file and directory writes.

Every output of rewritelab is written to a temporary sibling and renamed into place, so an interrupted
process never leaves a half-written file for a later run (or a user) to trust.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


def _umask() -> int:
    """The process umask (read by setting and restoring it: the only portable way)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` via a temp file in the same directory, fsync, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600: give what open() would
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename is None:  # a full disk: say which file was being written
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def dumps_json(obj: Any, **kwargs: Any) -> str:
    """`json.dumps` that refuses NaN and ±Infinity: Python would write them as bare `NaN`, which is not
    JSON and which other tools (and strict parsers) reject. Every JSON rewritelab writes goes through
    here; a value that is legitimately undefined (no examples, a loss not yet computed) is written as
    `null` by the code that produces it, so a non-finite number reaching this point is a bug."""
    return json.dumps(obj, allow_nan=False, **kwargs)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON with sorted keys so equal objects give equal bytes."""
    atomic_write_text(path, dumps_json(obj, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, owned: Sequence[str] = ()) -> Iterator[Path]:
    """Yield a fresh temporary directory whose entries land in `path` only if the block succeeds.

    A new (or empty) `path` appears in one rename, complete. An existing one receives each new entry in
    one rename (a subdirectory is swapped in two), entries named in `owned` last and in that order (a
    folder's index file, listed last, is replaced after the files it describes); then the entries named in
    `owned` that the new contents lack are deleted. Anything else in `path` is left alone: a directory
    shared with other files never loses them.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700: give what mkdir() would
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()
    if not path.exists():
        os.replace(tmp, path)
        return
    new = {p.name for p in tmp.iterdir()}
    for name in [*sorted(new - set(owned)), *(n for n in owned if n in new)]:
        _replace_entry(tmp / name, path / name)
    for name in owned:
        if name not in new:
            _remove_entry(path / name)
    tmp.rmdir()


def _replace_entry(source: Path, target: Path) -> None:
    """Move `source` onto `target`: a file in one rename, a directory swapped in two."""
    if target.is_dir() and not target.is_symlink():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        os.replace(source, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        if source.is_dir() and (target.exists() or target.is_symlink()):
            target.unlink()
        os.replace(source, target)


def _remove_entry(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_jsonl_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file such as metrics.jsonl, skipping lines that do not parse (the
    last line of a run killed mid-write) or are not objects."""
    records = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def utc_now() -> str:
    """The current UTC time, to the second, in ISO 8601 (how results record when a run finished)."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
