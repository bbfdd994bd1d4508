"""`rewritelab converged DIR...`: judge runs' convergence from their metrics.jsonl (run or sweep dirs)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rewritelab.convergence import ACC_DELTA_MAX, LOSS_DROP_MAX, TAIL, run_convergence
from rewritelab.errors import UserError
from rewritelab.io import check_target
from rewritelab.layout import METRICS, RUNS_DIR
from rewritelab.store import natural_key

if TYPE_CHECKING:
    from rewritelab.sweep import Missed

CRITERION = (
    f"the training loss drop between the two halves of the last {TAIL:.0%} of steps (converged: < "
    f"{LOSS_DROP_MAX} nats per answer token) and the largest move of a learning-curve accuracy between the "
    f"last two evaluations in that window (< {ACC_DELTA_MAX:.0%})"
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "converged",
        help="judge whether runs ended converged, from their metrics.jsonl",
        description=f"For each run (a run directory, or every run under a sweep directory's {RUNS_DIR}/): "
        f"{CRITERION}. Prints a markdown table; runs recorded since this judgement was added also carry it "
        "in summary.json and the results database.",
    )
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="run directories or sweep directories")
    parser.add_argument(
        "--rerun",
        metavar="FILE",
        help="with one sweep directory: also write a new sweep file FILE that re-runs every condition with "
        "an unconverged run, all seeds, for twice the training (epochs, max_steps, eval_every), to read "
        "with `results --supersede` (the convergence rule of docs/results.md)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rerun = None
    if args.rerun:  # checked and read before anything is printed
        from rewritelab.sweep import rerun_sweep  # torch: only for --rerun

        rerun = rerun_sweep(_rerun_source(args.dirs, Path(args.rerun)))
    runs = [run_dir for d in args.dirs for run_dir in _run_dirs(Path(d))]
    lines = ["| run | loss drop | Δacc | converged |", "|---|---:|---:|---|"]
    for run_dir in runs:
        judged = run_convergence(run_dir)
        if judged is None:
            lines.append(f"| {run_dir.name} | - | - | too short to judge |")
            continue
        delta = "-" if judged["acc_delta"] is None else f"{100 * judged['acc_delta']:.1f} pts"
        verdict = "yes" if judged["converged"] else "no"
        lines.append(f"| {run_dir.name} | {judged['loss_drop']:.4f} | {delta} | {verdict} |")
    print("\n".join(lines))
    if args.rerun:
        _write_rerun(rerun, args.dirs[0], Path(args.rerun))
    return 0


def _rerun_source(dirs: list[str], path: Path) -> str:
    """The one sweep directory --rerun reads, checked before anything is judged or printed."""
    if len(dirs) != 1:
        raise UserError(f"--rerun takes one sweep directory, got {len(dirs)} directories")
    check_target(path)
    if path.exists():
        raise UserError(f"{path} exists; --rerun writes a new file and never replaces one")
    return dirs[0]


def _write_rerun(rerun: tuple[str, list[Missed]] | None, sweep_dir: str, path: Path) -> None:
    from rewritelab.io import atomic_write_text

    if rerun is None:
        print(f"every judged run converged: nothing to re-run, {path} not written")
        return
    text, missed = rerun
    atomic_write_text(path, text)
    print(
        f"wrote {path}: re-runs the conditions of {len(missed)} unconverged run(s) at twice the training; "
        f"then rewritelab sweep {path} --out RERUN and rewritelab results {sweep_dir} --supersede RERUN"
    )


def _run_dirs(path: Path) -> list[Path]:
    if (path / METRICS).is_file():
        return [path]
    runs = [p for p in (path / RUNS_DIR).glob("*") if (p / METRICS).is_file()]
    if not runs:
        raise UserError(
            f"{path}: neither a run directory (no {METRICS}) nor a sweep with runs under {RUNS_DIR}/"
        )
    return sorted(runs, key=lambda p: natural_key(p.name))
