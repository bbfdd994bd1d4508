"""Both kinds of run behind one door: a config with an `lm:` section fine-tunes a pretrained model, any
other trains rewritelab's GPT from scratch. `train`, `evaluate` and the sweep backends build, train and
evaluate runs only through these functions, so the choice of kind is made here and nowhere else."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rewritelab.folders import RUN, lock_folder
from rewritelab.lm.config import LMRunConfig, is_lm_config, lm_run_config_from_dict
from rewritelab.lm.evaluate import evaluate_lm_run
from rewritelab.lm.pipeline import train_lm_run
from rewritelab.run import RunConfig, evaluate_run, run_config_from_dict, train_run
from rewritelab.run.rundir import read_run_config
from rewritelab.textfmt import ProgressMode

AnyRunConfig = RunConfig | LMRunConfig


def build_any_run_config(raw: dict[str, Any]) -> AnyRunConfig:
    """Plain run config data → `LMRunConfig` (it has `lm:`) or `RunConfig`; `UserError` names a bad field."""
    return lm_run_config_from_dict(raw) if is_lm_config(raw) else run_config_from_dict(raw)


def train_any_run(
    cfg: AnyRunConfig,
    run_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    progress: ProgressMode | bool | None = None,
) -> dict[str, Any]:
    """Train (or resume, or just return) a run of either kind; returns its summary."""
    if isinstance(cfg, LMRunConfig):
        return train_lm_run(cfg, run_dir, data_dir, progress)
    return train_run(cfg, run_dir, data_dir=data_dir, progress=progress)


def evaluate_any_run(
    run_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    splits: Sequence[str] | None = None,
    progress: str | bool | None = None,
    max_examples: int | None = None,
) -> dict[str, Any]:
    """Re-score a finished run of either kind (its recorded config.yaml says which), holding the run's
    lock: a run that another process trains or scores is refused. (Scoring checks that the directory
    holds a run, its config and checkpoint, before it writes.)"""
    run_dir = Path(run_dir)
    score = evaluate_lm_run if is_lm_config(read_run_config(run_dir)) else evaluate_run
    with lock_folder(run_dir, RUN):
        return score(run_dir, data_dir=data_dir, splits=splits, progress=progress, max_examples=max_examples)
