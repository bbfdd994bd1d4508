"""`rewritelab markov RULES_FILE --input TEXT`: run a Markov algorithm (see docs/markov.md)."""

from __future__ import annotations

import argparse

from rewritelab.data import DEFAULT_MAX_STEPS, load_ruleset


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "markov",
        help="run a Markov algorithm (ordered rewrite rules) on a string",
        description="Apply the first rule whose pattern occurs, at its leftmost occurrence, until a "
        "terminating rule fires or no rule applies; print the final string.",
    )
    parser.add_argument("rules_file", metavar="RULES_FILE", help="one 'pattern -> replacement' rule per line")
    parser.add_argument("--input", required=True, metavar="TEXT", help="the string to rewrite")
    parser.add_argument(
        "--max-steps",
        type=int,
        default=DEFAULT_MAX_STEPS,
        metavar="N",
        help=f"stop with an error after N rewrites without halting (default {DEFAULT_MAX_STEPS})",
    )
    parser.add_argument(
        "--trace", action="store_true", help="print each step (number, rule index, rule, result) first"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    program = load_ruleset(args.rules_file)
    text = args.input
    for step in program.trace(text, args.max_steps):
        text = step.text
        if args.trace:
            print(f"step {step.step}: rule {step.rule_index} ({step.rule}): {text}")
    print(text)
