"""The report of a sweep: the paper's figures (PNG + SVG) and one self-contained `report.html`.

Which figures are drawn follows from what varies across the runs, so one function serves every preset:
the number of rules I (E1), the rule-frequency shape α (E3), the no-op share (E2, from the no-op
breakdown), the training family (E4), the occurrence counts (E5), plus learning curves when the run
directories are at hand. Seeds are averaged; bands and error bars are the 95 % CI across seeds (Student
t) when there are several, else the run's own bootstrap CI.

Everything is deterministic: fixed sizes and DPI, a fixed SVG hash salt, no dates, sorted inputs, so
the same results give the same bytes. Figures are drawn on `matplotlib.figure.Figure` (Agg for PNG)
without pyplot, so building a report never changes the caller's matplotlib backend or state.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewritelab.errors import UserError
from rewritelab.io import atomic_dir
from rewritelab.store import DB_NAME, TABLE_HEADER, load_results, table_rows

SPLITS = ("test_unseen", "test_seen")
SPLIT_TITLES = {"test_unseen": "unseen rules (test_unseen)", "test_seen": "seen rules (test_seen)"}
DPI = 100
RC = {
    "svg.hashsalt": "rewritelab",
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8,
    "legend.frameon": False,
}
# Two-sided 97.5 % Student t quantiles for 1..30 degrees of freedom (CIs across a few seeds).
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042)  # fmt: skip
Z975 = 1.959964
# Config paths already covered by a condition (or by the seed); any other path that differs between runs
# (a learning rate, a model size, a test family) becomes the `variant` condition.
COVERED = ("data.num_rules", "data.examples_per_rule", "data.budget", "data.alpha", "data.rule_distribution",
           "data.noop_frac", "data.family", "data.occurrences", "data.seed", "train.seed")  # fmt: skip


# ---------------------------------------------------------------------------------------------------------
# Runs and conditions


@dataclass
class Run:
    """One run: the conditions that define it (without the seed), its accuracy per split, breakdowns."""

    run_id: str
    seed: int | None
    cond: dict[str, Any]
    accuracy: dict[str, tuple[float, float | None, float | None]] = field(default_factory=dict)
    breakdown: dict[str, dict[str, Any]] = field(default_factory=dict)


# Conditions a sweep can vary, in legend order; `scale` is S or the budget (see `_scale_column`).
CONDITIONS = ("num_rules", "scale", "dist", "noop_frac", "family", "occurrences", "variant")
NUMERIC = {"num_rules", "scale", "noop_frac", "alpha"}


def load_runs(frame) -> tuple[list[Run], str]:
    """Results rows → one `Run` per run id, and the name of the scale condition (`S` or `budget`)."""
    scale = _scale_column(frame)
    runs: dict[str, Run] = {}
    configs: dict[str, dict[str, Any]] = {}
    for row in frame.to_dict("records"):
        run = runs.get(row["run_id"])
        if run is None:
            run = runs[row["run_id"]] = Run(row["run_id"], _value(row["seed"]), _conditions(row, scale))
            configs[run.run_id] = _flatten(_json(row["config_json"]))
        low, high = _value(row["ci_low"]), _value(row["ci_high"])
        run.accuracy[row["split"]] = (float(row["accuracy"]), low, high)
        run.breakdown[row["split"]] = _json(row["breakdown_json"])
    _set_variants(list(runs.values()), configs)
    return list(runs.values()), "S" if scale == "examples_per_rule" else "budget"


def _scale_column(frame) -> str:
    """S or the budget, whichever takes fewer values: a fixed-budget sweep has S = budget / I varying
    with I, so its curves are labelled by the budget; a sweep over S at each I is labelled by S."""
    distinct = {c: frame[c].nunique(dropna=False) for c in ("examples_per_rule", "budget")}
    return "budget" if distinct["budget"] < distinct["examples_per_rule"] else "examples_per_rule"


def _conditions(row: dict[str, Any], scale: str) -> dict[str, Any]:
    distribution = _value(row["rule_distribution"]) or "uniform"
    alpha = _value(row["alpha"])
    return {
        "num_rules": _value(row["num_rules"]),
        "scale": _value(row[scale]),
        "dist": f"α = {alpha:g}" if distribution == "powerlaw" and alpha is not None else distribution,
        "alpha": alpha if distribution == "powerlaw" else None,
        "noop_frac": _value(row["noop_frac"]),
        "family": _value(row["family"]),
        "occurrences": _value(row["occurrences"]),
        "variant": None,
    }


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config → {"train.lr": "0.001", ...} (leaves as JSON text, comparable and printable)."""
    out: dict[str, str] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{path}."))
        else:
            out[path] = json.dumps(value, sort_keys=True)
    return out


