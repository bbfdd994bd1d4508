"""TRL: supervised fine-tuning on the chat export and a GRPO reward built on the verifier.

SFT needs no adapter: `rewritelab generate CONFIG --out DIR --format chat` writes DIR/sft/SPLIT.jsonl in
TRL's conversational prompt-completion format, which `trl.SFTTrainer` reads as it is and trains with the
loss on the completion only; `lora_config` gives the `peft_config` with rewritelab's LoRA settings.

GRPO: `grpo_dataset(entries)` turns entries (a reasoning-gym dataset of `rewritelab.integrations.gym`, or
`rewritelab.lm.dataset_entries`) into rows with a `prompt` and the entry's `metadata`; TRL passes that
column to `reward_function()`'s callable, which recomputes each answer with the verifier.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from rewritelab.lm import LoraSettings, score_answer
from rewritelab.lm import lora_config as _lora_config
from rewritelab.lm.prompts import plain_prompt


def lora_config(model: Any, rank: int = 8, alpha: float = 16.0, dropout: float = 0.0, target_modules=None):
    """peft's `LoraConfig` for `model` as an `lm:` run's `lora:` section would build it."""
    return _lora_config(model, LoraSettings(rank, alpha, dropout, target_modules))


def grpo_dataset(entries: Iterable[dict[str, Any]], chat: bool = True) -> Any:
    """A `datasets.Dataset` for `trl.GRPOTrainer`: `prompt` (one user message, or the plain template's
    text with `chat=False`), `answer` and `metadata` (the instruction the reward recomputes from)."""
    import datasets

    rows = [
        {
            "prompt": [{"role": "user", "content": e["question"]}] if chat else plain_prompt(e["question"]),
            "answer": e["answer"],
            "metadata": e["metadata"],
        }
        for e in entries
    ]
    return datasets.Dataset.from_list(rows)


def reward_function(shaped: bool = False) -> Callable[..., list[float]]:
    """A GRPO reward function: TRL calls it with the completions and the dataset's columns; each
    completion scores 1.0 when it is exactly the right answer (see `rewritelab.lm.verify`), else 0.0
    (or the edit similarity with `shaped`)."""

    def rewritelab_reward(completions: list[Any], metadata: list[dict[str, Any]], **_: Any) -> list[float]:
        return [
            score_answer(c, {"metadata": m}, shaped=shaped)
            for c, m in zip(completions, metadata, strict=True)
        ]

    return rewritelab_reward
