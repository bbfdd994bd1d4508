"""Re-making a sweep's results.sqlite from its run directories (`rewritelab results SWEEP_DIR --rebuild`).

The database is an index of the runs, not their record: each finished run keeps its summary.json (and
data_manifest.json) in runs/RUN_ID/, which is all the sweep recorded from it. So a damaged database is
rebuilt rather than repaired: every finished run is recorded again into a new file, which then replaces
the old one (under the sweep folder's lock); the old file is kept beside it as
results.sqlite.before-rebuild (replacing the copy an earlier rebuild kept there).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from rewritelab.config import load_yaml
from rewritelab.errors import UserError
from rewritelab.folders import SWEEP, lock_folder
from rewritelab.io import read_json
from rewritelab.layout import DATA_MANIFEST, RESULTS_DB, RUNS_DIR, SUMMARY, SWEEP_FILE
from rewritelab.run import read_summary
from rewritelab.store import open_db, record_run

KEPT_SUFFIX = ".before-rebuild"
_JOURNALS = ("-wal", "-shm")  # SQLite's files beside a database in WAL mode


def rebuild_results(sweep_dir: str | os.PathLike) -> tuple[int, Path | None]:
    """Record every finished run of `sweep_dir` into a fresh results.sqlite, as the sweep recorded them
    (same rows, same values); returns the number of runs and where the previous database was kept."""
    sweep_dir = Path(sweep_dir)
    sweep_file = sweep_dir / SWEEP_FILE
    if not sweep_file.is_file():
        raise UserError(
            f"{sweep_dir}: not a sweep directory (no {SWEEP_FILE}); --rebuild re-makes a sweep's "
            f"{RESULTS_DB} from its runs"
        )
    with lock_folder(sweep_dir, SWEEP):  # no sweep may record a run while the database is swapped
        return _rebuild(sweep_dir, str(load_yaml(sweep_file).get("preset") or ""))


def _rebuild(sweep_dir: Path, preset: str) -> tuple[int, Path | None]:
    runs = sweep_dir / RUNS_DIR
    finished = sorted(p for p in runs.iterdir() if (p / SUMMARY).is_file()) if runs.is_dir() else []
    db = sweep_dir / RESULTS_DB
    new = sweep_dir / f".{RESULTS_DB}.rebuild-{os.getpid()}"
    try:
        with open_db(new):
            pass  # the table, even for a sweep without a finished run
        for run_dir in finished:
            manifest = run_dir / DATA_MANIFEST
            summary = read_summary(run_dir / SUMMARY)
            record_run(new, run_dir.name, summary, sweep_dir.name, preset, _read(manifest))
        # One self-contained file to move into place (the next writer switches it back to WAL).
        with contextlib.closing(sqlite3.connect(new)) as conn:
            conn.execute("PRAGMA journal_mode = DELETE")
    except BaseException:
        for path in _with_journals(new):
            path.unlink(missing_ok=True)
        raise
    kept = None
    if db.exists():
        kept = db.with_name(RESULTS_DB + KEPT_SUFFIX)
        for stale in _with_journals(kept):
            stale.unlink(missing_ok=True)  # an earlier rebuild's: its journals must not pair with this one
        for suffix in ("", *_JOURNALS):  # the old journals belong to the old database
            old = db.with_name(db.name + suffix)
            if old.exists():
                os.replace(old, kept.with_name(kept.name + suffix))
    os.replace(new, db)
    return len(finished), kept


def _read(manifest: Path) -> dict | None:
    return read_json(manifest) if manifest.is_file() else None


def _with_journals(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("", *_JOURNALS)]
