"""The results database of a sweep: one SQLite row per run × split, and its exports.

SQLite because a sweep's worker processes (or its driver, with Ray) record runs as they finish: WAL mode
and a busy timeout let several writers take turns without a server, and one transaction per run means a
reader never sees half a run. Recording is idempotent (a run's old rows are replaced), so a resumed or
repeated sweep never duplicates rows. The experimental columns (I, S, budget, α, no-op share, family,
occurrences) are derived from the resolved run config once, here, so every consumer (tables, figures,
`pandas`) filters on plain columns instead of parsing configs.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import os
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from rewritelab.errors import UserError
from rewritelab.io import atomic_write_bytes, atomic_write_text
from rewritelab.layout import RESULTS_DB

BUSY_TIMEOUT_S = 60.0
FORMATS = ("markdown", "csv", "parquet")

# Column name → SQLite type, in table order. The key is (run_id, split).
COLUMNS: dict[str, str] = {
    "run_id": "TEXT NOT NULL",
    "sweep": "TEXT",
    "preset": "TEXT",
    "seed": "INTEGER",
    "num_rules": "INTEGER",
    "examples_per_rule": "REAL",
    "budget": "INTEGER",
    "alpha": "REAL",
    "rule_distribution": "TEXT",
    "noop_frac": "REAL",
    "family": "TEXT",
    "occurrences": "TEXT",
    "split": "TEXT NOT NULL",
    "accuracy": "REAL",
    "ci_low": "REAL",
    "ci_high": "REAL",
    "n": "INTEGER",
    "breakdown_json": "TEXT",
    "config_json": "TEXT",
    "steps": "INTEGER",
    "tokens": "INTEGER",
    "seconds": "REAL",
    "code_version": "TEXT",
    "finished_at": "TEXT",
}
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS results (\n"
    + ",\n".join(f"  {name} {kind}" for name, kind in COLUMNS.items())
    + ",\n  PRIMARY KEY (run_id, split)\n)"
)
NUMBER = re.compile(r"(\d+(?:\.\d+)?)")


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
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, factory=_Connection, isolation_level=None)
    try:
        _retry_busy(lambda: _prepare(db))
    except sqlite3.DatabaseError as e:
        db.close()
        raise UserError(
            f"{path}: not a usable results database ({e}); delete it and re-run the sweep"
        ) from None
    return db


def _prepare(db: sqlite3.Connection) -> None:
    if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        db.execute("PRAGMA journal_mode = WAL")  # persistent: only the first opener switches
    db.execute(SCHEMA)


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
    db_path: str | os.PathLike, run_id: str, summary: dict[str, Any], sweep: str, preset: str
) -> None:
    """Store one finished run (one row per evaluated split) in one transaction, replacing older rows."""
    rows = summary_rows(run_id, summary, sweep, preset)
    names = list(COLUMNS)
    insert = f"INSERT OR REPLACE INTO results ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    with open_db(db_path) as db:
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM results WHERE run_id = ?", (run_id,))
        db.executemany(insert, [[row[name] for name in names] for row in rows])
        db.execute("COMMIT")


def summary_rows(run_id: str, summary: dict[str, Any], sweep: str, preset: str) -> list[dict[str, Any]]:
    """A run's `summary.json` → the database rows (one per split), without touching the database."""
    where = f"summary of run {run_id}"
    accuracy = _mapping(summary, "accuracy", where)
    if not accuracy:
        raise UserError(f"{where}: accuracy: no evaluated split; re-run `rewritelab evaluate` on the run")
    ci95 = _mapping(summary, "ci95", where)
    counts = _mapping(summary, "n", where)
    breakdown = summary.get("breakdown") or {}
    train = summary.get("train") or {}
    config = _mapping(summary, "config", where)
    common = {
        "run_id": run_id,
        "sweep": sweep,
        "preset": preset,
        **experiment_columns(config, where),
        "config_json": _dumps(config),
        "steps": train.get("steps"),
        "tokens": train.get("tokens"),
        "seconds": train.get("seconds"),
        "code_version": summary.get("code_version"),
        "finished_at": summary.get("finished_at") or _now(),
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
                "breakdown_json": _dumps(breakdown.get(split) or {}),
            }
        )
    return rows


