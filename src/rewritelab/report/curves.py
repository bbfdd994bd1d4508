"""Curves over training steps, read from the runs' metrics.jsonl and averaged over seeds: accuracy at each
evaluation (learning curves) and the training loss."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewritelab.io import read_jsonl_records
from rewritelab.layout import METRICS
from rewritelab.report.figures import SPLITS, accuracy_axis, new_figure, split_title
from rewritelab.report.runs import Context, Run, aggregate, group, key_label, label
from rewritelab.report.style import palette, sequential_colour

STYLES = ("-", "--", ":", "-.")
LEGEND_MAX = 8  # up to this many values of I (or P) get a legend entry each; more get a colour bar


@dataclass
class Lines:
    """How the curves of one report are drawn: one line per condition, coloured by I (or P) when it
    varies, in a line style per value of the other varying conditions; the legend entries (or a colour
    bar, when I takes too many values for a legend to be read)."""

    groups: list[tuple[tuple[Any, ...], list[Run]]]
    colour: list[Any]  # per group
    style: list[str]  # per group
    legend: list[tuple[Any, str, str]]  # (colour, style, label) of each legend entry
    colour_bar: tuple[Any, list[float]] | None  # (LogNorm, the I values) when a colour bar replaces them


def curve_lines(ctx: Context, runs: Sequence[Run]) -> Lines:
    rules = sorted({r.cond["num_rules"] for r in runs if r.cond["num_rules"]})
    by_rules = len(rules) > 1
    others = [c for c in ctx.varying if c != "num_rules"]
    groups = group(runs, ctx.varying)
    cycle = palette(len(groups), sequential=False)
    other_keys = [k for k, _ in group(runs, others)]
    styles = {key: STYLES[i % len(STYLES)] for i, key in enumerate(other_keys)}
    colours, line_styles = [], []
    for i, (key, _) in enumerate(groups):
        cond = dict(zip(ctx.varying, key, strict=True))
        colours.append(_rules_colour(cond["num_rules"], rules) if by_rules else cycle[i])
        line_styles.append(styles[tuple(cond[c] for c in others)])
    legend, colour_bar = [], None
    if by_rules and len(rules) <= LEGEND_MAX:
        legend += [(_rules_colour(v, rules), "-", label("num_rules", v, symbol=ctx.symbol)) for v in rules]
    elif by_rules:
        from matplotlib.colors import LogNorm

        colour_bar = (LogNorm(rules[0], rules[-1]), rules)
    if others and len(styles) <= len(STYLES):
        legend += [("0.25", styles[k], key_label(others, k, ctx.scale_name, ctx.symbol)) for k in other_keys]
    elif not by_rules and len(groups) <= 12:
        legend += [
            (cycle[i], line_styles[i], key_label(ctx.varying, key, ctx.scale_name, ctx.symbol))
            for i, (key, _) in enumerate(groups)
        ]
    return Lines(groups, colours, line_styles, legend, colour_bar)


def _rules_colour(value: Any, rules: list[float]) -> Any:
    """I's colour: its place on a log scale between the smallest and the largest I."""
    import math

    if not value or len(rules) < 2:
        return sequential_colour(0.0)
    return sequential_colour(math.log(value / rules[0]) / math.log(rules[-1] / rules[0]))


def _decorate(fig, axes, lines: Lines, symbol: str) -> None:
    """The legend (proxy lines, so each entry reads on its own) or the colour bar of I."""
    from matplotlib.lines import Line2D

    if lines.colour_bar is not None:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import ListedColormap

        norm, rules = lines.colour_bar
        cmap = ListedColormap([sequential_colour(i / 255) for i in range(256)])
        bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=list(axes), shrink=0.9)
        bar.set_label("number of training programs P" if symbol == "P" else "number of training rules I")
        if len(rules) <= 10:
            bar.set_ticks(rules, labels=[f"{v:g}" for v in rules])
            bar.minorticks_off()
    if lines.legend:  # beside the panels, where it hides no curve
        handles = [Line2D([], [], color=c, linestyle=s, linewidth=1.5) for c, s, _ in lines.legend]
        fig.legend(handles, [name for _, _, name in lines.legend], loc="outside right upper")


def _log_steps(runs: Sequence[Run], records: dict[str, list[dict[str, Any]]]) -> bool:
    """A log step axis when the steps span two decades (log-spaced evaluations catch the take-off)."""
    steps = sorted({e["step"] for r in runs for e in records[r.run_id] if e.get("step")})
    return bool(steps) and steps[-1] / steps[0] >= 100


