"""`rewritelab generate CONFIG.yaml --out DIR`: build a dataset from a config's `data:` section."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rewritelab.cli import add_set_option
from rewritelab.config import apply_overrides, from_dict, load_yaml
from rewritelab.errors import UserError
from rewritelab.layout import LM_EVAL_DIR, SFT_DIR, VERL_DIR
from rewritelab.textfmt import quoted

RUN_SECTIONS = ("data", "model", "lm", "train")  # a run config; only data: (and lm.task) is read here
RENDERED = {
    "instruction": SFT_DIR,
    "chat": SFT_DIR,
    "verl": VERL_DIR,
    "lm-eval": LM_EVAL_DIR,
}  # format -> folder


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="generate a dataset (train / validation / test splits) from a config's data: section",
        description=(
            "Generate the train, validation, test_seen and test_unseen splits (for a program family also "
            "test_unseen_strict, test_ood_steps and test_ood_length) described by the data: section of a "
            "config (a run config's model: and train: sections are ignored) and write them as JSONL with "
            "rules.jsonl and manifest.json; --format hf also writes a Hugging Face DatasetDict into DIR/hf; "
            "--format instruction / chat also write DIR/sft/SPLIT.jsonl, each example in TRL's "
            "prompt-completion format, as text or as chat messages ({prompt: [user], completion: "
            "[assistant]}); --format verl also writes DIR/verl/SPLIT.parquet in verl's RL layout, and "
            "--format lm-eval an lm-evaluation-harness task folder DIR/lm_eval (one task per test split, "
            "tagged rewritelab) (the lm: section's task setting applies: lm.task.kind encrypted enciphers "
            "the answers)."
        ),
    )
    parser.add_argument("config", metavar="CONFIG.yaml", help="YAML file with a data: section")
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output directory: new, empty, or a dataset generated before (its dataset files are replaced; "
        "other files stay, any other folder is refused)",
    )
    parser.add_argument(
        "--format",
        choices=("jsonl", "hf", *RENDERED),
        default="jsonl",
        help="jsonl (default); hf: JSONL plus a Hugging Face dataset (needs rewritelab[hf]); instruction "
        "or chat: JSONL plus sft/SPLIT.jsonl as prompt/completion text or chat messages; verl: JSONL plus "
        "verl/SPLIT.parquet (needs pyarrow); lm-eval: JSONL plus the lm_eval/ task folder",
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
                f"{args.config}: unknown top-level key {quoted(key)}; a config has the sections "
                f"{', '.join(RUN_SECTIONS)} (only data: is used by generate)"
            )
    if "data" not in config:
        raise UserError(f"{args.config}: no data: section; add one (see examples/configs/)")
    spec = from_dict(DatasetSpec, config["data"], "data")
    out = Path(args.out)
    check_output_dir(out)  # fail before the generation work, not after it
    hf, folder = args.format == "hf", RENDERED.get(args.format)
    if hf:
        require_hf()
    rendering = sft_rendering(config.get("lm") or {}) if folder else None
    if args.format == "verl":
        require_parquet()
    dataset = generate_dataset(spec)
    write_dataset(dataset, out, hf=hf)
    extra = " (JSONL + hf/)" if hf else ""
    if rendering is not None and folder is not None:
        if folder == SFT_DIR:
            write_sft(dataset, out / SFT_DIR, args.format, *rendering)
        else:
            write_entries(dataset, out / folder, args.format, *rendering)
        extra = f" (JSONL + {folder}/ in {args.format} format)"
    print(dataset_stats(dataset))
    print(f"wrote {out}{extra}")
    return 0


def sft_rendering(lm_raw: dict) -> tuple[Any, bool]:
    """(task settings, spaced letters) from a config's `lm:` section, checked before any generation."""
    from rewritelab.lm import LETTERS, TaskSettings

    task = from_dict(TaskSettings, lm_raw.get("task"), "lm.task")
    letters = lm_raw.get("letters", "joined")
    if letters not in LETTERS:
        raise UserError(f"lm.letters: expected one of {', '.join(LETTERS)}, got {quoted(letters)}")
    return task, letters == "spaced"


def require_parquet() -> None:
    try:
        import pyarrow  # noqa: F401 - only to fail before the generation work
    except ImportError:
        raise UserError("--format verl needs pyarrow; pip install 'rewritelab[parquet]'") from None


def write_entries(dataset, out: Path, fmt: str, task: Any, spaced: bool) -> None:
    """The verifier's entries of every split, as verl parquet files or an lm-eval task folder."""
    from rewritelab.lm import dataset_entries

    splits = dataset_entries(dataset, task.kind, task.cipher_seed, spaced)
    if fmt == "verl":
        from rewritelab.integrations import write_verl

        write_verl(splits, out)
    else:
        from rewritelab.integrations import write_tasks

        write_tasks(splits, out)


def write_sft(dataset, out: Path, style: str, task: Any, spaced: bool) -> None:
    """sft/SPLIT.jsonl: every example rendered as text (see rewritelab.lm.prompts)."""
    import json

    from rewritelab.io import atomic_write_text
    from rewritelab.lm import sft_records, task_dataset

    rendered = task_dataset(dataset, task.kind, task.cipher_seed)
    out.mkdir(parents=True, exist_ok=True)
    for name, split in rendered.splits.items():
        records = sft_records(split, style, encrypted=task.kind == "encrypted", spaced=spaced)
        atomic_write_text(out / f"{name}.jsonl", "".join(json.dumps(r) + "\n" for r in records))
