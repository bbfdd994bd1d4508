"""`rewritelab results SWEEP_DIR --format markdown|csv|parquet [--out FILE]`: export the results database."""

from __future__ import annotations

import argparse
import sys

from rewritelab.errors import UserError
from rewritelab.store import FORMATS, export


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "results",
        help="export a sweep's results database (markdown table, CSV or parquet)",
        description="Export SWEEP_DIR/results.sqlite, one row per run and split, sorted by run id and split. "
        "markdown and csv go to stdout unless --out is given; parquet needs --out and pyarrow "
        "(pip install 'rewritelab[parquet]'). A CSV export can be passed to `rewritelab report`.",
    )
    parser.add_argument("sweep_dir", metavar="SWEEP_DIR", help="a sweep directory (or its results.sqlite)")
    parser.add_argument("--format", choices=FORMATS, default="markdown", help="default: markdown")
    parser.add_argument("--out", metavar="FILE", help="write to FILE (atomically) instead of stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.format == "parquet" and args.out is None:
        raise UserError("--format parquet writes a binary file; give it a path with --out FILE")
    data = export(args.sweep_dir, args.format, args.out)
    if args.out is None:
        sys.stdout.write(data)
    else:
        print(args.out)
    return 0
