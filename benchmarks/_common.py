"""Shared benchmark helpers: rewrite data at the two scales, the matmul peak, and our GPT as a HF GPT-2.

The data is built here with numpy + `apply_once` (a pattern planted once in each input, so every example
is an applied rewrite) rather than through `rewritelab.data`, so the benchmarks measure the model
alone and their inputs never change when the dataset generator does.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from rewritelab.data import apply_once
from rewritelab.model import GPT
from rewritelab.tokenizer import EOS_ID, PAD_ID

# Lengths as in the presets: the paper's scale (e1-paper.yaml) and the CPU scale (e1-cpu.yaml).
SCALES = {
    "paper": {"alphabet": "abcdefghijklmnopqrstuvwxyz", "input_len": (50, 50), "pattern_len": (20, 20),
              "replacement_len": (1, 20)},
    "cpu": {"alphabet": "abcdef", "input_len": (8, 12), "pattern_len": (2, 4), "replacement_len": (1, 4)},
}  # fmt: skip


@dataclass
class RewriteSplit:
    """The four columns the tokenizer reads (duck-typed like `datasets.Split`)."""

    pattern: list[str] = field(default_factory=list)
    replacement: list[str] = field(default_factory=list)
    input: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)


def rewrite_split(
    scale: str, n: int, num_rules: int = 1000, seed: int = 0, rules_seed: int = 0
) -> RewriteSplit:
    """`n` examples of `num_rules` random rules; each input holds its rule's pattern at a random place.

    The rules come from `rules_seed` and the inputs from `seed`, so two seeds give fresh inputs of the
    same rules (a seen-rules test set).
    """
    s = SCALES[scale]
    letters = np.array(list(s["alphabet"]))

    def word(rng: np.random.Generator, lo_hi: tuple[int, int]) -> str:
        return "".join(rng.choice(letters, rng.integers(lo_hi[0], lo_hi[1] + 1)))

    rule_rng = np.random.default_rng([rules_seed, 0])
    rules = [
        (word(rule_rng, s["pattern_len"]), word(rule_rng, s["replacement_len"])) for _ in range(num_rules)
    ]
    rng = np.random.default_rng([seed, 1])
    split = RewriteSplit()
    for r in rng.integers(0, num_rules, n):
        pattern, replacement = rules[r]
        n_in = int(rng.integers(s["input_len"][0], s["input_len"][1] + 1))
        _append(split, rng, pattern, replacement, "".join(rng.choice(letters, max(n_in - len(pattern), 0))))
    return split


FEW_RULES = [("ab", "c"), ("ca", "dd"), ("db", "b")]


def few_rule_split(n: int, seed: int = 0) -> RewriteSplit:
    """A task a small model masters in ~1000 steps: three rules over "abcd", inputs of 4-7 characters."""
    rng = np.random.default_rng([seed, 2])
    letters = np.array(list("abcd"))
    split = RewriteSplit()
    for r in rng.integers(0, len(FEW_RULES), n):
        pattern, replacement = FEW_RULES[r]
        _append(split, rng, pattern, replacement, "".join(rng.choice(letters, rng.integers(2, 6))))
    return split


def _append(split: RewriteSplit, rng: np.random.Generator, pattern: str, replacement: str, filler: str):
    """Add one example: the pattern inserted once at a random position of the filler."""
    at = int(rng.integers(0, len(filler) + 1))
    text = filler[:at] + pattern + filler[at:]
    split.pattern.append(pattern)
    split.replacement.append(replacement)
    split.input.append(text)
    split.output.append(apply_once(pattern, replacement, text))


def set_threads(threads: int | None) -> int:
    """Intra-op threads for this process: all cores by default (best when the machine is otherwise idle;
    under load from other processes, fewer threads avoid OpenMP stalls on descheduled threads)."""
    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    return threads


def matmul_peak_flops(n: int = 2048, repeats: int = 5) -> float:
    """This machine's fp32 matmul FLOP/s: the best of several large square `torch.mm`."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def hf_gpt2(model: GPT, activation: str = "gelu"):
    """A Hugging Face `GPT2LMHeadModel` of the same size holding `model`'s weights.

    GPT-2's `Conv1D` stores weights as (in, out), the transpose of `nn.Linear`; the names otherwise
    match block for block. `activation="gelu"` is our exact-erf GELU (identical outputs); GPT-2's
    default `"gelu_new"` is the tanh approximation written as separate elementwise ops.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = model.cfg
    hf = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=model.vocab_size, n_positions=model.block_size, n_embd=cfg.d_model,
            n_layer=cfg.n_layer, n_head=cfg.n_head, n_inner=4 * cfg.d_model,
            activation_function=activation, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
            layer_norm_epsilon=1e-5, tie_word_embeddings=True, attn_implementation="sdpa",
            bos_token_id=EOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID,
        )
    )  # fmt: skip
    result = hf.load_state_dict(_to_hf_state(model), strict=False)
    if result.unexpected_keys or result.missing_keys != ["lm_head.weight"]:  # the head is tied
        raise RuntimeError(f"weight names do not match GPT-2's: {result}")
    hf.tie_weights()
    return hf


def _to_hf_state(model: GPT) -> dict[str, torch.Tensor]:
    state = {"transformer.wte.weight": model.wte.weight, "transformer.wpe.weight": model.wpe.weight}
    state["transformer.ln_f.weight"] = model.ln_f.weight
    state["transformer.ln_f.bias"] = model.ln_f.bias
    for i, block in enumerate(model.blocks):
        for name, p in block.named_parameters():
            is_linear_weight = name.endswith(".weight") and p.dim() == 2
            state[f"transformer.h.{i}.{name}"] = p.t() if is_linear_weight else p
    return {k: v.detach().clone().contiguous() for k, v in state.items()}
