"""`report.html`: draw the figures that apply into a report directory and one self-contained page that
reads on its own: what was trained (the task and the resolved configuration), what was found (the
headline with its uncertainty), the figures, whether the runs converged, the breakdowns, example errors,
how the runs executed, and every result.

Which figures are drawn follows from what varies across the runs, so one function serves every preset:
the number of rules I (E1), the rule-frequency shape α (E3), the no-op share (E2, from the no-op
breakdown), the training family (E4), the occurrence counts (E5), any other varied config field, plus
learning and loss curves when the run directories are at hand.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewritelab.bounded_yaml import parse_yaml
from rewritelab.errors import UserError
from rewritelab.folders import REPORT, check_folder, replacing_folder
from rewritelab.layout import REPORT_DIR, REPORT_HTML, RESULTS_DB, RUNS_DIR, SWEEP_FILE, sweep_run_dir
from rewritelab.report.breakdowns import breakdowns_html, example_errors, examples_html
from rewritelab.report.curves import figure_learning_curves, figure_loss_curves, read_curves
from rewritelab.report.factors import figure_factors, varied_factors
from rewritelab.report.families import figure_family, figure_heldout
from rewritelab.report.figures import figure_alpha, figure_noop, figure_occurrences, figure_rules
from rewritelab.report.headline import headline
from rewritelab.report.programs import figure_k, figure_steps
from rewritelab.report.runs import Context, load_runs, varying
from rewritelab.report.sections import (
    compute_rows,
    config_html,
    convergence_html,
    meta_html,
    read_machines,
    task_text,
    versions_html,
)
from rewritelab.report.style import RC
from rewritelab.report.tables import escape, html_table, occurrence_tables_html
from rewritelab.store import load_results, table_header, table_rows, text_columns

FIGURES: tuple[tuple[str, str, Callable[[Context], Any]], ...] = (
    ("e1_rules", "E1: number of training rules (or programs)", figure_rules),
    ("e2_noop", "E2: no-op examples", figure_noop),
    ("e3_alpha", "E3: skewed rule frequencies", figure_alpha),
    ("e4_family", "E4: rule families", figure_family),
    ("e4_heldout", "E4: held-out rules by kind", figure_heldout),
    ("e5_occurrences", "E5: pattern occurrences", figure_occurrences),
    ("program_steps", "Programs: execution steps", figure_steps),
    ("program_k", "Programs: rules per program", figure_k),
    ("factors", "Other settings this sweep varies", figure_factors),
    ("learning_curves", "Learning curves", figure_learning_curves),
    ("loss_curves", "Training loss", figure_loss_curves),
)


# ---------------------------------------------------------------------------------------------------------
# The report


def build_report(
    source: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    supersede: Sequence[str | os.PathLike] = (),
) -> Path:
    """Draw the figures that apply to `source` (a sweep directory, its results.sqlite or a results CSV)
    into `out_dir` (default: SWEEP_DIR/report, or NAME-report beside a CSV) and write report.html there.
    Each source in `supersede` replaces the runs of `source` it re-ran, as in `rewritelab results
    --supersede`; curves, machines and example errors come from the run folder of the run shown.

    The report's files are replaced only when the build succeeds, so a failed build never leaves a
    half-written report; files of the user's in the directory stay.
    """
    import matplotlib

    source = Path(source)
    frame = load_results(source, supersede)
    if frame.empty:
        raise UserError(f"{source}: no results yet; wait for a run of the sweep to finish")
    sweep_dir = _sweep_dir(source)
    out = Path(out_dir) if out_dir is not None else _default_out(source, sweep_dir)
    check_folder(out, REPORT)  # before the drawing work
    runs, scale_name = load_runs(frame)
    folders = run_folders(source, supersede, frame)
    curves, losses = read_curves(folders, runs), read_curves(folders, runs, kind="train")
    ctx = Context(runs, varying(runs), scale_name, curves, losses)
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
        page = render_html(frame, ctx, sections, folders, _curves_dir(source, sweep_dir))
        (tmp / REPORT_HTML).write_text(page, encoding="utf-8")
    return out / REPORT_HTML


def run_folders(
    source: str | os.PathLike, supersede: Sequence[str | os.PathLike] = (), frame: Any = None
) -> dict[str, Path]:
    """Run id → the run folder (metrics, summary, predictions) of each run of `frame` (default: the
    results of `source` superseded by `supersede`), taken from the source whose row it is: with
    superseding sources, the later sweep that re-ran the condition. Runs without a folder at hand (a CSV
    published alone) are absent."""
    sources = [Path(p) for p in (source, *supersede)]
    if frame is None:
        frame = load_results(sources[0], sources[1:])
    shown = set(zip(frame["run_id"], frame["config_json"], strict=True))
    folders = {}
    for path in sources:
        base = _curves_dir(path, _sweep_dir(path))
        if base is None:
            continue
        rows = load_results(path) if supersede else frame
        folders.update(
            (run_id, sweep_run_dir(base, run_id))
            for run_id, config in zip(rows["run_id"], rows["config_json"], strict=True)
            if (run_id, config) in shown
        )
    return folders


def _sweep_dir(source: Path) -> Path | None:
    """The sweep directory holding the run directories, or None for a CSV."""
    if source.is_dir():
        return source
    return source.parent if source.name == RESULTS_DB or source.suffix.lower() != ".csv" else None


def _curves_dir(source: Path, sweep_dir: Path | None) -> Path | None:
    """Where the run directories (`runs/<id>/metrics.jsonl`, summaries, predictions) live: the sweep
    directory, or beside a CSV that was published with its runs (so committed results regenerate the
    learning curves too)."""
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
div.headline { background: #f3f7fb; border-left: 4px solid #08519c; padding: 0.1em 1em; margin: 1em 0; }
div.headline h2 { margin-top: 0.6em; border: none; }
div.configs { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
table.config td.wrap { white-space: normal; max-width: 30em; }
table.config tr.varied td { background: #fff3c4; font-weight: bold; }
h3 { font-size: 1.05em; margin-bottom: 0.2em; }
"""


