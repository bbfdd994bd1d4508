"""What a sweep varies, read from the runs' resolved configs, and the figure of accuracy against each
varied factor that no experiment figure draws (a learning rate, a model size, a researcher's own knob).

`varied_factors` is the one place that decides what varies: any config field whose value differs between
runs counts, with no list of known names, so a grid over a field added tomorrow gets its figure too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from rewritelab.report.figures import (
    RULES_PANELS,
    accuracy_axis,
    band_note,
    new_figure,
    split_title,
)
from rewritelab.report.runs import Context, Run, aggregate, condition_splitting, split_points
from rewritelab.report.style import palette
from rewritelab.store import factors as config_factors

SEEDS = ("data.seed", "train.seed")  # the seed is the replicate, not a factor
EXECUTION = ("train.device", "train.threads", "train.progress")  # how a run executed, not what it computed
# Factors an experiment figure already plots against: I (E1), the no-op share (E2), the rule frequencies
# (E3), the family, k and answer format (E4, programs) and the occurrences (E5).
DRAWN = ("data.num_rules", "data.noop_frac", "data.alpha", "data.rule_distribution", "data.family",
         "data.occurrences")  # fmt: skip
SHORT = {"data.num_rules": "I", "data.examples_per_rule": "S"}


def varied_factors(runs: Sequence[Run]) -> list[str]:
    """The config paths whose value differs between runs (seeds and execution settings aside), in the
    order of the config."""
    paths = list(dict.fromkeys(p for r in runs for p in r.config))
    return [p for p in paths if p not in SEEDS + EXECUTION and len({r.config.get(p) for r in runs}) > 1]


def value(run: Run, path: str) -> Any:
    """A run's value of a config path (parsed back from the flattened JSON text; None when absent)."""
    text = run.config.get(path)
    return None if text is None else json.loads(text)


def show(x: Any) -> str:
    """A config value as a person reads it: text unquoted, numbers as written, lists in brackets."""
    if isinstance(x, str):
        return x
    if isinstance(x, float):
        return f"{x:g}"
    return json.dumps(x)


def factor_label(path: str, x: Any) -> str:
    """`I = 100`, `weight_decay = 0.1`: the field's short name and the value."""
    return f"{SHORT.get(path, path.rsplit('.', 1)[-1])} = {show(x)}"


def _drawn(path: str) -> bool:
    return any(path == d or path.startswith(d + ".") for d in DRAWN)


def _together(runs: Sequence[Run], factors: list[str]) -> list[list[str]]:
    """Factors that advance together (a zip axis: each determines the other) share one row."""
    rows: list[list[str]] = []
    for path in factors:
        key = [r.config.get(path) for r in runs]
        for row in rows:
            other = [r.config.get(row[0]) for r in runs]
            if len(set(zip(key, other, strict=True))) == len(set(key)) == len(set(other)):
                row.append(path)
                break
        else:
            rows.append([path])
    return rows


def figure_factors(ctx: Context):
    """Accuracy against each varied factor that no experiment figure draws, one row per factor (factors
    that advance together share one), unseen beside seen; one line per combination of the other varied
    factors. Numbers spanning a decade or more lie on a log axis, anything else at even steps."""
    # a setting fixed per condition (a training length a convergence rule chose) gets no figure, as no line
    per_condition = set(config_factors(r.config for r in ctx.runs)) - set(condition_splitting(ctx.runs))
    factors = [f for f in varied_factors(ctx.runs) if f not in per_condition]
    rows = _together(ctx.runs, [f for f in factors if not _drawn(f)])
    if not rows:
        return None
    panels = [s for s in RULES_PANELS if any(s in r.accuracy for r in ctx.runs)]
    fig = new_figure(5.5 * len(panels), 3.9 * len(rows))
    axes = fig.subplots(len(rows), len(panels), sharey=True, squeeze=False)
    for row_axes, row in zip(axes, rows, strict=True):
        others = [f for f in factors if f not in row]
        lines: dict[tuple[str, ...], list[Run]] = {}
        for run in ctx.runs:
            lines.setdefault(tuple(run.config.get(o, "null") for o in others), []).append(run)
        keys = sorted(lines, key=lambda k: [sort_key(json.loads(v)) for v in k])
        numeric = len(others) == 1 and all(_number(json.loads(k[0])) for k in keys)
        colours = palette(len(keys), sequential=numeric)
        xs = sorted({json.dumps(value(r, row[0])): value(r, row[0]) for r in ctx.runs}.values(), key=sort_key)
        log = _log_axis(xs)
        for ax, split in zip(row_axes, panels, strict=True):
            for key, colour in zip(keys, colours, strict=True):
                name = ", ".join(factor_label(o, json.loads(v)) for o, v in zip(others, key, strict=True))
                _plot(ax, lines[key], row[0], xs, log, split, colour, name or None)
            positions = xs if log else list(range(len(xs)))
            if log:
                ax.set_xscale("log")
                ax.minorticks_off()
            ax.set_xticks(positions, [show(x) for x in xs])
            also = f" (with {', '.join(row[1:])})" if row[1:] else ""
            ax.set_xlabel(row[0] + also)
            accuracy_axis(ax, split_title(split, ctx.symbol))
        if others and len(keys) <= 12:
            row_axes[0].legend(loc="best")
    fig.suptitle("Accuracy vs " + ", ".join(row[0] for row in rows))
    caption = (
        "Exact-match accuracy against each setting that differs between the runs (read from their resolved "
        f"configs) and that no figure above plots: {', '.join(p for row in rows for p in row)}. "
        f"{band_note(ctx.runs)}"
    )
    return fig, caption


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def sort_key(x: Any) -> tuple[Any, ...]:
    """Numbers by value, then anything else by its text."""
    return (0, x, "") if _number(x) else (1, 0, show(x))


def _log_axis(xs: list[Any]) -> bool:
    numeric = [x for x in xs if _number(x)]
    return len(numeric) == len(xs) >= 2 and min(numeric) > 0 and max(numeric) / min(numeric) >= 10


def _plot(ax, runs: list[Run], path: str, xs: list[Any], log: bool, split: str, colour, name) -> None:
    """One line: the seed mean (95 % band) at each value of `path` these runs have."""
    px, means, lows, highs = [], [], [], []
    for i, x in enumerate(xs):
        points = split_points([r for r in runs if value(r, path) == x], split)
        if not points:
            continue
        mean, low, high = aggregate(points)
        px.append(x if log else i)
        means.append(mean)
        lows.append(low)
        highs.append(high)
    if not px:
        return
    ax.plot(px, means, marker="o", markersize=4, color=colour, label=name)
    if not all(math.isclose(lo, hi) for lo, hi in zip(lows, highs, strict=True)):
        ax.fill_between(px, lows, highs, color=colour, alpha=0.15, linewidth=0)
