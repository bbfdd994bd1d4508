"""Exact match of a pretrained model on a split: the same definition and fast path as `run.scoring`
(teacher-forced all-argmax-correct, then greedy decoding of the misses only), with the breakdowns and
bootstrap intervals left to `run.scoring.split_report`, so both run kinds report identical numbers.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch

from rewritelab.data import Split
from rewritelab.lm.encode import LMEncoded, answer_logits, prediction_text
from rewritelab.textfmt import Progress
from rewritelab.tokenizer import length_batches

EVAL_TOKENS = 1 << 12  # tokens per teacher-forced batch (on CPU, small batches stay in cache)
DECODE_BATCH = 32


@torch.inference_mode()
def teacher_forced(
    model: Any,
    enc: LMEncoded,
    indices: np.ndarray | None,
    device: torch.device,
    amp: contextlib.AbstractContextManager | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Per example (in `indices` order): whether greedy decoding would write exactly the answer tokens,
    end-of-sequence included — every answer position's argmax is its target."""
    idx = np.arange(len(enc)) if indices is None else np.asarray(indices, dtype=np.int64)
    correct = np.zeros(len(idx), dtype=bool)
    if len(idx) == 0:
        return correct
    lengths = enc.lengths[idx]
    batch_size = max(1, EVAL_TOKENS // int(lengths.max()))
    was_training = model.training
    model.eval()
    try:
        for rows in length_batches(lengths, batch_size, np.random.default_rng(0), shuffle=False):
            b = enc.batch(idx[rows]).to(device)
            with amp or contextlib.nullcontext():
                miss = (answer_logits(model, b).argmax(-1) != b.targets).float()
            wrong = torch.zeros(len(rows), device=device).index_add_(0, b.rows, miss)
            correct[rows] = (wrong == 0).cpu().numpy()
            if progress is not None:
                progress.update(len(rows))
    finally:
        model.train(was_training)
    return correct


@torch.inference_mode()
def greedy(model: Any, prompts: list[list[int]], max_new_tokens: int, eos_id: int, device) -> list[list[int]]:
    """Greedy continuations of `prompts` (left-padded into one batch), cut after end-of-sequence."""
    width = max(map(len, prompts))
    x = torch.full((len(prompts), width), eos_id, dtype=torch.long)
    attention = torch.zeros_like(x)
    for j, p in enumerate(prompts):
        x[j, width - len(p) :] = torch.tensor(p)
        attention[j, width - len(p) :] = 1
    was_training = model.training
    model.eval()
    try:
        out = model.generate(
            input_ids=x.to(device), attention_mask=attention.to(device), max_new_tokens=max_new_tokens,
            do_sample=False, eos_token_id=eos_id, pad_token_id=eos_id,
        )  # fmt: skip
    finally:
        model.train(was_training)
    written = []
    for row in out[:, width:].tolist():
        written.append(row[: row.index(eos_id) + 1] if eos_id in row else row)
    return written


def score_lm_split(
    model: Any,
    tokenizer: Any,
    template: str,
    split: Split,
    enc: LMEncoded,
    device: torch.device,
    amp: contextlib.AbstractContextManager | None = None,
    progress: Progress | None = None,
    spaced: bool = False,
) -> tuple[np.ndarray, list[str]]:
    """(correct per example, prediction per example). A miss of the fast path is decoded and compared
    as text, so an answer written in other tokens than the reference tokenization still counts."""
    correct = teacher_forced(model, enc, None, device, amp, progress)
    predictions = list(split.output)
    wrong = np.flatnonzero(~correct)
    if progress is not None:
        progress.extend(len(wrong))
    wrong = wrong[np.argsort(enc.prompt_len[wrong], kind="stable")]  # similar prompts, little padding
    eos = tokenizer.eos_token_id
    for lo in range(0, len(wrong), DECODE_BATCH):
        chunk = wrong[lo : lo + DECODE_BATCH]
        budget = 2 * max(map(len, enc.answers(chunk))) + 4  # a longer answer is wrong anyway
        with amp or contextlib.nullcontext():
            rows = greedy(model, enc.prompts(chunk), budget, eos, device)
        for i, written in zip(chunk, rows, strict=True):
            text = tokenizer.decode([t for t in written if t != eos])
            predictions[i] = prediction_text(template, text, spaced)
            correct[i] = bool(written and written[-1] == eos) and predictions[i] == split.output[i]
        if progress is not None:
            progress.update(len(chunk))
    return correct, predictions
