"""TRL: supervised fine-tuning on the chat export and a GRPO reward built on the verifier.

SFT needs no adapter: `rewritelab generate CONFIG --out DIR --format chat` writes DIR/sft/SPLIT.jsonl in
TRL's conversational prompt-completion format, which `trl.SFTTrainer` reads as it is and trains with the
loss on the completion only; `lora_config` gives the `peft_config` with rewritelab's LoRA settings.

Evaluation: `greedy_accuracy(model, tokenizer, entries)` decodes greedily and scores with the verifier.

GRPO: `grpo_dataset(entries)` turns entries (a reasoning-gym dataset of `rewritelab.integrations.gym`, or
`rewritelab.lm.dataset_entries`) into rows with a `prompt` and the entry's `metadata`; TRL passes that
column to `reward_function()`'s callable, which recomputes each answer with the verifier.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from rewritelab.lm import LoraSettings, plain_prompt, score_answer
from rewritelab.lm import lora_config as _lora_config
from rewritelab.run import TrainConfig


def lora_config(model: Any, rank: int = 8, alpha: float = 16.0, dropout: float = 0.0, target_modules=None):
    """peft's `LoraConfig` for `model` as an `lm:` run's `lora:` section would build it."""
    return _lora_config(model, LoraSettings(rank, alpha, dropout, target_modules))


def trainable_model(model: Any) -> Any:
    """A model as TRL's trainers accept it. A model transformers read from a GGUF file itself stays marked
    GGUF-quantized, and TRL refuses to train it: the same weights go into a plain model of the same config.
    (`rewritelab.lm.load_model` reads a GGUF file's de-quantized copy, a plain model already.)"""
    import copy

    import torch
    import transformers

    if getattr(model.config, "quantization_config", None) is None:
        return model
    config = copy.deepcopy(model.config)
    del config.quantization_config
    plain = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict())
    return plain


SCHEDULES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


def trainer_args(config_class: type, train: TrainConfig, output_dir: str, **extra: Any) -> Any:
    """TRL's `SFTConfig` / `GRPOConfig` (`config_class`) with an `lm:` run's `train:` settings: the same
    global batch, learning rate, warmup and schedule, AdamW betas and weight decay, gradient clipping,
    step budget and seed as rewritelab's own LoRA loop; `extra` adds or overrides arguments."""
    steps = extra.pop("max_steps", train.max_steps if train.max_steps is not None else -1)
    args = {
        "output_dir": output_dir, "per_device_train_batch_size": train.batch_size // train.grad_accum,
        "gradient_accumulation_steps": train.grad_accum, "learning_rate": train.lr,
        "warmup_steps": train.warmup_steps, "lr_scheduler_type": SCHEDULES[train.schedule],
        "weight_decay": train.weight_decay, "adam_beta1": train.beta1, "adam_beta2": train.beta2,
        "max_grad_norm": train.grad_clip, "max_steps": steps, "num_train_epochs": train.epochs,
        "seed": train.seed, "use_cpu": train.device == "cpu", "report_to": list(train.track) or "none",
        "save_strategy": "no", "logging_steps": 1,
    }  # fmt: skip
    return config_class(**{**args, **extra})


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


def greedy_accuracy(
    model: Any, tokenizer: Any, entries: list[dict[str, Any]], chat: bool = True, batch: int = 16
) -> float:
    """Greedy exact match of a Hugging Face causal LM (with or without a LoRA adapter) on `entries`,
    prompted as the chat export (one user message) or the plain template, scored by the verifier."""
    import torch

    was_training, side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"
    right = 0.0
    try:
        with torch.inference_mode():
            for lo in range(0, len(entries), batch):
                chunk = entries[lo : lo + batch]
                prompts = [_prompt_text(tokenizer, e["question"], chat) for e in chunk]
                inputs = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=not chat)
                inputs = inputs.to(next(model.parameters()).device)
                budget = 2 * max(len(e["answer"]) for e in chunk) + 4  # a longer answer is wrong anyway
                out = model.generate(
                    **inputs, max_new_tokens=budget, do_sample=False, pad_token_id=tokenizer.eos_token_id
                )
                written = tokenizer.batch_decode(
                    out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True
                )
                right += sum(score_answer(t, e) for t, e in zip(written, chunk, strict=True))
    finally:
        model.train(was_training)
        tokenizer.padding_side = side
    return right / len(entries) if entries else 0.0


def _prompt_text(tokenizer: Any, question: str, chat: bool) -> str:
    if not chat:
        return plain_prompt(question)
    messages = [{"role": "user", "content": question}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
