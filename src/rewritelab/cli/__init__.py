"""The `rewritelab` command line: a thin layer that parses, validates and calls the library.

Each subcommand lives in its own module of this package and exposes `register(subparsers)`, which adds
its parser and sets `func(args) -> int | None` (and `resumes=True` when re-running it resumes where it
stopped, which the message for a full disk or memory then says). Adding a command is adding one module.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from rewritelab import __version__
from rewritelab.errors import UserError, denied, exhausted

PROG = "rewritelab"


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit 2, like every other bad input."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Controlled instruction-tuning experiments on string rewrites.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except (MemoryError, OSError, RuntimeError) as e:
        # Memory or disk space ran out, or the system refused a file: say which, and what to do.
        message = exhausted(e, resumes=getattr(args, "resumes", False)) or denied(e)
        if message is None:
            raise
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2


def positive_int(text: str) -> int:
    """argparse type for counts (workers, examples): an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def track_override(text: str) -> str:
    """`--track tensorboard,wandb` as the override `train.track=[tensorboard, wandb]`."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("name at least one tracker: tensorboard, wandb or trackio")
    return f"train.track=[{', '.join(names)}]"


def add_track_option(parser: argparse.ArgumentParser) -> None:
    """`--track NAMES`: mirror each run's metrics.jsonl to experiment trackers (an execution setting)."""
    parser.add_argument(
        "--track",
        dest="overrides",
        action="append",
        type=track_override,
        metavar="NAMES",
        help="also log learning curves, evaluations and the resolved config to trackers: a comma-separated "
        "list of tensorboard, wandb (offline unless WANDB_MODE=online), trackio (needs rewritelab[track]; "
        "same as --set train.track=[...]); metrics.jsonl stays the record",
    )


def add_set_option(parser: argparse.ArgumentParser) -> None:
    """The shared `--set SECTION.KEY=VALUE` override flag (repeatable)."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config field, e.g. --set data.num_rules=500 (repeatable)",
    )
