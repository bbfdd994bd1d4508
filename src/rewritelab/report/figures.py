"""The figures of a report, one function per experiment; each returns (figure, caption) or None.

Everything is deterministic: fixed sizes and DPI, a fixed SVG hash salt, no dates, sorted inputs, so
the same results give the same bytes. Figures are drawn on `matplotlib.figure.Figure` (Agg for PNG)
without pyplot, so building a report never changes the caller's matplotlib backend or state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any

from rewritelab.layout import EVAL_SPLITS
from rewritelab.report.runs import (
    Context,
    Run,
    aggregate,
    group,
    key_label,
    label,
    split_points,
    wilson,
)
from rewritelab.report.style import line_colours
from rewritelab.report.tables import occurrence_tables

SPLITS = tuple(reversed(EVAL_SPLITS))  # unseen first: the claim
SPLIT_TITLES = {
    "test_unseen": "unseen rules (test_unseen)",
    "test_seen": "seen rules (test_seen)",
    "test_unseen_strict": "unseen patterns (test_unseen_strict)",
    "test_ood_steps": "longer executions (test_ood_steps)",
    "test_ood_length": "longer inputs (test_ood_length)",
}
# The splits of the accuracy-vs-number-of-instructions figure, when some run has them.
RULES_PANELS = ("test_unseen", "test_unseen_strict", "test_seen")


# ---------------------------------------------------------------------------------------------------------
# Drawing helpers


def panel_grid(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def rules_axis(ax, runs: Sequence[Run], symbol: str = "I") -> None:
    """A log x axis for I (or P), ticked at the sweep's values when there are few (log ticks would read
    4×10⁰)."""
    values = sorted({r.cond["num_rules"] for r in runs if r.cond["num_rules"]})
    ax.set_xscale("log")
    if len(values) <= 10:
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.minorticks_off()
    ax.set_xlabel("number of training programs P" if symbol == "P" else "number of training rules I")


def split_title(split: str, symbol: str) -> str:
    """A panel title; with programs (symbol P), "rules" reads "programs"."""
    title = SPLIT_TITLES[split]
    return title.replace("rules", "programs") if symbol == "P" else title


def accuracy_axis(ax, title: str, axis: str = "y") -> None:
    """Accuracy from 0 to 100 % (values stay fractions; only the ticks read as percent)."""
    from matplotlib.ticker import PercentFormatter

    (ax.set_ylim if axis == "y" else ax.set_xlim)(-0.03 if axis == "y" else 0.0, 1.03)
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(PercentFormatter(1.0))
    (ax.set_ylabel if axis == "y" else ax.set_xlabel)("accuracy")
    ax.set_title(title)


def new_figure(width: float, height: float):
    """A matplotlib figure outside pyplot's global state (nothing to close, safe in threads)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


# ---------------------------------------------------------------------------------------------------------
# Figures: each returns (figure, caption) or None when it does not apply


def figure_rules(ctx: Context):
    """E1: accuracy vs I or P (log), one line per value of the other varying conditions, unseen beside
    seen (and programs built from unseen patterns, when the runs have them)."""
    if "num_rules" not in ctx.varying:
        return None
    lines = [c for c in ctx.varying if c != "num_rules"]
    groups = group(ctx.runs, lines)
    colours = line_colours(lines, len(groups))
    panels = [s for s in RULES_PANELS if any(s in r.accuracy for r in ctx.runs)] or list(SPLITS)
    fig = new_figure(5.5 * len(panels), 4.2)
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False).ravel()
    what = "programs P" if ctx.symbol == "P" else "rules I"
    for ax, split in zip(axes, panels, strict=True):
        for (key, members), colour in zip(groups, colours, strict=True):
            name = key_label(lines, key, ctx.scale_name, ctx.symbol)
            _plot_mean_line(ax, members, "num_rules", split, colour, name)
        rules_axis(ax, ctx.runs, ctx.symbol)
        accuracy_axis(ax, split_title(split, ctx.symbol))
    if lines:
        axes[0].legend(loc="upper left")
    fig.suptitle(f"Accuracy vs number of training {what.split()[0]}")
    caption = (
        f"Exact-match accuracy (of the final string) against the number of distinct training {what} "
        f"(log scale). {band_note(ctx.runs)}"
    )
    return fig, caption