def _covered(path: str) -> bool:
    return any(path == c or path.startswith(c + ".") for c in COVERED)


def _set_variants(runs: list[Run], configs: dict[str, dict[str, str]]) -> None:
    """Label each run by the config values outside the known conditions that differ between runs, so
    runs of another learning rate or model size are never averaged together as if they were seeds."""
    paths = sorted({p for c in configs.values() for p in c if not _covered(p)})
    differing = [p for p in paths if len({c.get(p) for c in configs.values()}) > 1]
    if not differing:
        return
    for run in runs:
        config = configs[run.run_id]
        run.cond["variant"] = ", ".join(f"{p}={config.get(p, '-')}" for p in differing)


def _value(x: Any) -> Any:
    """NaN → None, numpy scalars → Python numbers (integral floats become ints)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    if hasattr(x, "item"):
        x = x.item()
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return int(x)
    return x


def _json(text: Any) -> dict[str, Any]:
    if not isinstance(text, str):
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def varying(runs: Sequence[Run]) -> list[str]:
    """The conditions that take more than one value across the runs."""
    return [c for c in CONDITIONS if len({r.cond[c] for r in runs}) > 1]


def label(cond: str, value: Any, scale_name: str = "S") -> str:
    if value is None:
        return f"{cond} -"
    if cond == "num_rules":
        return f"I = {value:g}"
    if cond == "scale":
        return f"{scale_name} = {value:g}"
    if cond == "noop_frac":
        return f"no-op {100 * value:g}%"
    if cond == "occurrences":
        return f"occurrences {value}"
    return str(value)


def order(cond: str, value: Any) -> tuple[Any, ...]:
    """Sort key within a condition: numbers numerically, uniform after every α, mixtures last."""
    if value is None:
        return (2,)
    if cond in NUMERIC:
        return (0, float(value))
    if cond == "dist":  # "α = 0.5" by α, then "uniform" (or another named distribution)
        return (0, float(value.split("=")[-1]), "") if value.startswith("α") else (1, 0.0, str(value))
    if cond == "family":
        return (int(str(value).startswith("mixed")), str(value))
    if cond == "occurrences":
        counts = [int(c) if c.strip().isdigit() else 0 for c in str(value).split(" (")[0].split(",")]
        return (int(len(counts) > 1), counts, str(value))
    return (0, str(value))


def group(runs: Iterable[Run], conds: Sequence[str]) -> list[tuple[tuple[Any, ...], list[Run]]]:
    """Runs grouped by the values of `conds`, groups in `order`."""
    groups: dict[tuple[Any, ...], list[Run]] = {}
    for run in runs:
        groups.setdefault(tuple(run.cond[c] for c in conds), []).append(run)
    return sorted(groups.items(), key=lambda kv: [order(c, v) for c, v in zip(conds, kv[0], strict=True)])


# ---------------------------------------------------------------------------------------------------------
# Statistics


def t_quantile(df: int) -> float:
    """0.975 quantile of Student's t (table to 30 d.o.f., then the Cornish-Fisher expansion)."""
    if df <= len(T975):
        return T975[df - 1]
    z = Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def aggregate(points: Sequence[tuple[float, float | None, float | None]]) -> tuple[float, float, float]:
    """Mean over seeds with a 95 % band: Student t across seeds when ≥ 2, else the run's own CI."""
    values = [p[0] for p in points]
    mean = sum(values) / len(values)
    if len(values) >= 2:
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
        half = t_quantile(len(values) - 1) * sd / math.sqrt(len(values))
        return mean, max(0.0, mean - half), min(1.0, mean + half)
    _, low, high = points[0]
    return mean, mean if low is None else low, mean if high is None else high


