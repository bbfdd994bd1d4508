"""Training: a run config → a trained model, exact-resume checkpoints and metrics.jsonl, for every run kind.

`train_model` reads top to bottom like the algorithm (after nanoGPT's train.py, with a typed config):
data → model → optimizer → resume → loop (schedule, step, log, learning curves, checkpoint). What differs
between a from-scratch GPT and a LoRA adapter (the model, its encoding, the loss of a step, scoring, what
the checkpoint holds) is asked of the run's kind (`run.kind.RunKind`). It knows nothing of the final
evaluation: `run.pipeline` composes training and `run.evaluate`.

Design choices that matter for results:
- The loss is the cross-entropy summed over the target tokens of a GLOBAL batch divided by their count,
  however the batch is cut into micro-batches (gradient accumulation) or shards (DDP), so two processes
  compute the same update as one process with `grad_accum=2`.
- The data order of epoch e comes from an rng seeded with (train.seed, e), and the checkpoint stores the
  position inside the epoch (`run.schedule`), so a resumed run sees exactly the batches an uninterrupted
  run would; with every RNG state restored, a CPU run resumed from a checkpoint ends bit-identical to one
  never stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rewritelab.layout import CHECKPOINT, METRICS
from rewritelab.run.checkpoint import (
    TrainState,
    check_checkpoint,
    checkpoint_payload,
    gather_rng,
    read_checkpoint,
    restore_rng,
    save_checkpoint,
)
from rewritelab.run.config import with_resolved_dtype
from rewritelab.run.device import Dist, all_reduce_sum, autocast_for, execution_banner, resolve_device
from rewritelab.run.divergence import check_finite
from rewritelab.run.kind import Built, RunKind
from rewritelab.run.rundir import MetricsLog, as_recorded, load_data, prepare_run_dir
from rewritelab.run.schedule import Schedule, check_progress, count_steps, curve_sets, eval_steps
from rewritelab.textfmt import Progress
from rewritelab.versions import note_version_changes

LOG_EVERY = 50  # steps per `train` line in metrics.jsonl


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


def train_model(
    kind: RunKind,
    cfg: Any,
    run_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    mode: str = "auto",
    dist: Dist | None = None,
) -> Built:
    """Train the run in `run_dir` to its last step, resuming from checkpoint.pt if there is one; returns
    what was built (the trained model, its data) for the final evaluation.

    `mode` is a resolved progress mode (auto, bar, log, none); `dist` this process's place in a torchrun
    job (its process group already set up). Writes config.yaml, data_manifest.json, metrics.jsonl and
    checkpoint.pt (rank 0), then what the kind leaves at the end; raises TrainingInterrupted after
    checkpointing when SIGINT/SIGTERM arrives.
    """
    run_dir, dist = Path(run_dir), dist or Dist()
    cfg = with_resolved_dtype(cfg, kind.frozen_base)  # config.yaml and the summary record what ran
    tc = cfg.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = resolve_device(tc.device, dist.local_rank)
    amp = autocast_for(device, tc.dtype, kind.frozen_base)

    # Data (generated or read once, encoded once) and a freshly initialised model, as the kind builds them.
    cfg, dataset = load_data(cfg, data_dir)
    built = kind.build(cfg, as_recorded(run_dir, dataset), device)
    model, encoded, train_enc = built.model, built.encoded, built.encoded["train"]
    prepare_run_dir(run_dir, cfg, built.dataset.manifest, dist, same=kind.same_run)
    total_steps = count_steps(len(train_enc), tc)
    eval_sets = curve_sets(encoded, tc.eval_examples)

    # Optimizer, then the checkpoint if there is one.
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = kind.optimizer(model, tc)
    state = TrainState()
    ckpt_path = run_dir / CHECKPOINT
    if ckpt_path.exists():
        ckpt = read_checkpoint(ckpt_path)
        check_checkpoint(ckpt, cfg, ckpt_path, kind.same_run, built.vocab_size)
        check_progress(ckpt, ckpt_path, len(train_enc), tc, train_enc.lengths)
        kind.load_weights(model, ckpt["model"], ckpt_path)
        optimizer.load_state_dict(ckpt["optimizer"])
        state = TrainState(**ckpt["state"])
        if dist.is_main:
            resuming = f"{run_dir}: resuming at step {state.step}, its checkpoint"
            note_version_changes(ckpt.get("versions"), resuming)
        rng = ckpt["rng"]
        restore_rng(rng[dist.rank % len(rng)])
    metrics = MetricsLog(run_dir / METRICS, dist.is_main)
    metrics.truncate_after(state.step)
    net = kind.loss_module(model)
    if dist.enabled:
        ids = [device.index] if device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(net, device_ids=ids)

    def checkpoint() -> None:
        rng_states = gather_rng(dist)  # a collective: every rank takes part
        if dist.is_main:
            weights = kind.weights(model)
            payload = checkpoint_payload(
                weights, optimizer, state, rng_states, cfg, built.vocab_size, built.block_size, total_steps
            )
            save_checkpoint(ckpt_path, payload)

    def evaluate_subsets() -> None:
        accuracy = {
            name: float(kind.correct(model, encoded[name], idx, device, amp).mean()) if len(idx) else None
            for name, idx in eval_sets.items()
        }
        metrics.write(state.eval_record(accuracy))
        bar.message(
            f"step {state.step}: " + ", ".join(f"{k} {v:.3f}" for k, v in accuracy.items() if v is not None)
        )

    # The loop: one global batch per step, the order fixed by (seed, epoch) and the position in the epoch.
    bar = Progress(total_steps, desc="step", initial=state.step, mode=mode if dist.is_main else "none")
    bar.message(execution_banner(device, tc.dtype, kind.frozen_base))
    start = f"resuming at step {state.step} of" if state.step else "training"
    where = f"{device} x {dist.world_size} processes" if dist.enabled else str(device)
    size = sum(p.numel() for p in params)
    bar.message(f"{run_dir}: {start} {total_steps} steps on {where}, {size:,} trainable parameters")
    session_start, seconds_before, session_tokens = time.perf_counter(), state.seconds, 0
    schedule = Schedule(train_enc.lengths, tc, total_steps, optimizer)
    evals = eval_steps(total_steps, tc) if dist.is_main else frozenset()  # learning-curve evaluations
    model.train()
    try:
        with stop_requests() as stop:
            while state.step < total_steps:
                batch, lr = schedule.begin(state)
                loss = kind.train_step(net, train_enc, batch, tc, dist, device, amp)
                norm = nn.utils.clip_grad_norm_(params, tc.grad_clip) if tc.grad_clip > 0 else None
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

                loss, stopping = all_reduce_sum([loss, float(bool(stop))], dist, device)
                check_finite(state.step + 1, loss, norm, lr)  # equal on every rank: all stop together
                batch_tokens = int(train_enc.lengths[batch].sum())
                state.advance(batch_tokens, loss, len(schedule.batches))
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
                    signum = stop[0] if len(stop) else signal.SIGTERM  # the signal may reach another rank
                    raise TrainingInterrupted(signum, state.step, ckpt_path)
        if total_steps == 0 and not ckpt_path.exists():
            state.finish()
            checkpoint()  # max_steps 0: the untrained model (a LoRA adapter: the base), scored as a baseline
    finally:
        bar.close()

    # The end: what the kind leaves besides the checkpoint, and the trained model for the final evaluation.
    if dist.is_main:
        kind.finish(model, run_dir)
    return built
