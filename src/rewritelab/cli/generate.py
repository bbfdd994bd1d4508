"""`rewritelab generate CONFIG.yaml --out DIR`: build a dataset from a config's `data:` section."""

from __future__ import annotations

import argparse
from pathlib import Path

from rewritelab.cli import add_set_option
from rewritelab.config import apply_overrides, from_dict, load_yaml
from rewritelab.errors import UserError

RUN_SECTIONS = ("data", "model", "train")  # the same YAML is a run config; only data: is read here


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="generate a dataset (train / test_seen / test_unseen) from a config's data: section",
        description=(
            "Generate the train, test_seen and test_unseen splits described by the data: section of a "
            "config (a run config's model: and train: sections are ignored) and write them as JSONL with "
            "rules.jsonl and manifest.json; --format hf also writes a Hugging Face DatasetDict into DIR/hf."
        ),
    )
    parser.add_argument("config", metavar="CONFIG.yaml", help="YAML file with a data: section")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (written atomically)")
    parser.add_argument(
        "--format",
        choices=("jsonl", "hf"),
        default="jsonl",
        help="jsonl (default) or hf: JSONL plus a Hugging Face dataset (needs rewritelab[hf])",
    )
    add_set_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rewritelab.data import (
        DatasetSpec,
        check_output_dir,
        dataset_stats,
        generate_dataset,
        require_hf,
        write_dataset,
    )

    config = apply_overrides(load_yaml(args.config), args.overrides)
    for key in config:
        if key not in RUN_SECTIONS:
            raise UserError(
                f"{args.config}: unknown top-level key {key!r}; a config has the sections "
                f"{', '.join(RUN_SECTIONS)} (only data: is used by generate)"
            )
    if "data" not in config:
        raise UserError(f"{args.config}: no data: section; add one (see examples/configs/)")
    spec = from_dict(DatasetSpec, config["data"], "data")
    out = Path(args.out)
    check_output_dir(out)  # fail before the generation work, not after it
    hf = args.format == "hf"
    if hf:
        require_hf()
    dataset = generate_dataset(spec)
    write_dataset(dataset, out, hf=hf)
    print(dataset_stats(dataset))
    print(f"wrote {out}" + (" (JSONL + hf/)" if hf else ""))
    return 0