def wilson(accuracy: float, n: int) -> tuple[float, float]:
    """95 % Wilson interval of a proportion (for breakdown cells recorded without a CI of their own)."""
    if n <= 0:
        return accuracy, accuracy
    z2 = Z975**2
    centre = (accuracy + z2 / (2 * n)) / (1 + z2 / n)
    half = Z975 * math.sqrt(accuracy * (1 - accuracy) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _split_points(runs: Iterable[Run], split: str) -> list[tuple[float, float | None, float | None]]:
    return [r.accuracy[split] for r in runs if split in r.accuracy]


# ---------------------------------------------------------------------------------------------------------
# Drawing helpers


def _colours(n: int, sequential: bool) -> list[Any]:
    from matplotlib import colormaps

    if sequential and n > 1:
        cmap = colormaps["viridis"]
        return [cmap(0.85 * i / (n - 1)) for i in range(n)]
    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def _line_colours(conds: Sequence[str], n: int) -> list[Any]:
    """One colour per line; a sequential map when the lines are the values of one numeric condition."""
    return _colours(n, sequential=len(conds) == 1 and conds[0] in NUMERIC)


def _key_label(conds: Sequence[str], key: tuple[Any, ...], scale_name: str) -> str:
    return ", ".join(label(c, v, scale_name) for c, v in zip(conds, key, strict=True)) or "all runs"


def _grid(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def _rules_axis(ax, runs: Sequence[Run]) -> None:
    """A log x axis for I, ticked at the sweep's values when there are few (log ticks would read 4×10⁰)."""
    values = sorted({r.cond["num_rules"] for r in runs if r.cond["num_rules"]})
    ax.set_xscale("log")
    if len(values) <= 10:
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.minorticks_off()
    ax.set_xlabel("number of training rules I")


def _accuracy_axis(ax, title: str) -> None:
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("accuracy")
    ax.set_title(title)


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


# ---------------------------------------------------------------------------------------------------------
# Figures: each returns (figure, caption) or None when it does not apply


@dataclass
class Context:
    runs: list[Run]
    varying: list[str]
    scale_name: str
    curves: dict[str, list[dict[str, Any]]]  # run id → eval lines of metrics.jsonl


def figure_rules(ctx: Context):
    """E1: accuracy vs I (log), one line per value of the other varying conditions, seen beside unseen."""
    if "num_rules" not in ctx.varying:
        return None
    lines = [c for c in ctx.varying if c != "num_rules"]
    groups = group(ctx.runs, lines)
    colours = _line_colours(lines, len(groups))
    fig = _new_figure(11, 4.2)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, split in zip(axes, SPLITS, strict=True):
        for (key, members), colour in zip(groups, colours, strict=True):
            _plot_mean_line(ax, members, "num_rules", split, colour, _key_label(lines, key, ctx.scale_name))
        _rules_axis(ax, ctx.runs)
        _accuracy_axis(ax, SPLIT_TITLES[split])
    if lines:
        axes[0].legend(loc="upper left")
    fig.suptitle("Accuracy vs number of training rules")
    caption = (
        "Exact-match accuracy against the number of distinct training rules I (log scale). "
        f"{_band_note(ctx.runs)}"
    )
    return fig, caption


def _plot_mean_line(ax, runs: list[Run], x_cond: str, split: str, colour, name: str) -> None:
    xs, means, lows, highs = [], [], [], []
    for (x,), members in group(runs, [x_cond]):
        points = _split_points(members, split)
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


def _band_note(runs: Sequence[Run]) -> str:
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
    colours = _line_colours(lines, len(groups))
    alphas = sorted({r.cond["alpha"] for r in ctx.runs if r.cond["alpha"] is not None})
    uniform_x = (alphas[-1] if alphas else 1.0) * 3
    fig = _new_figure(11, 4.2)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, split in zip(axes, SPLITS, strict=True):
        for (key, members), colour in zip(groups, colours, strict=True):
            name = _key_label(lines, key, ctx.scale_name)
            powerlaw = [r for r in members if r.cond["alpha"] is not None]
            _plot_mean_line(ax, powerlaw, "alpha", split, colour, name)
            uniform = _split_points([r for r in members if r.cond["dist"] == "uniform"], split)
            if uniform:
                mean, low, high = aggregate(uniform)
                ax.errorbar([uniform_x], [mean], yerr=[[mean - low], [high - mean]], marker="s", color=colour,
                            markersize=6, capsize=3, label=None if powerlaw else name)  # fmt: skip
        ax.set_xscale("log")
        ticks = [*alphas, uniform_x]
        ax.set_xticks(ticks, [f"{a:g}" for a in alphas] + ["uniform"])
        ax.minorticks_off()
        if alphas:
            ax.axvline((alphas[-1] * uniform_x) ** 0.5, color="0.6", linestyle=":", linewidth=1)
        ax.set_xlabel("power-law α (smaller = more skewed rule frequencies)")
        _accuracy_axis(ax, SPLIT_TITLES[split])
    if lines:
        axes[0].legend(loc="lower right")
    fig.suptitle("Robustness to skewed rule frequencies")
    caption = (
        "Accuracy against the power-law shape α of the per-rule example counts; squares on the right are "
        f"uniform counts. {_band_note(ctx.runs)}"
    )
    return fig, caption


def figure_noop(ctx: Context):
    """E2: unseen-rule accuracy on no-op vs applied examples vs I, one panel per training no-op share."""
    if not any(_noop_cell(r, "true") for r in ctx.runs):
        return None
    shares = group(ctx.runs, ["noop_frac"])
    lines = [c for c in ctx.varying if c not in ("noop_frac", "num_rules")]
    rows, cols = _grid(len(shares))
    fig = _new_figure(4.2 * cols + 0.6, 3.6 * rows)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True).ravel()
    for ax, ((share,), members) in zip(axes, shares, strict=False):
        groups = group(members, lines)
        colours = _line_colours(lines, len(groups))
        for (key, line_runs), colour in zip(groups, colours, strict=True):
            prefix = _key_label(lines, key, ctx.scale_name) + ": " if lines else ""
            for case, style in (("false", "-"), ("true", "--")):
                name = prefix + ("no-op inputs" if case == "true" else "applied (pattern present)")
                _plot_cell_line(ax, line_runs, case, colour, style, name)
        _rules_axis(ax, ctx.runs)
        _accuracy_axis(ax, f"training {label('noop_frac', share)}")
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


def _noop_cell(run: Run, case: str) -> dict[str, Any] | None:
    cell = run.breakdown.get("test_unseen", {}).get("noop", {}).get(case)
    return cell if isinstance(cell, dict) and cell.get("n") else None


def cell_point(cell: dict[str, Any]) -> tuple[float, float, float]:
    """A breakdown cell → (accuracy, low, high): its own bootstrap CI, else the Wilson interval."""
    accuracy = float(cell["accuracy"])
    ci = cell.get("ci95")
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        return accuracy, float(ci[0]), float(ci[1])
    return (accuracy, *wilson(accuracy, int(cell["n"])))


def _plot_cell_line(ax, runs: list[Run], case: str, colour, style: str, name: str) -> None:
    xs, means, lows, highs = [], [], [], []
    for (x,), members in group(runs, ["num_rules"]):
        cells = [c for c in (_noop_cell(r, case) for r in members) if c is not None]
        if x is None or not cells:
            continue
        mean, low, high = aggregate([cell_point(c) for c in cells])
        xs.append(x)
        means.append(mean)
        lows.append(low)
        highs.append(high)
    if not xs:
        return
    ax.plot(xs, means, marker="o", markersize=4, color=colour, linestyle=style, label=name)
    ax.fill_between(xs, lows, highs, color=colour, alpha=0.12, linewidth=0)


def figure_family(ctx: Context):
    """E4: accuracy per training family, seen and unseen bars, one panel per value of the others."""
    if "family" not in ctx.varying:
        return None
    facets = group(ctx.runs, [c for c in ctx.varying if c != "family"])
    facet_conds = [c for c in ctx.varying if c != "family"]
    families = [k[0] for k, _ in group(ctx.runs, ["family"])]
    rows, cols = _grid(len(facets), 3)
    fig = _new_figure(4.6 * cols + 2.2, (0.45 * len(families) + 1.4) * rows)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True).ravel()
    colours = {"test_seen": "#9ecae1", "test_unseen": "#08519c"}
    height = 0.38
    for ax, (key, members) in zip(axes, facets, strict=False):
        by_family = dict(group(members, ["family"]))
        for offset, split in ((-height / 2, "test_seen"), (height / 2, "test_unseen")):
            ys, means, errors = [], [], [[], []]
            for i, fam in enumerate(families):
                points = _split_points(by_family.get((fam,), []), split)
                if not points:
                    continue
                mean, low, high = aggregate(points)
                ys.append(i + offset)
                means.append(mean)
                errors[0].append(mean - low)
                errors[1].append(high - mean)
            ax.barh(ys, means, height=height, xerr=errors, color=colours[split], capsize=2,
                    label=SPLIT_TITLES[split])  # fmt: skip
        ax.set_yticks(range(len(families)), [str(f) for f in families])
        ax.invert_yaxis()
        ax.set_xlim(0, 1.03)
        ax.set_xlabel("accuracy")
        ax.set_title(_key_label(facet_conds, key, ctx.scale_name))
    for ax in axes[len(facets) :]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2)
    fig.suptitle("Accuracy per training rule family")
    caption = (
        "Exact-match accuracy of models trained on each family of rules, on seen rules (light) and unseen "
        f"rules (dark). {_band_note(ctx.runs)}"
    )
    return fig, caption


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
                points = _split_points(cells.get((occ, rules), []), "test_unseen")
                row.append(aggregate(points)[0] if points else None)
            values.append(row)
        tables.append((_key_label(facet_conds, key, ctx.scale_name), row_keys, col_keys, values))
    return tables


