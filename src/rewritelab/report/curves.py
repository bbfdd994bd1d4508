"""Learning curves: accuracy at each evaluation, read from the runs' metrics.jsonl, averaged over seeds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewritelab.io import read_jsonl_records
from rewritelab.layout import METRICS, sweep_run_dir
from rewritelab.report.figures import SPLITS, accuracy_axis, colours_for, new_figure, split_title
from rewritelab.report.runs import Context, Run, aggregate, group, key_label


def figure_learning_curves(ctx: Context):
    """Accuracy vs step from the eval lines of metrics.jsonl: per condition, the mean over its seeds with
    a 95 % band across them, coloured by I (or P), on a log step axis when the evaluations are log-spaced
    (the take-off of unseen-rule accuracy happens in the first few hundred steps)."""
    runs = [r for r in ctx.runs if ctx.curves.get(r.run_id)]
    if not runs:
        return None
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LogNorm

    rules = sorted({r.cond["num_rules"] for r in runs if r.cond["num_rules"]})
    by_rules = len(rules) > 1
    norm = LogNorm(rules[0], rules[-1]) if by_rules else None
    others = [c for c in ctx.varying if c != "num_rules"]
    groups = group(runs, ctx.varying)
    palette = colours_for(len(groups), sequential=False)
    styles = {key: STYLES[i % len(STYLES)] for i, (key, _) in enumerate(group(runs, others))}
    steps = sorted({e["step"] for r in runs for e in ctx.curves[r.run_id] if e.get("step")})
    log_x = bool(steps) and steps[-1] / steps[0] >= 100
    fig = new_figure(11, 4.2)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, split in zip(axes, SPLITS, strict=True):
        labelled: set[str] = set()  # with other conditions: one legend entry per line style
        for i, (key, members) in enumerate(groups):
            xs, means, lows, highs = seed_curve(members, ctx.curves, split)
            if not xs:
                continue
            cond = dict(zip(ctx.varying, key, strict=True))
            colour = colormaps["viridis"](0.9 * norm(cond["num_rules"])) if by_rules else palette[i]
            other_key = tuple(cond[c] for c in others)
            style = styles[other_key]
            name = None
            if others and style not in labelled:
                name = key_label(others, other_key, ctx.scale_name, ctx.symbol)
                labelled.add(style)
            elif not by_rules:
                name = key_label(ctx.varying, key, ctx.scale_name, ctx.symbol)
            ax.plot(xs, means, color=colour, linewidth=1.2, alpha=0.9, linestyle=style, label=name)
            if len(members) > 1:
                ax.fill_between(xs, lows, highs, color=colour, alpha=0.12, linewidth=0)
        if log_x:
            ax.set_xscale("log")
        ax.set_xlabel("training step" + (" (log scale)" if log_x else ""))
        accuracy_axis(ax, split_title(split, ctx.symbol))
    if by_rules:
        bar = fig.colorbar(ScalarMappable(norm=norm, cmap=_truncated_viridis()), ax=list(axes), shrink=0.9)
        bar.set_label("number of training programs P" if ctx.symbol == "P" else "number of training rules I")
        if len(rules) <= 10:
            bar.set_ticks(rules, labels=[f"{v:g}" for v in rules])
            bar.minorticks_off()
    if (others and len(styles) <= len(STYLES)) or (not by_rules and len(groups) <= 12):
        axes[0].legend(loc="lower right", fontsize="small")
    fig.suptitle("Learning curves")
    seeds = max(len(members) for _, members in groups)
    caption = "Accuracy at each evaluation during training, " + (
        f"the mean over seeds (up to {seeds}) with a 95% band across them (Student t)."
        if seeds > 1
        else "one line per run."
    )
    return fig, caption


STYLES = ("-", "--", ":", "-.")


def seed_curve(
    runs: Sequence[Run], curves: dict[str, list[dict[str, Any]]], split: str
) -> tuple[list[int], list[float], list[float], list[float]]:
    """Steps that every run of `runs` evaluated, with the mean accuracy over the runs and its 95 % band
    (Student t across runs; a single run's band is its own line)."""
    by_run = [
        {e["step"]: e["accuracy"][split] for e in curves.get(r.run_id, []) if split in e["accuracy"]}
        for r in runs
    ]
    by_run = [points for points in by_run if points]
    if not by_run:
        return [], [], [], []
    shared = sorted(set.intersection(*(set(points) for points in by_run)))
    xs, means, lows, highs = [], [], [], []
    for step in shared:
        mean, low, high = aggregate([(points[step], None, None) for points in by_run])
        xs.append(step)
        means.append(mean)
        lows.append(low)
        highs.append(high)
    return xs, means, lows, highs


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
        path = sweep_run_dir(sweep_dir, run.run_id) / METRICS
        if not path.is_file():
            continue
        records = read_jsonl_records(path)
        lines = [e for e in records if e.get("kind") == "eval" and isinstance(e.get("accuracy"), dict)]
        if lines:
            curves[run.run_id] = sorted(lines, key=lambda e: e.get("step", 0))
    return curves