def _plot_mean_line(ax, runs: list[Run], x_cond: str, split: str, colour, name: str) -> None:
    xs, means, lows, highs = [], [], [], []
    for (x,), members in group(runs, [x_cond]):
        points = split_points(members, split)
        if x is None or not points:
            continue
        mean, low, high = aggregate(points)
        xs.append(x)
        means.append(mean)
        lows.append(low)
        highs.append(high)
    if not xs:
        return
    ax.plot(xs, means, marker="o", markersize=4, color=colour, label=name)
    ax.fill_between(xs, lows, highs, color=colour, alpha=0.18, linewidth=0)


def band_note(runs: Sequence[Run]) -> str:
    """The caption sentence saying what a figure's bands are (across seeds, or one run's bootstrap)."""
    seeds = {r.seed for r in runs}
    if len(seeds) >= 2:
        return f"Mean over {len(seeds)} seeds; bands are 95% confidence intervals across seeds (Student t)."
    return "One seed; bands are the run's 95% bootstrap confidence interval."


def figure_alpha(ctx: Context):
    """E3: accuracy vs α (log; smaller = more skewed), uniform as its own marker at the right."""
    if "dist" not in ctx.varying:
        return None
    lines = [c for c in ctx.varying if c != "dist"]
    groups = group(ctx.runs, lines)
    colours = line_colours(lines, len(groups))
    alphas = sorted({r.cond["alpha"] for r in ctx.runs if r.cond["alpha"] is not None})
    uniform_x = (alphas[-1] if alphas else 1.0) * 3
    fig = new_figure(11, 4.2)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, split in zip(axes, SPLITS, strict=True):
        for (key, members), colour in zip(groups, colours, strict=True):
            name = key_label(lines, key, ctx.scale_name)
            powerlaw = [r for r in members if r.cond["alpha"] is not None]
            _plot_mean_line(ax, powerlaw, "alpha", split, colour, name)
            uniform = split_points([r for r in members if r.cond["dist"] == "uniform"], split)
            if uniform:
                mean, low, high = aggregate(uniform)
                ax.errorbar([uniform_x], [mean], yerr=[[mean - low], [high - mean]], marker="s", color=colour,
                            markersize=6, capsize=3, label=None if powerlaw else name)  # fmt: skip
        ax.set_xscale("log")
        ticks = [*alphas, uniform_x]
        ax.set_xticks(ticks, [f"{a:g}" for a in alphas] + ["uniform"])
        ax.minorticks_off()
        if alphas:
            ax.axvline((alphas[-1] * uniform_x) ** 0.5, color="0.4", linestyle=":", linewidth=1)
        ax.set_xlabel("power-law α (smaller = more skewed rule frequencies)")
        accuracy_axis(ax, SPLIT_TITLES[split])
    if lines:
        axes[0].legend(loc="lower right")
    fig.suptitle("Robustness to skewed rule frequencies")
    caption = (
        "Accuracy against the power-law shape α of the per-rule example counts; squares on the right are "
        f"uniform counts. {band_note(ctx.runs)}"
    )
    return fig, caption


def figure_noop(ctx: Context):
    """E2: unseen-rule accuracy on no-op vs applied examples vs I, one panel per training no-op share."""
    if not any(unseen_cell(r, "noop", "true") for r in ctx.runs):
        return None
    shares = group(ctx.runs, ["noop_frac"])
    lines = [c for c in ctx.varying if c not in ("noop_frac", "num_rules")]
    rows, cols = panel_grid(len(shares))
    fig = new_figure(4.2 * cols + 0.6, 3.6 * rows)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True).ravel()
    for ax, ((share,), members) in zip(axes, shares, strict=False):
        groups = group(members, lines)
        colours = line_colours(lines, len(groups))
        for (key, line_runs), colour in zip(groups, colours, strict=True):
            prefix = key_label(lines, key, ctx.scale_name) + ": " if lines else ""
            for case, style in (("false", "-"), ("true", "--")):
                name = prefix + ("no-op inputs" if case == "true" else "applied (pattern present)")
                cells = partial(unseen_cell, factor="noop", value=case)
                plot_cell_line(ax, line_runs, cells, colour, style, name)
        rules_axis(ax, ctx.runs)
        accuracy_axis(ax, f"training {label('noop_frac', share)}")
        ax.legend(loc="lower right")
    for ax in axes[len(shares) :]:
        ax.set_visible(False)
    fig.suptitle("No-op vs applied examples (unseen rules)")
    caption = (
        "Unseen-rule accuracy split by whether the input contains the pattern (applied, solid) or not "
        "(no-op: the answer is the input, dashed), one panel per share of no-op training examples. "
        "Bands: 95% CI across seeds, or a single run's CI for the cell."
    )
    return fig, caption