def figure_occurrences(ctx: Context):
    """E5 as a heatmap: rows = training occurrences, columns = I, cells = mean unseen accuracy."""
    tables = occurrence_tables(ctx)
    if not tables:
        return None
    import numpy as np

    rows, cols = _grid(len(tables), 2)
    n_rows = max(len(t[1]) for t in tables)
    n_cols = max(len(t[2]) for t in tables)
    fig = _new_figure((0.9 * n_cols + 2.8) * cols + 0.8, (0.5 * n_rows + 1.6) * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    image = None
    for ax, (title, row_keys, col_keys, values) in zip(axes, tables, strict=False):
        grid = np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)
        image = ax.imshow(grid, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        for (i, j), v in np.ndenumerate(grid):
            if not np.isnan(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if v < 0.6 else "black")  # fmt: skip
        ax.set_xticks(range(len(col_keys)), [f"{c:g}" for c in col_keys])
        ax.set_yticks(range(len(row_keys)), [str(r) for r in row_keys])
        ax.set_xlabel("number of training rules I")
        ax.set_ylabel("pattern occurrences per training input")
        ax.grid(False)
        ax.set_title(title if len(tables) > 1 else "unseen-rule accuracy")
    for ax in axes[len(tables) :]:
        ax.set_visible(False)
    fig.colorbar(image, ax=list(axes[: len(tables)]), shrink=0.9, label="unseen-rule accuracy")
    fig.suptitle("Input diversity: occurrences of the pattern in training inputs")
    caption = (
        "Mean unseen-rule accuracy (over seeds) for each count of pattern occurrences in the training "
        "inputs (a list = a mixture) and each number of training rules I."
    )
    return fig, caption


def figure_learning_curves(ctx: Context):
    """Accuracy vs step from the eval lines of each run's metrics.jsonl, coloured by I."""
    runs = [r for r in ctx.runs if ctx.curves.get(r.run_id)]
    if not runs:
        return None
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LogNorm

    rules = sorted({r.cond["num_rules"] for r in runs if r.cond["num_rules"]})
    by_rules = len(rules) > 1
    norm = LogNorm(rules[0], rules[-1]) if by_rules else None
    palette = _colours(len(runs), sequential=False)
    fig = _new_figure(11, 4.2)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, split in zip(axes, SPLITS, strict=True):
        for i, run in enumerate(runs):
            points = [
                (e["step"], e["accuracy"][split]) for e in ctx.curves[run.run_id] if split in e["accuracy"]
            ]
            if not points:
                continue
            colour = colormaps["viridis"](0.9 * norm(run.cond["num_rules"])) if by_rules else palette[i]
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, color=colour, linewidth=1.2, alpha=0.85, label=None if by_rules else run.run_id)
        ax.set_xlabel("training step")
        _accuracy_axis(ax, SPLIT_TITLES[split])
    if by_rules:
        bar = fig.colorbar(ScalarMappable(norm=norm, cmap=_truncated_viridis()), ax=list(axes), shrink=0.9)
        bar.set_label("number of training rules I")
        if len(rules) <= 10:
            bar.set_ticks(rules, labels=[f"{v:g}" for v in rules])
            bar.minorticks_off()
    elif len(runs) <= 12:
        axes[0].legend(loc="lower right")
    fig.suptitle("Learning curves")
    caption = "Accuracy at each periodic evaluation during training, one line per run."
    return fig, caption