def experiment_columns(config: dict[str, Any], where: str = "config") -> dict[str, Any]:
    """The experimental columns of a resolved run config (the `data` section and the seed)."""
    data = config.get("data")
    if not isinstance(data, dict):
        raise UserError(f"{where}: config.data: missing; the summary must hold the resolved run config")
    num_rules = data.get("num_rules")
    budget = data.get("budget")
    per_rule = data.get("examples_per_rule")
    if num_rules and per_rule is None and budget is not None:
        per_rule = budget / num_rules
    elif num_rules and budget is None and per_rule is not None:
        budget = int(round(per_rule * num_rules))
    distribution = data.get("rule_distribution", "uniform")
    return {
        "seed": data.get("seed", (config.get("train") or {}).get("seed")),
        "num_rules": num_rules,
        "examples_per_rule": None if per_rule is None else float(per_rule),
        "budget": budget,
        "alpha": data.get("alpha") if distribution == "powerlaw" else None,
        "rule_distribution": distribution,
        "noop_frac": data.get("noop_frac", 0.0),
        "family": family_label(data.get("family", "random")),
        "occurrences": occurrences_label(data.get("occurrences", 1)),
    }


def family_label(family: Any) -> str:
    """A short label: `random`, `repeated[k=3-4]`, `mixed(repeated,periodic,mirrored)[k=3-4]`."""
    if isinstance(family, str):
        return family
    if not isinstance(family, dict):
        return str(family)
    name = str(family.get("name", "?"))
    components = family.get("components")
    if not components:
        return name + _k_suffix(family)
    suffixes = {_k_suffix(c) for c in components}
    if len(suffixes) == 1:  # every component has the same k range (or none): say it once
        return f"{name}({','.join(str(c.get('name', '?')) for c in components)}){suffixes.pop()}"
    return f"{name}({','.join(str(c.get('name', '?')) + _k_suffix(c) for c in components)})"


def _k_suffix(family: dict[str, Any]) -> str:
    k = family.get("k")
    if k is None or k == 0:
        return ""
    if isinstance(k, (list, tuple)):
        return f"[k={k[0]}-{k[-1]}]" if len(k) == 2 and k[0] != k[1] else f"[k={k[0]}]"
    return f"[k={k}]"


def occurrences_label(occurrences: Any) -> str:
    """`1`, `1,5,10,15,20`, or `1,10 (weights 3:1)` when the counts are not equally likely."""
    if isinstance(occurrences, dict):
        counts = occurrences.get("counts") or []
        weights = occurrences.get("weights")
        label = ",".join(str(c) for c in counts)
        if weights and len(set(weights)) > 1:
            label += f" (weights {':'.join(f'{w:g}' for w in weights)})"
        return label
    if isinstance(occurrences, (list, tuple)):
        return ",".join(str(c) for c in occurrences)
    return str(occurrences)