def figure_learning_curves(ctx: Context):
    """Accuracy vs step from the eval lines of metrics.jsonl: per condition, the mean over its seeds with
    a 95 % band across them, coloured by I (or P), on a log step axis when the evaluations are log-spaced
    (the take-off of unseen-rule accuracy happens in the first few hundred steps)."""
    runs = [r for r in ctx.runs if ctx.curves.get(r.run_id)]
    if not runs:
        return None
    lines = curve_lines(ctx, runs)
    log_x = _log_steps(runs, ctx.curves)
    fig = new_figure(11, 4.2)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, split in zip(axes, SPLITS, strict=True):
        _draw(ax, lines, lambda members, s=split: seed_curve(members, ctx.curves, s))
        if log_x:
            ax.set_xscale("log")
        ax.set_xlabel("training step" + (" (log scale)" if log_x else ""))
        accuracy_axis(ax, split_title(split, ctx.symbol))
    _decorate(fig, axes, lines, ctx.symbol)
    fig.suptitle("Learning curves")
    seeds = max(len(members) for _, members in lines.groups)
    caption = "Accuracy at each evaluation during training, " + (
        f"the mean over seeds (up to {seeds}) with a 95% band across them (Student t)."
        if seeds > 1
        else "one line per run."
    )
    return fig, caption


def figure_loss_curves(ctx: Context):
    """Training loss vs step from the train lines of metrics.jsonl (log scale: it falls by orders of
    magnitude), the mean over each condition's seeds, drawn like the learning curves."""
    runs = [r for r in ctx.runs if ctx.losses.get(r.run_id)]
    if not runs:
        return None
    lines = curve_lines(ctx, runs)
    fig = new_figure(7.5, 4.2)
    ax = fig.subplots(1, 1)
    _draw(ax, lines, lambda members: seed_losses(members, ctx.losses), bands=False)
    if _log_steps(runs, ctx.losses):
        ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (nats per answer token)")
    _decorate(fig, [ax], lines, ctx.symbol)
    fig.suptitle("Training loss")
    seeds = max(len(members) for _, members in lines.groups)
    caption = (
        "Cross-entropy of the training batches as logged during training (log scale), "
        + (f"the mean over seeds (up to {seeds})." if seeds > 1 else "one line per run.")
        + " A curve still falling at the end means more steps would still change the model."
    )
    return fig, caption


Curve = tuple[list[int], list[float], list[float], list[float]]


def _draw(ax, lines: Lines, curve: Callable[[list[Run]], Curve], bands: bool = True) -> None:
    for (_, members), colour, style in zip(lines.groups, lines.colour, lines.style, strict=True):
        xs, means, lows, highs = curve(members)
        if not xs:
            continue
        ax.plot(xs, means, color=colour, linewidth=1.3, linestyle=style)
        if bands and len(members) > 1:
            ax.fill_between(xs, lows, highs, color=colour, alpha=0.15, linewidth=0)


def seed_curve(runs: Sequence[Run], curves: dict[str, list[dict[str, Any]]], split: str) -> Curve:
    """Steps that every run of `runs` evaluated, with the mean accuracy over the runs and its 95 % band
    (Student t across runs; a single run's band is its own line)."""
    by_run = [
        {e["step"]: e["accuracy"][split] for e in curves.get(r.run_id, []) if split in e["accuracy"]}
        for r in runs
    ]
    return _seed_mean(by_run)


def seed_losses(runs: Sequence[Run], losses: dict[str, list[dict[str, Any]]]) -> Curve:
    """The training loss at the steps every run of `runs` logged, averaged over the runs (no band: the
    per-batch loss is too noisy for one to read)."""
    return _seed_mean([{e["step"]: e["loss"] for e in losses.get(r.run_id, [])} for r in runs])


def _seed_mean(by_run: list[dict[int, float]]) -> Curve:
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


def read_curves(
    folders: Mapping[str, Path], runs: Sequence[Run], kind: str = "eval"
) -> dict[str, list[dict[str, Any]]]:
    """The `kind` lines of each run's metrics.jsonl (`folders`: run id → run folder, `run_folders`): `eval`
    (accuracy per split: the learning curves) or `train` (the loss); unreadable lines (a run killed
    mid-write) are skipped."""
    wanted = "accuracy" if kind == "eval" else "loss"
    check = (lambda v: isinstance(v, dict)) if kind == "eval" else _finite
    curves = {}
    for run in runs:
        folder = folders.get(run.run_id)
        if folder is None or not (folder / METRICS).is_file():
            continue
        lines = [
            e for e in read_jsonl_records(folder / METRICS) if e.get("kind") == kind and check(e.get(wanted))
        ]
        if lines:
            curves[run.run_id] = sorted(lines, key=lambda e: e.get("step", 0))
    return curves


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and value == value and abs(value) != float("inf")
