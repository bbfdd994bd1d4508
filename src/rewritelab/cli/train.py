"""`rewritelab train RUN_CONFIG.yaml --out RUN_DIR`: train one run (resuming it if interrupted)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rewritelab.cli import PROG, add_set_option, add_track_option, positive_int
from rewritelab.errors import UserError
from rewritelab.textfmt import PROGRESS_MODES


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one run from a config (data, model or lm, train sections); resumes an interrupted run",
        description="Generate the data (or read --data), train, evaluate on the test splits and write "
        "RUN_DIR/summary.json. Re-running the same command resumes from RUN_DIR/checkpoint.pt; a finished "
        "run is not retrained. Ctrl-C (or SIGTERM) saves a checkpoint first. Works under torchrun "
        "(`torchrun --nproc_per_node N -m rewritelab train ...`) for data-parallel training. A config with "
        "an lm: section instead of model: fine-tunes a pretrained Hugging Face causal LM with LoRA "
        "(needs rewritelab[lm]).",
    )
    parser.add_argument(
        "config", metavar="CONFIG.yaml", help="run config with data:, model: (or lm:), train: sections"
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="RUN_DIR",
        help="the run directory: new, empty, or this run's own (it resumes); refused while another process "
        "writes it",
    )
    parser.add_argument("--data", metavar="DIR", help="train on a dataset written by `generate` instead")
    add_set_option(parser)
    add_track_option(parser)
    parser.add_argument(
        "--progress",
        choices=PROGRESS_MODES,
        help="progress display (default: train.progress, i.e. a bar on a terminal, log lines otherwise)",
    )
    parser.add_argument(
        "--max-test-examples",
        type=positive_int,
        metavar="N",
        help="final evaluation on a fixed random subset of at most N examples per test split "
        "(same as --set train.test_examples=N; default: all)",
    )
    parser.set_defaults(func=run, resumes=True)  # re-running it resumes: said when memory or disk runs out


def read_run_config_file(path: str) -> dict:
    """The run config at `path`; a preset name or a sweep file says to use `rewritelab sweep`."""
    from rewritelab.config import load_yaml
    from rewritelab.sweep import is_sweep_file, preset_names

    if not Path(path).exists() and path in preset_names():
        raise UserError(
            f"{path}: a preset, not a run config file: run it with `rewritelab sweep {path} --out "
            f"runs/{path}` (`rewritelab presets {path}` prints it)"
        )
    raw = load_yaml(path)
    if is_sweep_file(raw):
        raise UserError(
            f"{path}: a sweep file (base:, grid:, seeds:), not a run config: run it with `rewritelab sweep "
            f"{path} --out SWEEP_DIR`"
        )
    return raw


def run(args: argparse.Namespace) -> int:
    from rewritelab.config import apply_overrides
    from rewritelab.kinds import build_run_config, train_any_run
    from rewritelab.run import TrainingInterrupted, format_summary

    overrides = list(args.overrides)
    if args.max_test_examples is not None:
        overrides.append(f"train.test_examples={args.max_test_examples}")
    raw = apply_overrides(read_run_config_file(args.config), overrides)
    try:
        summary = train_any_run(build_run_config(raw), args.out, args.data, args.progress)
    except TrainingInterrupted as e:
        print(f"{PROG}: interrupted: {e}", file=sys.stderr)
        return 128 + e.signum
    if summary:  # empty on the non-zero ranks of a torchrun job
        print(format_summary(summary))
    return 0
