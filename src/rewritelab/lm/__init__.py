"""Pretrained language models: LoRA fine-tuning of a Hugging Face causal LM on rewrite instructions.

A run config with an `lm:` section (see `LMConfig`) instead of `model:` is an `lm:` run, a run kind beside
the from-scratch one (`LM`, registered in `rewritelab.kinds`): the shared loop trains it and it writes
the same run directory as a from-scratch run (config.yaml, data_manifest.json, metrics.jsonl,
checkpoint.pt holding the adapter, predictions/, summary.json) plus adapter/ in peft's format.
`transformers` and `peft` are imported only when a model is loaded (`pip install 'rewritelab[lm]'`).

Modules, in import order:
    config    LoraSettings, TaskSettings, LMConfig, LMRunConfig: the `lm:` section and its run config
    prompts   examples as text (instruction sentence, encrypted task, SFT / chat JSONL records)
    verify    the verifier: entries in reasoning-gym's shape and `score_answer`, the strict reward
    hf        where a model comes from, its tokenizer, the LoRA adapter (transformers + peft)
    encode    token ids, batches, logits at answer positions only
    scoring   exact match (teacher-forced fast path, greedy decoding of misses)
    kind      the run kind: build, one step, scoring, the adapter in the checkpoint; train_lm_run
"""

from rewritelab.lm.config import (
    LETTERS,
    LMConfig,
    LMRunConfig,
    LoraSettings,
    TaskSettings,
    lm_run_config_from_dict,
    load_lm_run_config,
)
from rewritelab.lm.encode import LMEncoded, answer_logits, encode_split
from rewritelab.lm.hf import (
    BUILTIN_MODELS,
    attach_lora,
    load_model,
    load_tokenizer,
    lora_config,
    model_source,
)
from rewritelab.lm.kind import LM, LMKind, lm_train_step, train_lm_run
from rewritelab.lm.prompts import (
    cipher_table,
    instruction,
    plain_prompt,
    program_instruction,
    sft_records,
    task_dataset,
)
from rewritelab.lm.scoring import score_lm_split, teacher_forced
from rewritelab.lm.verify import (
    dataset_entries,
    edit_similarity,
    entries,
    expected_output,
    extract_answer,
    score_answer,
)

__all__ = [
    "BUILTIN_MODELS",
    "LETTERS",
    "LM",
    "LMConfig",
    "LMEncoded",
    "LMKind",
    "LMRunConfig",
    "LoraSettings",
    "TaskSettings",
    "answer_logits",
    "attach_lora",
    "cipher_table",
    "dataset_entries",
    "edit_similarity",
    "encode_split",
    "entries",
    "expected_output",
    "extract_answer",
    "instruction",
    "lm_run_config_from_dict",
    "lm_train_step",
    "load_lm_run_config",
    "load_model",
    "load_tokenizer",
    "lora_config",
    "model_source",
    "plain_prompt",
    "program_instruction",
    "score_answer",
    "score_lm_split",
    "sft_records",
    "task_dataset",
    "teacher_forced",
    "train_lm_run",
]
