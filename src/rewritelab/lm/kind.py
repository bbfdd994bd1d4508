"""The LoRA run kind: a pretrained causal LM (frozen, its weights in bf16 where that is faster) with a
LoRA adapter (fp32) trained by the shared loop (`run.train`) and scored by the shared evaluation.

checkpoint.pt has the layout of a from-scratch checkpoint, but its `model` entry holds the adapter's
weights only: the base model is re-read from `lm.model`. At the end the adapter is also written in peft's
own format (`adapter/`), for use outside rewritelab.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rewritelab.data import Dataset, Split
from rewritelab.errors import UserError
from rewritelab.io import atomic_dir
from rewritelab.layout import ADAPTER_DIR
from rewritelab.lm.config import LMRunConfig, lm_run_config_from_dict
from rewritelab.lm.encode import LMEncoded, answer_logits, check_head, encode_split, resolve_template
from rewritelab.lm.hf import attach_lora, load_model, load_tokenizer, require
from rewritelab.lm.prompts import task_dataset
from rewritelab.lm.scoring import score_lm_split, teacher_forced
from rewritelab.run import (
    Built,
    Dist,
    RunKind,
    TrainConfig,
    device_of,
    longest,
    resolved_dtype,
    shard,
    train_and_evaluate,
)
from rewritelab.textfmt import Progress, ProgressMode


def lm_train_step(model: Any, enc: LMEncoded, batch: np.ndarray, grad_accum: int, device, amp) -> float:
    """Forward and backward over one global batch (cut into `grad_accum` micro-batches); the gradient is
    that of the mean cross-entropy over the batch's answer tokens. Returns that mean."""
    targets = int((enc.lengths[batch] - enc.prompt_len[batch]).sum())
    total = 0.0
    for rows, weight in shard(batch, Dist(), grad_accum):
        b = enc.batch(rows).to(device)
        with amp:
            logits = answer_logits(model, b)
        loss = nn.functional.cross_entropy(logits.float(), b.targets, reduction="sum") * (weight / targets)
        loss.backward()
        total += float(loss.detach())
    return total


def adapter_state(model: Any) -> dict[str, torch.Tensor]:
    peft = require("peft")
    return {k: v.detach().cpu().clone() for k, v in peft.get_peft_model_state_dict(model).items()}


def load_adapter(model: Any, state: dict[str, torch.Tensor], path: Path) -> None:
    peft = require("peft")
    result = peft.set_peft_model_state_dict(model, state)
    if result.unexpected_keys or set(state) != set(adapter_state(model)):
        raise UserError(f"{path}: the adapter does not fit this model; delete the checkpoint")


class LMKind(RunKind):
    """A pretrained causal LM fine-tuned with LoRA (`data:`, `lm:`, `train:`); one process, adamw only."""

    section = "lm"
    config_type = LMRunConfig
    frozen_base = True

    def config_from_dict(self, raw: dict[str, Any]) -> LMRunConfig:
        return lm_run_config_from_dict(raw)

    def build(self, cfg: LMRunConfig, dataset: Dataset, device: torch.device) -> Built:
        """The task's dataset (outputs enciphered for `encrypted`), the model's tokenizer, the base model
        at the run's precision with a fresh adapter (seeded by train.seed), checked once against the
        model's own forward."""
        dataset = task_dataset(dataset, cfg.lm.task.kind, cfg.lm.task.cipher_seed)
        tokenizer = load_tokenizer(cfg.lm)
        template = resolve_template(cfg.lm.template, tokenizer)
        encrypted = cfg.lm.task.kind == "encrypted"
        encoded = {
            name: encode_split(s, tokenizer, template, encrypted, cfg.lm.spaced)
            for name, s in dataset.splits.items()
        }
        dtype = resolved_dtype(cfg.train.dtype, device, frozen_base=True)
        model = attach_lora(load_model(cfg.lm, device, dtype), cfg.lm.lora, cfg.train.seed)
        train = encoded["train"]
        check_head(model, train.batch(np.arange(min(2, len(train)))).to(device))
        return Built(cfg, dataset, tokenizer, encoded, model, len(tokenizer), longest(encoded))

    def optimizer(self, model: nn.Module, tc: TrainConfig) -> torch.optim.Optimizer:
        trainable = [p for p in model.parameters() if p.requires_grad]
        return torch.optim.AdamW(
            trainable, lr=tc.lr, betas=(tc.beta1, tc.beta2), weight_decay=tc.weight_decay
        )

    def train_step(self, net, enc, batch, tc, dist, device, amp) -> float:  # type: ignore[override]
        return lm_train_step(net, enc, batch, tc.grad_accum, device, amp)

    def correct(self, model, enc, indices, device, amp) -> np.ndarray:  # type: ignore[override]
        return teacher_forced(model, enc, indices, device, amp)

    def score_split(
        self, built: Built, split: Split, amp: Any, progress: Progress
    ) -> tuple[np.ndarray, list]:
        lm, tokenizer = built.cfg.lm, built.tokenizer
        template = resolve_template(lm.template, tokenizer)
        enc = encode_split(split, tokenizer, template, lm.task.kind == "encrypted", lm.spaced)
        device = device_of(built.model)
        return score_lm_split(built.model, tokenizer, template, split, enc, device, amp, progress, lm.spaced)

    def weights(self, model: nn.Module) -> dict[str, torch.Tensor]:
        return adapter_state(model)

    def load_weights(self, model: nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
        load_adapter(model, weights, path)

    def finish(self, model: nn.Module, run_dir: Path) -> None:
        """The adapter in peft's own format, for use outside rewritelab."""
        with atomic_dir(run_dir / ADAPTER_DIR) as tmp:
            model.save_pretrained(str(tmp))


LM = LMKind()


def train_lm_run(
    cfg: LMRunConfig,
    run_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    progress: ProgressMode | bool | None = None,
) -> dict[str, Any]:
    """Train (or resume, or just return) an `lm:` run; returns its summary (`run.train_and_evaluate`)."""
    return train_and_evaluate(LM, cfg, run_dir, data_dir, progress)
