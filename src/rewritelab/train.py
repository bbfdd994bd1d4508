"""Training: a run config → a trained model, exact-resume checkpoints, metrics, and the run's summary.

`train_run` reads top to bottom like the algorithm (after nanoGPT's train.py, with a typed config):
data → model → optimizer → resume → loop (schedule, step, log, evaluate, checkpoint) → final evaluation.

Design choices that matter for results:
- The loss is the cross-entropy summed over the target tokens of a GLOBAL batch divided by their count,
  however the batch is cut into micro-batches (gradient accumulation) or shards (DDP), so two processes
  compute the same update as one process with `grad_accum=2`.
- The data order of epoch e comes from an rng seeded with (train.seed, e), and the checkpoint stores the
  position inside the epoch, so a resumed run sees exactly the batches an uninterrupted run would; with
  every RNG state restored, a CPU run resumed from a checkpoint ends bit-identical to one never stopped.
- Checkpoints hold only tensors and plain data, so they load with `torch.load(weights_only=True)`: a
  checkpoint from elsewhere can be rejected, never executed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import io
import json
import math
import os
import random
import signal
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from rewritelab.config import FieldError, apply_overrides, dump_yaml, from_dict, load_yaml, to_dict
from rewritelab.data import Dataset, DatasetSpec, generate_dataset, load_dataset
from rewritelab.errors import UserError
from rewritelab.io import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json
from rewritelab.model import GPT, ModelConfig
from rewritelab.tokenizer import Encoded, Tokenizer, length_batches

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.yaml"
DATA_MANIFEST = "data_manifest.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
CHECKPOINT_FORMAT = 1
SPLITS = ("train", "test_seen", "test_unseen")
EVAL_SPLITS = ("test_seen", "test_unseen")
EVAL_SUBSET_SEED = 20240215  # the learning-curve subsets are the same for every run of a dataset
LOG_EVERY = 50  # steps per `train` line in metrics.jsonl
LOG_SECONDS = 10.0  # seconds between plain progress lines
# Fields that change how a run executes but not what it computes: a run may resume with other values.
EXECUTION_FIELDS = ("device", "threads", "progress")

ProgressMode = Literal["auto", "bar", "log", "none"]


# ---------------------------------------------------------------------------------------------------------
# Configuration


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping. `batch_size` counts examples per optimizer step, across every
    process and accumulation step together, so changing the hardware never changes the math."""

    batch_size: int = 64  # examples per optimizer step (global)
    grad_accum: int = 1  # micro-batches per step and process: trades memory for time, same math
    lr: float = 1e-3  # peak learning rate
    min_lr_frac: float = 0.0  # the decay ends at min_lr_frac × lr
    warmup_steps: int = 100  # linear warmup from lr / warmup_steps to lr
    schedule: Literal["linear", "cosine", "constant"] = "linear"  # after the warmup
    weight_decay: float = 0.01  # AdamW, on weight matrices only
    beta1: float = 0.9
    beta2: float = 0.98
    grad_clip: float = 1.0  # max global gradient norm; 0 = no clipping
    epochs: float = 1.0  # passes over the training split; may be fractional
    max_steps: int | None = None  # caps the steps that `epochs` implies
    eval_every: int = 500  # steps between learning-curve evaluations; 0 = none
    eval_examples: int = 512  # fixed examples of each test split scored for the learning curves
    checkpoint_every: int = 1000  # steps between checkpoints (also written at the end and on a signal)
    seed: int = 0  # initialisation, data order, dropout
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"  # auto: cuda, then mps, then cpu
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # auto: bf16 autocast on cuda, fp32 elsewhere
    loss_on: Literal["answer", "all"] = "answer"  # targets: the answer (+ <eos>) or every next token
    threads: int = 0  # torch CPU threads; 0 = torch's default
    progress: ProgressMode = "auto"  # auto: a bar on a terminal, log lines otherwise

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
        if not 0.0 <= self.min_lr_frac <= 1.0:
            raise FieldError("min_lr_frac", f"must be in [0, 1], got {self.min_lr_frac}")
        for name in ("warmup_steps", "eval_every", "eval_examples", "seed", "threads"):
            if getattr(self, name) < 0:
                raise FieldError(name, f"must be >= 0, got {getattr(self, name)}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise FieldError("weight_decay" if self.weight_decay < 0 else "grad_clip", "must be >= 0")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise FieldError(name, f"must be in [0, 1), got {getattr(self, name)}")
        if not (self.epochs > 0 and math.isfinite(self.epochs)):
            raise FieldError("epochs", f"must be a positive number, got {self.epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise FieldError("max_steps", f"must be at least 1 (or null for no cap), got {self.max_steps}")


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


def run_identity(cfg: RunConfig) -> dict[str, Any]:
    """The parts of a config that determine a run's results (execution-only fields left out)."""
    ident = to_dict(cfg)
    ident["train"] = {k: v for k, v in ident["train"].items() if k not in EXECUTION_FIELDS}
    return ident


def same_run(recorded: Any, cfg: RunConfig) -> bool:
    """Whether a config recorded in a run directory (plain data) describes the same run as `cfg`."""
    try:
        return run_identity(run_config_from_dict(recorded)) == run_identity(cfg)
    except UserError:
        return False


def count_steps(n_train: int, cfg: TrainConfig) -> int:
    """Optimizer steps of a run: `epochs` passes over the data, capped by `max_steps`."""
    steps = math.ceil(cfg.epochs * n_train / cfg.batch_size)
    return steps if cfg.max_steps is None else min(steps, cfg.max_steps)


def learning_rate(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """LR of optimizer step `step` (0-based): linear warmup, then decay to `min_lr_frac · lr` at the end."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    floor = cfg.lr * cfg.min_lr_frac
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))
    if cfg.schedule == "cosine":
        return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return floor + (cfg.lr - floor) * (1.0 - progress)


# ---------------------------------------------------------------------------------------------------------
# Devices and processes


@dataclass(frozen=True)
class Dist:
    """This process's place in a torchrun job (a single process is rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False  # this run created the process group and must destroy it

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def close(self) -> None:
        if self.owns_group:
            torch.distributed.destroy_process_group()


def setup_distributed(device: str) -> Dist:
    """Join the process group torchrun describes (WORLD_SIZE, RANK, LOCAL_RANK): NCCL on GPUs, else gloo."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Dist()
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if cuda:
        torch.cuda.set_device(local_rank)
    owns = not torch.distributed.is_initialized()
    if owns:
        torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    return Dist(rank=rank, world_size=world_size, local_rank=local_rank, owns_group=owns)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an explicit device that is missing is a UserError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device: cuda is not available here; use device: auto or cpu")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError("train.device: mps is not available here; use device: auto or cpu")
    return torch.device("cuda", local_rank) if name == "cuda" else torch.device(name)


def autocast_for(device: torch.device, dtype: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA by default; fp32 elsewhere (bf16 is many times slower on most CPUs)."""
    if dtype == "bfloat16" or (dtype == "auto" and device.type == "cuda"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


# ---------------------------------------------------------------------------------------------------------
# Data


def load_data(cfg: RunConfig, data_dir: str | os.PathLike | None) -> tuple[RunConfig, Dataset]:
    """The run's dataset: generated from `cfg.data` (deterministic), or read from `data_dir`, in which
    case the returned config's data section is the dataset's own spec."""
    if data_dir is None:
        dataset = generate_dataset(cfg.data)
    else:
        if not Path(data_dir).is_dir():
            raise UserError(f"--data {data_dir}: no such directory; give a directory written by `generate`")
        dataset = load_dataset(data_dir)
        cfg = dataclasses.replace(cfg, data=dataset.spec)
    missing = [name for name in SPLITS if name not in dataset.splits]
    if missing:
        raise UserError(f"dataset: missing split {missing[0]!r}; regenerate the dataset")
    if len(dataset.splits["train"]) == 0:
        raise UserError("dataset: the train split is empty; raise data.budget or data.examples_per_rule")
    return cfg, dataset


def data_identity(manifest: Any) -> Any:
    """A manifest without what does not change the data: the file hashes only a written dataset has, and
    the package version (a resumed run must survive an upgrade that generates the same examples)."""
    if not isinstance(manifest, dict):
        return manifest
    volatile = ("files", "rewritelab_version")
    return json.loads(json.dumps({k: v for k, v in manifest.items() if k not in volatile}))


def check_data_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    """A run continues only on the data it started with."""
    path = run_dir / DATA_MANIFEST
    if path.is_file() and data_identity(read_json(path)) != data_identity(manifest):
        raise UserError(
            f"{path}: this run was made with other data than the data given now; pass the same --data "
            "directory (or none), or train into a new --out directory"
        )


def eval_subset(n: int, k: int) -> np.ndarray:
    """A fixed, sorted sample of `k` of `n` examples: learning curves compare the same examples."""
    if k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(EVAL_SUBSET_SEED).choice(n, size=k, replace=False))


def epoch_batches(lengths: np.ndarray, cfg: TrainConfig, epoch: int) -> list[np.ndarray]:
    """The global batches of epoch `epoch`, in order: a pure function of (train.seed, epoch)."""
    rng = np.random.default_rng([cfg.seed, epoch])
    return length_batches(lengths, cfg.batch_size, rng, shuffle=True)


def shard(batch: np.ndarray, dist: Dist, grad_accum: int) -> list[tuple[np.ndarray, float]]:
    """This process's micro-batches of a global batch, each with a weight (0 marks an empty slice).

    Rank r takes the r-th of `world_size` slices, then cuts it into `grad_accum` pieces; an empty piece
    (a short last batch) becomes one example with weight 0, so every rank still joins the gradient sync.
    """
    mine = np.array_split(batch, dist.world_size)[dist.rank]
    return [(p, 1.0) if len(p) else (batch[:1], 0.0) for p in np.array_split(mine, grad_accum)]


def target_count(enc: Encoded, batch: np.ndarray, loss_on: str) -> int:
    """Number of loss targets in a batch: answer characters + <eos>, or every next token."""
    lengths = enc.lengths[batch]
    return int((lengths - enc.prompt_len[batch]).sum() if loss_on == "answer" else (lengths - 1).sum())


# ---------------------------------------------------------------------------------------------------------
# Model, optimizer, one step


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; weight decay on matrices only (not biases, LayerNorm gains or embeddings)."""
    exempt = {
        id(p)
        for m in model.modules()
        if isinstance(m, (nn.Embedding, nn.LayerNorm))
        for p in m.parameters(recurse=False)
    }
    decay, rest = [], []
    for name, p in model.named_parameters():
        (rest if id(p) in exempt or name.endswith("bias") else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))


class TrainingLoss(nn.Module):
    """`GPT.loss` (the training fast path: the last block skips prompt positions) as a module's forward,
    so that DistributedDataParallel, which hooks `forward`, can wrap it."""

    def __init__(self, model: GPT):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model.loss(x, y, mask)


def train_step(
    net: nn.Module,
    enc: Encoded,
    batch: np.ndarray,
    cfg: TrainConfig,
    dist: Dist,
    device: torch.device,
    amp: contextlib.AbstractContextManager,
) -> torch.Tensor:
    """Forward and backward over this process's share of a global batch; returns its share of the loss.

    `net` is a `TrainingLoss` (DDP-wrapped under torchrun). Each micro-batch's loss is its summed
    cross-entropy × world_size / (targets in the global batch): summed over micro-batches and averaged
    over ranks by DDP, the gradient is that of the global batch's mean.
    """
    scale = dist.world_size / target_count(enc, batch, cfg.loss_on)
    pieces = shard(batch, dist, cfg.grad_accum)
    total = torch.zeros((), device=device)
    for i, (indices, weight) in enumerate(pieces):
        x, y, mask = (t.to(device, non_blocking=True) for t in enc.batch(indices, cfg.loss_on))
        defer_sync = dist.enabled and i < len(pieces) - 1
        with net.no_sync() if defer_sync else contextlib.nullcontext():  # type: ignore[operator]
            with amp:
                mean = net(x, y, mask)
            loss = mean.float() * (mask.sum() * (scale * weight))  # the micro-batch's summed cross-entropy
            loss.backward()
        total += loss.detach()
    return total / dist.world_size


# ---------------------------------------------------------------------------------------------------------
# Checkpoints


@dataclass
class TrainState:
    """Where the loop stands: everything besides weights and optimizer moments that resume needs."""

    step: int = 0  # optimizer steps done
    epoch: int = 0
    position: int = 0  # batches of `epoch` done
    tokens: int = 0  # tokens (prompt + answer, no padding) trained on
    seconds: float = 0.0  # training wall time, summed over sessions
    loss: float = float("nan")  # loss of the last step
    window_loss: float = 0.0  # sum of step losses since the last `train` metrics line
    window_steps: int = 0

    def advance(self, tokens: int, loss: float, batches_per_epoch: int) -> None:
        """Count one finished optimizer step."""
        self.step += 1
        self.position += 1
        if self.position == batches_per_epoch:
            self.epoch, self.position = self.epoch + 1, 0
        self.tokens += tokens
        self.loss = loss
        self.window_loss += loss
        self.window_steps += 1

    def train_record(self, lr: float, batches_per_epoch: int) -> dict[str, Any]:
        """The `train` line of metrics.jsonl (mean loss since the previous line), starting a new window."""
        record = {
            "kind": "train",
            "step": self.step,
            "epoch": round(self.epoch + self.position / batches_per_epoch, 4),
            "tokens": self.tokens,
            "seconds": round(self.seconds, 3),
            "lr": lr,
            "loss": self.window_loss / self.window_steps,
        }
        self.window_loss, self.window_steps = 0.0, 0
        return record

    def eval_record(self, accuracy: dict[str, float | None]) -> dict[str, Any]:
        """The `eval` line of metrics.jsonl: learning-curve accuracies at this step."""
        return {
            "kind": "eval",
            "step": self.step,
            "tokens": self.tokens,
            "seconds": round(self.seconds, 3),
            "accuracy": accuracy,
        }


def clean_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the `_orig_mod.` (torch.compile) and `module.` (DDP) prefixes that break resume elsewhere."""
    out = {}
    for key, value in state.items():
        for prefix in ("_orig_mod.", "module."):
            while key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value
    return out


def capture_rng() -> dict[str, Any]:
    """Every RNG state of this process as tensors and plain lists (loadable with weights_only=True)."""
    version, mt, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "python": [version, list(mt), gauss],
        "numpy": [torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
    }


def restore_rng(saved: dict[str, Any]) -> None:
    version, mt, gauss = saved["python"]
    random.setstate((version, tuple(mt), gauss))
    keys, pos, has_gauss, cached = saved["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(saved["torch"])
    if saved["cuda"] and torch.cuda.is_initialized():
        torch.cuda.set_rng_state_all(saved["cuda"])


def gather_rng(dist: Dist) -> list[dict[str, Any]]:
    """RNG states of every rank (index = rank): each rank resumes its own dropout stream."""
    if not dist.enabled:
        return [capture_rng()]
    states: list[Any] = [None] * dist.world_size
    torch.distributed.all_gather_object(states, capture_rng())
    return states


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint safely; anything that is not one of ours is a one-line UserError."""
    if not path.is_file():
        raise UserError(f"{path}: no checkpoint; train the run first (rewritelab train CONFIG --out DIR)")
    fix = "delete it to train from scratch"
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
        raise UserError(f"{path}: not a checkpoint (damaged, truncated or another kind of file); {fix}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for damaged or hostile files
        hostile = "Weights only load failed" in str(e)
        reason = (
            "it holds pickled Python objects, never loaded as they could run code"
            if hostile
            else _first_line(e)
        )
        raise UserError(f"{path}: not a readable checkpoint ({reason}); {fix}") from None
    if not _well_formed(ckpt):
        raise UserError(f"{path}: not a rewritelab checkpoint; {fix}")
    return ckpt


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:200]}" if lines else type(error).__name__


def _well_formed(ckpt: Any) -> bool:
    """The checkpoint's layout, checked before any of it is used."""
    kinds = {"model": dict, "optimizer": dict, "state": dict, "rng": list, "config": dict,
             "vocab_size": int, "block_size": int, "total_steps": int}  # fmt: skip
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        return False
    if not all(isinstance(ckpt.get(key), kind) for key, kind in kinds.items()) or not ckpt["rng"]:
        return False
    fields = {f.name for f in dataclasses.fields(TrainState)}
    state = ckpt["state"]
    return state.keys() == fields and all(
        isinstance(state[name], (int, float)) and state[name] >= 0 for name in fields if name != "loss"
    )


def check_checkpoint(ckpt: dict[str, Any], cfg: RunConfig, vocab_size: int, path: Path) -> None:
    """Refuse a checkpoint written by another run (other model size, vocabulary, data or schedule)."""
    if not same_run(ckpt["config"], cfg) or ckpt["vocab_size"] != vocab_size:
        raise UserError(
            f"{path}: written by a different run (model, data or training settings differ from "
            f"{path.parent / CONFIG}); train into a new --out directory or delete the checkpoint"
        )


def load_weights(model: nn.Module, ckpt: dict[str, Any], path: Path) -> None:
    try:
        model.load_state_dict(clean_state_dict(ckpt["model"]))
    except (RuntimeError, KeyError, TypeError) as e:
        raise UserError(
            f"{path}: weights do not fit this model ({_first_line(e)}); delete the checkpoint"
        ) from None


def build_model(cfg: RunConfig, vocab_size: int, block_size: int, device: torch.device) -> GPT:
    """A freshly initialised model, seeded by train.seed (so the init is part of the run's identity)."""
    torch.manual_seed(cfg.train.seed)
    return GPT(cfg.model, vocab_size, block_size).to(device)


def load_trained_model(cfg: RunConfig, ckpt: dict[str, Any], path: Path, device: torch.device) -> GPT:
    """The model a checkpoint holds, on `device`, in eval mode."""
    model = GPT(cfg.model, int(ckpt["vocab_size"]), int(ckpt["block_size"]))
    load_weights(model, ckpt, path)
    return model.to(device).eval()


# ---------------------------------------------------------------------------------------------------------
# Run directory, metrics, progress, signals


def finished_summary(run_dir: Path, cfg: RunConfig, data_dir: str | os.PathLike | None) -> dict | None:
    """The summary of a finished run of this config, None if unfinished; UserError if it is another run."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--out {run_dir}: exists and is not a directory; choose another run directory")
    path = run_dir / SUMMARY
    if not path.is_file():
        return None
    try:
        summary = read_json(path)
    except ValueError:
        raise UserError(
            f"{path}: damaged; delete it (the checkpoint is kept) and re-run to re-evaluate"
        ) from None
    recorded = summary.get("config") if isinstance(summary, dict) else None
    if data_dir is not None and isinstance(recorded, dict):  # the data is compared through its manifest
        recorded = {**recorded, "data": to_dict(cfg.data)}
        if not _same_data(Path(data_dir) / "manifest.json", run_dir / DATA_MANIFEST):
            raise _other_run(run_dir)
    if not same_run(recorded, cfg):
        raise _other_run(run_dir)
    return summary


def _same_data(manifest: Path, recorded: Path) -> bool:
    if not (manifest.is_file() and recorded.is_file()):
        return False
    return data_identity(read_json(manifest)) == data_identity(read_json(recorded))


def _other_run(run_dir: Path) -> UserError:
    return UserError(
        f"{run_dir}: holds a different run (its {CONFIG} differs from this config); pick a new --out "
        "directory, or delete this one to start over"
    )


def prepare_run_dir(run_dir: Path, cfg: RunConfig, manifest: dict[str, Any], dist: Dist) -> None:
    """Refuse a directory of another run; record the resolved config and the data manifest."""
    config_path = run_dir / CONFIG
    if config_path.is_file() and not same_run(load_yaml(config_path), cfg):
        raise _other_run(run_dir)
    check_data_manifest(run_dir, manifest)
    if dist.is_main:
        atomic_write_text(config_path, dump_yaml(cfg))
        atomic_write_json(run_dir / DATA_MANIFEST, manifest)


class MetricsLog:
    """metrics.jsonl: appended as training goes, cut back to the checkpoint's step on resume."""

    def __init__(self, path: Path, enabled: bool):
        self.path = path
        self.enabled = enabled

    def truncate_after(self, step: int) -> None:
        """Keep the lines up to `step`, so a resumed run's file equals an uninterrupted one's."""
        if not self.enabled or not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines(keepends=True):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut short by a kill: it and anything after are redone
            if not (line.endswith("\n") and isinstance(record, dict)) or record.get("step", 0) > step:
                break
            kept.append(line)
        atomic_write_text(self.path, "".join(kept))

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")


class Progress:
    """A tqdm bar (loss, tokens/s, ETA) on a terminal, plain periodic lines otherwise, or nothing."""

    def __init__(self, mode: str, total: int, initial: int, enabled: bool):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        self.mode = mode if enabled else "none"
        self.total = total
        self.start_step = initial
        self.start = time.perf_counter()
        self.last_line = self.start
        self.tokens = 0
        self.bar = None
        if self.mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, file=sys.stderr)

    def step(self, state: TrainState, tokens: int, lr: float) -> None:
        self.tokens += tokens
        now = time.perf_counter()
        rate = self.tokens / max(now - self.start, 1e-9)
        if self.bar is not None:
            self.bar.set_postfix_str(
                f"loss {state.loss:.4f} lr {lr:.2e} {rate / 1e3:.1f}k tok/s", refresh=False
            )
            self.bar.update(1)
        elif self.mode == "log" and (now - self.last_line >= LOG_SECONDS or state.step == self.total):
            self.last_line = now
            done = state.step - self.start_step
            eta = (self.total - state.step) * (now - self.start) / max(done, 1)
            self.message(
                f"step {state.step}/{self.total} ({100 * state.step / self.total:.0f}%) "
                f"loss {state.loss:.4f} lr {lr:.2e} {rate / 1e3:.1f}k tok/s eta {_duration(eta)}"
            )

    def message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        elif self.mode != "none":
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def progress_mode(requested: ProgressMode | bool | None, configured: ProgressMode) -> str:
    if requested is None:
        return configured
    if isinstance(requested, bool):
        return "auto" if requested else "none"
    return requested


def _duration(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM arrived: a checkpoint was written and training stopped; re-running resumes."""

    def __init__(self, signum: int, step: int, path: Path):
        self.signum, self.step, self.path = signum, step, path
        name = signal.Signals(signum).name
        super().__init__(f"{name} at step {step}: checkpoint saved to {path}; run the same command to resume")


@contextlib.contextmanager
def stop_requests() -> Iterator[list[int]]:
    """Collect SIGINT/SIGTERM while training (the loop checkpoints and exits); handlers restored after."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received  # signal handlers can only be set from the main thread
        return
    previous = {s: signal.signal(s, lambda signum, _frame: received.append(signum)) for s in _STOP_SIGNALS}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def all_reduce_sum(values: list[float], dist: Dist, device: torch.device) -> list[float]:
    if not dist.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t)
    return t.tolist()


# ---------------------------------------------------------------------------------------------------------
# The run


def train_run(
    cfg: RunConfig,
    run_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    progress: ProgressMode | bool | None = None,
) -> dict[str, Any]:
    """Train (or resume, or just return) the run in `run_dir`; returns its summary.

    A finished run (summary.json present, same config) returns at once; an interrupted one resumes from
    checkpoint.pt. `progress` overrides `train.progress` (True = auto, False = none). Under torchrun,
    only rank 0 writes, evaluates and returns the summary; other ranks return {}.
    """
    run_dir = Path(run_dir)
    summary = finished_summary(run_dir, cfg, data_dir)
    if summary is not None:
        return summary
    dist = setup_distributed(cfg.train.device)
    try:
        return _train(cfg, run_dir, data_dir, progress_mode(progress, cfg.train.progress), dist)
    finally:
        dist.close()


def _train(cfg: RunConfig, run_dir: Path, data_dir: Any, mode: str, dist: Dist) -> dict[str, Any]:
    # evaluate.py builds on this module (run configs, checkpoints), so it is imported here, not at the top
    from rewritelab.evaluate import evaluate_run, teacher_forced_correct

    tc = cfg.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = resolve_device(tc.device, dist.local_rank)
    amp = autocast_for(device, tc.dtype)

    # Data: generated (or read) once and encoded once into flat token arrays.
    cfg, dataset = load_data(cfg, data_dir)
    prepare_run_dir(run_dir, cfg, dataset.manifest, dist)
    tokenizer = Tokenizer(cfg.data.alphabet)
    encoded = {name: tokenizer.encode_split(dataset.splits[name]) for name in SPLITS}
    train_enc = encoded["train"]
    block_size = max(int(e.lengths.max()) for e in encoded.values() if len(e))
    total_steps = count_steps(len(train_enc), tc)
    eval_sets = {name: eval_subset(len(encoded[name]), tc.eval_examples) for name in EVAL_SPLITS}

    # Model and optimizer, then the checkpoint if there is one.
    model = build_model(cfg, tokenizer.vocab_size, block_size, device)
    optimizer = make_optimizer(model, tc)
    state = TrainState()
    ckpt_path = run_dir / CHECKPOINT
    if ckpt_path.exists():
        ckpt = read_checkpoint(ckpt_path)
        check_checkpoint(ckpt, cfg, tokenizer.vocab_size, ckpt_path)
        load_weights(model, ckpt, ckpt_path)
        optimizer.load_state_dict(ckpt["optimizer"])
        state = TrainState(**ckpt["state"])
        rng = ckpt["rng"]
        restore_rng(rng[dist.rank % len(rng)])
    metrics = MetricsLog(run_dir / METRICS, dist.is_main)
    metrics.truncate_after(state.step)
    net: nn.Module = TrainingLoss(model)
    if dist.enabled:
        ids = [device.index] if device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(net, device_ids=ids)

    def checkpoint() -> None:
        rng_states = gather_rng(dist)  # a collective: every rank takes part
        if dist.is_main:
            save_checkpoint(
                ckpt_path,
                {
                    "format": CHECKPOINT_FORMAT,
                    "model": clean_state_dict(model.state_dict()),
                    "optimizer": optimizer.state_dict(),
                    "state": dataclasses.asdict(state),
                    "rng": rng_states,
                    "config": to_dict(cfg),
                    "vocab_size": tokenizer.vocab_size,
                    "block_size": block_size,
                    "total_steps": total_steps,
                },
            )

    def evaluate_subsets() -> None:
        accuracy = {
            name: float(teacher_forced_correct(model, encoded[name], idx, amp=amp).mean())
            if len(idx)
            else None
            for name, idx in eval_sets.items()
        }
        metrics.write(state.eval_record(accuracy))
        bar.message(
            f"step {state.step}: " + ", ".join(f"{k} {v:.3f}" for k, v in accuracy.items() if v is not None)
        )

    # The loop: one global batch per step, the order fixed by (seed, epoch) and the position in the epoch.
    bar = Progress(mode, total_steps, state.step, dist.is_main)
    start = f"resuming at step {state.step} of" if state.step else "training"
    where = f"{device} x {dist.world_size} processes" if dist.enabled else str(device)
    bar.message(f"{run_dir}: {start} {total_steps} steps on {where}, {model.num_params():,} parameters")
    session_start, seconds_before = time.perf_counter(), state.seconds
    batches, batches_epoch = [], -1
    curves = tc.eval_every > 0 and tc.eval_examples > 0 and dist.is_main  # learning-curve evaluations
    model.train()
    try:
        with stop_requests() as stop:
            while state.step < total_steps:
                if batches_epoch != state.epoch:
                    batches, batches_epoch = epoch_batches(train_enc.lengths, tc, state.epoch), state.epoch
                batch = batches[state.position]
                lr = learning_rate(state.step, total_steps, tc)
                for group in optimizer.param_groups:
                    group["lr"] = lr

                loss = train_step(net, train_enc, batch, tc, dist, device, amp)
                if tc.grad_clip > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

                loss_value, stopping = all_reduce_sum([float(loss.item()), float(len(stop))], dist, device)
                batch_tokens = int(train_enc.lengths[batch].sum())
                state.advance(batch_tokens, loss_value, len(batches))
                state.seconds = seconds_before + time.perf_counter() - session_start
                bar.step(state, batch_tokens, lr)

                last = state.step == total_steps
                if state.step % LOG_EVERY == 0 or last:
                    metrics.write(state.train_record(lr, len(batches)))
                if curves and (state.step % tc.eval_every == 0 or last):
                    evaluate_subsets()
                if state.step % tc.checkpoint_every == 0 or last or stopping:
                    checkpoint()
                if stopping and not last:
                    signum = stop[0] if stop else signal.SIGTERM
                    raise TrainingInterrupted(signum, state.step, ckpt_path)
    finally:
        bar.close()

    # The end: score the full test splits (rank 0); summary.json, written last, marks the run finished.
    if not dist.is_main:
        return {}
    return evaluate_run(run_dir, data_dir=data_dir, model=model, dataset=dataset)
