"""`rewritelab converged DIR...`: judge runs' convergence from their metrics.jsonl (run or sweep dirs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rewritelab.convergence import ACC_DELTA_MAX, LOSS_DROP_MAX, TAIL, run_convergence
from rewritelab.errors import UserError
from rewritelab.layout import METRICS, RUNS_DIR
from rewritelab.store import natural_key

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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
    return 0


def _run_dirs(path: Path) -> list[Path]:
    if (path / METRICS).is_file():
        return [path]
    runs = [p for p in (path / RUNS_DIR).glob("*") if (p / METRICS).is_file()]
    if not runs:
        raise UserError(
            f"{path}: neither a run directory (no {METRICS}) nor a sweep with runs under {RUNS_DIR}/"
        )
    return sorted(runs, key=lambda p: natural_key(p.name))
