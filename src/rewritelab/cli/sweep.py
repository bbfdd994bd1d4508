"""`rewritelab sweep PRESET_OR_FILE --out SWEEP_DIR`: train every run of a grid × seeds, idempotently."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import TYPE_CHECKING

from rewritelab.cli import PROG, add_set_option, add_track_option, positive_int
from rewritelab.textfmt import plural

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
    parser.set_defaults(func=run, resumes=True)  # re-running it resumes: said when memory or disk runs out


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
    add_track_option(parser)
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="check everything the real command checks, then print each run (to train, finished, or "
        "copied by --reuse) with its steps and tokens and the estimated wall time on this machine (from a "
        "few timed training steps); write and train nothing",
    )


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


def interrupted(args: argparse.Namespace, command: str, source: str, out: str | os.PathLike) -> int:
    """Ctrl-C (or SIGTERM) on a sweep: one line with the command that resumes it (exit status 130)."""
    words = ["rewritelab", command, source, "--out", str(out)]
    words += ["--seeds", args.seeds] if args.seeds is not None else []
    words += ["--backend", args.backend] if args.backend != "local" else []
    words += ["--workers", str(args.workers)] if args.workers is not None else []
    words += ["--ray-address", args.ray_address] if args.ray_address else []
    words += [w for source in args.reuse for w in ("--reuse", source)]
    words += [w for override in args.overrides for w in ("--set", override)]
    print(
        f"{PROG}: interrupted; finished runs are recorded and running ones checkpointed: resume with "
        f"`{shlex.join(words)}`",
        file=sys.stderr,
    )
    return 130


def report_outcome(result: SweepResult) -> int:
    """One closing line per failed run and a tally; exit status 1 when any run failed."""
    for run_id, why in result.failed.items():
        print(f"failed: {run_id}: {why}", file=sys.stderr)
    done = len(result.skipped) + len(result.finished)
    if result.reused:
        sources = ", ".join(sorted({str(p.parent) for p in result.reused.values()}))
        print(f"reused {plural(len(result.reused), 'finished run')} (copied from {sources})", file=sys.stderr)
    print(
        f"{done}/{len(result.runs)} runs finished ({len(result.skipped)} already done), "
        f"{len(result.failed)} failed; results: {result.db_path}",
        file=sys.stderr,
    )
    return 1 if result.failed else 0


def dry_run(args: argparse.Namespace, sweep: Sweep, out: str | os.PathLike) -> int:
    from rewritelab.sweep import format_plan, plan_sweep

    plan = plan_sweep(
        sweep, out, backend=args.backend, workers=args.workers, ray_address=args.ray_address, reuse=args.reuse
    )
    print(format_plan(plan))
    return 0


def run(args: argparse.Namespace) -> int:
    sweep = load_from_args(args, args.source)
    if args.dry_run:
        return dry_run(args, sweep, args.out)
    try:
        result = sweep_from_args(args, sweep, args.out)
    except KeyboardInterrupt:
        return interrupted(args, "sweep", args.source, args.out)
    return report_outcome(result)
