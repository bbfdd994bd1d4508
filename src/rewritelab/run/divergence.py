"""Divergence: a step whose loss or gradient norm is not finite stops the run, for every run kind.

One such step turns every weight into NaN; without this check the run would go on to "finish" with
accuracy 0, write a summary, and be recorded by a sweep like any other run. Both training loops (from
scratch and LoRA) call `check_finite` after each optimizer step and before the step is counted, logged or
checkpointed, so the last checkpoint and metrics.jsonl hold only finite steps and nothing marks the run
finished.
"""

from __future__ import annotations

import math

import torch

from rewritelab.errors import UserError


class TrainingDiverged(UserError):
    """A step's loss or gradient norm is not finite: the run stops there, before anything records it."""


def check_finite(step: int, loss: float, grad_norm: torch.Tensor | None, lr: float) -> None:
    """Raise `TrainingDiverged`, naming the step and the likely cause, when the step's loss or its
    gradient norm (computed when clipping is on) is NaN or infinite."""
    values = {"loss": loss, "gradient norm": None if grad_norm is None else float(grad_norm)}
    bad = [f"{name} {v}" for name, v in values.items() if v is not None and not math.isfinite(v)]
    if bad:
        raise TrainingDiverged(
            f"training diverged at step {step} ({' and '.join(bad)} at learning rate {lr:.3g}); the "
            "learning rate is likely too high: lower train.lr (or lengthen train.warmup_steps) and train "
            "into a new --out directory"
        )
