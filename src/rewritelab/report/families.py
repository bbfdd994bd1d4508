"""E4's figures: accuracy per training family (seen and unseen bars), and the held-out rules read apart
against I — each kind of held-out rule (unconstrained patterns, k = 2 of each family) on a panel of its
own, a line per training family, since the paper's claim is about *which* held-out structure a family
reaches, and one pooled unseen number hides it."""

from __future__ import annotations

from functools import partial

from rewritelab.report.figures import (
    SPLIT_TITLES,
    accuracy_axis,
    band_note,
    new_figure,
    panel_grid,
    plot_cell_line,
    rules_axis,
    unseen_cell,
)
from rewritelab.report.runs import Context, Run, aggregate, group, key_label, split_points
from rewritelab.report.style import line_colours

# The held-out kinds of E4's test family, in panel order; `random` is the unconstrained pattern (k = 1).
HELD_OUT_ORDER = ("random", "repeated", "periodic", "mirrored")
HELD_OUT_TITLES = {"random": "unconstrained rules (k = 1)"}


def figure_family(ctx: Context):
    """E4: accuracy per training family, seen and unseen bars, one panel per value of the others."""
    if "family" not in ctx.varying:
        return None
    facets = group(ctx.runs, [c for c in ctx.varying if c != "family"])
    facet_conds = [c for c in ctx.varying if c != "family"]
    families = [k[0] for k, _ in group(ctx.runs, ["family"])]
    rows, cols = panel_grid(len(facets), 3)
    fig = new_figure(4.6 * cols + 2.2, (0.45 * len(families) + 1.4) * rows)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True).ravel()
    colours = {"test_seen": "#4292c6", "test_unseen": "#08306b"}
    height = 0.38
    for ax, (key, members) in zip(axes, facets, strict=False):
        by_family = dict(group(members, ["family"]))
        for offset, split in ((-height / 2, "test_seen"), (height / 2, "test_unseen")):
            ys, means, errors = [], [], [[], []]
            for i, fam in enumerate(families):
                points = split_points(by_family.get((fam,), []), split)
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
        accuracy_axis(ax, key_label(facet_conds, key, ctx.scale_name), axis="x")
    for ax in axes[len(facets) :]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2)
    fig.suptitle("Accuracy per training rule family")
    caption = (
        "Exact-match accuracy of models trained on each family of rules, on seen rules (light) and unseen "
        f"rules (dark). {band_note(ctx.runs)}"
    )
    return fig, caption


def held_out_kinds(runs: list[Run]) -> list[str]:
    """The held-out kinds some run's unseen split breaks down by, E4's order first."""
    cells = ((r, k) for r in runs for k in r.breakdown.get("test_unseen", {}).get("family", {}))
    kinds = {k for r, k in cells if unseen_cell(r, "family", k)}
    return sorted(kinds, key=lambda k: (HELD_OUT_ORDER.index(k) if k in HELD_OUT_ORDER else 99, k))


def figure_heldout(ctx: Context):
    """E4: unseen accuracy vs I per held-out kind, a line per training family, each seed as a dot."""
    if "family" not in ctx.varying or "num_rules" not in ctx.varying:
        return None
    kinds = held_out_kinds(ctx.runs)
    if len(kinds) < 2:
        return None
    lines = [c for c in ctx.varying if c != "num_rules"]
    groups = group(ctx.runs, lines)
    colours = line_colours(lines, len(groups))
    rows, cols = panel_grid(len(kinds), 4)
    fig = new_figure(4.2 * cols, 3.6 * rows + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True).ravel()
    for ax, kind in zip(axes, kinds, strict=False):
        for (key, members), colour in zip(groups, colours, strict=True):
            name = key_label(lines, key, ctx.scale_name)
            cells = partial(unseen_cell, factor="family", value=kind)
            plot_cell_line(ax, members, cells, colour, "-", name, dots=True)
        rules_axis(ax, ctx.runs)
        accuracy_axis(ax, HELD_OUT_TITLES.get(kind, f"{kind} rules (k = 2)"))
    for ax in axes[len(kinds) :]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4))
    fig.suptitle("Unseen rules by held-out kind, per training family")
    caption = (
        "Exact-match accuracy on unseen rules, one panel per kind of held-out rule (E4: unconstrained "
        "patterns, k = 1, and k = 2 of each family, all of the training length), against the number of "
        f"training rules I, one line per training family; dots are single seeds. {band_note(ctx.runs)}"
    )
    return fig, caption
