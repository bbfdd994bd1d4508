"""Opening a results database where the system, not the file, is the problem: a read-only mount or another
user's folder, a full disk. Such a database is healthy, so it is never called damaged nor sent to a
rebuild: it is read where it lies when it can be, and otherwise the message says what was denied or ran out.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from pathlib import Path

from rewritelab.errors import UserError
from rewritelab.io import shown

LOW_SPACE = 1 << 20  # bytes free under which a disk I/O error is taken for a full disk


def connect_read_only(path: Path, timeout: float) -> sqlite3.Connection:
    """`path` opened for reading only (never created, migrated or rewritten).

    Reading a database in WAL mode needs its shared-memory file (`-shm`), which SQLite cannot create in a
    folder this process may not write. There a database whose write-ahead log holds no rows is opened as
    immutable, since no process can be writing it; one whose log holds rows cannot be read in place."""
    uri = path.resolve().as_uri()
    shm, wal = (path.with_name(path.name + suffix) for suffix in ("-shm", "-wal"))
    if os.access(path.parent, os.W_OK) or shm.exists():
        return sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=timeout)
    if wal.exists() and wal.stat().st_size > 0:
        raise UserError(
            f"{shown(path)}: its folder is read-only here, and rows still in {wal.name} can be read only "
            "where SQLite may write: copy the sweep folder to a writable place and read it there"
        )
    return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, timeout=timeout)


def not_the_file(path: Path, error: BaseException) -> Exception | None:
    """The error to raise when SQLite failed for want of space or access rather than because the file is
    damaged, or None: a full disk as the OSError it is (`errors.exhausted` words it), a denied or
    read-only file as one line naming it."""
    name = getattr(error, "sqlite_errorname", "")  # Python 3.11+; the message otherwise
    text = str(error)
    full = name == "SQLITE_FULL" or "disk is full" in text
    if name.startswith("SQLITE_IOERR") or "disk I/O error" in text:
        with_space = shutil.disk_usage(path.parent).free >= LOW_SPACE
        if with_space:
            return UserError(
                f"{shown(path)}: SQLite could not read or write it (disk I/O error); check the disk there, "
                "then re-run"
            )
        full = True
    if full:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")) or any(
        words in text for words in ("readonly database", "unable to open", "permission")
    ):
        return UserError(
            f"{shown(path)}: access denied ({text.splitlines()[-1][:200]}): the file or its folder is "
            "read-only here or another user's; fix the permissions, or copy the sweep folder to a place "
            "of your own"
        )
    return None
