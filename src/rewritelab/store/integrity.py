"""A results database is checked when it is opened, for reading or writing, and refused when damaged.

Two checks, because each sees what the other cannot. SQLite's `PRAGMA quick_check` reads the b-tree
structure of every page once (milliseconds for a sweep's database), but not the values in the rows: bytes
overwritten inside a row, or an edited accuracy, leave every page well formed. So each row also carries
a SHA-256 of its values (`row_checksum`), written with the row and checked whenever the rows are read
(`read_rows`), by `results` and `report` and by a sweep before it trains. A damaged database need not be
repaired: every finished run keeps its summary.json, from which `rewritelab results SWEEP_DIR --rebuild`
records the same rows again (`sweep.rebuild`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewritelab.errors import UserError
from rewritelab.layout import RESULTS_DB
from rewritelab.store.access import not_the_file

CHECKSUM = "row_sha256"  # the column holding each row's checksum; not a result, so never exported


def check_integrity(db: sqlite3.Connection) -> None:
    """Raise `sqlite3.DatabaseError` naming the first problem `PRAGMA quick_check` finds."""
    lines = db.execute("PRAGMA quick_check(1)").fetchone()[0].splitlines()
    if lines != ["ok"]:
        raise sqlite3.DatabaseError(f"damaged: {lines[-1][:200]}")


def row_checksum(names: Sequence[str], values: Sequence[Any]) -> str:
    """SHA-256 of a row as SQLite returns it: each non-NULL value with its column name and storage type
    (so 1, 1.0 and '1' differ), by column name. NULLs are left out, so the columns a later version adds
    to an older database (NULL in its rows) leave the rows' checksums valid."""
    cells = sorted(
        (name, *_typed(value)) for name, value in zip(names, values, strict=True) if value is not None
    )
    return hashlib.sha256(json.dumps(cells, separators=(",", ":")).encode("ascii")).hexdigest()


def _typed(value: Any) -> tuple[str, str]:
    if isinstance(value, float):
        return "real", value.hex()  # exact, one spelling per value
    if isinstance(value, int):
        return "integer", str(value)
    if isinstance(value, bytes):
        return "blob", value.hex()
    return "text", value


def seal_run(db: sqlite3.Connection, run_id: str) -> None:
    """Store the checksum of each row of `run_id`, computed from the rows as stored (SQLite's column
    types convert some values on insert), inside the caller's transaction."""
    names = _stored_columns(db)
    rows = db.execute(f"SELECT rowid, {_select(names)} FROM results WHERE run_id = ?", (run_id,)).fetchall()
    db.executemany(
        f"UPDATE results SET {CHECKSUM} = ? WHERE rowid = ?",
        [(row_checksum(names, row[1:]), row[0]) for row in rows],
    )


def read_rows(db: sqlite3.Connection) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Every row of the results table with its column names (none without a table), each row checked
    against its checksum; raises `sqlite3.DatabaseError` naming the first row that fails, or the first
    problem `check_integrity` finds."""
    db.text_factory = bytes.decode  # strict UTF-8, as below: never a message that echoes damaged bytes
    try:
        return _checked_rows(db)
    except UnicodeDecodeError:  # in a value, or in SQLite's own message quoting damaged text
        raise sqlite3.DatabaseError("damaged: it holds text that is not UTF-8") from None


def _checked_rows(db: sqlite3.Connection) -> tuple[list[str], list[tuple[Any, ...]]]:
    check_integrity(db)
    columns = [row[1] for row in db.execute("PRAGMA table_info(results)")]
    names = [name for name in columns if name != CHECKSUM]
    if not names:
        return [], []
    if CHECKSUM not in columns:
        if db.execute("SELECT 1 FROM results LIMIT 1").fetchone():
            raise sqlite3.DatabaseError("its rows have no checksums: written before rewritelab checked rows")
        return names, []
    rows = []
    for rowid, *values, checksum in db.execute(f"SELECT rowid, {_select(names)}, {CHECKSUM} FROM results"):
        if checksum != row_checksum(names, values):
            reason = "has no checksum" if checksum is None else "does not match its checksum"
            raise sqlite3.DatabaseError(f"row {rowid} {reason}: changed or damaged after it was recorded")
        rows.append(tuple(values))
    return names, rows


def _stored_columns(db: sqlite3.Connection) -> list[str]:
    """The results table's columns in table order, all but the checksum (what it covers)."""
    return [row[1] for row in db.execute("PRAGMA table_info(results)") if row[1] != CHECKSUM]


def _select(names: Sequence[str]) -> str:
    return ", ".join('"' + name.replace('"', '""') + '"' for name in names)


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
