"""Tiny randomly initialised GPT-2 and Llama models with a character tokenizer, saved as local model
directories inside the test session: the lm tests run offline in seconds, nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import save_tiny

pytest.importorskip("transformers")
pytest.importorskip("peft")


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("gpt2"), "gpt2")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("llama"), "llama", chat=True)


def lm_config(model: Path, **train) -> dict:
    """A 2-rule run config (short strings) on a tiny model; `train` overrides train: fields."""
    return {
        "data": {
            "alphabet": "abcd", "input_len": 4, "pattern_len": 2, "replacement_len": 1, "num_rules": 2,
            "budget": 256, "test_rules": 2, "test_examples_per_rule": 16, "seed": 0,
        },
        "lm": {"model": str(model), "template": "plain",
               "lora": {"rank": 16, "alpha": 32, "target_modules": None}},
        "train": {
            "batch_size": 16, "lr": 1e-2, "warmup_steps": 5, "epochs": 4, "eval_every": 0,
            "checkpoint_every": 10, "device": "cpu", "threads": 1, "progress": "none", **train,
        },
    }  # fmt: skip
