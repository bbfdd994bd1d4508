"""Session fixtures: tiny randomly initialised GPT-2 and Llama models with a character tokenizer, saved as
local model directories (`support.save_tiny`): the lm tests run offline in seconds, nothing is downloaded."""

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
