"""Scoring: exact match of whole answers, breakdowns and bootstrap intervals, as pure functions of a model
and data (nothing here reads or writes a run directory).

Fast path. Greedy decoding reproduces the target answer exactly iff, under teacher forcing, the argmax at
every answer position (`<eos>` included) equals the target: by induction each greedy step then sees the
same prefix the teacher-forced pass saw. So one batched forward pass per length-grouped batch scores a
whole split, and only the examples it marks wrong are decoded step by step, to record what the model
actually wrote. (A decoded answer is compared token by token, so the two paths can never disagree in the
written files even at a numerical near-tie.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rewritelab.decoding import DEFAULT_DECODE_BATCH
from rewritelab.errors import UserError
from rewritelab.model import GPT
from rewritelab.textfmt import Progress
from rewritelab.tokenizer import EOS_ID, Encoded, Tokenizer, length_batches

# Tokens per teacher-forced batch. On CPU, 1k-8k tokens run fastest (1.7x faster than 32k for a
# 2-layer d=128 model: larger batches fall out of cache); a GPU wants large batches.
EVAL_TOKENS = {"cpu": 1 << 12}
EVAL_TOKENS_DEFAULT = 1 << 16
EVAL_SUBSET_SEED = 20240215  # subsets (learning curves, quick tests) shared by all runs
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
BREAKDOWNS = ("noop", "frequency", "family", "k", "pattern_len", "occurrences")
PROGRAM_BREAKDOWNS = ("frequency", "family", "k", "steps", "input_len")
# train_count buckets (inclusive lower bounds) for the `frequency` breakdown
FREQUENCY_BUCKETS = ((0, "0"), (1, "1-9"), (10, "10-99"), (100, "100-999"), (1000, ">=1000"))


# ---------------------------------------------------------------------------------------------------------
# Scoring


def device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def teacher_forced_correct(
    model: GPT,
    enc: Encoded,
    indices: Sequence[int] | np.ndarray | None = None,
    amp: contextlib.AbstractContextManager | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Greedy exact match of each example (in `indices` order), from one forward pass per batch;
    `progress` advances by the examples of each batch."""
    idx = np.arange(len(enc)) if indices is None else np.asarray(indices, dtype=np.int64)
    correct = np.zeros(len(idx), dtype=bool)
    if len(idx) == 0:
        return correct
    lengths = enc.lengths[idx]
    device = device_of(model)
    batch_size = max(1, EVAL_TOKENS.get(device.type, EVAL_TOKENS_DEFAULT) // int(lengths.max()))
    was_training = model.training
    model.eval()
    try:
        for rows in length_batches(lengths, batch_size, np.random.default_rng(0), shuffle=False):
            x, y, mask = (t.to(device) for t in enc.batch(idx[rows], "answer"))
            with amp or contextlib.nullcontext():
                logits, _ = model(x)
            hit = (logits.argmax(-1) == y) | (mask == 0)
            correct[rows] = hit.all(dim=1).cpu().numpy()
            if progress is not None:
                progress.update(len(rows))
    finally:
        model.train(was_training)
    return correct


def greedy_answers(
    model: GPT,
    enc: Encoded,
    indices: Sequence[int] | np.ndarray,
    amp: contextlib.AbstractContextManager | None = None,
) -> list[list[int]]:
    """What greedy decoding writes after each prompt (token ids, `<eos>` included when produced)."""
    if len(indices) == 0:
        return []
    with amp or contextlib.nullcontext():
        return model.generate(enc.prompts(indices), max_new_tokens=model.block_size, eos_id=EOS_ID)


def score_split(
    model: GPT,
    tokenizer: Tokenizer,
    split: Any,
    enc: Encoded,
    amp: contextlib.AbstractContextManager | None = None,
    progress: Progress | None = None,
) -> tuple[np.ndarray, list]:
    """(correct per example, prediction per example): the fast path, then decoding of the misses only
    (`progress` counts both: its total grows by the misses once they are known). With trace answers a
    prediction is the list of strings written and `correct` is the exact match of the whole trace."""
    if enc.lengths.size and int(enc.lengths.max()) > model.block_size:
        raise UserError(
            f"data: sequences of {int(enc.lengths.max())} tokens exceed the model's block size "
            f"{model.block_size}; evaluate on data with the run's lengths"
        )
    correct = teacher_forced_correct(model, enc, amp=amp, progress=progress)
    trace = tokenizer.answer == "trace"
    decode = tokenizer.decode_steps if trace else tokenizer.decode
    predictions = [list(t) for t in split.trace] if trace else list(split.output)
    wrong = np.flatnonzero(~correct)
    if progress is not None:
        progress.extend(len(wrong))
    # In prompt-length order, chunks of one decode batch: the batches `generate` would form on its own.
    wrong = wrong[np.argsort(enc.prompt_len[wrong], kind="stable")]
    for lo in range(0, len(wrong), DEFAULT_DECODE_BATCH):
        chunk = wrong[lo : lo + DEFAULT_DECODE_BATCH]
        written_rows = greedy_answers(model, enc, chunk, amp)
        for i, written, target in zip(chunk, written_rows, enc.answers(chunk), strict=True):
            predictions[i] = decode(written)
            correct[i] = written == target
        if progress is not None:
            progress.update(len(chunk), f"({len(correct)} scored, then {len(wrong)} misses decoded)")
    return correct, predictions


def eval_subset(n: int, k: int) -> np.ndarray:
    """A fixed, sorted sample of `k` of `n` examples: learning curves compare the same examples."""
    if k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(EVAL_SUBSET_SEED).choice(n, size=k, replace=False))


