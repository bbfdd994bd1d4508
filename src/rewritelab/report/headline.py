"""The headline of a report, also printed by `rewritelab reproduce`: the measured contrast in one sentence
with its 95 % interval, and the cautions a reader needs before trusting it — intervals that overlap, a
condition that beats both ends of the contrast, runs that did not converge.

The statistics are the seed table's (`aggregate`): the interval across seeds (Student t) where a
condition has several seeds, else the run's own bootstrap interval over its test examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewritelab.report.runs import (
    NUMERIC,
    Context,
    Run,
    aggregate,
    group,
    key_label,
    label,
    load_runs,
    varying,
)

MAX_GROUPS = 6  # contrast sentences at most; the seed table and the figures hold the rest
ORDERED = (*NUMERIC, "k")  # conditions whose values have an order: "rises from … to …"


def headline(ctx: Context) -> list[str]:
    """Sentences: the contrast along the first varying condition (I when it varies), one per combination
    of the other varying conditions, then the cautions that apply."""
    split = "test_unseen" if any("test_unseen" in r.accuracy for r in ctx.runs) else _first_split(ctx.runs)
    if split is None:
        return []
    runs = [r for r in ctx.runs if split in r.accuracy]
    what = "program" if ctx.symbol == "P" else "rule"
    subject = f"Unseen-{what} accuracy" if split == "test_unseen" else f"Accuracy on {split}"
    if not ctx.varying:
        mean, low, high = aggregate([r.accuracy[split] for r in runs])
        sentences = [f"{subject} is {_interval(mean, low, high)}."]
    else:
        primary, others = ctx.varying[0], ctx.varying[1:]
        groups = group(runs, others)
        sentences = []
        for key, members in groups[:MAX_GROUPS]:
            where = f" ({key_label(others, key, ctx.scale_name, ctx.symbol)})" if others else ""
            sentences += _contrast(subject, primary, members, split, where, ctx)
        if len(groups) > MAX_GROUPS:
            sentences.append(f"({len(groups) - MAX_GROUPS} more combinations: see the figures and tables.)")
    return sentences + [_interval_note(runs, ctx.varying)] + _convergence_notes(ctx.runs)


def _first_split(runs: Sequence[Run]) -> str | None:
    splits = sorted({s for r in runs for s in r.accuracy})
    return splits[0] if splits else None


def _contrast(subject: str, cond: str, runs: list[Run], split: str, where: str, ctx: Context) -> list[str]:
    points = [
        (key[0], aggregate([r.accuracy[split] for r in members])) for key, members in group(runs, [cond])
    ]
    if len(points) < 2:
        return []

    def name(value: Any) -> str:
        return label(cond, value, ctx.scale_name, ctx.symbol)

    if cond in ORDERED:
        (first, a), (last, b) = points[0], points[-1]
        shown = round(100 * a[0], 1), round(100 * b[0], 1)
        verb = "rises from" if shown[0] < shown[1] else "falls from" if shown[0] > shown[1] else "is"
        link = "and" if verb == "is" else "to"
        ends = f"{_interval(*a)} at {name(first)} {link} {_interval(*b)} at {name(last)}"
        out = [f"{subject}{where} {verb} {ends}{_same_scale(cond, runs, ctx)}."]
        best_value, best = max(points[1:-1], key=lambda p: p[1][0], default=(None, None))
        if best is not None and best[0] > max(a[0], b[0]):
            top = a if a[0] > b[0] else b
            within = ", within the interval of the better end" if best[1] <= top[2] else ""
            out.append(f"It is highest in between, at {name(best_value)}: {_interval(*best)}{within}.")
    else:
        ranked = sorted(points, key=lambda p: -p[1][0])  # stable: ties keep the conditions' order
        (first, a), (last, b) = ranked[0], ranked[-1]
        out = [f"{subject}{where} is highest with {name(first)}: {_interval(*a)}, "
               f"and lowest with {name(last)}: {_interval(*b)}."]  # fmt: skip
    if a[1] <= b[2] and b[1] <= a[2]:
        out.append(
            f"The intervals at {name(first)} and {name(last)} overlap: this sweep does not tell them apart "
            "(more seeds or larger test sets would)."
        )
    return out


def _same_scale(cond: str, runs: Sequence[Run], ctx: Context) -> str:
    """What stays fixed while I changes: the budget (S = budget / I) or S itself."""
    scales = {r.cond["scale"] for r in runs}
    if cond != "num_rules" or len(scales) != 1 or None in scales:
        return ""
    scale = scales.pop()
    if ctx.scale_name == "budget":
        return f", at the same budget of {scale:g} training examples"
    return f", with S = {scale:g} examples per {'program' if ctx.symbol == 'P' else 'rule'}"


def headline_of(source: Any) -> list[str]:
    """The headline of a results database, sweep directory or results CSV (`rewritelab reproduce`)."""
    from rewritelab.store import load_results

    runs, scale_name = load_runs(load_results(source))
    return headline(Context(runs, varying(runs), scale_name, {}))


def _interval(mean: float, low: float, high: float) -> str:
    return f"{100 * mean:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def _interval_note(runs: Sequence[Run], conds: Sequence[str]) -> str:
    sizes = {len(members) for _, members in group(runs, conds)}
    if min(sizes) >= 2:
        seeds = f"{min(sizes)}" if len(sizes) == 1 else f"{min(sizes)}-{max(sizes)}"
        return f"Each value is the mean over {seeds} seeds; brackets: 95% intervals across seeds (Student t)."
    if max(sizes) == 1:
        return (
            "One seed per condition: brackets are the run's 95% bootstrap interval over its test examples, "
            "which leaves out the spread between seeds."
        )
    return (
        "Brackets are 95% intervals across seeds (Student t) where a condition has several, else the run's "
        "bootstrap interval over its test examples."
    )


def _convergence_notes(runs: Sequence[Run]) -> list[str]:
    judged = [r for r in runs if r.converged is not None]
    failed = [r for r in judged if not r.converged]
    notes = []
    if failed:
        notes.append(
            f"Caution: {len(failed)} of {len(runs)} runs did not converge (see Convergence): their accuracy "
            "may still change with more training steps."
        )
    if len(judged) < len(runs):
        notes.append(f"Convergence was not judged for {len(runs) - len(judged)} of {len(runs)} runs.")
    return notes
