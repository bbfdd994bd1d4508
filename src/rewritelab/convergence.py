"""Whether a run ended converged, judged from its metrics.jsonl alone (never from a final test score).

The criterion of the v2 calibration (docs/results/calibration-v2/NOTES.md): over the last 20 % of the
steps the training loss, averaged over each half, falls by less than `LOSS_DROP_MAX` nats per answer
token, and no learning-curve accuracy moves by `ACC_DELTA_MAX` or more between the last two evaluations
(when both lie in that last 20 %). A reference curve is only as good as its least converged point, so the
judgement is recorded in every summary and results row instead of being recomputed by hand. A top-level
module without torch, so that the CLI, the store and the report can use it as cheaply as `run` does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rewritelab.io import read_jsonl_records
from rewritelab.layout import METRICS

LOSS_DROP_MAX = 0.01  # nats per answer token, between the two halves of the last 20 % of steps
ACC_DELTA_MAX = 0.02  # largest move of any learning-curve accuracy between the last two evaluations
TAIL = 0.2  # the share of the steps the criterion looks at


def convergence(records: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """`{loss_drop, acc_delta, converged}` from metrics.jsonl records; None when the run has too few
    `train` lines in its last 20 % to judge (e.g. `max_steps: 0`, or fewer than two loss windows).
    `acc_delta` is None when fewer than two evaluations fall in the last 20 %; the loss decides alone."""
    records = list(records)
    train = [r for r in records if r.get("kind") == "train"]
    if not train:
        return None
    last = max(r["step"] for r in train)
    start, middle = (1 - TAIL) * last, (1 - TAIL / 2) * last
    first_half = [r["loss"] for r in train if start < r["step"] <= middle]
    second_half = [r["loss"] for r in train if r["step"] > middle]
    if not first_half or not second_half:
        return None
    loss_drop = sum(first_half) / len(first_half) - sum(second_half) / len(second_half)
    if not math.isfinite(loss_drop):  # a diverged run's log (older versions did not stop it)
        return {"loss_drop": None, "acc_delta": None, "converged": False}
    evals = [r for r in records if r.get("kind") == "eval" and r["step"] >= start]
    evals.sort(key=lambda r: r["step"])
    acc_delta = None
    if len(evals) >= 2:
        before, after = evals[-2]["accuracy"], evals[-1]["accuracy"]
        moves = [abs(after[s] - before[s]) for s in after if _number(after[s]) and _number(before.get(s))]
        acc_delta = max(moves) if moves else None
    converged = loss_drop < LOSS_DROP_MAX and (acc_delta is None or acc_delta < ACC_DELTA_MAX)
    if acc_delta is not None:
        acc_delta = round(acc_delta, 6)
    return {"loss_drop": round(loss_drop, 6), "acc_delta": acc_delta, "converged": converged}


def run_convergence(run_dir: Path) -> dict[str, Any] | None:
    """`convergence` of a run directory's metrics.jsonl (lines cut short by a kill are skipped)."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return None
    records = [r for r in read_jsonl_records(path) if isinstance(r.get("step"), int)]
    return convergence(records)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
