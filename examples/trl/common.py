"""What the TRL examples share: an `lm:` run config (examples/configs/trl-smollm2.yaml) turned into the
model, tokenizer and verifier entries that TRL's trainers take."""

from __future__ import annotations

from typing import Any

import torch

from rewritelab.data import generate_dataset
from rewritelab.integrations.trl import trainable_model
from rewritelab.lm import dataset_entries, load_lm_run_config, load_model, load_tokenizer


def load(config_path: str, overrides: list[str] | None = None) -> tuple[Any, Any, Any, dict[str, list[dict]]]:
    """(run config, model, tokenizer, entries by split) of an `lm:` run config: the pretrained model in
    float32 (a built-in GGUF is de-quantized), and the verifier's entries of its dataset."""
    cfg = load_lm_run_config(config_path, overrides)
    torch.manual_seed(cfg.train.seed)
    model = trainable_model(load_model(cfg.lm, torch.device("cpu")))
    tokenizer = load_tokenizer(cfg.lm)
    task = cfg.lm.task
    entries = dataset_entries(generate_dataset(cfg.data), task.kind, task.cipher_seed, cfg.lm.spaced)
    return cfg, model, tokenizer, entries