# ---------------------------------------------------------------------------------------------------------
# Statistics


def bootstrap_ci(
    hits: np.ndarray | int,
    n: np.ndarray | int,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> np.ndarray:
    """95 % percentile-bootstrap intervals of accuracies `hits / n` (arrays: one interval per row).

    Resampling n right/wrong outcomes with replacement and averaging is a Binomial(n, hits/n) draw
    divided by n, so the bootstrap draws that directly: the same distribution, vectorised over cells,
    at a cost independent of n. Returns shape (..., 2); rows with n = 0 get [nan, nan].
    """
    hits, n = np.asarray(hits, dtype=np.int64), np.asarray(n, dtype=np.int64)
    safe_n = np.maximum(n, 1)
    rng = np.random.default_rng(seed)
    draws = (
        rng.binomial(safe_n[..., None], (hits / safe_n)[..., None], size=(*n.shape, resamples))
        / safe_n[..., None]
    )
    interval = np.quantile(draws, [0.025, 0.975], axis=-1).transpose(*range(1, n.ndim + 1), 0)
    return np.where((n > 0)[..., None], interval, np.nan)


def frequency_bucket(train_count: np.ndarray) -> np.ndarray:
    """Bucket names of the number of training examples of each example's rule (0 for held-out rules)."""
    lower = np.array([lo for lo, _ in FREQUENCY_BUCKETS])
    names = np.array([name for _, name in FREQUENCY_BUCKETS])
    return names[np.searchsorted(lower, np.asarray(train_count), side="right") - 1]


def breakdown_keys(split: Any) -> dict[str, np.ndarray]:
    """Per example, the cell it falls in for each breakdown (as strings, the JSON keys)."""
    if hasattr(split, "program"):  # Markov programs: rules per program, execution steps, input length
        return {
            "frequency": frequency_bucket(split.train_count),
            "family": np.asarray(split.family, dtype=str),
            "k": np.asarray(split.k).astype(str),
            "steps": np.asarray(split.steps).astype(str),
            "input_len": np.fromiter(map(len, split.input), dtype=np.int64, count=len(split.input)).astype(
                str
            ),
        }
    return {
        "noop": np.where(np.asarray(split.noop, dtype=bool), "true", "false"),
        "frequency": frequency_bucket(split.train_count),
        "family": np.asarray(split.family, dtype=str),
        "k": np.asarray(split.k).astype(str),
        "pattern_len": np.fromiter(map(len, split.pattern), dtype=np.int64, count=len(split.pattern)).astype(
            str
        ),
        "occurrences": np.asarray(split.occurrences).astype(str),
    }


def cells(keys: np.ndarray, correct: np.ndarray) -> dict[str, dict[str, Any]]:
    """{cell: {n, accuracy, ci95}} of one breakdown."""
    if len(keys) == 0:
        return {}
    values, inverse = np.unique(keys, return_inverse=True)
    n = np.bincount(inverse, minlength=len(values))
    hits = np.bincount(inverse, weights=correct.astype(np.float64), minlength=len(values)).astype(np.int64)
    ci = bootstrap_ci(hits, n)
    return {
        str(v): {
            "n": int(n[i]),
            "accuracy": float(hits[i] / n[i]),
            "ci95": [float(ci[i, 0]), float(ci[i, 1])],
        }
        for i, v in enumerate(values)
    }


def split_report(split: Any, correct: np.ndarray, predictions: list, trace: bool = False) -> dict[str, Any]:
    """Accuracy, its interval, size, every breakdown of one scored split, and `correct` per example.

    With `trace` (program datasets whose answer is the execution trace) `correct` comes in as the exact
    match of the whole trace; accuracy is always the exact match of the final string (the last one
    written), and the report adds `trace_accuracy` and `step_accuracy` (target strings matched by the
    string written at the same position, over all target strings).
    """
    extra: dict[str, Any] = {}
    if trace:
        whole = correct
        correct = np.array([p[-1] == y for p, y in zip(predictions, split.output, strict=True)], dtype=bool)
        matched = sum(sum(map(str.__eq__, p, t)) for p, t in zip(predictions, split.trace, strict=True))
        total = int(np.sum(split.steps))
        extra = {
            "trace_accuracy": float(whole.mean()) if len(whole) else None,
            "step_accuracy": matched / total if total else None,
        }
    n, hits = len(correct), int(correct.sum())
    lo, hi = bootstrap_ci(hits, n)
    return {
        "accuracy": hits / n if n else None,
        "ci95": [float(lo), float(hi)] if n else None,
        "n": n,
        "breakdown": {name: cells(keys, correct) for name, keys in breakdown_keys(split).items()},
        **extra,
        "correct": correct,
    }
