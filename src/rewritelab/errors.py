"""Error types shared by every stage.

A `UserError` is bad input the user can fix (a typo in a config, an impossible request, a missing file).
The CLI turns it into one line on stderr and exit status 2; so it does for a resource that ran out (memory,
disk space: `exhausted`), which the user fixes the same way, by asking for less or making room, and for a
file the operating system refused (`denied`: permissions, a read-only file system, a name too long).
Anything else is a bug (exit 1).
"""

from __future__ import annotations

import errno
import os
import re

# How torch reports an allocation that failed on CPU, CUDA or MPS (a RuntimeError, not a MemoryError).
_OUT_OF_MEMORY = re.compile(r"out of memory|can't allocate memory|cannot allocate memory", re.IGNORECASE)


class UserError(Exception):
    """Bad input: the message names the field or file and says how to fix it."""


def exhausted(error: BaseException, resumes: bool = False) -> str | None:
    """One line saying which resource ran out and what to do, or None when `error` is something else.

    Writes are atomic and checkpoints are only replaced whole, so a run stopped this way resumes from its
    last checkpoint exactly as if it had never stopped: `resumes` says so, for the commands that train."""
    resume = (
        "re-running the same command resumes an interrupted run from its last checkpoint"
        if resumes
        else "then re-run the command"
    )
    if (
        isinstance(error, MemoryError)
        or (isinstance(error, OSError) and error.errno == errno.ENOMEM)
        or (isinstance(error, RuntimeError) and _OUT_OF_MEMORY.search(str(error)))
    ):
        return (
            "out of memory: the data, the model or a batch does not fit in this machine's memory; lower "
            "data.budget (or num_rules), train.batch_size or the model size, or use a machine with more "
            f"memory; {resume}"
        )
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" while writing {error.filename}" if error.filename else ""
        return f"no space left on the disk{where}; free some space there; {resume}"
    return None


def denied(error: BaseException) -> str | None:
    """One line naming the file the operating system refused and why, or None for another error."""
    if not isinstance(error, OSError) or error.errno not in (
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENAMETOOLONG,
    ):
        return None
    name = error.filename2 if error.filename2 is not None else error.filename  # a rename's destination
    path = "a file" if name is None else os.fsencode(name).decode("utf-8", "backslashreplace")
    if error.errno == errno.ENAMETOOLONG:
        return f"{path[:80]}…: file name too long for this file system; choose a shorter path"
    if error.errno == errno.EROFS:
        return f"{path}: on a read-only file system, so rewritelab cannot write it; choose a writable place"
    verb = "read" if name is not None and os.path.exists(name) and not os.access(name, os.R_OK) else "write"
    return (
        f"{path}: permission denied: this user may not {verb} it (or its folder); change the permissions, "
        "or choose a place of your own"
    )
