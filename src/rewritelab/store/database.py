"""The results database of a sweep: one SQLite row per run × split, and its exports.

SQLite because a sweep's worker processes (or its driver, with Ray) record runs as they finish: WAL mode
and a busy timeout let several writers take turns without a server, and one transaction per run means a
reader never sees half a run. Recording is idempotent (a run's old rows are replaced), so a resumed or
repeated sweep never duplicates rows. The experimental columns (I, S, budget, α, no-op share, family,
occurrences; for Markov programs also k and the answer format) are derived from the resolved run config
once, here, so every consumer (tables, figures, `pandas`) filters on plain columns instead of parsing
configs. Columns added since the first schema (`ADDED_COLUMNS`) are added to older databases when they
are opened and read as missing from older CSVs, so committed results stay readable.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from rewritelab.errors import UserError
from rewritelab.io import check_target, dumps_json, utc_now
from rewritelab.store.columns import experiment_columns
from rewritelab.store.integrity import CHECKSUM, check_integrity, seal_run, unusable
from rewritelab.store.versions import VERSION_COLUMNS, version_columns

BUSY_TIMEOUT_S = 60.0

# Column name → SQLite type, in table order. The key is (run_id, split).
COLUMNS: dict[str, str] = {
    "run_id": "TEXT NOT NULL",
    "sweep": "TEXT",
    "preset": "TEXT",
    "seed": "INTEGER",
    "num_rules": "INTEGER",
    "train_patterns": "INTEGER",
    "examples_per_rule": "REAL",
    "budget": "INTEGER",
    "alpha": "REAL",
    "rule_distribution": "TEXT",
    "noop_frac": "REAL",
    "family": "TEXT",
    "occurrences": "TEXT",
    "program_k": "TEXT",
    "answer": "TEXT",
    "split": "TEXT NOT NULL",
    "accuracy": "REAL",
    "ci_low": "REAL",
    "ci_high": "REAL",
    "n": "INTEGER",
    "trace_accuracy": "REAL",
    "step_accuracy": "REAL",
    "breakdown_json": "TEXT",
    "config_json": "TEXT",
    "steps": "INTEGER",
    "tokens": "INTEGER",
    "seconds": "REAL",
    "loss_drop": "REAL",
    "acc_delta": "REAL",
    "converged": "INTEGER",
    "code_version": "TEXT",
    **VERSION_COLUMNS,  # torch_version, ..., numpy_version: store.versions
    "finished_at": "TEXT",
}
LAST_EXPERIMENTAL = "answer"  # factor columns follow it
# Program runs', convergence, pattern-count and package-version columns, absent from databases and CSVs
# written before them.
ADDED_COLUMNS = (
    "train_patterns",
    "program_k",
    "answer",
    "trace_accuracy",
    "step_accuracy",
    "loss_drop",
    "acc_delta",
    "converged",
    *VERSION_COLUMNS,
)
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS results (\n"
    + ",\n".join(f"  {name} {kind}" for name, kind in COLUMNS.items())
    + f",\n  {CHECKSUM} TEXT,\n  PRIMARY KEY (run_id, split)\n)"
)


class _Connection(sqlite3.Connection):
    """A connection whose `with` block also closes it (sqlite3's own only commits or rolls back)."""

    def __exit__(self, exc_type, exc, tb):
        try:
            return super().__exit__(exc_type, exc, tb)
        finally:
            self.close()


def open_db(path: str | os.PathLike) -> sqlite3.Connection:
    """Open (creating if needed) a results database for concurrent use by several processes.

    WAL lets readers proceed while one process writes; the busy timeout makes a second writer wait for
    the lock instead of failing. `with open_db(p) as db:` commits and closes.
    """
    path = Path(path)
    check_target(path)  # SQLite would write through a link
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, factory=_Connection, isolation_level=None)
    try:
        _retry_busy(lambda: _prepare(db))
    except sqlite3.DatabaseError as e:
        db.close()
        raise unusable(path, e) from None
    return db


def _prepare(db: sqlite3.Connection) -> None:
    check_integrity(db)
    if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        db.execute("PRAGMA journal_mode = WAL")  # persistent: only the first opener switches
    db.execute(SCHEMA)
    present = {row[1] for row in db.execute("PRAGMA table_info(results)")}
    for name in ADDED_COLUMNS:
        if name not in present:
            db.execute(f"ALTER TABLE results ADD COLUMN {name} {COLUMNS[name]}")
    if CHECKSUM not in present:  # the old rows stay without one: reading them asks for the rebuild
        db.execute(f"ALTER TABLE results ADD COLUMN {CHECKSUM} TEXT")


