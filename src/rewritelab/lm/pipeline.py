"""One `lm:` run from end to end: fine-tune (or resume) the adapter, then evaluate it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rewritelab.data import check_memory
from rewritelab.folders import RUN, check_folder, hold_folder
from rewritelab.lm.config import LMRunConfig, same_lm_run
from rewritelab.lm.evaluate import evaluate_lm_run
from rewritelab.lm.train import train_lm
from rewritelab.run.rundir import finished_summary
from rewritelab.run.tracking import tracking
from rewritelab.textfmt import ProgressMode, progress_mode


def train_lm_run(
    cfg: LMRunConfig,
    run_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    progress: ProgressMode | bool | None = None,
) -> dict[str, Any]:
    """Train (or resume, or just return) the `lm:` run in `run_dir`; returns its summary, as `train_run`."""
    run_dir = Path(run_dir)
    check_folder(run_dir, RUN)
    if data_dir is None:
        check_memory(cfg.data)  # before the run folder is made: a size that cannot fit leaves nothing
    summary = finished_summary(run_dir, cfg, data_dir, same=same_lm_run)
    if summary is not None:
        return summary
    with hold_folder(run_dir, RUN):
        mode = progress_mode(progress, cfg.train.progress)
        with tracking(cfg, run_dir) as track:  # train.track: metrics.jsonl mirrored to experiment trackers
            trained = train_lm(cfg, run_dir, data_dir, mode)
            summary = evaluate_lm_run(run_dir, data_dir=data_dir, trained=trained, progress=mode)
            track.summary(summary)
            return summary
