"""`rewritelab sweep PRESET_OR_FILE --out SWEEP_DIR`: train every run of a grid × seeds, idempotently."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from rewritelab.cli import add_set_option, positive_int

if TYPE_CHECKING:
    from rewritelab.sweep import Sweep, SweepResult


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="run a preset or sweep file: grid × seeds → runs → results.sqlite",
        description="Expand the grid × seeds into runs (SWEEP_DIR/runs/RUN_ID), validate every run config, "
        "train the unfinished runs (finished ones are skipped, interrupted ones resume) and record each "
        "finished run in SWEEP_DIR/results.sqlite. Re-run the same command to resume a sweep.",
    )
    parser.add_argument(
        "source",
        metavar="PRESET_OR_FILE",
        help="a preset name (see `rewritelab presets`) or a sweep YAML file",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="SWEEP_DIR",
        help="the sweep directory: new, empty, or this sweep's own (it resumes); refused while another "
        "process writes it",
    )
    add_run_options(parser)
    parser.add_argument("--dry-run", action="store_true", help="validate and list the run ids; train nothing")
    parser.set_defaults(func=run)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by `sweep` and `reproduce`."""
    parser.add_argument(
        "--seeds", type=str, metavar="S1,S2,...", help="replace the preset's seeds, e.g. 0,1,2"
    )
    parser.add_argument(  # checked by the sweep against its registered backends (rewritelab.sweep.BACKENDS)
        "--backend",
        default="local",
        metavar="NAME",
        help="where the runs train: local, worker processes on this machine (default); ray, one Ray task "
        "per run; or a backend registered with rewritelab.sweep.register_backend",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="runs at once (default: one per CPU core, or one at a time on CUDA); "
        "each gets cores // N threads (or what --set train.threads=K asks for)",
    )
    parser.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="join an existing Ray cluster (HOST:PORT, ray://HOST:PORT or auto) instead of "
        "starting a local instance; SWEEP_DIR must be on a filesystem shared by every node",
    )
    parser.add_argument(
        "--reuse",
        action="append",
        default=[],
        metavar="DIR",
        help="copy, instead of training, each run that a finished run of the sweep directory DIR already "
        "computed (identical data, model and training config; repeatable)",
    )
    add_set_option(parser)


def load_from_args(args: argparse.Namespace, source: str) -> Sweep:
    from rewritelab.sweep import load_sweep, parse_seeds_option

    seeds = parse_seeds_option(args.seeds) if args.seeds is not None else None
    return load_sweep(source, args.overrides, seeds)


def sweep_from_args(args: argparse.Namespace, sweep: Sweep, out: str | os.PathLike) -> SweepResult:
    from rewritelab.sweep import run_sweep

    return run_sweep(
        sweep,
        out,
        backend=args.backend,
        workers=args.workers,
        ray_address=args.ray_address,
        reuse=args.reuse,
    )


def report_outcome(result: SweepResult) -> int:
    """One closing line per failed run and a tally; exit status 1 when any run failed."""
    for run_id, why in result.failed.items():
        print(f"failed: {run_id}: {why}", file=sys.stderr)
    done = len(result.skipped) + len(result.finished)
    if result.reused:
        sources = ", ".join(sorted({str(p.parent) for p in result.reused.values()}))
        print(f"reused {len(result.reused)} finished runs (copied from {sources})", file=sys.stderr)
    print(
        f"{done}/{len(result.runs)} runs finished ({len(result.skipped)} already done), "
        f"{len(result.failed)} failed; results: {result.db_path}",
        file=sys.stderr,
    )
    return 1 if result.failed else 0


def run(args: argparse.Namespace) -> int:
    sweep = load_from_args(args, args.source)
    if args.dry_run:
        from rewritelab.sweep import expand, validate_runs

        runs = expand(sweep)
        validate_runs(runs)
        for spec in runs:
            print(spec.run_id)
        return 0
    return report_outcome(sweep_from_args(args, sweep, args.out))
