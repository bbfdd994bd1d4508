"""The look shared by every figure of a report: matplotlib settings (fixed DPI and SVG salt, so the same
results give the same bytes) and colours that stand out on the white page."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewritelab.report.runs import NUMERIC

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


MIN_CONTRAST = 3.0  # against the white page: WCAG's minimum for lines and marks


def legible(colour: Any) -> tuple[float, float, float]:
    """`colour` darkened (hue kept) until it stands out on white by `MIN_CONTRAST`: the pale ends of
    viridis and tab10's orange, olive and cyan read as faint lines otherwise."""
    from matplotlib.colors import to_rgb

    rgb = to_rgb(colour)
    while contrast(rgb) < MIN_CONTRAST:
        rgb = (0.92 * rgb[0], 0.92 * rgb[1], 0.92 * rgb[2])
    return rgb


def contrast(colour: Any) -> float:
    """The WCAG contrast ratio of `colour` against white (1 = invisible, 21 = black)."""
    from matplotlib.colors import to_rgb

    def channel(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in to_rgb(colour))
    return 1.05 / (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05)


def sequential_colour(fraction: float) -> tuple[float, float, float]:
    """A colour of the sequential map (viridis without its palest yellow), made legible."""
    from matplotlib import colormaps

    return legible(colormaps["viridis"](0.9 * fraction))


def palette(n: int, sequential: bool) -> list[Any]:
    from matplotlib import colormaps

    if sequential and n > 1:
        return [sequential_colour(i / (n - 1)) for i in range(n)]
    cmap = colormaps["tab10"]
    return [legible(cmap(i % 10)) for i in range(n)]


def line_colours(conds: Sequence[str], n: int) -> list[Any]:
    """One colour per line; a sequential map when the lines are the values of one numeric condition."""
    return palette(n, sequential=len(conds) == 1 and conds[0] in NUMERIC)
