"""`rewritelab presets [NAME]`: list the packaged sweep presets, or print one."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "presets",
        help="list the packaged sweep presets (or print one)",
        description="List the packaged presets with their descriptions; with NAME, print that preset's YAML "
        "(copy it to a file, edit it, and pass the file to `rewritelab sweep`).",
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="print this preset's YAML")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> None:
    from rewritelab.sweep import available_presets, preset_text

    if args.name:
        print(preset_text(args.name), end="")
        return
    presets = available_presets()
    width = max(len(name) for name in presets)
    for name, description in presets.items():
        print(f"{name.ljust(width)}  {description}")