def render_html(
    frame, ctx: Context, sections: Sequence[Section], folders: dict[str, Path], sweep_dir: Path | None
) -> str:
    """One self-contained page: inline CSS, figures as base64 PNG, tables as HTML, no external URL;
    `folders` maps run ids to their run folders (`run_folders`), `sweep_dir` holds sweep.yaml (None: the
    results alone)."""
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
    found = "".join(f"<p>{escape(sentence)}</p>" for sentence in headline(ctx))
    parts += ['<div class="headline"><h2 id="found">What was found</h2>', found, "</div>"]
    parts.append(_header_table(frame, ctx))
    links = [("trained", "What was trained")]
    links += [(s.name, s.title) for s in sections]
    links += [("convergence", "Convergence"), ("breakdowns", "Breakdowns"), ("errors", "Example errors")]
    links += [("execution", "How it ran"), ("results", "Results table")]
    parts.append("<nav>" + "".join(f'<a href="#{n}">{escape(t)}</a>' for n, t in links) + "</nav>")
    parts += [
        '<h2 id="trained">What was trained</h2>',
        f"<p>{escape(task_text(ctx))}</p>",
        '<p class="caption">The resolved configuration of the runs; ◆ marks the settings that differ '
        "between runs (what this sweep varies).</p>",
        config_html(ctx.runs),
    ]
    for s in sections:
        data = base64.b64encode(s.png).decode("ascii")
        parts += [
            f'<h2 id="{s.name}">{escape(s.title)}</h2>',
            f'<img alt="{escape(s.title)}" src="data:image/png;base64,{data}">',
            f'<p class="caption">{escape(s.caption)} Files: {s.name}.png, {s.name}.svg.</p>',
            s.extra_html,
        ]
    versions = sorted({str(v) for v in frame["code_version"].dropna()})
    execution = compute_rows(ctx.runs, read_machines(folders, ctx.runs), versions)
    parts += [
        '<h2 id="convergence">Convergence</h2>',
        convergence_html(ctx.runs),
        '<h2 id="breakdowns">Breakdowns</h2>',
        breakdowns_html(ctx),
        '<h2 id="errors">Example errors</h2>',
        examples_html(example_errors(ctx, folders)),
        '<h2 id="execution">How it ran</h2>',
        meta_html(execution),
        versions_html(frame),
    ]
    header = table_header(frame)
    text = {i for i, name in enumerate(header) if name in text_columns(frame)}
    parts += [
        '<h2 id="results">Results table</h2>',
        '<p class="caption">One row per run and split; accuracy in percent with its 95% bootstrap confidence '
        "interval. I = training rules (or programs), S = examples per rule; k, answer, trace and step "
        "accuracy for Markov programs.</p>",
        html_table(header, table_rows(frame), text_columns=text),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _description(sweep_dir: Path | None) -> str:
    """The sweep's description from sweep.yaml, when the report is built from a sweep directory (or a
    CSV published beside its sweep.yaml and runs)."""
    if sweep_dir is None or not (sweep_dir / SWEEP_FILE).is_file():
        return ""
    import yaml

    try:  # read within bounds: a sweep.yaml of a folder is input like any config
        data = parse_yaml((sweep_dir / SWEEP_FILE).read_text(encoding="utf-8"), str(sweep_dir / SWEEP_FILE))
    except (yaml.YAMLError, UserError):
        return ""
    return str(data.get("description") or "") if isinstance(data, dict) else ""


def _header_table(frame, ctx: Context) -> str:
    presets = sorted({str(p) for p in frame["preset"].dropna()})
    seeds = sorted({r.seed for r in ctx.runs if r.seed is not None})
    varied = [f"{p} ({VARIED_NAMES[p]})" if p in VARIED_NAMES else p for p in varied_factors(ctx.runs)]
    rows = [
        ("preset", ", ".join(presets) or "-"),
        ("runs", str(len(ctx.runs))),
        ("seeds", ", ".join(map(str, seeds)) or "-"),
        ("splits", ", ".join(sorted(set(frame["split"])))),
        ("varied", ", ".join(varied) or "nothing"),
    ]
    return meta_html(rows)


VARIED_NAMES = {
    "data.num_rules": "number of rules I",
    "data.examples_per_rule": "examples per rule S",
    "data.budget": "training examples in all",
    "data.alpha": "power-law α",
    "data.rule_distribution": "rule frequencies",
    "data.noop_frac": "no-op share",
    "data.family": "rule family",
    "data.occurrences": "pattern occurrences",
}
