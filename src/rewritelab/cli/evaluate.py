"""`rewritelab evaluate RUN_DIR`: re-score a trained run, rewrite its predictions and summary.json."""

from __future__ import annotations

import argparse
from pathlib import Path

from rewritelab.cli import positive_int
from rewritelab.textfmt import PROGRESS_MODES


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="re-evaluate a trained run (from scratch or lm:): exact match, breakdowns, predictions, "
        "summary.json",
        description="Score the run's checkpoint on its test splits (greedy exact match of the whole "
        "answer), rewrite RUN_DIR/predictions/SPLIT.jsonl and RUN_DIR/summary.json, and print the accuracy "
        "with its 95% interval, the breakdowns (applied / no-op, rule frequency, occurrences, …) and where "
        "the predictions and the summary went.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `rewritelab train`")
    parser.add_argument("--data", metavar="DIR", help="the dataset directory the run was trained on, if any")
    parser.add_argument(
        "--split",
        dest="splits",
        action="append",
        metavar="NAME",
        help="evaluate only this split (repeatable; default: every test split, for a program dataset also "
        "test_unseen_strict, test_ood_steps and test_ood_length)",
    )
    parser.add_argument(
        "--max-test-examples",
        type=positive_int,
        metavar="N",
        help="score a fixed random subset of at most N examples per split (default: train.test_examples, "
        "i.e. all); recorded in summary.json",
    )
    parser.add_argument(
        "--progress",
        choices=PROGRESS_MODES,
        help="progress display (default: train.progress: a bar on a terminal, log lines otherwise)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from rewritelab.kinds import evaluate_any_run
    from rewritelab.layout import SUMMARY, predictions_file
    from rewritelab.run import format_breakdowns, format_summary

    summary = evaluate_any_run(
        args.run_dir,
        data_dir=args.data,
        splits=args.splits,
        progress=args.progress,
        max_examples=args.max_test_examples,
    )
    run_dir = Path(args.run_dir)
    scored = args.splits or list(summary["accuracy"])
    print(format_summary(summary), format_breakdowns(summary), sep="\n\n")
    print(f"\npredictions: {', '.join(str(predictions_file(run_dir, split)) for split in scored)}")
    print(f"summary (accuracy, intervals, breakdowns, config): {run_dir / SUMMARY}")
