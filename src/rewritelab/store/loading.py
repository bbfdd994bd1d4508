"""Loading a sweep's results: a results.sqlite (every row checked, read-only), a sweep directory or an
exported CSV → one `pandas.DataFrame` with one dtype per column whatever the source, so figures drawn from
a committed CSV match those drawn from the database. Recording lives in `database`.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewritelab.errors import UserError
from rewritelab.layout import RESULTS_DB
from rewritelab.store.access import connect_read_only
from rewritelab.store.columns import add_factor_columns, superseded
from rewritelab.store.database import ADDED_COLUMNS, BUSY_TIMEOUT_S, COLUMNS, LAST_EXPERIMENTAL
from rewritelab.store.integrity import read_rows, unusable

NUMBER = re.compile(r"(\d+(?:\.\d+)?)")


def database_path(source: str | os.PathLike) -> Path:
    """A sweep directory or a results.sqlite path → the database file (UserError when there is none)."""
    source = Path(source)
    if not source.exists():
        raise UserError(f"{source}: no such file or directory; give a sweep directory or its {RESULTS_DB}")
    path = source / RESULTS_DB if source.is_dir() else source
    if not path.is_file():
        raise UserError(f"{source}: no {RESULTS_DB} here; run `rewritelab sweep ... --out {source}` first")
    return path


def load_results(path: str | os.PathLike, supersede: Sequence[str | os.PathLike] = ()):
    """A results.sqlite, a sweep directory or an exported CSV → a `pandas.DataFrame` sorted by run id
    (numbers inside ids compare as numbers) and split: the `COLUMNS`, and after the experimental ones a
    column per factor, each config value outside them that differs between the runs (`factor_names`).

    All three give equal frames for equal contents (same columns, dtypes and values), so figures drawn
    from a committed CSV match the ones drawn from the database. Each source in `supersede` (later ones
    win) replaces the runs of `path` it re-ran (`superseded`): a sweep and its longer re-runs as one.
    """
    frames = [_normalize(_load_frame(Path(p))) for p in (path, *supersede)]
    frame = _normalize(superseded(frames, [str(p) for p in (path, *supersede)])) if supersede else frames[0]
    return add_factor_columns(frame, after=LAST_EXPERIMENTAL)


def _load_frame(source: Path):
    import pandas as pd

    if source.is_file() and source.suffix.lower() == ".csv":
        frame = _read_csv(source)
    else:
        db_path = database_path(source)
        names, rows = read_database(db_path)
        if not names:
            raise UserError(f"{db_path}: not a results database (no results table); give a sweep's one")
        frame = pd.DataFrame.from_records(rows, columns=names, coerce_float=True)
        for name in COLUMNS:
            if name not in names:
                frame[name] = None  # a column added since the database was written
    return frame


def read_database(db_path: Path) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The column names and rows of a results database, every row checked against its checksum
    (`read_rows`); a damaged or edited database is one UserError that points to the rebuild."""
    # Read-only: reading results never creates, migrates or rewrites a file (not even a non-database
    # given by mistake), and a healthy database on a read-only mount is read where it lies.
    db = connect_read_only(db_path, BUSY_TIMEOUT_S)
    try:
        return read_rows(db)
    except sqlite3.DatabaseError as e:
        raise unusable(db_path, e) from None
    finally:
        db.close()


def _read_csv(path: Path):
    import pandas as pd

    try:
        frame = pd.read_csv(
            path,
            dtype={name: object for name, kind in COLUMNS.items() if kind.startswith("TEXT")},
            keep_default_na=False,
            na_values=[""],
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not a results CSV ({str(e).splitlines()[0]})") from None
    for name in ADDED_COLUMNS:
        if name not in frame.columns:
            frame[name] = None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(
            f"{path}: not a results CSV, missing columns {', '.join(missing)}; "
            "export one with `rewritelab results SWEEP_DIR --format csv`"
        )
    return frame


def _normalize(frame):
    """One dtype per column whatever the source: text → object (None when missing), REAL → float64,
    INTEGER → int64 (float64 when a value is missing, as pandas itself reads such a column)."""
    import pandas as pd

    frame = frame[list(COLUMNS)].copy()
    for name, kind in COLUMNS.items():
        column = frame[name]
        if kind.startswith("TEXT"):
            frame[name] = column.astype("object").where(column.notna(), None)
        elif kind == "REAL" or column.isna().any():
            frame[name] = pd.to_numeric(column, errors="coerce").astype("float64")
        else:
            frame[name] = pd.to_numeric(column).astype("int64")
    run_ids, splits = frame["run_id"], frame["split"]
    order = sorted(range(len(frame)), key=lambda i: (natural_key(run_ids.iat[i]), splits.iat[i]))
    return frame.iloc[order].reset_index(drop=True)


def factor_names(frame) -> list[str]:
    """The factor columns of a loaded results frame (config paths such as `train.weight_decay`)."""
    return [name for name in frame.columns if name not in COLUMNS]


def natural_key(text: str) -> tuple[Any, ...]:
    """Sort key that orders `num_rules=30` before `num_rules=100`: numbers compare as numbers."""
    parts = NUMBER.split(text)
    return tuple(float(p) if i % 2 else p for i, p in enumerate(parts))
