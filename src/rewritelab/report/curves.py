"""Learning curves: accuracy at each periodic evaluation, read from the runs' metrics.jsonl."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewritelab.io import read_jsonl_records
from rewritelab.layout import METRICS, sweep_run_dir
from rewritelab.report.figures import SPLITS, _accuracy_axis, _colours, _new_figure, split_title
from rewritelab.report.runs import Context, Run


def figure_learning_curves(ctx: Context):
    """Accuracy vs step from the eval lines of each run's metrics.jsonl, coloured by I (or P)."""
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
        _accuracy_axis(ax, split_title(split, ctx.symbol))
    if by_rules:
        bar = fig.colorbar(ScalarMappable(norm=norm, cmap=_truncated_viridis()), ax=list(axes), shrink=0.9)
        bar.set_label("number of training programs P" if ctx.symbol == "P" else "number of training rules I")
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
        path = sweep_run_dir(sweep_dir, run.run_id) / METRICS
        if not path.is_file():
            continue
        records = read_jsonl_records(path)
        lines = [e for e in records if e.get("kind") == "eval" and isinstance(e.get("accuracy"), dict)]
        if lines:
            curves[run.run_id] = sorted(lines, key=lambda e: e.get("step", 0))
    return curves
