"""One run from end to end, of any kind: train (or resume) the run in a directory, then evaluate it.

The only module that knows both halves (after minGPT's project files, which compose a trainer that knows
nothing of evaluation with the evaluation): `run.train` leaves a trained model, `run.evaluate` scores it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from rewritelab.folders import RUN, check_folder, hold_folder
from rewritelab.run.config import with_resolved_dtype
from rewritelab.run.device import Dist, setup_distributed
from rewritelab.run.evaluate import evaluate_trained
from rewritelab.run.kind import RunKind
from rewritelab.run.rundir import finished_summary
from rewritelab.run.tracking import tracking
from rewritelab.run.train import train_model
from rewritelab.textfmt import ProgressMode, progress_mode


def train_and_evaluate(
    kind: RunKind,
    cfg: Any,
    run_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    progress: ProgressMode | bool | None = None,
) -> dict[str, Any]:
    """Train (or resume, or just return) the run of `kind` in `run_dir`; returns its summary.

    A finished run (summary.json present, same config) returns at once; an interrupted one resumes from
    checkpoint.pt. `progress` overrides `train.progress` (True = auto, False = none). Under torchrun (a
    kind that trains data-parallel), only rank 0 writes, evaluates and returns the summary; other ranks
    return {}. A directory that is not a run is refused, and one that another process is training (its
    lock held) too.
    """
    run_dir = Path(run_dir)
    cfg = with_resolved_dtype(cfg, kind.frozen_base)  # compared with a run's record as it ran: auto resolved
    check_folder(run_dir, RUN)
    kind.check_fits(cfg, data=data_dir is None)  # before the run folder is made: a refusal leaves nothing
    summary = finished_summary(run_dir, cfg, data_dir, same=kind.same_run)
    if summary is not None:
        return summary
    dist = setup_distributed(cfg.train.device) if kind.distributed else Dist()  # after every rank checked
    try:
        with hold_folder(run_dir, RUN) if dist.is_main else contextlib.nullcontext():
            mode = progress_mode(progress, cfg.train.progress)
            with tracking(cfg, run_dir, enabled=dist.is_main) as track:  # train.track: metrics to trackers
                built = train_model(kind, cfg, run_dir, data_dir, mode, dist)
                # The end: score the full test splits (rank 0); summary.json, written last, marks it finished.
                if not dist.is_main:
                    return {}
                summary = evaluate_trained(kind, run_dir, data_dir=data_dir, built=built, progress=mode)
                track.summary(summary)
                return summary
    finally:
        dist.close()
