"""`rewritelab presets [NAME]`: list the packaged sweep presets, or print one."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "presets",
        help="list the packaged sweep presets with their estimated cost (or print one)",
        description="List the packaged presets with their runs, estimated wall time on this machine and "
        "description; with NAME, print that preset's YAML (copy it to a file, edit it, and pass the file to "
        "`rewritelab sweep`).",
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="print this preset's YAML")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from rewritelab.sweep import cpu_count, load_sweep, preset_names, preset_text, sweep_estimate
    from rewritelab.textfmt import format_duration, format_table, plural

    if args.name:
        print(preset_text(args.name), end="")
        return
    rows, notes = [], set()
    for name in preset_names():
        sweep = load_sweep(name)
        runs, steps, seconds, why = sweep_estimate(sweep)
        notes.update(why)
        time = "-" if seconds is None else f"~{format_duration(seconds)}"
        rows.append([name, str(runs), f"{steps:,}", time, sweep.description])
    print(format_table(["preset", "runs", "steps", "est. time*", "description"], rows, left=(0, 4)))
    measured = "; ".join(sorted(n for n in notes if not n.startswith("no ")))
    print(
        f"\n* Estimated for this machine ({plural(cpu_count(), 'core')}, one run per core) from the "
        f"throughput the published runs measured ({measured}); - where none was measured (GPU presets). "
        "`rewritelab sweep NAME --out DIR --dry-run` times a few training steps here instead."
    )
