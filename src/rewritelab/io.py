"""Atomic file and directory writes, and the targets they may replace.

Every output of rewritelab is written to a temporary sibling and renamed into place, so an interrupted
process never leaves a half-written file for a later run (or a user) to trust. What it replaces, or appends
to, is a regular file or folder only (`check_target`): never a device, FIFO or socket, never whatever a
symbolic link points to.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence, Set
from pathlib import Path
from typing import Any, BinaryIO

from rewritelab.errors import UserError

_PATTERN = re.compile(r"[/*?\[]")  # an owned name that is a path into a subfolder or a shell pattern
NAME_MAX = 255  # bytes in one file name (Linux and macOS file systems)
TEMP_ROOM = len("..xxxxxxxx.tmp")  # what a temporary sibling (`.NAME.` + 8 random characters + `.tmp`) adds
SPECIAL = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
}


def shown(path: str | os.PathLike) -> str:
    """`path` as text for a message: bytes that are not UTF-8 as \\xNN escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def check_target(path: str | os.PathLike) -> None:
    """Refuse (UserError) a path rewritelab must not write, before any work is done.

    A symbolic link (a write would land wherever it points, or fail when it points nowhere); a device,
    FIFO or socket (replacing /dev/null breaks the system, opening a FIFO blocks); a name that is not
    UTF-8 (results record names as text); a name longer than a file system allows, with room for the
    temporary sibling every write goes through. A missing path is fine if its nearest existing ancestor
    is a folder.
    """
    path = Path(path)
    text = shown(path)
    if text != str(path):
        raise UserError(f"{text}: the name is not valid UTF-8; rewritelab records names as text: rename it")
    for i, part in enumerate(path.parts, start=1):
        size, limit = len(os.fsencode(part)), NAME_MAX - (TEMP_ROOM if i == len(path.parts) else 0)
        if size > limit:
            raise UserError(
                f"{text[:60]}…: a name {size} bytes long is too long; file names are at most {NAME_MAX} "
                f"bytes, and rewritelab needs {TEMP_ROOM} of them for the temporary file it writes first: "
                f"choose a name of at most {NAME_MAX - TEMP_ROOM} bytes"
            )
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        _check_ancestor(path, text)
        return
    except NotADirectoryError:
        raise UserError(f"{text}: a part of this path is a file, not a folder; choose another path") from None
    if stat.S_ISLNK(mode):
        raise UserError(
            f"{text}: a symbolic link (to {shown(os.readlink(path))}); rewritelab never writes through a "
            "link, nor replaces one: give the path it points to, or another path"
        )
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise UserError(
            f"{text}: {SPECIAL.get(stat.S_IFMT(mode), 'not a regular file')}; rewritelab writes only regular "
            "files and folders and never replaces anything else: choose another path"
        )


def _check_ancestor(path: Path, text: str) -> None:
    """The nearest existing ancestor of a missing `path` must be a folder (a dangling link is not)."""
    for parent in path.parents:
        if os.path.lexists(parent):
            if parent.is_dir():
                return
            what = "a symbolic link to nothing" if parent.is_symlink() else "not a folder"
            raise UserError(f"{text}: {shown(parent)} is {what}; choose another path")


def _renamed(error: OSError, name: str) -> OSError:
    """`error` naming `name`, the file the user knows, instead of a temporary one or nothing."""
    return OSError(error.errno, error.strerror, name) if error.errno is not None else error


def _umask() -> int:
    """The process umask (read by setting and restoring it: the only portable way)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` via a temp file in the same directory, fsync, then rename; `path` must be
    absent or a regular file (`check_target`). An OSError names `path`, not the temp file."""
    path = Path(path)
    check_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600: give what open() would
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if isinstance(e, OSError):  # a full disk, a read-only folder: say which file was being written
            raise _renamed(e, str(path)) from e
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


def open_append(path: str | os.PathLike) -> BinaryIO:
    """`path` opened to append to (created if absent): a regular file only, never through a link (checked
    before, and by O_NOFOLLOW and on the open file, against a link or FIFO swapped in meanwhile)."""
    path = Path(path)
    check_target(path)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    fd = os.open(path, flags, 0o666)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UserError(f"{shown(path)}: not a regular file; rewritelab appends only to its own files")
    return os.fdopen(fd, "ab")