def _retry_busy(step) -> None:
    """Run `step`, retrying while the database is locked: switching to WAL while another process opens
    the same new file can report "locked" without waiting on the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as e:
            if ("locked" not in str(e) and "busy" not in str(e)) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# ---------------------------------------------------------------------------------------------------------
# Recording a run


def record_run(
    db_path: str | os.PathLike,
    run_id: str,
    summary: dict[str, Any],
    sweep: str,
    preset: str,
    manifest: dict[str, Any] | None = None,
) -> None:
    """Store one finished run (one row per evaluated split) in one transaction, replacing older rows;
    `manifest` is the run's data_manifest.json, the source of its distinct-pattern count."""
    rows = summary_rows(run_id, summary, sweep, preset, manifest)
    names = list(COLUMNS)
    insert = f"INSERT OR REPLACE INTO results ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    with open_db(db_path) as db:
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM results WHERE run_id = ?", (run_id,))
        db.executemany(insert, [[row[name] for name in names] for row in rows])
        seal_run(db, run_id)
        db.execute("COMMIT")


def summary_rows(
    run_id: str, summary: dict[str, Any], sweep: str, preset: str, manifest: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """A run's `summary.json` (and data manifest, when given) → the database rows (one per split),
    without touching the database."""
    where = f"summary of run {run_id}"
    accuracy = _mapping(summary, "accuracy", where)
    if not accuracy:
        raise UserError(f"{where}: accuracy: no evaluated split; re-run `rewritelab evaluate` on the run")
    ci95 = _mapping(summary, "ci95", where)
    counts = _mapping(summary, "n", where)
    breakdown = summary.get("breakdown") or {}
    trace = _mapping(summary, "trace_accuracy", where) if "trace_accuracy" in summary else {}
    step = _mapping(summary, "step_accuracy", where) if "step_accuracy" in summary else {}
    train = summary.get("train") or {}
    judged = train.get("convergence") or {}
    config = _mapping(summary, "config", where)
    common = {
        "run_id": run_id,
        "sweep": sweep,
        "preset": preset,
        **experiment_columns(config, where),
        "train_patterns": _train_patterns(manifest, f"data manifest of run {run_id}"),
        "config_json": _dumps(config),
        "steps": train.get("steps"),
        "tokens": train.get("tokens"),
        "seconds": train.get("seconds"),
        "loss_drop": judged.get("loss_drop"),
        "acc_delta": judged.get("acc_delta"),
        "converged": None if judged.get("converged") is None else int(judged["converged"]),
        "code_version": summary.get("code_version"),
        **version_columns(summary),
        "finished_at": summary.get("finished_at") or utc_now(),
    }
    rows = []
    for split in sorted(accuracy):
        low, high = _interval(ci95.get(split), f"{where}: ci95.{split}")
        rows.append(
            {
                **common,
                "split": split,
                "accuracy": float(accuracy[split]),
                "ci_low": low,
                "ci_high": high,
                "n": counts.get(split),
                "trace_accuracy": _fraction(trace.get(split), f"{where}: trace_accuracy.{split}"),
                "step_accuracy": _fraction(step.get(split), f"{where}: step_accuracy.{split}"),
                "breakdown_json": _dumps(breakdown.get(split) or {}),
            }
        )
    return rows


def _train_patterns(manifest: dict[str, Any] | None, where: str) -> int | None:
    """Distinct patterns among the training rules (E1's real axis: rules sharing a pattern are one
    instruction with several replacements); None without a manifest or for one that lacks the count."""
    count = ((manifest or {}).get("disjointness") or {}).get("train_patterns")
    if count is None:
        return None
    if isinstance(count, bool) or not isinstance(count, int):
        raise UserError(f"{where}: disjointness.train_patterns: expected an integer, got {count!r}")
    return count


def _mapping(summary: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = summary.get(key)
    if not isinstance(value, dict):
        raise UserError(f"{where}: {key}: missing or not a mapping; the run's summary.json is damaged")
    return value


def _fraction(value: Any, where: str) -> float | None:
    """A trace metric: a number, or None where the split has none (no trace target strings)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{where}: expected a number in [0, 1], got {value!r}")
    return float(value)


def _interval(value: Any, where: str) -> tuple[float | None, float | None]:
    if value is None:
        return None, None
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise UserError(f"{where}: expected [low, high], got {value!r}")
    return float(value[0]), float(value[1])


def _dumps(obj: Any) -> str:
    return dumps_json(obj, sort_keys=True, separators=(",", ":"))
