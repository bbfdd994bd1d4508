"""A run: train a model on a run config, checkpoint and resume it, evaluate it on the test splits — for
every run kind (a kind is what differs between a from-scratch GPT and a pretrained LM with LoRA).

Modules, in import order (each imports only those above it):
    device      the torchrun process group, the torch device, the resolved precision, autocast
    config      TrainConfig, RunConfig: the data, model and train sections; a run's identity
    rundir      the run directory: its file names, data, config and manifest checks, metrics.jsonl
    container   checkpoint.pt's zip, verified whole (layout torch writes, every CRC) before torch.load
    checkpoint  checkpoint.pt: save, read and check it, RNG states, build and load models
    scoring     exact match, breakdowns, bootstrap intervals: pure functions of a model and data
    divergence  stop a run at a step whose loss or gradient norm is not finite
    kind        RunKind: the small interface a run kind fills in (model, encoding, step, scoring)
    schedule    steps, the seeded batches of each epoch, the learning rate, shards and micro-batches
    train       the training loop, one for every kind (knows nothing of the final evaluation)
    evaluate    the final evaluation of a run directory: predictions and summary.json
    tracking    train.track: metrics.jsonl records mirrored to TensorBoard, W&B, trackio
    pipeline    train_and_evaluate: train (or resume), then evaluate
    scratch     the from-scratch kind (GPT, AdamW or Muon): train_run, evaluate_run
"""

from rewritelab.layout import EVAL_SPLITS, SPLITS, SUMMARY
from rewritelab.run.checkpoint import TrainState, build_model, load_trained_model, read_checkpoint
from rewritelab.run.config import (
    EXECUTION_FIELDS,
    RunConfig,
    TrainConfig,
    load_run_config,
    run_config_from_dict,
    with_resolved_dtype,
)
from rewritelab.run.device import Dist, autocast_for, cpu_count, resolve_device, resolved_dtype
from rewritelab.run.divergence import TrainingDiverged, check_finite
from rewritelab.run.evaluate import evaluate_trained, format_breakdowns, format_summary
from rewritelab.run.kind import Built, RunKind, longest
from rewritelab.run.optim import Muon, OptimizerPair, make_optimizer, orthogonalize
from rewritelab.run.pipeline import train_and_evaluate
from rewritelab.run.rundir import check_data_manifest, metrics_sink, read_run_config, read_summary
from rewritelab.run.schedule import count_steps, epoch_batches, eval_steps, learning_rate, shard
from rewritelab.run.scoring import (
    BREAKDOWNS,
    bootstrap_ci,
    device_of,
    frequency_bucket,
    score_split,
    split_report,
    teacher_forced_correct,
)
from rewritelab.run.scratch import (
    SCRATCH,
    ScratchKind,
    TrainingLoss,
    evaluate_run,
    target_count,
    train_run,
    train_step,
)
from rewritelab.run.tracking import scalars, tracking
from rewritelab.run.train import TrainingInterrupted, train_model

__all__ = [
    "BREAKDOWNS",
    "EVAL_SPLITS",
    "EXECUTION_FIELDS",
    "SCRATCH",
    "SPLITS",
    "SUMMARY",
    "Built",
    "Dist",
    "autocast_for",
    "resolve_device",
    "cpu_count",
    "resolved_dtype",
    "with_resolved_dtype",
    "RunConfig",
    "RunKind",
    "ScratchKind",
    "TrainConfig",
    "TrainState",
    "TrainingDiverged",
    "TrainingInterrupted",
    "TrainingLoss",
    "bootstrap_ci",
    "build_model",
    "check_data_manifest",
    "check_finite",
    "count_steps",
    "device_of",
    "epoch_batches",
    "eval_steps",
    "evaluate_run",
    "format_breakdowns",
    "evaluate_trained",
    "format_summary",
    "frequency_bucket",
    "learning_rate",
    "load_run_config",
    "load_trained_model",
    "longest",
    "make_optimizer",
    "Muon",
    "OptimizerPair",
    "orthogonalize",
    "metrics_sink",
    "read_checkpoint",
    "read_run_config",
    "read_summary",
    "run_config_from_dict",
    "scalars",
    "score_split",
    "shard",
    "split_report",
    "target_count",
    "teacher_forced_correct",
    "train_and_evaluate",
    "train_model",
    "train_run",
    "tracking",
    "train_step",
]