def _mapping(summary: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = summary.get(key)
    if not isinstance(value, dict):
        raise UserError(f"{where}: {key}: missing or not a mapping; the run's summary.json is damaged")
    return value


def _interval(value: Any, where: str) -> tuple[float | None, float | None]:
    if value is None:
        return None, None
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise UserError(f"{where}: expected [low, high], got {value!r}")
    return float(value[0]), float(value[1])


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


# ---------------------------------------------------------------------------------------------------------
# Loading


def database_path(source: str | os.PathLike) -> Path:
    """A sweep directory or a results.sqlite path → the database file (UserError when there is none)."""
    source = Path(source)
    if not source.exists():
        raise UserError(f"{source}: no such file or directory; give a sweep directory or its {RESULTS_DB}")
    path = source / RESULTS_DB if source.is_dir() else source
    if not path.is_file():
        raise UserError(f"{source}: no {RESULTS_DB} here; run `rewritelab sweep ... --out {source}` first")
    return path


def load_results(path: str | os.PathLike):
    """A results.sqlite, a sweep directory or an exported CSV → a `pandas.DataFrame` sorted by run id
    (numbers inside ids compare as numbers) and split.

    All three give equal frames for equal contents (same columns, dtypes and values), so figures drawn
    from a committed CSV match the ones drawn from the database.
    """
    import pandas as pd

    source = Path(path)
    if source.is_file() and source.suffix.lower() == ".csv":
        frame = _read_csv(source)
    else:
        db_path = database_path(source)
        with open_db(db_path) as db:
            try:
                frame = pd.read_sql_query(f"SELECT {', '.join(COLUMNS)} FROM results", db)
            except (sqlite3.DatabaseError, pd.errors.DatabaseError) as e:
                raise UserError(f"{db_path}: cannot read the results table ({e})") from None
    return _normalize(frame)


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
    order = sorted(range(len(frame)), key=lambda i: (_natural(frame["run_id"].iat[i]), frame["split"].iat[i]))
    return frame.iloc[order].reset_index(drop=True)


def _natural(text: str) -> tuple[Any, ...]:
    """Sort key that orders `num_rules=30` before `num_rules=100`: numbers compare as numbers."""
    parts = NUMBER.split(text)
    return tuple(float(p) if i % 2 else p for i, p in enumerate(parts))


# ---------------------------------------------------------------------------------------------------------
# Exports


def export(path: str | os.PathLike, fmt: str, out: str | os.PathLike | None = None) -> str | bytes:
    """Export the results as `markdown`, `csv` or `parquet` (rows in `load_results` order).

    Returns the text (markdown, csv) or bytes (parquet); with `out` it is also written there atomically.
    """
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: must be one of {', '.join(FORMATS)}")
    frame = load_results(path)
    if frame.empty:
        raise UserError(f"{path}: the results database is empty; no run has finished yet")
    if fmt == "markdown":
        data: str | bytes = markdown_table(frame)
    elif fmt == "csv":
        data = frame.to_csv(index=False, lineterminator="\n")
    else:
        data = _parquet_bytes(frame)
    if out is not None:
        if isinstance(data, bytes):
            atomic_write_bytes(out, data)
        else:
            atomic_write_text(out, data)
    return data


def _parquet_bytes(frame) -> bytes:
    try:
        import pyarrow  # noqa: F401 - only to give a clear message when it is missing
    except ImportError:
        raise UserError(
            "--format parquet needs pyarrow; install the extra: pip install 'rewritelab[parquet]'"
        ) from None
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, engine="pyarrow")
    return buffer.getvalue()


TABLE_HEADER = [
    "run",
    "split",
    "accuracy [95% CI]",
    "n",
    "I",
    "S",
    "budget",
    "alpha",
    "no-op",
    "family",
    "occurrences",
    "seed",
    "steps",
]


def table_rows(frame) -> list[list[str]]:
    """The cells of the readable results table (shared by the markdown export and the HTML report)."""
    return [
        [
            str(r.run_id),
            str(r.split),
            _accuracy_cell(r.accuracy, r.ci_low, r.ci_high),
            _number(r.n),
            _number(r.num_rules),
            _number(r.examples_per_rule),
            _number(r.budget),
            "uniform" if r.rule_distribution == "uniform" else _number(r.alpha),
            _number(r.noop_frac),
            _text(r.family),
            _text(r.occurrences),
            _number(r.seed),
            _number(r.steps),
        ]
        for r in frame.itertuples(index=False)
    ]


def markdown_table(frame) -> str:
    rows = [TABLE_HEADER, *table_rows(frame)]
    escaped = [[cell.replace("|", "\\|") for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in escaped) for i in range(len(TABLE_HEADER))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in escaped
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines) + "\n"


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _accuracy_cell(accuracy: float, low: float, high: float) -> str:
    if _missing(accuracy):
        return "-"
    if _missing(low) or _missing(high):
        return f"{accuracy:.3f}"
    return f"{accuracy:.3f} [{low:.3f}, {high:.3f}]"


def _number(x: Any) -> str:
    if _missing(x):
        return "-"
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _text(x: Any) -> str:
    return "-" if _missing(x) else str(x)
