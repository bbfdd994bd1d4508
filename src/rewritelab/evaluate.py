"""Evaluation: exact match of whole answers, breakdowns, bootstrap intervals, predictions, summary.json.

Fast path. Greedy decoding reproduces the target answer exactly iff, under teacher forcing, the argmax at
every answer position (`<eos>` included) equals the target: by induction each greedy step then sees the
same prefix the teacher-forced pass saw. So one batched forward pass per length-grouped batch scores a
whole split, and only the examples it marks wrong are decoded step by step, to record what the model
actually wrote. (A decoded answer is compared token by token, so the two paths can never disagree in the
written files even at a numerical near-tie.)
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rewritelab.config import load_yaml, to_dict
from rewritelab.data import Dataset
from rewritelab.errors import UserError
from rewritelab.io import atomic_write_json, atomic_write_text, read_json
from rewritelab.model import GPT
from rewritelab.tokenizer import EOS_ID, Encoded, Tokenizer, length_batches
from rewritelab.train import (
    CHECKPOINT,
    CONFIG,
    EVAL_SPLITS,
    SUMMARY,
    autocast_for,
    check_checkpoint,
    check_data_manifest,
    load_data,
    load_trained_model,
    read_checkpoint,
    resolve_device,
    run_config_from_dict,
)

# Tokens per teacher-forced batch. On CPU, 1k-8k tokens run fastest (1.7x faster than 32k for a
# 2-layer d=128 model: larger batches fall out of cache); a GPU wants large batches.
EVAL_TOKENS = {"cpu": 1 << 12}
EVAL_TOKENS_DEFAULT = 1 << 16
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
BREAKDOWNS = ("noop", "frequency", "family", "k", "pattern_len", "occurrences")
# train_count buckets (inclusive lower bounds) for the `frequency` breakdown
FREQUENCY_BUCKETS = ((0, "0"), (1, "1-9"), (10, "10-99"), (100, "100-999"), (1000, ">=1000"))


# ---------------------------------------------------------------------------------------------------------
# Scoring


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def teacher_forced_correct(
    model: GPT,
    enc: Encoded,
    indices: Sequence[int] | np.ndarray | None = None,
    amp: contextlib.AbstractContextManager | None = None,
) -> np.ndarray:
    """Greedy exact match of each example (in `indices` order), from one forward pass per batch."""
    idx = np.arange(len(enc)) if indices is None else np.asarray(indices, dtype=np.int64)
    correct = np.zeros(len(idx), dtype=bool)
    if len(idx) == 0:
        return correct
    lengths = enc.lengths[idx]
    device = _device_of(model)
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
) -> tuple[np.ndarray, list[str]]:
    """(correct per example, prediction per example): the fast path, then decoding of the misses only."""
    if enc.lengths.size and int(enc.lengths.max()) > model.block_size:
        raise UserError(
            f"data: sequences of {int(enc.lengths.max())} tokens exceed the model's block size "
            f"{model.block_size}; evaluate on data with the run's lengths"
        )
    correct = teacher_forced_correct(model, enc, amp=amp)
    predictions = list(split.output)
    wrong = np.flatnonzero(~correct)
    targets = enc.answers(wrong)
    for i, written, target in zip(wrong, greedy_answers(model, enc, wrong, amp), targets, strict=True):
        predictions[i] = tokenizer.decode(written)
        correct[i] = written == target
    return correct, predictions


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


def split_report(split: Any, correct: np.ndarray) -> dict[str, Any]:
    """Accuracy, its interval, size and every breakdown of one scored split."""
    n, hits = len(correct), int(correct.sum())
    lo, hi = bootstrap_ci(hits, n)
    return {
        "accuracy": hits / n if n else None,
        "ci95": [float(lo), float(hi)] if n else None,
        "n": n,
        "breakdown": {name: cells(keys, correct) for name, keys in breakdown_keys(split).items()},
    }


# ---------------------------------------------------------------------------------------------------------
# Run directories


def write_predictions(path: Path, split: Any, predictions: list[str], correct: np.ndarray) -> None:
    """One JSON line per example: its row, what the model wrote, and whether that is the answer."""
    lines = [
        json.dumps({**row, "prediction": pred, "correct": bool(ok)})
        for row, pred, ok in zip(split.rows(), predictions, correct, strict=True)
    ]
    atomic_write_text(path, "".join(line + "\n" for line in lines))


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """`rewritelab.__version__`, plus `+git.<short hash>` when the code runs from a git checkout."""
    from rewritelab import __version__

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return __version__
    commit = out.stdout.strip()
    return f"{__version__}+git.{commit}" if out.returncode == 0 and commit else __version__


def evaluate_run(
    run_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    splits: Sequence[str] | None = None,
    model: GPT | None = None,
    dataset: Dataset | None = None,
) -> dict[str, Any]:
    """Score a finished run's checkpoint on `splits` (default: both test splits); write
    `predictions/SPLIT.jsonl` and then `summary.json` (merged with an existing summary's other splits).

    `model` and `dataset` let the training loop pass what it holds in memory instead of reloading.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory; give a directory written by `rewritelab train`")
    if not (run_dir / CONFIG).is_file():
        raise UserError(f"{run_dir}: not a run directory (no {CONFIG}); give a directory written by `train`")
    cfg = run_config_from_dict(load_yaml(run_dir / CONFIG))
    ckpt_path = run_dir / CHECKPOINT
    ckpt = read_checkpoint(ckpt_path)
    tokenizer = Tokenizer(cfg.data.alphabet)
    check_checkpoint(ckpt, cfg, tokenizer.vocab_size, ckpt_path)
    state = ckpt["state"]
    if state["step"] < ckpt["total_steps"]:
        raise UserError(
            f"{run_dir}: training stopped at step {state['step']} of {ckpt['total_steps']}; finish it first "
            f"(re-run `rewritelab train {run_dir / CONFIG} --out {run_dir}`)"
        )
    if dataset is None:
        _, dataset = load_data(cfg, data_dir)
    check_data_manifest(run_dir, dataset.manifest)
    names = list(splits) if splits else list(EVAL_SPLITS)
    unknown = [name for name in names if name not in dataset.splits]
    if unknown:
        raise UserError(f"--split {unknown[0]}: no such split; choose from {', '.join(dataset.splits)}")
    if model is None:
        model = load_trained_model(cfg, ckpt, ckpt_path, resolve_device("auto"))
    amp = autocast_for(_device_of(model), cfg.train.dtype)

    reports = {}
    for name in names:
        split = dataset.splits[name]
        correct, predictions = score_split(model, tokenizer, split, tokenizer.encode_split(split), amp)
        write_predictions(run_dir / "predictions" / f"{name}.jsonl", split, predictions, correct)
        reports[name] = split_report(split, correct)

    summary = {key: {} for key in ("accuracy", "ci95", "n", "breakdown")}
    previous = run_dir / SUMMARY
    if splits and previous.is_file():  # re-scoring some splits keeps the others' results
        old = read_json(previous)
        for key in summary:
            summary[key].update({k: v for k, v in old.get(key, {}).items() if k not in reports})
    for name, report in reports.items():
        for key in summary:
            summary[key][name] = report[key]
    final_loss = float(state["loss"])
    summary["train"] = {
        "steps": int(state["step"]),
        "tokens": int(state["tokens"]),
        "seconds": round(float(state["seconds"]), 3),
        "final_loss": final_loss if np.isfinite(final_loss) else None,
    }
    summary["config"] = to_dict(cfg)
    summary["code_version"] = code_version()
    atomic_write_json(previous, summary)
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """A small table: split, accuracy, 95 % interval, number of examples."""
    lines = [f"{'split':<14}{'accuracy':>9}  {'95% CI':<17}{'n':>8}"]
    for name, acc in summary.get("accuracy", {}).items():
        lo, hi = summary["ci95"][name] or (float("nan"), float("nan"))
        shown = f"{acc:.4f}" if acc is not None else "-"
        lines.append(f"{name:<14}{shown:>9}  [{lo:.4f}, {hi:.4f}]{summary['n'][name]:>8}")
    return "\n".join(lines)
