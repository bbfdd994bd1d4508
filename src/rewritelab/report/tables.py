"""Tables: the HTML tables of a report (E5 occurrences, the results table) and, for `rewritelab
reproduce`, the fixed-width table of finished runs."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewritelab.report.runs import Context, aggregate, group, key_label, split_points
from rewritelab.store import load_results, per_rule
from rewritelab.textfmt import format_table

# ---------------------------------------------------------------------------------------------------------
# HTML tables


def occurrence_tables(ctx: Context) -> list[tuple[str, list[Any], list[Any], list[list[float | None]]]]:
    """E5: per facet, (title, occurrence labels, I values, mean unseen accuracy[row][col])."""
    if "occurrences" not in ctx.varying:
        return []
    facet_conds = [c for c in ctx.varying if c not in ("occurrences", "num_rules")]
    tables = []
    for key, members in group(ctx.runs, facet_conds):
        row_keys = [k[0] for k, _ in group(members, ["occurrences"])]
        col_keys = [k[0] for k, _ in group(members, ["num_rules"])]
        cells = dict(group(members, ["occurrences", "num_rules"]))
        values = []
        for occ in row_keys:
            row = []
            for rules in col_keys:
                points = split_points(cells.get((occ, rules), []), "test_unseen")
                row.append(aggregate(points)[0] if points else None)
            values.append(row)
        tables.append((key_label(facet_conds, key, ctx.scale_name), row_keys, col_keys, values))
    return tables


def occurrence_tables_html(ctx: Context) -> str:
    """E5 as HTML tables, the layout of the paper's table (rows: training occurrences, columns: I)."""
    tables = occurrence_tables(ctx)
    parts = []
    for title, row_keys, col_keys, values in tables:
        header = ["training occurrences \\ I", *(f"{c:g}" for c in col_keys)]
        rows = [
            [str(occ), *("-" if v is None else f"{v:.2f}" for v in row)]
            for occ, row in zip(row_keys, values, strict=True)
        ]
        if len(tables) > 1:
            parts.append(f"<h3>{escape(title)}</h3>")
        parts.append(html_table(header, rows, text_columns={0}))
    return "".join(parts)


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: set[int]) -> str:
    """An HTML table of escaped cells; the `text_columns` (indices) left-aligned, numbers right."""

    def cell(tag: str, i: int, text: str) -> str:
        cls = ' class="text"' if i in text_columns else ""
        return f"<{tag}{cls}>{escape(text)}</{tag}>"

    head = "<tr>" + "".join(cell("th", i, h) for i, h in enumerate(header)) + "</tr>"
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead>{head}</thead><tbody>{body}</tbody></table></div>'


def escape(text: str) -> str:
    """`text` safe inside HTML, attributes included."""
    return html.escape(text, quote=True)


# ---------------------------------------------------------------------------------------------------------
# The reproduce table (for `rewritelab reproduce`)


@dataclass(frozen=True)
class RunRow:
    """One finished run, the columns of the reproduce table."""

    run_id: str
    num_rules: int | None
    examples_per_rule: float | None
    budget: int | None
    rule_distribution: str | None
    alpha: float | None
    noop_frac: float | None
    family: str | None
    seed: int | None
    accuracy: dict[str, float]
    ci: dict[str, tuple[float, float]]  # splits without a confidence interval are left out


def reproduce_rows(db_path: Path, run_ids: Sequence[str]) -> list[RunRow]:
    """Rows of the results database for `run_ids` (in that order), one per run with both splits merged."""
    frame = load_results(db_path)
    rows = []
    for run_id in run_ids:
        part = frame[frame["run_id"] == run_id]
        if part.empty:
            continue
        first = part.iloc[0]
        accuracy = {r["split"]: float(r["accuracy"]) for _, r in part.iterrows()}
        ci = {
            r["split"]: (_opt(r, "ci_low", float), _opt(r, "ci_high", float))
            for _, r in part.iterrows()
            if _opt(r, "ci_low", float) is not None and _opt(r, "ci_high", float) is not None
        }
        rows.append(
            RunRow(
                run_id=run_id,
                num_rules=_opt(first, "num_rules", int),
                examples_per_rule=_opt(first, "examples_per_rule", float),
                budget=_opt(first, "budget", int),
                rule_distribution=_opt(first, "rule_distribution", str),
                alpha=_opt(first, "alpha", float),
                noop_frac=_opt(first, "noop_frac", float),
                family=_opt(first, "family", str),
                seed=_opt(first, "seed", int),
                accuracy=accuracy,
                ci=ci,
            )
        )
    return rows


def _opt(row: Any, key: str, cast: type) -> Any:
    value = row.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return cast(value)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _acc_cell(row: RunRow, split: str) -> str:
    if split not in row.accuracy:
        return "-"
    if split not in row.ci:
        return _pct(row.accuracy[split])
    low, high = row.ci[split]
    return f"{_pct(row.accuracy[split])} [{100 * low:.1f}, {100 * high:.1f}]"


# Program datasets' extra splits, as reproduce-table columns when some run has them.
PROGRAM_COLUMNS = {
    "test_unseen_strict": "strict",
    "test_ood_steps": "ood steps",
    "test_ood_length": "ood length",
}


def reproduce_table(rows: Sequence[RunRow]) -> str:
    """A fixed-width text table: per run I, S, α, no-op share, family, seen / unseen accuracy (95% CI),
    and the accuracy on each extra split of program runs."""
    extra = [s for s in PROGRAM_COLUMNS if any(s in r.accuracy for r in rows)]
    header = ["run", "I", "S", "alpha", "no-op share", "family", "seen acc [95% CI]", "unseen acc [95% CI]"]
    header += [f"{PROGRAM_COLUMNS[s]} acc [95% CI]" for s in extra]
    body = []
    for r in rows:
        alpha = "uniform" if r.rule_distribution == "uniform" else _num(r.alpha)
        body.append(
            [
                r.run_id,
                _num(r.num_rules),
                per_rule(r.examples_per_rule),
                alpha,
                "-" if r.noop_frac is None else f"{100 * r.noop_frac:g}%",
                r.family or "-",
                _acc_cell(r, "test_seen"),
                _acc_cell(r, "test_unseen"),
                *(_acc_cell(r, s) for s in extra),
            ]
        )
    return format_table(header, body)


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.4g}" if isinstance(x, float) else str(x)
