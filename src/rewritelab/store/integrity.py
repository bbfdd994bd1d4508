"""A results database is checked when it is opened, for reading or writing, and refused when damaged.

The check is SQLite's `PRAGMA quick_check`: the b-tree structure of every page, read once (milliseconds
for a sweep's database), so a damaged file is refused with one line instead of being half-read or written
into. A damaged database need not be repaired: every finished run keeps its summary.json, from which
`rewritelab results SWEEP_DIR --rebuild` records the same rows again (`sweep.rebuild`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rewritelab.errors import UserError
from rewritelab.layout import RESULTS_DB
from rewritelab.store.access import not_the_file


def check_integrity(db: sqlite3.Connection) -> None:
    """Raise `sqlite3.DatabaseError` naming the first problem `PRAGMA quick_check` finds."""
    lines = db.execute("PRAGMA quick_check(1)").fetchone()[0].splitlines()
    if lines != ["ok"]:
        raise sqlite3.DatabaseError(f"damaged: {lines[-1][:200]}")


def unusable(path: Path, error: BaseException) -> Exception:
    """One line for a database SQLite cannot use: its last word on why (never a whole SQL statement, as
    pandas adds), and the rebuild when the file is a sweep's results.sqlite; or, when the disk is full or
    access denied (`access.not_the_file`), what ran out or was denied, and no rebuild."""
    environment = not_the_file(path, error.__cause__ or error)
    if environment is not None:
        return environment
    reason = str(error.__cause__ or error).strip().splitlines()[-1][:200]
    fix = (
        f"rebuild it from the runs' summary.json files with `rewritelab results {path.parent} --rebuild`"
        if path.name == RESULTS_DB
        else f"give a sweep directory or its {RESULTS_DB}"
    )
    return UserError(f"{path}: not a usable results database ({reason}); {fix}")
