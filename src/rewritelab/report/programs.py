"""The figures of Markov-program sweeps, drawn from the breakdowns every program run records: accuracy
against the number of execution steps (in the training range on test_unseen, beyond it on
test_ood_steps) and against the number of rules per program k. Each returns (figure, caption) or None.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewritelab.report.figures import accuracy_axis, band_note, cell_point, new_figure, split_title
from rewritelab.report.runs import Context, Run, aggregate, group, key_label, label
from rewritelab.report.style import line_colours

K_PANELS = ("test_unseen", "test_unseen_strict")


def _cells(runs: Sequence[Run], split: str, breakdown: str) -> dict[int, list[dict[str, Any]]]:
    """The non-empty cells of one breakdown over `runs` (seeds), by their integer key."""
    cells: dict[int, list[dict[str, Any]]] = {}
    for run in runs:
        for key, cell in (run.breakdown.get(split, {}).get(breakdown) or {}).items():
            if isinstance(cell, dict) and cell.get("n") and str(key).isdigit():
                cells.setdefault(int(key), []).append(cell)
    return cells


def _plot_cells(ax, cells: dict[int, list[dict[str, Any]]], colour, style: str, name: str | None) -> None:
    """A line through the seed mean of each cell, with its 95% band (`aggregate` of the cells' CIs)."""
    xs = sorted(cells)
    if not xs:
        return
    points = [aggregate([cell_point(c) for c in cells[x]]) for x in xs]
    ax.plot(xs, [p[0] for p in points], marker="o", markersize=4, color=colour, linestyle=style, label=name)
    ax.fill_between(xs, [p[1] for p in points], [p[2] for p in points], color=colour, alpha=0.15, linewidth=0)


def figure_steps(ctx: Context):
    """Unseen-program accuracy vs execution steps: solid within the trained range (test_unseen), dashed
    beyond it (test_ood_steps); one panel per answer format, one line per other varying condition."""
    runs = [r for r in ctx.programs if _cells([r], "test_unseen", "steps")]
    if not runs:
        return None
    lines = [c for c in ctx.varying if c != "answer"]
    panels = group(runs, ["answer"])
    fig = new_figure(5.5 * len(panels), 4.2)
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False).ravel()
    for ax, ((answer,), members) in zip(axes, panels, strict=True):
        groups = group(members, lines)
        trained = max(_cells(members, "test_unseen", "steps"))
        for (key, line_runs), colour in zip(groups, line_colours(lines, len(groups)), strict=True):
            name = key_label(lines, key, ctx.scale_name, ctx.symbol)
            _plot_cells(ax, _cells(line_runs, "test_unseen", "steps"), colour, "-", name)
            _plot_cells(ax, _cells(line_runs, "test_ood_steps", "steps"), colour, "--", None)
        ax.axvline(trained + 0.5, color="0.4", linestyle=":", linewidth=1)
        ax.set_xlabel("execution steps (rewrites until the program halts)")
        accuracy_axis(ax, label("answer", answer))
    if lines:
        axes[0].legend(loc="lower left")
    fig.suptitle("Unseen-program accuracy vs number of execution steps")
    caption = (
        "Final-string exact match on unseen programs by the number of rewrites their execution takes: "
        "solid within the trained step range (test_unseen), dashed beyond it (test_ood_steps); the dotted "
        f"line marks the longest trained execution. {band_note(runs)}"
    )
    return fig, caption


def figure_k(ctx: Context):
    """Accuracy vs rules per program k on unseen programs (and on unseen patterns), one line per value of
    the other varying conditions that spans at least two values of k."""
    conds = [c for c in ctx.varying if c != "k"]
    lines = [
        (key, members)
        for key, members in group(ctx.programs, conds)
        if len(_cells(members, "test_unseen", "k")) >= 2
    ]
    if not lines:
        return None
    panels = [s for s in K_PANELS if any(_cells(m, s, "k") for _, m in lines)]
    fig = new_figure(5.5 * len(panels), 4.2)
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False).ravel()
    colours = line_colours(conds, len(lines))
    for ax, split in zip(axes, panels, strict=True):
        for (key, members), colour in zip(lines, colours, strict=True):
            name = key_label(conds, key, ctx.scale_name, ctx.symbol)
            _plot_cells(ax, _cells(members, split, "k"), colour, "-", name)
        ks = sorted({k for _, m in lines for k in _cells(m, split, "k")})
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("rules per program k")
        accuracy_axis(ax, split_title(split, ctx.symbol))
    if conds:
        axes[0].legend(loc="lower left")
    fig.suptitle("Accuracy vs program length k")
    runs = [r for _, m in lines for r in m]
    caption = (
        "Final-string exact match by the number of rules per program (from each run's k breakdown). "
        f"{band_note(runs)}"
    )
    return fig, caption
