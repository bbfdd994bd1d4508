"""`rewritelab results SOURCE --format markdown|csv|parquet|seeds [--out FILE]`: export the results
database, or tabulate it over seeds."""

from __future__ import annotations

import argparse
import sys

from rewritelab import store  # store.export: a function the package exports, named like its module
from rewritelab.errors import UserError
from rewritelab.io import atomic_write_text
from rewritelab.store import FORMATS, check_export_path

SEEDS = "seeds"  # not an export of rows: one row per condition and split, statistics over the seeds


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "results",
        help="export a sweep's results database (markdown table, CSV or parquet)",
        description="Export SOURCE's results, one row per run and split, sorted by run id and split. "
        "markdown and csv go to stdout unless --out is given; parquet needs --out and pyarrow "
        "(pip install 'rewritelab[parquet]'). A CSV export can be passed to `rewritelab report`. "
        "--format seeds prints a markdown table with one row per condition and split instead: each "
        "seed's accuracy (%), their mean, the 95% interval across seeds (Student t) beside the runs' "
        "bootstrap interval, the fewest distinct training patterns and how many runs converged.",
    )
    parser.add_argument(
        "sweep_dir", metavar="SOURCE", help="a sweep directory, its results.sqlite or an exported results CSV"
    )
    parser.add_argument("--format", choices=(*FORMATS, SEEDS), default="markdown", help="default: markdown")
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="write to FILE (atomically) instead of stdout; an existing FILE must be an earlier export",
    )
    parser.add_argument(
        "--supersede",
        metavar="LATER",
        action="append",
        default=[],
        help="a results source (sweep directory, database or CSV) that re-ran some of SOURCE's conditions, "
        "e.g. trained longer to convergence: its runs replace SOURCE's of the same condition and seed "
        "(matched by the experimental columns, not the run id; its other runs are left out); repeatable, "
        "later ones win",
    )
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="first re-make SOURCE/results.sqlite (SOURCE: a sweep directory) from its runs' summary.json "
        "files, e.g. after the database was damaged (the old file is kept as "
        "results.sqlite.before-rebuild), then export",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.format == "parquet" and args.out is None:
        raise UserError("--format parquet writes a binary file; give it a path with --out FILE")
    if args.out is not None:
        check_export_path(args.out)
    if args.rebuild:
        from rewritelab.sweep import rebuild_results

        count, kept = rebuild_results(args.sweep_dir)
        before = f"; the previous database is kept as {kept}" if kept else ""
        print(f"rebuilt {args.sweep_dir}/results.sqlite from {count} finished runs{before}", file=sys.stderr)
    if args.format == SEEDS:
        from rewritelab.report import seed_table  # matplotlib and friends only for this format

        data = seed_table(args.sweep_dir, args.supersede)
        if args.out is not None:
            atomic_write_text(args.out, data)
    else:
        data = store.export(args.sweep_dir, args.format, args.out, args.supersede)
    if args.out is None:
        sys.stdout.write(data)
    else:
        print(args.out)
    return 0
