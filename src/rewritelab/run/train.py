"""Training: a run config → a trained model, exact-resume checkpoints and metrics.jsonl.

`train_model` reads top to bottom like the algorithm (after nanoGPT's train.py, with a typed config):
data → model → optimizer → resume → loop (schedule, step, log, learning curves, checkpoint). It knows
nothing of the final evaluation: `run.pipeline` composes training and `run.evaluate`.

Design choices that matter for results:
- The loss is the cross-entropy summed over the target tokens of a GLOBAL batch divided by their count,
  however the batch is cut into micro-batches (gradient accumulation) or shards (DDP), so two processes
  compute the same update as one process with `grad_accum=2`.
- The data order of epoch e comes from an rng seeded with (train.seed, e), and the checkpoint stores the
  position inside the epoch, so a resumed run sees exactly the batches an uninterrupted run would; with
  every RNG state restored, a CPU run resumed from a checkpoint ends bit-identical to one never stopped.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from rewritelab.data import Dataset
from rewritelab.layout import CHECKPOINT, EVAL_SPLITS, METRICS
from rewritelab.model import GPT
from rewritelab.run.checkpoint import (
    TrainState,
    build_model,
    check_checkpoint,
    checkpoint_payload,
    gather_rng,
    load_weights,
    read_checkpoint,
    restore_rng,
    save_checkpoint,
)
from rewritelab.run.config import RunConfig, TrainConfig, with_resolved_dtype
from rewritelab.run.device import Dist, all_reduce_sum, autocast_for, execution_banner, resolve_device
from rewritelab.run.divergence import check_finite
from rewritelab.run.rundir import MetricsLog, load_data, prepare_run_dir
from rewritelab.run.scoring import eval_subset, teacher_forced_correct
from rewritelab.textfmt import Progress
from rewritelab.tokenizer import Encoded, Tokenizer, length_batches

LOG_EVERY = 50  # steps per `train` line in metrics.jsonl


def count_steps(n_train: int, cfg: TrainConfig) -> int:
    """Optimizer steps of a run: `epochs` passes over the data, capped by `max_steps`."""
    steps = math.ceil(cfg.epochs * n_train / cfg.batch_size)
    return steps if cfg.max_steps is None else min(steps, cfg.max_steps)


def eval_steps(total_steps: int, cfg: TrainConfig) -> frozenset[int]:
    """Steps with a learning-curve evaluation: every `eval_every` steps and the last one, plus
    `eval_log_points` log-spaced steps from step 10 on (a linear grid misses an early take-off)."""
    if cfg.eval_examples == 0 or total_steps == 0 or not (cfg.eval_every or cfg.eval_log_points):
        return frozenset()
    steps = {total_steps}
    if cfg.eval_every:
        steps.update(range(cfg.eval_every, total_steps, cfg.eval_every))
    if cfg.eval_log_points:
        log_spaced = np.geomspace(min(10, total_steps), total_steps, cfg.eval_log_points)
        steps.update(int(round(step)) for step in log_spaced)
    return frozenset(steps)


def learning_rate(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """LR of optimizer step `step` (0-based): linear warmup, then decay to `min_lr_frac · lr` at the end
    (`wsd`, warmup-stable-decay: flat, then a linear decay over the last `decay_frac` of the steps)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    floor = cfg.lr * cfg.min_lr_frac
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))
    if cfg.schedule == "cosine":
        return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if cfg.schedule == "wsd":
        progress = max(0.0, progress - (1.0 - cfg.decay_frac)) / cfg.decay_frac
    return floor + (cfg.lr - floor) * (1.0 - progress)


def epoch_batches(lengths: np.ndarray, cfg: TrainConfig, epoch: int) -> list[np.ndarray]:
    """The global batches of epoch `epoch`, in order: a pure function of (train.seed, epoch)."""
    rng = np.random.default_rng([cfg.seed, epoch])
    return length_batches(lengths, cfg.batch_size, rng, shuffle=True)


class Schedule:
    """Which batch each step reads and at which learning rate, for every run kind: the batches of an
    epoch are a pure function of (train.seed, epoch), so a resumed run reads exactly what it would have."""

    def __init__(self, lengths: np.ndarray, cfg: TrainConfig, total_steps: int, optimizer):
        self.lengths, self.cfg, self.total_steps, self.optimizer = lengths, cfg, total_steps, optimizer
        self.epoch, self.batches = -1, []

    def begin(self, state: TrainState) -> tuple[np.ndarray, float]:
        """The batch of step `state.step`, with the learning rate set on the optimizer."""
        if self.epoch != state.epoch:
            self.batches, self.epoch = epoch_batches(self.lengths, self.cfg, state.epoch), state.epoch
        lr = learning_rate(state.step, self.total_steps, self.cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return self.batches[state.position], lr


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


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer | OptimizerPair:
    """AdamW, weight decay on matrices only (not biases, LayerNorm gains or embeddings); or, with
    `optimizer: muon`, Muon on those hidden matrices and AdamW on the rest (embeddings, gains, biases).
    Muon scales its update to AdamW's RMS (`match_rms_adamw`), so it takes the same lr and weight decay."""
    exempt = {
        id(p)
        for m in model.modules()
        if isinstance(m, (nn.Embedding, nn.LayerNorm))
        for p in m.parameters(recurse=False)
    }
    decay, rest = [], []
    for name, p in model.named_parameters():
        (rest if id(p) in exempt or name.endswith("bias") else decay).append(p)
    betas = (cfg.beta1, cfg.beta2)
    if cfg.optimizer == "muon":
        muon = torch.optim.Muon(
            decay, lr=cfg.lr, weight_decay=cfg.weight_decay, adjust_lr_fn="match_rms_adamw"
        )
        return OptimizerPair(muon, torch.optim.AdamW(rest, lr=cfg.lr, betas=betas, weight_decay=0.0))
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=betas)


