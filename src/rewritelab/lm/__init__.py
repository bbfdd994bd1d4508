"""Pretrained language models: LoRA fine-tuning of a Hugging Face causal LM on rewrite instructions.

A run config with an `lm:` section (see `LMConfig`) instead of `model:` is an `lm:` run; it writes the
same run directory as a from-scratch run (config.yaml, data_manifest.json, metrics.jsonl, checkpoint.pt
holding the adapter, predictions/, summary.json) plus adapter/ in peft's format. `transformers` and
`peft` are imported only when a model is loaded (`pip install 'rewritelab[lm]'`).

Modules, in import order:
    config    LoraSettings, TaskSettings, LMConfig, LMRunConfig: the `lm:` section and its run config
    prompts   examples as text (instruction sentence, encrypted task, SFT / chat JSONL records)
    verify    the verifier: entries in reasoning-gym's shape and `score_answer`, the strict reward
    hf        where a model comes from, its tokenizer, the LoRA adapter (transformers + peft)
    encode    token ids, batches, logits at answer positions only
    scoring   exact match (teacher-forced fast path, greedy decoding of misses)
    train     the fine-tuning loop, checkpoints and resume
    evaluate  predictions and summary.json, through run.scoring and run.evaluate
    pipeline  train_lm_run: train (or resume), then evaluate
    kinds     either kind of run from plain data: build, train, evaluate (the one place that dispatches)
"""

from rewritelab.lm.config import (
    LMConfig,
    LMRunConfig,
    LoraSettings,
    TaskSettings,
    is_lm_config,
    lm_run_config_from_dict,
    load_lm_run_config,
)
from rewritelab.lm.encode import LMEncoded, answer_logits, encode_split
from rewritelab.lm.evaluate import evaluate_lm_run
from rewritelab.lm.hf import (
    BUILTIN_MODELS,
    attach_lora,
    load_model,
    load_tokenizer,
    lora_config,
    model_source,
)
from rewritelab.lm.kinds import AnyRunConfig, build_any_run_config, evaluate_any_run, train_any_run
from rewritelab.lm.pipeline import train_lm_run
from rewritelab.lm.prompts import cipher_table, instruction, program_instruction, sft_records, task_dataset
from rewritelab.lm.scoring import score_lm_split, teacher_forced
from rewritelab.lm.train import train_lm
from rewritelab.lm.verify import (
    dataset_entries,
    edit_similarity,
    entries,
    expected_output,
    extract_answer,
    score_answer,
)

__all__ = [
    "AnyRunConfig",
    "BUILTIN_MODELS",
    "LMConfig",
    "LMEncoded",
    "LMRunConfig",
    "LoraSettings",
    "TaskSettings",
    "answer_logits",
    "attach_lora",
    "build_any_run_config",
    "cipher_table",
    "dataset_entries",
    "edit_similarity",
    "encode_split",
    "entries",
    "evaluate_any_run",
    "evaluate_lm_run",
    "expected_output",
    "extract_answer",
    "instruction",
    "is_lm_config",
    "lm_run_config_from_dict",
    "load_lm_run_config",
    "load_model",
    "load_tokenizer",
    "lora_config",
    "model_source",
    "program_instruction",
    "score_answer",
    "score_lm_split",
    "sft_records",
    "task_dataset",
    "teacher_forced",
    "train_any_run",
    "train_lm",
    "train_lm_run",
]
