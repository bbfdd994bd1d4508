"""`rewritelab reproduce PRESET`: sweep + report + a summary table and the measured contrast."""

from __future__ import annotations

import argparse
from pathlib import Path

from rewritelab.cli.sweep import (
    add_run_options,
    dry_run,
    interrupted,
    load_from_args,
    report_outcome,
    sweep_from_args,
)
from rewritelab.layout import DEFAULT_SWEEPS_ROOT


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "reproduce",
        help="run a preset end to end: sweep, report, summary table",
        description="Run every run of the preset (resuming where a previous call stopped), draw the report, "
        "and print one line per run (I, S, alpha, no-op share, family, seen / unseen accuracy with 95% CI) "
        "and the report's headline: the measured accuracy contrast with its 95% interval and the cautions "
        "that apply.",
    )
    parser.add_argument(
        "preset",
        metavar="PRESET_OR_FILE",
        help="a preset name (see `rewritelab presets`) or a sweep YAML file",
    )
    parser.add_argument("--out", metavar="DIR", help="the sweep directory (default: runs/PRESET)")
    add_run_options(parser)
    parser.set_defaults(func=run, resumes=True)  # re-running it resumes: said when memory or disk runs out


def run(args: argparse.Namespace) -> int:
    from rewritelab.report import build_report, headline_of, reproduce_rows, reproduce_table

    sweep = load_from_args(args, args.preset)
    out = Path(args.out) if args.out else Path(DEFAULT_SWEEPS_ROOT) / sweep.name
    if args.dry_run:
        return dry_run(args, sweep, out)
    try:
        result = sweep_from_args(args, sweep, out)
    except KeyboardInterrupt:
        return interrupted(args, "reproduce", args.preset, out)
    status = report_outcome(result)
    rows = reproduce_rows(result.db_path, [r.run_id for r in result.runs])
    if not rows:
        return status or 1
    report = build_report(out)
    print(reproduce_table(rows))
    for sentence in headline_of(result.db_path):
        print(sentence)
    print(f"report: {report}")
    return status
