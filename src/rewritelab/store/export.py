"""Exports of a results database: markdown, CSV and parquet, and the readable table the markdown export
and the HTML report share (program columns appear only when some run trains on Markov programs, applied
/ no-op columns only when some run has no-op examples, a factor's column only when its value differs
between runs). The markdown export follows it with the package versions the runs recorded, per sweep."""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewritelab.errors import UserError
from rewritelab.io import atomic_write_bytes, atomic_write_text, check_target
from rewritelab.store.loading import factor_names, load_results
from rewritelab.store.versions import versions_table

FORMATS = ("markdown", "csv", "parquet")
# How each export begins (CSV header, markdown table, `results --format seeds` table, parquet magic): `--out`
# overwrites only a file that begins so, one rewritelab wrote.
EXPORT_HEADS = (b"run_id,", b"| run ", b"| condition ", b"PAR1")


def check_export_path(out: str | os.PathLike) -> None:
    """Refuse an `--out` that is a directory, or a file other than an empty one or an earlier export (a
    results database, a user's notes): writing there would destroy what it holds. A link, a device, FIFO
    or socket is refused unread (`check_target`)."""
    out = Path(out)
    check_target(out)
    if out.is_dir():
        raise UserError(f"--out {out}: is a directory; give a file path, e.g. {out / 'results.csv'}")
    if out.exists():
        with open(out, "rb") as f:
            head = f.read(16)
        if head and not head.startswith(EXPORT_HEADS):
            raise UserError(
                f"--out {out}: exists and is not a results export; rewritelab overwrites only its own "
                "exports: choose another file name"
            )


def export(
    path: str | os.PathLike,
    fmt: str,
    out: str | os.PathLike | None = None,
    supersede: Sequence[str | os.PathLike] = (),
) -> str | bytes:
    """Export the results as `markdown`, `csv` or `parquet` (rows in `load_results` order), those of
    `path` with the runs each `supersede` source re-ran replaced by its own.

    Returns the text (markdown, csv) or bytes (parquet); with `out` it is also written there atomically.
    """
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: must be one of {', '.join(FORMATS)}")
    if out is not None:
        check_export_path(out)
    frame = load_results(path, supersede)
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


# For a person's eyes: accuracies and shares in percent (the CSV and parquet exports keep the fractions).
# "patterns": distinct patterns among the training rules (from the run's data manifest).
TABLE_HEADER = ["run", "split", "accuracy % [95% CI]", "n", "I", "patterns", "S", "budget", "alpha",
                "no-op share %", "family", "occurrences", "seed", "steps", "converged"]  # fmt: skip
PROGRAM_HEADER = ["k", "answer", "trace acc %", "step acc %"]
NOOP_HEADER = ["applied acc %", "no-op acc %"]  # on the examples the rule changes / leaves unchanged
TEXT_COLUMNS = {"run", "split", "alpha", "family", "occurrences", "converged", "k", "answer"}


def has_programs(frame) -> bool:
    """Whether some run trains on Markov programs (its rows have an answer format)."""
    return bool(frame["answer"].notna().any())


def has_noops(frame) -> bool:
    """Whether some run trains with no-op examples (then the table splits accuracy by them)."""
    return bool((frame["noop_frac"].fillna(0) > 0).any())


def table_header(frame) -> list[str]:
    at = TABLE_HEADER.index("occurrences") + 1  # the factors follow the experimental columns
    return (
        TABLE_HEADER[:at]
        + factor_names(frame)
        + TABLE_HEADER[at:]
        + (NOOP_HEADER if has_noops(frame) else [])
        + (PROGRAM_HEADER if has_programs(frame) else [])
    )


def text_columns(frame) -> set[str]:
    """The table's columns of text (left-aligned in the HTML report), factors of text included."""
    return TEXT_COLUMNS | {name for name in factor_names(frame) if frame[name].dtype == object}


def _noop_cells(breakdown_json: Any) -> list[str]:
    """(applied, no-op) accuracy of one row, from its `noop` breakdown; `-` where a case has no example."""
    cases = json.loads(breakdown_json).get("noop", {}) if isinstance(breakdown_json, str) else {}
    return [_percent((cases.get(case) or {}).get("accuracy")) for case in ("false", "true")]


def table_rows(frame) -> list[list[str]]:
    """The cells of the readable results table (shared by the markdown export and the HTML report)."""
    programs, noops = has_programs(frame), has_noops(frame)
    factors = frame[factor_names(frame)].itertuples(index=False, name=None)
    at = TABLE_HEADER.index("occurrences") + 1
    rows = []
    for r, values in zip(frame.itertuples(index=False), factors, strict=True):
        row = [
            str(r.run_id),
            str(r.split),
            _accuracy_cell(r.accuracy, r.ci_low, r.ci_high),
            _number(r.n),
            _number(r.num_rules),
            _number(r.train_patterns),
            per_rule(r.examples_per_rule),
            _number(r.budget),
            "uniform" if r.rule_distribution == "uniform" else _number(r.alpha),
            "-" if _missing(r.noop_frac) else f"{100 * r.noop_frac:g}",
            _text(r.family),
            _text(r.occurrences),
            _number(r.seed),
            _number(r.steps),
            _converged(r.converged),
        ]
        row[at:at] = [_number(v) if isinstance(v, float) else _text(v) for v in values]
        if noops:
            row += _noop_cells(r.breakdown_json)
        if programs:
            row += [
                _text(r.program_k),
                _text(r.answer),
                _percent(r.trace_accuracy),
                _percent(r.step_accuracy),
            ]
        rows.append(row)
    return rows


def markdown_table(frame) -> str:
    """The readable table, then (after a blank line) the package versions the runs recorded, per sweep."""
    return _markdown(table_header(frame), table_rows(frame)) + "\n" + _markdown(*versions_table(frame))


def _markdown(header: list[str], body: list[list[str]]) -> str:
    rows = [header, *body]
    escaped = [[cell.replace("|", "\\|") for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in escaped) for i in range(len(header))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in escaped
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines) + "\n"


def _converged(x: Any) -> str:
    """`yes` / `no` by `rewritelab.convergence`; `-` for runs recorded before it was judged."""
    return "-" if _missing(x) else ("yes" if x else "no")


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _accuracy_cell(accuracy: float, low: float, high: float) -> str:
    if _missing(accuracy):
        return "-"
    if _missing(low) or _missing(high):
        return _percent(accuracy)
    return f"{_percent(accuracy)} [{_percent(low)}, {_percent(high)}]"


def _percent(x: Any) -> str:
    return "-" if _missing(x) else f"{100 * x:.1f}"


def per_rule(x: Any) -> str:
    """S, examples per rule, at one precision: whole numbers as such, others to one decimal (66.7, 6.7)."""
    if _missing(x):
        return "-"
    return str(int(x)) if float(x).is_integer() else f"{x:.1f}"


def _number(x: Any) -> str:
    if _missing(x):
        return "-"
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _text(x: Any) -> str:
    return "-" if _missing(x) else str(x)
