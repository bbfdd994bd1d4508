"""Tiny randomly initialised GPT-2 and Llama models with a character tokenizer, saved as local model
directories, and a small lm: run config: the lm tests run offline in seconds, nothing is downloaded.
(A module of its own, not conftest: several test folders have a conftest, and `from conftest import`
would pick whichever was imported first.)"""

from __future__ import annotations

import string
from pathlib import Path

import pytest

transformers = pytest.importorskip("transformers")
pytest.importorskip("peft")

CHARS = string.ascii_letters + string.digits + string.punctuation + " \n"
CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


def char_tokenizer(chat: bool):
    """One token per character (BPE with no merges), `<eos>` as end of sequence and padding."""
    from tokenizers import Tokenizer, decoders, models

    vocab = {"<eos>": 0, **{c: i + 1 for i, c in enumerate(CHARS)}}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.decoder = decoders.Fuse()
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>", pad_token="<eos>")
    if chat:
        tok.chat_template = CHAT_TEMPLATE
    return tok


def save_tiny(path: Path, kind: str, with_tokenizer: bool = True, chat: bool = False) -> Path:
    import torch

    tok = char_tokenizer(chat)
    vocab = len(tok)
    if kind == "gpt2":
        config = transformers.GPT2Config(
            vocab_size=vocab,
            n_positions=256,
            n_embd=64,
            n_layer=2,
            n_head=4,
            bos_token_id=0,
            eos_token_id=0,
            initializer_range=0.3,
        )
    else:
        config = transformers.LlamaConfig(
            vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, bos_token_id=0,
            eos_token_id=0, pad_token_id=0, initializer_range=0.3,
        )  # fmt: skip
    torch.manual_seed(0)  # initializer_range 0.3: output logits large enough to fit the frozen head
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(path)
    if with_tokenizer:
        tok.save_pretrained(path)
    return path


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
