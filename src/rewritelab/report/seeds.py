"""The seed table: one row per condition and split with every seed's accuracy, their mean, the 95 %
interval across seeds (Student t) beside the runs' own bootstrap interval, the distinct-pattern count and
how many runs converged — what a reference table must show for a reader to judge its spread."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rewritelab.report.figures import cell_point
from rewritelab.report.runs import Run, aggregate, group, key_label, load_runs, varying

HEADER = ["condition", "split", "seeds", "per seed", "mean", "across seeds [95% t]",
          "bootstrap [95%, mean of runs]", "patterns / I (min)", "converged"]  # fmt: skip


def seed_rows(runs: Sequence[Run], scale_name: str) -> list[list[str]]:
    """Cells of the seed table, groups in condition order, splits alphabetically within a group."""
    conds = varying(runs)
    rows = []
    for key, members in group(runs, conds):
        members = sorted(members, key=lambda r: (r.seed is None, r.seed or 0))
        for split, have, points in _lines(members):
            mean, low, high = aggregate(points)
            rows.append(
                [
                    key_label(conds, key, scale_name),
                    split,
                    ", ".join("-" if r.seed is None else str(r.seed) for r in have),
                    " / ".join(_pct(p[0]) for p in points),
                    _pct(mean),
                    f"[{_pct(low)}, {_pct(high)}]" if len(points) >= 2 else "-",
                    _bootstrap(points),
                    _pattern_ratio(have),
                    _converged(have),
                ]
            )
    return rows


def _lines(runs: Sequence[Run]):
    """(split label, runs, accuracy points) per split; then per applied / no-op case of a split whose runs
    train with no-op examples (E2 separates them), per pattern count of a split whose inputs hold the
    pattern a varying number of times (E5's test inputs: the paper's Table 1 reads accuracy per count),
    per pattern length of a split whose rules vary in length, and per family and k of a split whose rules
    come from several families (E4 tests structures its families never train on). A case's interval is
    its bootstrap or Wilson one."""
    for split in sorted({s for r in runs for s in r.accuracy}):
        have = [r for r in runs if split in r.accuracy]
        yield split, have, [r.accuracy[split] for r in have]
        for case, name in (("false", "applied"), ("true", "no-op")):
            cells = _cells(have, split, "noop", case)
            if cells and any(r.cond["noop_frac"] for r, _ in cells):
                yield f"{split} ({name})", [r for r, _ in cells], [cell_point(c) for _, c in cells]
        for factor, name, skip in _FACTORS:
            values = {k for r in have for k in r.breakdown.get(split, {}).get(factor) or {}} - skip
            if len(values) > 1:
                for value in sorted(values, key=_value_order):
                    cells = _cells(have, split, factor, value)
                    yield f"{split} ({name(value)})", [r for r, _ in cells], [cell_point(c) for _, c in cells]


def _copies(count: str) -> str:
    return "1 copy" if count == "1" else f"{count} copies"


def _family(name: str) -> str:
    return "unconstrained rules" if name == "random" else f"{name} rules"


def _value_order(value: str) -> tuple[bool, int, str]:
    """Counts and lengths in numeric order, family names alphabetically after them."""
    return (not value.isdigit(), int(value) if value.isdigit() else 0, value)


# (breakdown factor, line label, values left out): zero copies are the no-op examples, read on their own line.
# E4 tests unconstrained (k = 1) and k = 2 rules of each family in one split: a line per family, and per k.
_FACTORS = (
    ("occurrences", _copies, {"0"}),
    ("pattern_len", "pattern length {}".format, set()),
    ("family", _family, set()),
    ("k", "k = {}".format, {"0"}),
)


def _cells(runs: Sequence[Run], split: str, factor: str, value: str) -> list[tuple[Run, dict]]:
    """(run, breakdown cell) for the runs whose `split` scored examples with `factor` = `value`."""
    cells = [(r, (r.breakdown.get(split, {}).get(factor) or {}).get(value)) for r in runs]
    return [(r, c) for r, c in cells if c and c.get("n")]


def seed_table(source, supersede=()) -> str:
    """A results database, sweep directory or results CSV (with the runs each `supersede` source re-ran
    replaced by its own) → the seed table as markdown."""
    from rewritelab.store import load_results

    runs, scale_name = load_runs(load_results(source, supersede))
    body = seed_rows(runs, scale_name)
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def seed_cells(source, supersede=()) -> dict[str, dict[str, list[str]]]:
    """The seed table of a results source (and the sources that re-ran some of its conditions) keyed for
    a hand-made table (docs/results/*_tables.py): condition → split → that row's cells (`HEADER`'s
    columns), and under the key `"steps"` the condition's training steps (one value per condition under a
    convergence rule that re-trains whole conditions longer)."""
    from rewritelab.store import load_results

    runs, scale_name = load_runs(load_results(source, supersede))
    rows: dict[str, dict[str, list[str]]] = {}
    for cells in seed_rows(runs, scale_name):
        rows.setdefault(cells[0], {})[cells[1]] = cells
    conds = varying(runs)
    for key, members in group(runs, conds):
        steps = sorted({r.steps for r in members if r.steps is not None})
        rows[key_label(conds, key, scale_name)]["steps"] = [f"{s:,}" for s in steps]
    return rows


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _bootstrap(points: Sequence[tuple[float, float | None, float | None]]) -> str:
    """The runs' own 95 % intervals averaged bound by bound: the spread one run's test sample allows."""
    bounds = [(low, high) for _, low, high in points if low is not None and high is not None]
    if not bounds:
        return "-"
    low = sum(b[0] for b in bounds) / len(bounds)
    high = sum(b[1] for b in bounds) / len(bounds)
    return f"[{_pct(low)}, {_pct(high)}]"


def _pattern_ratio(runs: Sequence[Run]) -> str:
    """The smallest distinct-pattern count over the seeds, as a count and a share of I."""
    known = [(r.patterns, r.cond["num_rules"]) for r in runs if r.patterns is not None]
    if not known:
        return "-"
    patterns, rules = min(known, key=lambda pr: pr[0] / pr[1] if pr[1] else math.inf)
    return f"{patterns} ({patterns / rules:.3f})" if rules else str(patterns)


def _converged(runs: Sequence[Run]) -> str:
    judged = [r.converged for r in runs if r.converged is not None]
    return f"{sum(judged)} of {len(judged)}" if judged else "-"