def append_text(path: str | os.PathLike, text: str) -> None:
    """Append `text` to `path` (see `open_append`); an OSError (a full disk) names `path`."""
    try:
        with open_append(path) as f:
            f.write(text.encode("utf-8"))
    except OSError as e:  # from the write or from the close that flushes it
        raise _renamed(e, str(path)) from e


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, owned: Sequence[str] = ()) -> Iterator[Path]:
    """Yield a fresh temporary directory whose entries land in `path` only if the block succeeds.

    A new (or empty) `path` appears in one rename, complete. An existing one receives each new entry in
    one rename (a subdirectory is swapped in two), entries named in `owned` last and in that order (a
    folder's index file, listed last, is replaced after the files it describes); then the entries named in
    `owned` that the new contents lack are deleted. Anything else in `path` is left alone: a directory
    shared with other files never loses them. An owned name may be a path into a subfolder, its parts
    shell patterns (`hf/*/state.json`): that subfolder is then merged the same way, not swapped whole.
    """
    path = Path(path)
    for target in (path, *(path / name for name in owned if not _PATTERN.search(name))):
        check_target(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as e:
        raise _renamed(e, str(path)) from e
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700: give what mkdir() would
        yield tmp
        _move_in(tmp, path, owned)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)  # a failed build or rename leaves no temporary folder
        if isinstance(e, OSError):
            raise _renamed(e, _landing(e.filename, tmp, path)) from e
        raise


def _landing(name: Any, tmp: Path, path: Path) -> str:
    """Where a file named in an error lands: under `path` for one in the temporary folder `tmp`, `path`
    itself for none (a full disk while writing it); any other file as it is (an input that was read)."""
    if name is None:
        return str(path)
    name = os.fsdecode(name)
    inside = name == str(tmp) or name.startswith(str(tmp) + os.sep)
    return str(path) + name[len(str(tmp)) :] if inside else name


def _move_in(tmp: Path, path: Path, owned: Sequence[str]) -> None:
    """The entries of the finished `tmp` into `path` (see `atomic_dir`)."""
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()
    if not path.exists():
        os.replace(tmp, path)
        return
    for name in os.listdir(tmp):
        check_target(path / name)
    _merge(tmp, path, owned)
    tmp.rmdir()


def _merge(source: Path, target: Path, owned: Sequence[str]) -> None:
    """Move the entries of `source` into the existing directory `target` (see `atomic_dir`): the others
    first, then the owned ones in `owned`'s order; then delete the owned entries `source` lacks. A
    subfolder with owned names inside it, a real one on both sides, is merged in turn."""
    names = {p.name for p in source.iterdir()}
    for name in _in_order(names, owned):
        inner = _inside(owned, name)
        if inner and _real_dir(source / name) and _real_dir(target / name):
            _merge(source / name, target / name, inner)
            (source / name).rmdir()
        else:
            _replace_entry(source / name, target / name)
    _prune(target, owned, keep=names)


def _prune(folder: Path, owned: Sequence[str], keep: Set[str] = frozenset()) -> None:
    """Delete what `owned` names in `folder`, but the entries in `keep`: an entry named itself whole, in
    a subfolder named by the paths into it just those names (the subfolder too, once it is empty)."""
    for name in _in_order({p.name for p in folder.iterdir()} - keep, owned):
        inner = _inside(owned, name)
        if inner and _real_dir(folder / name):
            _prune(folder / name, inner)
            if not any((folder / name).iterdir()):
                (folder / name).rmdir()
        elif _whole(owned, name):
            _remove_entry(folder / name)


def copy_owned(source: Path, target: Path, owned: Sequence[str]) -> None:
    """Copy into the directory `target` what `owned` names in `source` (as `atomic_dir` reads `owned`):
    one's own output without the files a user keeps beside it. A symlink under an owned name is skipped
    (never followed); inside a folder owned whole, links are copied as links."""
    for name in sorted(p.name for p in source.iterdir()):
        inner, entry = _inside(owned, name), source / name
        if inner and _real_dir(entry):
            (target / name).mkdir()
            copy_owned(entry, target / name, inner)
            if not any((target / name).iterdir()):
                (target / name).rmdir()
        elif _whole(owned, name) and _real_dir(entry):
            shutil.copytree(entry, target / name, symlinks=True)
        elif _whole(owned, name) and entry.is_file() and not entry.is_symlink():
            shutil.copy2(entry, target / name)


def _in_order(names: Set[str], owned: Sequence[str]) -> list[str]:
    """`names`, those `owned` does not name first (sorted), then the owned ones in `owned`'s order (an
    index file listed last goes last)."""

    def rank(name: str) -> int:
        heads = (pattern.partition("/")[0] for pattern in owned)
        return next((i for i, head in enumerate(heads) if fnmatch.fnmatchcase(name, head)), -1)

    return sorted(names, key=lambda name: (rank(name), name))


def _whole(owned: Sequence[str], name: str) -> bool:
    """Whether `owned` names the entry `name` itself (a file, or a folder owned with all it holds)."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in owned if "/" not in pattern)


def _inside(owned: Sequence[str], name: str) -> list[str]:
    """The owned paths into the subfolder `name`, relative to it."""
    return [
        rest
        for head, _, rest in (pattern.partition("/") for pattern in owned)
        if rest and fnmatch.fnmatchcase(name, head)
    ]


def _real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _replace_entry(source: Path, target: Path) -> None:
    """Move `source` onto `target`: a file in one rename, a directory swapped in two (the old one put
    back if the second fails)."""
    if target.is_dir() and not target.is_symlink():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        try:
            os.replace(source, target)
        except BaseException:
            os.replace(old, target)
            raise
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
