"""Session fixtures: tiny randomly initialised GPT-2 and Llama models with a character tokenizer, saved as
local model directories (`support.save_tiny`), and a tiny Llama as a quantized GGUF file: the lm tests
run offline in seconds, nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory) -> Path:
    """A folder holding tiny.Q4_1.gguf: a random 2-layer Llama quantized to Q4_1 as SmolLM2's file is,
    with a byte-level BPE tokenizer (256 bytes, one merge) in the file's metadata."""
    return save_tiny_gguf(tmp_path_factory.mktemp("gguf"), seed=0)


@pytest.fixture(scope="session")
def other_gguf(tmp_path_factory) -> Path:
    """`tiny_gguf`'s file name and shapes, other weights."""
    return save_tiny_gguf(tmp_path_factory.mktemp("gguf"), seed=1)


def save_tiny_gguf(folder: Path, seed: int) -> Path:
    gguf = pytest.importorskip("gguf")
    from tokenizers import pre_tokenizers

    hidden, ffn, layers, heads, kv_heads = 64, 128, 2, 4, 2
    tokens = ["<|endoftext|>", *sorted(pre_tokenizers.ByteLevel.alphabet()), "ab"]
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(folder / "tiny.Q4_1.gguf"), "llama")
    writer.add_block_count(layers)
    writer.add_context_length(256)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(hidden // heads)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([1] * len(tokens))
    writer.add_token_merges(["a b"])
    for add_id in (writer.add_bos_token_id, writer.add_eos_token_id, writer.add_pad_token_id):
        add_id(0)

    def quantized(name: str, rows: int, cols: int) -> None:
        values = (rng.standard_normal((rows, cols)) * 0.3).astype(np.float32)
        q4_1 = gguf.GGMLQuantizationType.Q4_1
        writer.add_tensor(name, gguf.quants.quantize(values, q4_1), raw_dtype=q4_1)

    quantized("token_embd.weight", len(tokens), hidden)  # tied: the head is the embedding
    writer.add_tensor("output_norm.weight", np.ones(hidden, dtype=np.float32))
    kv = hidden * kv_heads // heads
    shapes = {"attn_q": (hidden, hidden), "attn_k": (kv, hidden), "attn_v": (kv, hidden),
              "attn_output": (hidden, hidden), "ffn_gate": (ffn, hidden), "ffn_up": (ffn, hidden),
              "ffn_down": (hidden, ffn)}  # fmt: skip
    for layer in range(layers):
        for name, (rows, cols) in shapes.items():
            quantized(f"blk.{layer}.{name}.weight", rows, cols)
        for norm in ("attn_norm", "ffn_norm"):
            writer.add_tensor(f"blk.{layer}.{norm}.weight", np.ones(hidden, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return folder
