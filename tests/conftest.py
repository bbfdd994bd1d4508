"""Shared fixtures: the suite's own tiny run config and one torch thread per test process."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY = FIXTURES / "tiny_run.yaml"  # for module-level use; the `tiny_config` fixture is the same path


@pytest.fixture
def tiny_config() -> Path:
    return TINY


@pytest.fixture
def one_thread():
    """Pin torch to one thread (bit-exact comparisons, and no oversubscription of a 2-core CI box)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
