"""The schedule every run kind shares: how many steps, which batch each step reads, at which learning rate,
when the learning curves are measured and on which examples, and how a global batch is cut into shards and
micro-batches.

The data order of epoch e comes from an rng seeded with (train.seed, e), and the checkpoint stores the
position inside the epoch, so a resumed run sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from rewritelab.errors import UserError
from rewritelab.layout import EVAL_SPLITS, VALIDATION
from rewritelab.run.checkpoint import TrainState
from rewritelab.run.config import TrainConfig
from rewritelab.run.device import Dist
from rewritelab.run.scoring import eval_subset
from rewritelab.tokenizer import length_batches


def count_steps(n_train: int, cfg: TrainConfig) -> int:
    """Optimizer steps of a run: `epochs` passes over the data, capped by `max_steps`."""
    steps = math.ceil(cfg.epochs * n_train / cfg.batch_size)
    return steps if cfg.max_steps is None else min(steps, cfg.max_steps)


def check_progress(
    ckpt: dict[str, Any], path: Path, n_train: int, cfg: TrainConfig, lengths: np.ndarray | None = None
) -> None:
    """Refuse a checkpoint whose loop state this run's schedule never reaches (hand-made or damaged): the
    step count is this run's (`n_train` training examples), the step lies within it, epoch and position
    are where that step reads the data, and only the last step carries the finish stamp. With the training
    examples' encoded `lengths` (resuming has them; evaluation may not), the tokens must be those of the
    batches up to the step. The layout was checked on read (`checkpoint.read_checkpoint`)."""
    state, total = ckpt["state"], count_steps(n_train, cfg)
    step, epoch, position = state["step"], state["epoch"], state["position"]
    per_epoch = math.ceil(n_train / cfg.batch_size)  # every epoch's batch count (`length_batches`)
    wrong = None
    if ckpt["total_steps"] != total or not step <= total:
        wrong = f"step {step} of {ckpt['total_steps']}, where this run has {total} steps"
    elif (epoch, position) != (divmod(step, per_epoch) if per_epoch else (0, 0)):
        wrong = f"epoch {epoch}, batch {position} is not where step {step} reads the data"
    elif state["window_steps"] > step or (state.get("finished_at") and step < total):
        wrong = f"the loss window or the finish stamp does not fit step {step} of {total}"
    elif lengths is not None and state["tokens"] != epoch * int(lengths.sum()) + sum(
        int(lengths[batch].sum()) for batch in epoch_batches(lengths, cfg, epoch)[:position]
    ):
        wrong = f"{state['tokens']} tokens is not what the batches up to step {step} hold"
    if wrong:
        raise UserError(f"{path}: damaged or edited: its loop state does not fit this run ({wrong}); "
                        "delete it to train from scratch")  # fmt: skip


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


def curve_sets(encoded: dict[str, Any], eval_examples: int) -> dict[str, np.ndarray]:
    """The examples each learning-curve evaluation scores: the whole validation split where the dataset
    has one (its size, `data.validation_rules` x `validation_examples_per_rule`, is chosen for the decisions
    read from it), then a fixed subset of `eval_examples` of each test split (curves for people)."""
    sets = {VALIDATION: np.arange(len(encoded[VALIDATION]))} if VALIDATION in encoded else {}
    return sets | {name: eval_subset(len(encoded[name]), eval_examples) for name in EVAL_SPLITS}


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
    """Which batch each step reads and at which learning rate: the batches of an epoch are a pure
    function of (train.seed, epoch), so a resumed run reads exactly what it would have."""

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
