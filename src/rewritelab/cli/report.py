"""`rewritelab report SOURCE [--out DIR] [--supersede LATER]`: figures and a self-contained report.html."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="draw a sweep's figures and a self-contained report.html",
        description="Draw the figures that apply to the results (accuracy vs number of rules, vs alpha, "
        "no-op vs applied, per family, occurrence table, learning curves) as PNG and SVG, and write "
        "report.html (images embedded, opens offline in any browser). SOURCE is a sweep directory, its "
        "results.sqlite, or a CSV from `rewritelab results --format csv`. Prints the report's path.",
    )
    parser.add_argument("source", metavar="SWEEP_DIR_OR_CSV", help="a sweep directory or a results CSV")
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="output directory (default: SWEEP_DIR/report, or NAME-report by a CSV): new, empty, or an "
        "earlier report, whose figures are replaced (other files stay)",
    )
    parser.add_argument(
        "--supersede",
        metavar="LATER",
        action="append",
        default=[],
        help="a later sweep (or its CSV) that re-ran some of SOURCE's conditions, e.g. trained longer: its "
        "runs replace them, curves included, as in `rewritelab results --supersede` (repeatable)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rewritelab.report import build_report

    print(build_report(args.source, args.out, args.supersede))
    return 0