class OptimizerPair:
    """Two optimizers over disjoint parameters stepped as one: the loop sets the lr on `param_groups`,
    steps, zeroes and checkpoints them together (`state_dict` holds both, in order)."""

    def __init__(self, first: torch.optim.Optimizer, second: torch.optim.Optimizer):
        self.optimizers = (first, second)

    @property
    def param_groups(self) -> list[dict]:
        """Read afresh: `load_state_dict` replaces an optimizer's group dicts."""
        return [group for opt in self.optimizers for group in opt.param_groups]

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {"pair": [opt.state_dict() for opt in self.optimizers]}

    def load_state_dict(self, state: dict) -> None:
        for opt, sub in zip(self.optimizers, state["pair"], strict=True):
            opt.load_state_dict(sub)


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
# Signals


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


# ---------------------------------------------------------------------------------------------------------
# The run


class Trained(NamedTuple):
    """What training leaves in memory for the final evaluation (rank 0 evaluates without reloading)."""

    model: GPT
    dataset: Dataset


def train_model(
    cfg: RunConfig,
    run_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    mode: str = "auto",
    dist: Dist | None = None,
) -> Trained:
    """Train the run in `run_dir` to its last step, resuming from checkpoint.pt if there is one.

    `mode` is a resolved progress mode (auto, bar, log, none); `dist` this process's place in a torchrun
    job (its process group already set up). Writes config.yaml, data_manifest.json, metrics.jsonl and
    checkpoint.pt (rank 0); raises TrainingInterrupted after checkpointing when SIGINT/SIGTERM arrives.
    """
    run_dir, dist = Path(run_dir), dist or Dist()
    cfg = with_resolved_dtype(cfg)  # config.yaml and the summary record the precision that ran
    tc = cfg.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = resolve_device(tc.device, dist.local_rank)
    amp = autocast_for(device, tc.dtype)

    # Data: generated (or read) once and encoded once into flat token arrays.
    cfg, dataset = load_data(cfg, data_dir)
    prepare_run_dir(run_dir, cfg, dataset.manifest, dist)
    tokenizer = Tokenizer.for_data(cfg.data)
    encoded = {name: tokenizer.encode_split(split) for name, split in dataset.splits.items()}
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
            payload = checkpoint_payload(
                model, optimizer, state, rng_states, cfg, tokenizer.vocab_size, block_size, total_steps
            )
            save_checkpoint(ckpt_path, payload)

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
    bar = Progress(total_steps, desc="step", initial=state.step, mode=mode if dist.is_main else "none")
    bar.message(execution_banner(device, tc.dtype))
    start = f"resuming at step {state.step} of" if state.step else "training"
    where = f"{device} x {dist.world_size} processes" if dist.enabled else str(device)
    bar.message(f"{run_dir}: {start} {total_steps} steps on {where}, {model.num_params():,} parameters")
    session_start, seconds_before, session_tokens = time.perf_counter(), state.seconds, 0
    schedule = Schedule(train_enc.lengths, tc, total_steps, optimizer)
    evals = eval_steps(total_steps, tc) if dist.is_main else frozenset()  # learning-curve evaluations
    model.train()
    try:
        with stop_requests() as stop:
            while state.step < total_steps:
                batch, lr = schedule.begin(state)
                loss = train_step(net, train_enc, batch, tc, dist, device, amp)
                norm = None
                if tc.grad_clip > 0:
                    norm = nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

                loss_value, stopping = all_reduce_sum([float(loss.item()), float(len(stop))], dist, device)
                check_finite(state.step + 1, loss_value, norm, lr)  # equal on every rank: all stop together
                batch_tokens = int(train_enc.lengths[batch].sum())
                state.advance(batch_tokens, loss_value, len(schedule.batches))
                state.seconds = seconds_before + time.perf_counter() - session_start
                session_tokens += batch_tokens
                rate = session_tokens / max(time.perf_counter() - session_start, 1e-9)
                bar.update(1, f"loss {state.loss:.4f} lr {lr:.2e} {rate / 1e3:.1f}k tok/s")

                last = state.step == total_steps
                if last:
                    state.finish()
                if state.step % LOG_EVERY == 0 or last:
                    metrics.write(state.train_record(lr, len(schedule.batches)))
                if state.step in evals:
                    evaluate_subsets()
                if state.step % tc.checkpoint_every == 0 or last or stopping:
                    checkpoint()
                if stopping and not last:
                    signum = stop[0] if stop else signal.SIGTERM
                    raise TrainingInterrupted(signum, state.step, ckpt_path)
        if total_steps == 0 and not ckpt_path.exists():
            state.finish()
            checkpoint()  # max_steps 0: the untrained model, evaluated as a baseline
    finally:
        bar.close()

    # The end: the trained model and its data, for the final evaluation (see run.pipeline).
    return Trained(model, dataset)
