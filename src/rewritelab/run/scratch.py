"""The from-scratch run kind: rewritelab's GPT (`model`) on the character tokenizer (`tokenizer`), trained
with AdamW or Muon, scored by `run.scoring`. A config without another kind's section is of this kind.

`train_run` and `evaluate_run` are the shared pipeline (`run.pipeline`, `run.evaluate`) for this kind.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rewritelab.data import Dataset, Split, estimate_bytes
from rewritelab.model import GPT, check_model_memory
from rewritelab.run.checkpoint import build_model, clean_state_dict, load_trained_model, load_weights
from rewritelab.run.config import RunConfig, TrainConfig, run_config_from_dict
from rewritelab.run.device import Dist, resolve_device
from rewritelab.run.evaluate import evaluate_trained
from rewritelab.run.kind import Built, RunKind, longest
from rewritelab.run.optim import STATE_FLOATS, make_optimizer
from rewritelab.run.pipeline import train_and_evaluate
from rewritelab.run.schedule import shard
from rewritelab.run.scoring import score_split, teacher_forced_correct
from rewritelab.textfmt import Progress, ProgressMode
from rewritelab.tokenizer import Encoded, Tokenizer

# ---------------------------------------------------------------------------------------------------------
# One step


class TrainingLoss(nn.Module):
    """`GPT.loss` (the training fast path: the last block skips prompt positions) as a module's forward,
    so that DistributedDataParallel, which hooks `forward`, can wrap it."""

    def __init__(self, model: GPT):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model.loss(x, y, mask)


def target_count(enc: Encoded, batch: np.ndarray, loss_on: str) -> int:
    """Number of loss targets in a batch: answer characters + <eos>, or every next token."""
    lengths = enc.lengths[batch]
    return int((lengths - enc.prompt_len[batch]).sum() if loss_on == "answer" else (lengths - 1).sum())


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
# The kind


class ScratchKind(RunKind):
    """A GPT trained from scratch on the character tokenizer (`data:`, `model:`, `train:`)."""

    section = "model"
    config_type = RunConfig
    distributed = True

    def config_from_dict(self, raw: dict[str, Any]) -> RunConfig:
        return run_config_from_dict(raw)

    def check_fits(self, cfg: RunConfig, data: bool = True) -> None:
        """The threads and the data, then the model besides the data: where it trains on this CPU, its
        weights, gradients and optimizer state; on an accelerator, the weights it is built with here."""
        super().check_fits(cfg, data)
        device = cfg.train.device if cfg.train.device != "auto" else resolve_device("auto").type
        floats = 2 + STATE_FLOATS[cfg.train.optimizer] if device == "cpu" else 1
        check_model_memory(cfg.model, 4 * floats, estimate_bytes(cfg.data) if data else 0)

    def build(self, cfg: RunConfig, dataset: Dataset, device: torch.device) -> Built:
        tokenizer = Tokenizer.for_data(cfg.data)
        encoded = {name: tokenizer.encode_split(split) for name, split in dataset.splits.items()}
        block_size = longest(encoded)
        model = build_model(cfg, tokenizer.vocab_size, block_size, device)
        return Built(cfg, dataset, tokenizer, encoded, model, tokenizer.vocab_size, block_size)

    def load(
        self, cfg: RunConfig, dataset: Dataset, ckpt: dict[str, Any], path: Path, device: torch.device
    ) -> Built:
        """The checkpoint's model at its recorded sizes; the splits are encoded as they are scored."""
        tokenizer = Tokenizer.for_data(cfg.data)
        model = load_trained_model(cfg, ckpt, path, device)
        return Built(cfg, dataset, tokenizer, {}, model, tokenizer.vocab_size, model.block_size)

    def optimizer(self, model: nn.Module, tc: TrainConfig) -> Any:
        return make_optimizer(model, tc)

    def loss_module(self, model: nn.Module) -> nn.Module:
        return TrainingLoss(model)  # type: ignore[arg-type]

    def train_step(self, net, enc, batch, tc, dist, device, amp) -> float:  # type: ignore[override]
        return float(train_step(net, enc, batch, tc, dist, device, amp).item())

    def correct(self, model, enc, indices, device, amp) -> np.ndarray:  # type: ignore[override]
        return teacher_forced_correct(model, enc, indices, amp=amp)

    def score_split(
        self, built: Built, split: Split, amp: Any, progress: Progress
    ) -> tuple[np.ndarray, list]:
        tokenizer = built.tokenizer
        return score_split(
            built.model, tokenizer, split, tokenizer.encode_split(split), amp, progress=progress
        )

    def weights(self, model: nn.Module) -> dict[str, torch.Tensor]:
        return clean_state_dict(model.state_dict())

    def load_weights(self, model: nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
        load_weights(model, weights, path)

    def finish(self, model: nn.Module, run_dir: Path) -> None:
        """Nothing: checkpoint.pt holds the whole model."""


SCRATCH = ScratchKind()


def train_run(
    cfg: RunConfig,
    run_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    progress: ProgressMode | bool | None = None,
) -> dict[str, Any]:
    """Train (or resume, or just return) a from-scratch run; returns its summary (`train_and_evaluate`)."""
    return train_and_evaluate(SCRATCH, cfg, run_dir, data_dir, progress)


def evaluate_run(
    run_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    splits: Sequence[str] | None = None,
    progress: str | bool | None = None,
    max_examples: int | None = None,
) -> dict[str, Any]:
    """Re-score a finished from-scratch run (`evaluate_trained`)."""
    return evaluate_trained(SCRATCH, run_dir, data_dir, splits, None, progress, max_examples)