def _truncated_viridis():
    """viridis without its palest yellow, matching the line colours (0 … 0.9 of the map)."""
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    return ListedColormap(colormaps["viridis"](np.linspace(0, 0.9, 256)))


def read_curves(sweep_dir: Path | None, runs: Sequence[Run]) -> dict[str, list[dict[str, Any]]]:
    """Eval lines of `runs/<id>/metrics.jsonl`; unreadable lines (a run killed mid-write) are skipped."""
    if sweep_dir is None:
        return {}
    curves = {}
    for run in runs:
        path = sweep_dir / "runs" / run.run_id / "metrics.jsonl"
        if not path.is_file():
            continue
        lines = []
        for text in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(text)
            except json.JSONDecodeError:
                continue
            if (
                isinstance(entry, dict)
                and entry.get("kind") == "eval"
                and isinstance(entry.get("accuracy"), dict)
            ):
                lines.append(entry)
        if lines:
            curves[run.run_id] = sorted(lines, key=lambda e: e.get("step", 0))
    return curves


FIGURES: tuple[tuple[str, str, Callable[[Context], Any]], ...] = (
    ("e1_rules", "E1: number of training rules", figure_rules),
    ("e2_noop", "E2: no-op examples", figure_noop),
    ("e3_alpha", "E3: skewed rule frequencies", figure_alpha),
    ("e4_family", "E4: rule families", figure_family),
    ("e5_occurrences", "E5: pattern occurrences", figure_occurrences),
    ("learning_curves", "Learning curves", figure_learning_curves),
)