def unseen_cell(run: Run, factor: str, value: str) -> dict[str, Any] | None:
    """One cell of a run's unseen-split breakdown (`noop` → `true`, `family` → `random`, …), None where
    the run has no examples there."""
    cell = run.breakdown.get("test_unseen", {}).get(factor, {}).get(value)
    return cell if isinstance(cell, dict) and cell.get("n") else None


def cell_point(cell: dict[str, Any]) -> tuple[float, float, float]:
    """A breakdown cell → (accuracy, low, high): its own bootstrap CI, else the Wilson interval."""
    accuracy = float(cell["accuracy"])
    ci = cell.get("ci95")
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        return accuracy, float(ci[0]), float(ci[1])
    return (accuracy, *wilson(accuracy, int(cell["n"])))


def plot_cell_line(ax, runs: list[Run], cell_of, colour, style: str, name: str, dots: bool = False) -> None:
    """A line of one breakdown cell (`cell_of(run)`, None where a run lacks it) against I: the mean over
    seeds with its band, and each seed as a dot when `dots`."""
    xs, means, lows, highs, seeds = [], [], [], [], []
    for (x,), members in group(runs, ["num_rules"]):
        cells = [c for c in (cell_of(r) for r in members) if c is not None]
        if x is None or not cells:
            continue
        mean, low, high = aggregate([cell_point(c) for c in cells])
        xs.append(x)
        means.append(mean)
        lows.append(low)
        highs.append(high)
        seeds += [(x, float(c["accuracy"])) for c in cells]
    if not xs:
        return
    ax.plot(xs, means, marker="o", markersize=4, color=colour, linestyle=style, label=name)
    ax.fill_between(xs, lows, highs, color=colour, alpha=0.12, linewidth=0)
    if dots:
        ax.scatter([d[0] for d in seeds], [d[1] for d in seeds], s=9, color=colour, alpha=0.6, linewidths=0)


def figure_occurrences(ctx: Context):
    """E5 as a heatmap: rows = training occurrences, columns = I, cells = mean unseen accuracy."""
    tables = occurrence_tables(ctx)
    if not tables:
        return None
    import numpy as np

    rows, cols = panel_grid(len(tables), 2)
    n_rows = max(len(t[1]) for t in tables)
    n_cols = max(len(t[2]) for t in tables)
    fig = new_figure((0.9 * n_cols + 2.8) * cols + 0.8, (0.5 * n_rows + 1.6) * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    image = None
    for ax, (title, row_keys, col_keys, values) in zip(axes, tables, strict=False):
        grid = np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)
        image = ax.imshow(grid, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        for (i, j), v in np.ndenumerate(grid):
            if not np.isnan(v):
                ax.text(j, i, f"{100 * v:.0f}%", ha="center", va="center", fontsize=8,
                        color="white" if v < 0.6 else "black")  # fmt: skip
        ax.set_xticks(range(len(col_keys)), [f"{c:g}" for c in col_keys])
        ax.set_yticks(range(len(row_keys)), [str(r) for r in row_keys])
        ax.set_xlabel("number of training rules I")
        ax.set_ylabel("pattern occurrences per training input")
        ax.grid(False)
        ax.set_title(title if len(tables) > 1 else "unseen-rule accuracy")
    for ax in axes[len(tables) :]:
        ax.set_visible(False)
    from matplotlib.ticker import PercentFormatter

    fig.colorbar(image, ax=list(axes[: len(tables)]), shrink=0.9, label="unseen-rule accuracy",
                 format=PercentFormatter(1.0))  # fmt: skip
    fig.suptitle("Input diversity: occurrences of the pattern in training inputs")
    caption = (
        "Mean unseen-rule accuracy (over seeds) for each count of pattern occurrences in the training "
        "inputs (a list = a mixture) and each number of training rules I."
    )
    return fig, caption
