"""`report.html`: draw the figures that apply into a report directory and one self-contained page.

Which figures are drawn follows from what varies across the runs, so one function serves every preset:
the number of rules I (E1), the rule-frequency shape α (E3), the no-op share (E2, from the no-op
breakdown), the training family (E4), the occurrence counts (E5), plus learning curves when the run
directories are at hand.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewritelab.errors import UserError
from rewritelab.folders import REPORT, check_folder, replacing_folder
from rewritelab.layout import REPORT_DIR, REPORT_HTML, RESULTS_DB, RUNS_DIR, SWEEP_FILE
from rewritelab.report.curves import figure_learning_curves, read_curves
from rewritelab.report.figures import (
    RC,
    figure_alpha,
    figure_family,
    figure_noop,
    figure_occurrences,
    figure_rules,
)
from rewritelab.report.programs import figure_k, figure_steps
from rewritelab.report.runs import Context, load_runs, varying
from rewritelab.report.tables import escape, html_table, occurrence_tables_html
from rewritelab.store import load_results, table_header, table_rows, text_columns

FIGURES: tuple[tuple[str, str, Callable[[Context], Any]], ...] = (
    ("e1_rules", "E1: number of training rules (or programs)", figure_rules),
    ("e2_noop", "E2: no-op examples", figure_noop),
    ("e3_alpha", "E3: skewed rule frequencies", figure_alpha),
    ("e4_family", "E4: rule families", figure_family),
    ("e5_occurrences", "E5: pattern occurrences", figure_occurrences),
    ("program_steps", "Programs: execution steps", figure_steps),
    ("program_k", "Programs: rules per program", figure_k),
    ("learning_curves", "Learning curves", figure_learning_curves),
)


# ---------------------------------------------------------------------------------------------------------
# The report


def build_report(source: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Path:
    """Draw the figures that apply to `source` (a sweep directory, its results.sqlite or a results CSV)
    into `out_dir` (default: SWEEP_DIR/report, or NAME-report beside a CSV) and write report.html there.

    The report's files are replaced only when the build succeeds, so a failed build never leaves a
    half-written report; files of the user's in the directory stay.
    """
    import matplotlib

    source = Path(source)
    frame = load_results(source)
    if frame.empty:
        raise UserError(f"{source}: no results yet; wait for a run of the sweep to finish")
    sweep_dir = _sweep_dir(source)
    out = Path(out_dir) if out_dir is not None else _default_out(source, sweep_dir)
    check_folder(out, REPORT)  # before the drawing work
    runs, scale_name = load_runs(frame)
    ctx = Context(runs, varying(runs), scale_name, read_curves(_curves_dir(source, sweep_dir), runs))
    with matplotlib.rc_context(RC), replacing_folder(out, REPORT, report_names()) as tmp:
        sections = []
        for name, title, draw in FIGURES:
            drawn = draw(ctx)
            if drawn is None:
                continue
            fig, caption = drawn
            png = _save(fig, tmp / name)
            extra = occurrence_tables_html(ctx) if name == "e5_occurrences" else ""
            sections.append(Section(name, title, caption, png, extra))
        (tmp / REPORT_HTML).write_text(render_html(frame, ctx, sections, sweep_dir), encoding="utf-8")
    return out / REPORT_HTML


def _sweep_dir(source: Path) -> Path | None:
    """The sweep directory holding the run directories, or None for a CSV."""
    if source.is_dir():
        return source
    return source.parent if source.name == RESULTS_DB or source.suffix.lower() != ".csv" else None


def _curves_dir(source: Path, sweep_dir: Path | None) -> Path | None:
    """Where `runs/<id>/metrics.jsonl` live: the sweep directory, or beside a CSV that was published with
    its runs' metrics (so committed results regenerate the learning curves too)."""
    if sweep_dir is None and (source.parent / RUNS_DIR).is_dir():
        return source.parent
    return sweep_dir


def _default_out(source: Path, sweep_dir: Path | None) -> Path:
    if sweep_dir is not None:
        return sweep_dir / REPORT_DIR
    return source.with_name(f"{source.stem}-report")


def report_names() -> tuple[str, ...]:
    """Every name a report directory may hold, report.html last: a new report replaces (or deletes) these
    and no other file."""
    return (*(f"{name}.{ext}" for name, _, _ in FIGURES for ext in ("png", "svg")), REPORT_HTML)


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
        f"<title>rewritelab report: {escape(name)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>rewritelab report: {escape(name)}</h1>",
    ]
    description = _description(sweep_dir)
    if description:
        parts.append(f"<p>{escape(description)}</p>")
    parts.append(_header_table(frame, ctx))
    links = [(s.name, s.title) for s in sections] + [("results", "Results table")]
    parts.append("<nav>" + "".join(f'<a href="#{n}">{escape(t)}</a>' for n, t in links) + "</nav>")
    for s in sections:
        data = base64.b64encode(s.png).decode("ascii")
        parts += [
            f'<h2 id="{s.name}">{escape(s.title)}</h2>',
            f'<img alt="{escape(s.title)}" src="data:image/png;base64,{data}">',
            f'<p class="caption">{escape(s.caption)} Files: {s.name}.png, {s.name}.svg.</p>',
            s.extra_html,
        ]
    header = table_header(frame)
    text = {i for i, name in enumerate(header) if name in text_columns(frame)}
    parts += [
        '<h2 id="results">Results table</h2>',
        '<p class="caption">One row per run and split; accuracy with its 95% bootstrap confidence interval. '
        "I = training rules (or programs), S = examples per rule; k, answer, trace and step accuracy for "
        "Markov programs.</p>",
        html_table(header, table_rows(frame), text_columns=text),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _description(sweep_dir: Path | None) -> str:
    """The sweep's description from sweep.yaml, when the report is built from a sweep directory."""
    if sweep_dir is None or not (sweep_dir / SWEEP_FILE).is_file():
        return ""
    import yaml

    try:
        data = yaml.safe_load((sweep_dir / SWEEP_FILE).read_text(encoding="utf-8"))
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
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="meta">{body}</table>'


VARIED_NAMES = {
    "num_rules": "number of rules I",
    "scale": "examples per rule S / budget",
    "dist": "rule distribution α",
    "noop_frac": "no-op share",
    "family": "rule family",
    "occurrences": "pattern occurrences",
    "k": "rules per program k",
    "answer": "answer format (final / trace)",
}
