"""Final evaluation of an `lm:` run: score the adapter on the test splits, write predictions/SPLIT.jsonl
and summary.json through the same functions as a from-scratch run (`run.scoring.split_report`,
`run.evaluate.write_predictions` / `write_summary`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewritelab.config import to_dict
from rewritelab.errors import UserError
from rewritelab.layout import CHECKPOINT, EVAL_SPLITS, RUN_CONFIG, predictions_file
from rewritelab.lm.config import lm_run_config_from_dict
from rewritelab.lm.scoring import score_lm_split
from rewritelab.lm.train import LMSetup, check_lm_checkpoint, load_adapter, setup
from rewritelab.run.checkpoint import read_checkpoint
from rewritelab.run.device import autocast_for, resolve_device
from rewritelab.run.evaluate import write_predictions, write_summary
from rewritelab.run.rundir import check_data_manifest, read_run_config
from rewritelab.run.scoring import eval_subset, split_report
from rewritelab.textfmt import Progress, progress_mode


def evaluate_lm_run(
    run_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    splits: Sequence[str] | None = None,
    trained: LMSetup | None = None,
    progress: str | bool | None = None,
    max_examples: int | None = None,
) -> dict[str, Any]:
    """Score a finished `lm:` run on `splits` (default: both test splits); as `run.evaluate_run`.

    `trained` lets the training loop pass the model and data it holds instead of reloading them.
    """
    run_dir = Path(run_dir)
    cfg = lm_run_config_from_dict(read_run_config(run_dir))
    ckpt_path = run_dir / CHECKPOINT
    ckpt = read_checkpoint(ckpt_path)
    check_lm_checkpoint(ckpt, cfg, ckpt_path)
    state = ckpt["state"]
    if state["step"] < ckpt["total_steps"]:
        raise UserError(
            f"{run_dir}: training stopped at step {state['step']} of {ckpt['total_steps']}; finish it first "
            f"(re-run `rewritelab train {run_dir / RUN_CONFIG} --out {run_dir}`)"
        )
    device = resolve_device(cfg.train.device)
    if trained is None:
        trained = setup(cfg, data_dir, device)
        load_adapter(trained.model, ckpt["model"], ckpt_path)
    check_data_manifest(run_dir, trained.dataset.manifest)
    names = list(splits) if splits else list(EVAL_SPLITS)
    unknown = [name for name in names if name not in trained.dataset.splits]
    if unknown:
        choices = ", ".join(trained.dataset.splits)
        raise UserError(f"--split {unknown[0]}: no such split; choose from {choices}")
    amp = autocast_for(device, cfg.train.dtype, frozen_base=True)
    limit = cfg.train.test_examples if max_examples is None else max_examples
    mode = progress_mode(progress, cfg.train.progress)
    reports = {}
    for name in names:
        split, enc = trained.dataset.splits[name], trained.encoded[name]
        if limit is not None and limit < len(split):
            keep = eval_subset(len(split), limit)
            split = split.subset(keep)
            enc = enc.subset(keep)
        bar = Progress(len(split), desc=f"evaluate {name}", unit="ex", mode=mode)
        try:
            correct, predictions = score_lm_split(
                trained.model, trained.tokenizer, trained.template, split, enc, device, amp, bar,
                spaced=cfg.lm.spaced,
            )  # fmt: skip
        finally:
            bar.close()
        report = split_report(split, correct, predictions)
        write_predictions(predictions_file(run_dir, name), split, predictions, report.pop("correct"))
        reports[name] = report
    return write_summary(run_dir, reports, state, to_dict(cfg), limit, merge=bool(splits))
