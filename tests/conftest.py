"""Shared fixtures (helpers that tests import by name live in `support.py`)."""

from __future__ import annotations

import pytest


@pytest.fixture
def one_thread():
    """Pin torch to one thread (bit-exact comparisons, and no oversubscription of a 2-core CI box)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="session")
def model_cache(tmp_path_factory):
    """GGUF models de-quantized by the tests (`rewritelab.lm.dequant`) go to a folder of the session, not
    to the user's cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REWRITELAB_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield
