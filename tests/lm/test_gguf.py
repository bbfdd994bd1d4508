"""GGUF files are read once into a cached float32 copy (`rewritelab.lm.dequant`); every run loads that
copy at its own dtype, a plain model whatever transformers' GGUF loader would have done."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from torch import nn

from rewritelab.lm import LMConfig, lm_run_config_from_dict, load_model, load_tokenizer, train_lm_run
from rewritelab.lm.dequant import cache_root
from support import lm_config

GGUF = "tiny.Q4_1.gguf"


def copies() -> list[str]:
    folder = cache_root() / "dequantized"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_a_gguf_model_loads_as_a_plain_model_in_the_dtype_asked(tiny_gguf, dtype):
    """No GGUF marks (transformers refuses to train a model marked quantized, and a packed one computes in
    fp32 whatever dtype was asked): plain linear layers, every weight in `dtype`."""
    model = load_model(LMConfig(model=str(tiny_gguf), gguf_file=GGUF), torch.device("cpu"), dtype)
    assert getattr(model.config, "quantization_config", None) is None
    assert {p.dtype for p in model.parameters()} == {getattr(torch, dtype)}
    assert all(type(m) is nn.Linear for name, m in model.named_modules() if name.endswith("_proj"))


def test_the_float32_copy_is_made_once_per_file_and_holds_what_transformers_reads(
    tiny_gguf, other_gguf, tmp_path, monkeypatch
):
    monkeypatch.setenv("REWRITELAB_CACHE", str(tmp_path))
    cfg = LMConfig(model=str(tiny_gguf), gguf_file=GGUF)
    fp32 = load_model(cfg, torch.device("cpu"), "float32")
    bf16 = load_model(cfg, torch.device("cpu"), "bfloat16")
    made = copies()
    assert len(made) == 1 and made[0].startswith("tiny.Q4_1-") and transformers.__version__ in made[0]
    # transformers' own de-quantizing read of the file, in either dtype: the same weights
    for dtype, ours in ((torch.float32, fp32), (torch.bfloat16, bf16)):
        theirs = transformers.AutoModelForCausalLM.from_pretrained(tiny_gguf, gguf_file=GGUF, dtype=dtype)
        mine = ours.state_dict()
        assert all(torch.equal(mine[k], v) for k, v in theirs.state_dict().items())
    # read again: the copy, not the file
    reads = []
    real = transformers.AutoModelForCausalLM.from_pretrained
    monkeypatch.setattr(
        transformers.AutoModelForCausalLM,
        "from_pretrained",
        lambda *a, **k: reads.append(k.get("gguf_file")) or real(*a, **k),
    )
    load_model(cfg, torch.device("cpu"), "bfloat16")
    assert reads == [None] and copies() == made
    # another file (same name, other weights) gets its own copy
    load_model(LMConfig(model=str(other_gguf), gguf_file=GGUF), torch.device("cpu"), "float32")
    assert len(copies()) == 2


def test_a_lora_run_trains_on_a_gguf_model_with_its_tokenizer(tiny_gguf, tmp_path):
    raw = lm_config(tiny_gguf, dtype="bfloat16", max_steps=2)
    raw["lm"]["gguf_file"] = GGUF
    cfg = lm_run_config_from_dict(raw)
    text = "rewrite ab"
    theirs = transformers.AutoTokenizer.from_pretrained(tiny_gguf, gguf_file=GGUF)(text)["input_ids"]
    assert load_tokenizer(cfg.lm)(text)["input_ids"] == theirs
    summary = train_lm_run(cfg, tmp_path / "run")
    assert summary["train"]["steps"] == 2 and np.isfinite(summary["train"]["final_loss"])
