"""LoRA fine-tuning of a pretrained causal LM: the same loop as `run.train` (schedule, length-grouped
batches of a seeded order, data position, metrics.jsonl, exact-resume checkpoints), on an adapter.

checkpoint.pt has the layout of a from-scratch checkpoint (so `run.checkpoint.read_checkpoint` reads it)
but its `model` entry holds the adapter's weights only: the base model is re-read from `lm.model`.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from rewritelab.config import to_dict
from rewritelab.data import Dataset
from rewritelab.errors import UserError
from rewritelab.io import atomic_dir
from rewritelab.layout import ADAPTER_DIR, CHECKPOINT, EVAL_SPLITS, METRICS
from rewritelab.lm.config import LMRunConfig, same_lm_run
from rewritelab.lm.encode import LMEncoded, answer_logits, check_head, encode_split, resolve_template
from rewritelab.lm.hf import attach_lora, load_model, load_tokenizer, require
from rewritelab.lm.prompts import task_dataset
from rewritelab.lm.scoring import teacher_forced
from rewritelab.run import (
    TrainingInterrupted,
    TrainState,
    check_finite,
    count_steps,
    resolved_dtype,
    shard,
    with_resolved_dtype,
)
from rewritelab.run.checkpoint import (
    CHECKPOINT_FORMAT,
    capture_rng,
    read_checkpoint,
    restore_rng,
    save_checkpoint,
)
from rewritelab.run.device import Dist, autocast_for, execution_banner, resolve_device
from rewritelab.run.rundir import MetricsLog, load_data, prepare_run_dir
from rewritelab.run.scoring import eval_subset
from rewritelab.run.train import LOG_EVERY, Schedule, eval_steps, stop_requests
from rewritelab.textfmt import Progress


class LMSetup(NamedTuple):
    """A run's model, tokenizer and encoded data, as training and evaluation both need them."""

    cfg: LMRunConfig
    model: Any  # a peft model
    tokenizer: Any
    template: str  # resolved: plain or chat
    dataset: Dataset  # task applied (outputs enciphered for `encrypted`)
    encoded: dict[str, LMEncoded]


def setup(cfg: LMRunConfig, data_dir: str | os.PathLike | None, device: torch.device) -> LMSetup:
    """Data, tokenizer, base model and a fresh adapter (seeded by train.seed)."""
    cfg, dataset = load_data(cfg, data_dir)
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
    return LMSetup(cfg, model, tokenizer, template, dataset, encoded)


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


def check_lm_checkpoint(ckpt: dict[str, Any], cfg: LMRunConfig, path: Path) -> None:
    if not same_lm_run(ckpt["config"], cfg):
        raise UserError(
            f"{path}: written by a different run (model, data or training settings differ); train into "
            "a new --out directory or delete the checkpoint"
        )


def train_lm(
    cfg: LMRunConfig, run_dir: str | os.PathLike, data_dir: str | os.PathLike | None, mode: str
) -> LMSetup:
    """Train the adapter of the run in `run_dir` to its last step, resuming from checkpoint.pt."""
    cfg = with_resolved_dtype(cfg, frozen_base=True)  # config.yaml and the summary record what ran
    run_dir, tc = Path(run_dir), cfg.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = resolve_device(tc.device)
    amp = autocast_for(device, tc.dtype, frozen_base=True)
    s = setup(cfg, data_dir, device)
    cfg, model, train_enc = s.cfg, s.model, s.encoded["train"]
    prepare_run_dir(run_dir, cfg, s.dataset.manifest, Dist(), same=same_lm_run)
    check_head(model, train_enc.batch(np.arange(min(2, len(train_enc)))).to(device))
    total_steps = count_steps(len(train_enc), tc)
    eval_sets = {name: eval_subset(len(s.encoded[name]), tc.eval_examples) for name in EVAL_SPLITS}
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable, lr=tc.lr, betas=(tc.beta1, tc.beta2), weight_decay=tc.weight_decay
    )
    state, ckpt_path = TrainState(), run_dir / CHECKPOINT
    if ckpt_path.exists():
        ckpt = read_checkpoint(ckpt_path)
        check_lm_checkpoint(ckpt, cfg, ckpt_path)
        load_adapter(model, ckpt["model"], ckpt_path)
        optimizer.load_state_dict(ckpt["optimizer"])
        state = TrainState(**ckpt["state"])
        restore_rng(ckpt["rng"][0])
    metrics = MetricsLog(run_dir / METRICS, True)
    metrics.truncate_after(state.step)
    block = int(max(e.lengths.max() for e in s.encoded.values() if len(e)))

    def checkpoint() -> None:
        payload = {
            "format": CHECKPOINT_FORMAT, "model": adapter_state(model), "optimizer": optimizer.state_dict(),
            "state": dataclasses.asdict(state), "rng": [capture_rng()],
            "config": to_dict(cfg), "vocab_size": len(s.tokenizer), "block_size": block,
            "total_steps": total_steps,
        }  # fmt: skip
        save_checkpoint(ckpt_path, payload)

    bar = Progress(total_steps, desc="step", initial=state.step, mode=mode)
    bar.message(execution_banner(device, tc.dtype, frozen_base=True))
    n_train = sum(p.numel() for p in trainable)
    start = f"resuming at step {state.step} of" if state.step else "training"
    bar.message(f"{run_dir}: {start} {total_steps} steps, LoRA {n_train:,} trainable parameters")
    session_start, seconds_before = time.perf_counter(), state.seconds
    schedule = Schedule(train_enc.lengths, tc, total_steps, optimizer)
    evals = eval_steps(total_steps, tc)
    model.train()
    try:
        with stop_requests() as stop:
            while state.step < total_steps:
                batch, lr = schedule.begin(state)
                loss = lm_train_step(model, train_enc, batch, tc.grad_accum, device, amp)
                norm = nn.utils.clip_grad_norm_(trainable, tc.grad_clip) if tc.grad_clip > 0 else None
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                check_finite(state.step + 1, loss, norm, lr)
                state.advance(int(train_enc.lengths[batch].sum()), loss, len(schedule.batches))
                state.seconds = seconds_before + time.perf_counter() - session_start
                bar.update(1, f"loss {state.loss:.4f} lr {lr:.2e}")

                last, stopping = state.step == total_steps, bool(stop)
                if last:
                    state.finish()
                if state.step % LOG_EVERY == 0 or last:
                    metrics.write(state.train_record(lr, len(schedule.batches)))
                if state.step in evals:
                    accuracy = {
                        name: float(teacher_forced(model, s.encoded[name], idx, device, amp).mean())
                        for name, idx in eval_sets.items()
                        if len(idx)
                    }
                    metrics.write(state.eval_record(accuracy))
                if state.step % tc.checkpoint_every == 0 or last or stopping:
                    checkpoint()
                if stopping and not last:
                    raise TrainingInterrupted(stop[0] or signal.SIGTERM, state.step, ckpt_path)
        if total_steps == 0 and not ckpt_path.exists():
            state.finish()
            checkpoint()  # max_steps 0: LoRA's B starts at zero, so this scores the base model zero-shot
    finally:
        bar.close()
    save_adapter(model, run_dir / ADAPTER_DIR)
    return s


def save_adapter(model: Any, path: Path) -> None:
    """The adapter in peft's own format, for use outside rewritelab."""
    with atomic_dir(path) as tmp:
        model.save_pretrained(str(tmp))
