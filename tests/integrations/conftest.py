"""A tiny randomly initialised Llama (SmolLM2's architecture) with a chat template, for the TRL and
lm-eval integrations: offline, in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import save_tiny


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    pytest.importorskip("transformers")
    return save_tiny(tmp_path_factory.mktemp("llama"), "llama", chat=True)
