"""What each run's summary already breaks down (applied / no-op, rule frequency, occurrences, pattern
length, …) as tables of the report, and a few of the wrong answers of each split, read from the runs'
predictions where the run directories are at hand."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from rewritelab.layout import predictions_file
from rewritelab.report.runs import Context, Run, group, key_label
from rewritelab.report.tables import escape, html_table

# Breakdowns in the order a reader meets them, with how their header and cells read.
TITLES = {
    "noop": "applied / no-op (does the input contain the pattern?)",
    "frequency": "training examples of the example's rule",
    "occurrences": "occurrences of the pattern in the input",
    "pattern_len": "pattern length",
    "family": "rule family",
    "k": "k (rules per program, or the family's k)",
    "steps": "execution steps",
    "input_len": "input length",
}
CASES = {"noop": {"false": "applied", "true": "no-op"}}
EXAMPLES_PER_SPLIT = 4


def _cell_order(value: str) -> tuple[Any, ...]:
    """`1-9` before `10-99` before `>=1000`: by the first number in the key, then as text."""
    number = re.search(r"\d+", value)
    return (0 if number else 1, int(number.group()) if number else 0, value)


def breakdown_tables(ctx: Context) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) per breakdown with at least two cells in some run's split: a row per
    condition and split, a column per cell, each the mean accuracy over seeds in percent with the test
    examples per run in parentheses."""
    tables = []
    for factor in [
        *TITLES,
        *sorted({f for r in ctx.runs for b in r.breakdown.values() for f in b} - set(TITLES)),
    ]:
        if not any(len(_cells(r, s, factor)) >= 2 for r in ctx.runs for s in r.breakdown):
            continue
        values = sorted(
            {v for r in ctx.runs for s in r.breakdown for v in _cells(r, s, factor)}, key=_cell_order
        )
        rows = []
        for key, members in group(ctx.runs, ctx.varying):
            for split in sorted({s for r in members for s in r.breakdown}):
                cells = [_mean_cell(members, split, factor, v) for v in values]
                if any(c != "-" for c in cells):
                    rows.append([key_label(ctx.varying, key, ctx.scale_name, ctx.symbol), split, *cells])
        names = [CASES.get(factor, {}).get(v, v) for v in values]
        tables.append((TITLES.get(factor, factor), ["condition", "split", *names], rows))
    return tables


def _cells(run: Run, split: str, factor: str) -> dict[str, dict[str, Any]]:
    cells = run.breakdown.get(split, {}).get(factor) or {}
    return {k: c for k, c in cells.items() if isinstance(c, dict) and c.get("n")}


def _mean_cell(runs: Sequence[Run], split: str, factor: str, value: str) -> str:
    cells = [c for c in (_cells(r, split, factor).get(value) for r in runs) if c]
    if not cells:
        return "-"
    accuracy = sum(float(c["accuracy"]) for c in cells) / len(cells)
    n = sum(int(c["n"]) for c in cells) / len(cells)
    return f"{100 * accuracy:.1f}% ({n:.0f})"


def breakdowns_html(ctx: Context) -> str:
    tables = breakdown_tables(ctx)
    if not tables:
        return (
            "<p>Every test example of a run falls in the same cell of each breakdown its summary records "
            "(applied / no-op, rule frequency, occurrences, pattern length), so there is nothing to "
            "break down.</p>"
        )
    parts = [
        '<p class="caption">Accuracy in percent, the mean over the seeds of each condition, with the test '
        "examples per run in that cell in parentheses; - where a run has no such example.</p>"
    ]
    for title, header, rows in tables:
        parts.append(f"<h3>{escape(title)}</h3>")
        parts.append(html_table(header, rows, text_columns={0, 1}))
    return "".join(parts)


# ---------------------------------------------------------------------------------------------------------
# Example errors


FIELDS = ("pattern", "replacement", "program", "input", "output", "prediction")


def example_errors(ctx: Context, folders: Mapping[str, Path]) -> dict[str, list[dict[str, str]]]:
    """Split → a few wrong answers (condition label + the example's fields), taken in turn from each
    condition's first seed so that the examples span the sweep; a split is absent when no run has its
    predictions at hand, and maps to [] when they hold no wrong answer (`folders`: run id → run folder)."""
    if not folders:
        return {}
    splits = sorted({s for r in ctx.runs for s in r.accuracy})
    groups = group(ctx.runs, ctx.varying)
    per_group = max(1, math.ceil(EXAMPLES_PER_SPLIT / len(groups)))
    out: dict[str, list[dict[str, str]]] = {}
    for split in splits:
        for key, members in groups:
            run = min(members, key=lambda r: (r.seed is None, r.seed or 0))
            folder = folders.get(run.run_id)
            path = predictions_file(folder, split) if folder is not None else None
            if path is None or not path.is_file():
                continue
            rows = out.setdefault(split, [])
            name = key_label(ctx.varying, key, ctx.scale_name, ctx.symbol)
            for record in _wrong(path, min(per_group, EXAMPLES_PER_SPLIT - len(rows))):
                rows.append({"condition": name, **{f: _text(record[f]) for f in FIELDS if f in record}})
    return out


def _wrong(path: Path, limit: int) -> Iterator[dict[str, Any]]:
    """The first `limit` wrong predictions of a predictions file (read line by line: they can be large)."""
    if limit <= 0:
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and record.get("correct") is False:
                yield record
                limit -= 1
                if limit == 0:
                    return


def _text(value: Any) -> str:
    """A field as text; a program (a list of rules) as `ab→c; c→.` with `.` after a terminating rule."""
    if isinstance(value, list):
        return "; ".join(
            f"{r.get('pattern', '')}→{r.get('replacement', '')}{'.' if r.get('terminating') else ''}"
            if isinstance(r, dict)
            else str(r)
            for r in value
        )
    return str(value)


def examples_html(errors: dict[str, list[dict[str, str]]]) -> str:
    if not errors:
        return (
            "<p>No predictions at hand: the run directories (runs/ID/predictions/SPLIT.jsonl) were not "
            "found beside these results.</p>"
        )
    parts = ['<p class="caption">Wrong answers of each split, from the first seed of each condition.</p>']
    for split, rows in errors.items():
        parts.append(f"<h3>{escape(split)}</h3>")
        if not rows:
            parts.append("<p>No wrong answer: every prediction read was correct.</p>")
            continue
        header = ["condition", *[f for f in FIELDS if any(f in r for r in rows)]]
        cells = [[r.get(h, "") for h in header] for r in rows]
        parts.append(html_table(header, cells, text_columns=set(range(len(header)))))
    return "".join(parts)
