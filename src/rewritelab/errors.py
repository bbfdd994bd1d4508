"""Error types shared by every stage.

A `UserError` is bad input the user can fix (a typo in a config, an impossible request, a missing file).
The CLI turns it into one line on stderr and exit status 2; so it does for a resource that ran out (memory,
disk space: `exhausted`), which the user fixes the same way, by asking for less or making room. Anything
else is a bug (exit 1).
"""

from __future__ import annotations

import errno
import re

# How torch reports an allocation that failed on CPU, CUDA or MPS (a RuntimeError, not a MemoryError).
_OUT_OF_MEMORY = re.compile(r"out of memory|can't allocate memory|cannot allocate memory", re.IGNORECASE)


class UserError(Exception):
    """Bad input: the message names the field or file and says how to fix it."""


def exhausted(error: BaseException) -> str | None:
    """One line saying which resource ran out and what to do, or None when `error` is something else.

    Writes are atomic and checkpoints are only replaced whole, so a run stopped this way resumes from its
    last checkpoint exactly as if it had never stopped."""
    resume = "re-running the same command resumes an interrupted run from its last checkpoint"
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
