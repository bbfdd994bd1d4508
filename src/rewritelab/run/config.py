"""A run's configuration: the data, model and train sections of a run config, and a run's identity."""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from rewritelab.config import (
    FieldError,
    apply_overrides,
    check_seed,
    from_dict,
    is_setting_name,
    load_yaml,
    to_dict,
    unknown_key_error,
)
from rewritelab.data import DatasetSpec
from rewritelab.errors import UserError
from rewritelab.model import ModelConfig
from rewritelab.run.device import resolved_dtype, resolved_muon_dtype
from rewritelab.textfmt import ProgressMode, quoted

C = TypeVar("C")  # a run config of either kind: both have a `train` section

# Fields that change how a run executes but not what it computes: a run may resume with other values.
EXECUTION_FIELDS = ("device", "threads", "progress", "track")
TRACKERS = ("tensorboard", "wandb", "trackio")
MAX_LOG_POINTS = 1000  # log-spaced evaluations (past a few dozen they are a linear grid: eval_every)


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping. `batch_size` counts examples per optimizer step, across every
    process and accumulation step together, so changing the hardware never changes the math."""

    batch_size: int = 64  # examples per optimizer step (global)
    grad_accum: int = 1  # micro-batches per step and process: trades memory for time, same math
    lr: float = 1e-3  # peak learning rate
    min_lr_frac: float = 0.0  # the decay ends at min_lr_frac × lr
    warmup_steps: int = 100  # linear warmup from lr / warmup_steps to lr
    schedule: Literal["linear", "cosine", "constant", "wsd"] = "linear"  # after the warmup
    decay_frac: float = 0.2  # wsd only: the share of the post-warmup steps spent decaying (the rest is flat)
    optimizer: Literal["adamw", "muon"] = "adamw"  # muon: Muon on the hidden weight matrices, AdamW the rest
    muon_dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # Muon's Newton-Schulz; auto: bf16 if native
    weight_decay: float = 0.01  # on weight matrices only
    beta1: float = 0.9
    beta2: float = 0.98
    grad_clip: float = 1.0  # max global gradient norm; 0 = no clipping
    epochs: float = 1.0  # passes over the training split; may be fractional
    max_steps: int | None = None  # caps the steps that `epochs` implies; 0 = evaluate the initial model
    eval_every: int = 500  # steps between learning-curve evaluations; 0 = none
    eval_log_points: int = 0  # plus this many log-spaced evaluations from step 10 (early dynamics)
    eval_examples: int = 512  # fixed examples of each test split scored for the learning curves
    test_examples: int | None = None  # final evaluation: a fixed random subset of each test split; null = all
    checkpoint_every: int = 1000  # steps between checkpoints (also written at the end and on a signal)
    seed: int = 0  # initialisation, data order, dropout
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"  # auto: cuda, then mps, then cpu
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # auto: by measurement (device.resolved_dtype)
    loss_on: Literal["answer", "all"] = "answer"  # targets: the answer (+ <eos>) or every next token
    threads: int = 0  # torch CPU threads; 0 = torch's default
    progress: ProgressMode = "auto"  # auto: a bar on a terminal, log lines otherwise
    track: list[str] = field(default_factory=list)  # mirror metrics.jsonl to: tensorboard, wandb, trackio

    def validate(self) -> None:
        positive = {
            "batch_size": self.batch_size,
            "grad_accum": self.grad_accum,
            "checkpoint_every": self.checkpoint_every,
        }
        for name, value in positive.items():
            if value < 1:
                raise FieldError(name, f"must be at least 1, got {value}")
        if self.grad_accum > self.batch_size:
            raise FieldError("grad_accum", f"{self.grad_accum} exceeds batch_size={self.batch_size}")
        if not self.lr > 0:
            raise FieldError("lr", f"must be positive, got {self.lr}")
        if not 0.0 < self.decay_frac <= 1.0:
            raise FieldError("decay_frac", f"must be in (0, 1], got {self.decay_frac}")
        if not 0.0 <= self.min_lr_frac <= 1.0:
            raise FieldError("min_lr_frac", f"must be in [0, 1], got {self.min_lr_frac}")
        for name in ("warmup_steps", "eval_every", "eval_log_points", "eval_examples", "threads"):
            if getattr(self, name) < 0:
                raise FieldError(name, f"must be >= 0, got {getattr(self, name)}")
        check_seed("seed", self.seed)
        if self.eval_log_points > MAX_LOG_POINTS:
            raise FieldError(
                "eval_log_points", f"at most {MAX_LOG_POINTS:,}, got {self.eval_log_points}; use eval_every"
            )
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise FieldError("weight_decay" if self.weight_decay < 0 else "grad_clip", "must be >= 0")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise FieldError(name, f"must be in [0, 1), got {getattr(self, name)}")
        if not (self.epochs > 0 and math.isfinite(self.epochs)):
            raise FieldError("epochs", f"must be a positive number, got {self.epochs}")
        if self.test_examples is not None and self.test_examples < 1:
            raise FieldError("test_examples", f"must be >= 1 (or null for all), got {self.test_examples}")
        unknown = [name for name in self.track if name not in TRACKERS]
        if unknown or len(set(self.track)) < len(self.track):
            raise FieldError(
                "track", f"trackers from {', '.join(TRACKERS)}, each once; got {quoted(self.track)}"
            )
        if self.max_steps is not None and self.max_steps < 0:
            raise FieldError("max_steps", f"must be >= 0 (or null for no cap), got {self.max_steps}")


@dataclass
class RunConfig:
    """One training run: what data, what model, how to train."""

    data: DatasetSpec
    model: ModelConfig
    train: TrainConfig


SECTIONS = ("data", "model", "train")


def run_config_from_dict(raw: dict[str, Any]) -> RunConfig:
    """Plain data (a parsed YAML file) → `RunConfig`; unknown sections or keys name the bad field."""
    if not isinstance(raw, dict):
        raise UserError("run config: expected a mapping with data:, model:, train: sections")
    for key in raw:
        if key not in SECTIONS and not is_setting_name(key):
            raise unknown_key_error("run config", key, SECTIONS)
        if key not in SECTIONS:
            close = difflib.get_close_matches(str(key), SECTIONS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "expected data, model, train"
            raise UserError(f"{key}: unknown section ({hint})")
    return RunConfig(
        data=from_dict(DatasetSpec, raw.get("data"), "data"),
        model=from_dict(ModelConfig, raw.get("model") or {}, "model"),
        train=from_dict(TrainConfig, raw.get("train"), "train"),
    )


def load_run_config(
    source: str | os.PathLike | dict[str, Any], overrides: list[str] | None = None
) -> RunConfig:
    """A YAML file (or an already-parsed dict) plus `--set section.key=value` overrides → `RunConfig`."""
    raw = source if isinstance(source, dict) else load_yaml(source)
    return run_config_from_dict(apply_overrides(raw, overrides))


def run_identity(cfg: Any, frozen_base: bool = False) -> dict[str, Any]:
    """The parts of a run config (of any kind) that determine a run's results (execution-only fields left
    out; `dtype: auto` and `muon_dtype: auto` as what they resolve to here, so runs of other numerics are
    never taken for this one; `frozen_base` as for `resolved_dtype`)."""
    ident = to_dict(with_resolved_dtype(cfg, frozen_base))
    ident["train"] = {k: v for k, v in ident["train"].items() if k not in EXECUTION_FIELDS}
    return ident


def with_resolved_dtype(cfg: C, frozen_base: bool = False) -> C:
    """`cfg` with its precisions concrete, as a run records them in config.yaml and summary.json: `dtype`,
    and `muon_dtype` where the run uses Muon (elsewhere it changes nothing and stays as written)."""
    train = cfg.train  # type: ignore[attr-defined]
    concrete = {"dtype": resolved_dtype(train.dtype, train.device, frozen_base)}
    if getattr(train, "optimizer", None) == "muon":  # only the from-scratch kind has Muon
        concrete["muon_dtype"] = resolved_muon_dtype(train.muon_dtype, train.device)
    return dataclasses.replace(cfg, train=dataclasses.replace(train, **concrete))  # type: ignore


def same_run(recorded: Any, cfg: RunConfig) -> bool:
    """Whether a config recorded in a run directory (plain data) describes the same run as `cfg`."""
    try:
        return run_identity(run_config_from_dict(recorded)) == run_identity(cfg)
    except UserError:
        return False
