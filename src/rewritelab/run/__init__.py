"""A run: train a model on a run config, checkpoint and resume it, evaluate it on the test splits.

Modules, in import order (each imports only those above it):
    config      TrainConfig, RunConfig: the data, model and train sections; a run's identity
    device      the torchrun process group, the torch device, autocast
    rundir      the run directory: its file names, data, config and manifest checks, metrics.jsonl
    checkpoint  checkpoint.pt: save, read and check it, RNG states, build and load models
    scoring     exact match, breakdowns, bootstrap intervals: pure functions of a model and data
    train       the training loop (knows nothing of the final evaluation)
    evaluate    the final evaluation of a run directory: predictions and summary.json
    pipeline    train_run: train (or resume), then evaluate
"""

from rewritelab.layout import EVAL_SPLITS, SPLITS, SUMMARY
from rewritelab.run.checkpoint import TrainState, build_model, load_trained_model, read_checkpoint
from rewritelab.run.config import RunConfig, TrainConfig, load_run_config, run_config_from_dict
from rewritelab.run.device import Dist, autocast_for, precision, resolve_device
from rewritelab.run.evaluate import evaluate_run, format_breakdowns, format_summary
from rewritelab.run.pipeline import train_run
from rewritelab.run.rundir import check_data_manifest
from rewritelab.run.scoring import (
    BREAKDOWNS,
    bootstrap_ci,
    frequency_bucket,
    score_split,
    split_report,
    teacher_forced_correct,
)
from rewritelab.run.train import (
    Trained,
    TrainingInterrupted,
    TrainingLoss,
    count_steps,
    epoch_batches,
    eval_steps,
    learning_rate,
    make_optimizer,
    shard,
    target_count,
    train_model,
    train_step,
)

__all__ = [
    "BREAKDOWNS",
    "EVAL_SPLITS",
    "SPLITS",
    "SUMMARY",
    "Dist",
    "autocast_for",
    "precision",
    "resolve_device",
    "RunConfig",
    "TrainConfig",
    "TrainState",
    "Trained",
    "TrainingInterrupted",
    "TrainingLoss",
    "bootstrap_ci",
    "build_model",
    "check_data_manifest",
    "count_steps",
    "epoch_batches",
    "eval_steps",
    "evaluate_run",
    "format_breakdowns",
    "format_summary",
    "frequency_bucket",
    "learning_rate",
    "load_run_config",
    "load_trained_model",
    "make_optimizer",
    "read_checkpoint",
    "run_config_from_dict",
    "score_split",
    "shard",
    "split_report",
    "target_count",
    "teacher_forced_correct",
    "train_model",
    "train_run",
    "train_step",
]