# ---------------------------------------------------------------------------------------------------------
# The report


def build_report(source: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Path:
    """Draw the figures that apply to `source` (a sweep directory, its results.sqlite or a results CSV)
    into `out_dir` (default: SWEEP_DIR/report, or NAME-report beside a CSV) and write report.html there.

    The directory is replaced as a whole, so a failed build never leaves a half-written report.
    """
    import matplotlib

    source = Path(source)
    frame = load_results(source)
    if frame.empty:
        raise UserError(f"{source}: no results yet; wait for a run of the sweep to finish")
    sweep_dir = _sweep_dir(source)
    out = Path(out_dir) if out_dir is not None else _default_out(source, sweep_dir)
    _check_out(out)
    runs, scale_name = load_runs(frame)
    ctx = Context(runs, varying(runs), scale_name, read_curves(_curves_dir(source, sweep_dir), runs))
    with matplotlib.rc_context(RC), atomic_dir(out) as tmp:
        sections = []
        for name, title, draw in FIGURES:
            drawn = draw(ctx)
            if drawn is None:
                continue
            fig, caption = drawn
            png = _save(fig, tmp / name)
            extra = occurrence_tables_html(ctx) if name == "e5_occurrences" else ""
            sections.append(Section(name, title, caption, png, extra))
        (tmp / "report.html").write_text(render_html(frame, ctx, sections, sweep_dir), encoding="utf-8")
    return out / "report.html"


def _sweep_dir(source: Path) -> Path | None:
    """The sweep directory holding the run directories, or None for a CSV."""
    if source.is_dir():
        return source
    return source.parent if source.name == DB_NAME or source.suffix.lower() != ".csv" else None


def _curves_dir(source: Path, sweep_dir: Path | None) -> Path | None:
    """Where `runs/<id>/metrics.jsonl` live: the sweep directory, or beside a CSV that was published with
    its runs' metrics (so committed results regenerate the learning curves too)."""
    if sweep_dir is None and (source.parent / "runs").is_dir():
        return source.parent
    return sweep_dir


def _default_out(source: Path, sweep_dir: Path | None) -> Path:
    if sweep_dir is not None:
        return sweep_dir / "report"
    return source.with_name(f"{source.stem}-report")


def _check_out(out: Path) -> None:
    """Refuse to replace a directory that is not a report (e.g. `--out .`)."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "report.html").exists())):
        raise UserError(f"--out {out}: exists and is not a report directory; choose a new or empty directory")


def _save(fig, stem: Path) -> bytes:
    """Write stem.png and stem.svg reproducibly; return the PNG bytes for embedding."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    png = buffer.getvalue()
    stem.with_suffix(".png").write_bytes(png)
    fig.savefig(stem.with_suffix(".svg"), format="svg", metadata={"Date": None, "Creator": None})
    return png


@dataclass
class Section:
    name: str
    title: str
    caption: str
    png: bytes
    extra_html: str = ""


CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1150px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
p.caption { color: #555; font-size: 0.92em; }
img { max-width: 100%; height: auto; display: block; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; white-space: nowrap; }
th { background: #f3f5f8; }
td.text, th.text { text-align: left; }
table.meta td, table.meta th { text-align: left; border: none; padding: 0.1em 1em 0.1em 0; }
table.meta th { background: none; color: #555; font-weight: normal; }
div.scroll { overflow-x: auto; }
nav a { margin-right: 1em; }
"""


def render_html(frame, ctx: Context, sections: Sequence[Section], sweep_dir: Path | None) -> str:
    """One self-contained page: inline CSS, figures as base64 PNG, tables as HTML, no external URL."""
    sweeps = sorted({str(s) for s in frame["sweep"].dropna()})
    name = ", ".join(sweeps) or "results"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>rewritelab report: {_e(name)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>rewritelab report: {_e(name)}</h1>",
    ]
    description = _description(sweep_dir)
    if description:
        parts.append(f"<p>{_e(description)}</p>")
    parts.append(_header_table(frame, ctx))
    links = [(s.name, s.title) for s in sections] + [("results", "Results table")]
    parts.append("<nav>" + "".join(f'<a href="#{n}">{_e(t)}</a>' for n, t in links) + "</nav>")
    for s in sections:
        data = base64.b64encode(s.png).decode("ascii")
        parts += [
            f'<h2 id="{s.name}">{_e(s.title)}</h2>',
            f'<img alt="{_e(s.title)}" src="data:image/png;base64,{data}">',
            f'<p class="caption">{_e(s.caption)} Files: {s.name}.png, {s.name}.svg.</p>',
            s.extra_html,
        ]
    parts += [
        '<h2 id="results">Results table</h2>',
        '<p class="caption">One row per run and split; accuracy with its 95% bootstrap confidence interval. '
        "I = training rules, S = examples per rule.</p>",
        _html_table(TABLE_HEADER, table_rows(frame), text_columns={0, 1, 7, 9, 10}),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _description(sweep_dir: Path | None) -> str:
    """The sweep's description from sweep.yaml, when the report is built from a sweep directory."""
    if sweep_dir is None or not (sweep_dir / "sweep.yaml").is_file():
        return ""
    import yaml

    try:
        data = yaml.safe_load((sweep_dir / "sweep.yaml").read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return ""
    return str(data.get("description") or "") if isinstance(data, dict) else ""


def _header_table(frame, ctx: Context) -> str:
    presets = sorted({str(p) for p in frame["preset"].dropna()})
    versions = sorted({str(v) for v in frame["code_version"].dropna()})
    seeds = sorted({r.seed for r in ctx.runs if r.seed is not None})
    rows = [
        ("preset", ", ".join(presets) or "-"),
        ("runs", str(len(ctx.runs))),
        ("seeds", ", ".join(map(str, seeds)) or "-"),
        ("splits", ", ".join(sorted(set(frame["split"])))),
        ("varied", ", ".join(VARIED_NAMES[c] for c in ctx.varying if c != "variant") or "nothing"),
        ("code versions", ", ".join(versions) or "-"),
    ]
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table class="meta">{body}</table>'


VARIED_NAMES = {
    "num_rules": "number of rules I",
    "scale": "examples per rule S / budget",
    "dist": "rule distribution α",
    "noop_frac": "no-op share",
    "family": "rule family",
    "occurrences": "pattern occurrences",
}


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
            parts.append(f"<h3>{_e(title)}</h3>")
        parts.append(_html_table(header, rows, text_columns={0}))
    return "".join(parts)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: set[int]) -> str:
    def cell(tag: str, i: int, text: str) -> str:
        cls = ' class="text"' if i in text_columns else ""
        return f"<{tag}{cls}>{_e(text)}</{tag}>"

    head = "<tr>" + "".join(cell("th", i, h) for i, h in enumerate(header)) + "</tr>"
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead>{head}</thead><tbody>{body}</tbody></table></div>'


def _e(text: str) -> str:
    return html.escape(text, quote=True)
