"""A small decoder-only GPT (GPT-2 layout) and batched greedy decoding with a key/value cache.

Layout follows GPT-2 so weights map one-to-one onto Hugging Face's `GPT2LMHeadModel`: pre-LayerNorm
blocks, fused QKV projection (`c_attn`, output laid out `[q | k | v]`), GELU MLP of width 4× (the exact
erf form, faster on CPU than GPT-2's tanh approximation; HF: `activation_function="gelu"`),
learned positional embeddings, output head tied to the token embedding. Attention runs through
`scaled_dot_product_attention` (flash kernels on CPU and GPU), except for single-query decode steps.

Only the loss needs the last block's outputs, and only where a target counts: `GPT.loss` and the decode
prefill run the last block from the first position that matters (the answer, the prompt's last token).

Greedy decoding with a key/value cache lives in `decoding` (mixed into `GPT`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rewritelab.config import FieldError
from rewritelab.data import available_memory
from rewritelab.decoding import GreedyDecoding, KVCache
from rewritelab.errors import UserError
from rewritelab.textfmt import quoted
from rewritelab.tokenizer import PAD_ID

MODEL_PRESETS: dict[str, dict[str, int]] = {
    "paper": {"n_layer": 6, "d_model": 256, "n_head": 4},  # the paper's GPT-2: ~4.7M parameters
    "cpu-tiny": {"n_layer": 2, "d_model": 64, "n_head": 2},
    "cpu-small": {"n_layer": 2, "d_model": 128, "n_head": 4},
    "cpu-base": {"n_layer": 4, "d_model": 128, "n_head": 4},
}


@dataclass
class ModelConfig:
    """GPT size. YAML `model: {preset: paper}` fills the preset's fields; explicit keys override them."""

    n_layer: int
    n_head: int
    d_model: int
    dropout: float = 0.0
    preset: str | None = None

    @classmethod
    def normalize(cls, value: Any, where: str) -> dict[str, Any]:
        """`model: paper` is shorthand for `{preset: paper}`; a preset fills the fields not given."""
        if isinstance(value, str):
            value = {"preset": value}
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected a mapping such as {{preset: cpu-small}}, got {quoted(value)}")
        preset = value.get("preset")
        if preset is not None and (not isinstance(preset, str) or preset not in MODEL_PRESETS):
            raise UserError(
                f"{where}.preset: unknown preset {quoted(preset)}; valid presets: {_preset_names()}"
            )
        merged = {**MODEL_PRESETS.get(preset, {}), **value}
        missing = [k for k in ("n_layer", "n_head", "d_model") if k not in merged]
        if missing:
            raise UserError(
                f"{where}: missing {', '.join(missing)}; give them or set {where}.preset "
                f"to one of: {_preset_names()}"
            )
        return merged

    def validate(self) -> None:
        for name in ("n_layer", "n_head", "d_model"):
            if getattr(self, name) < 1:
                raise FieldError(name, f"must be a positive integer, got {getattr(self, name)}")
        if self.d_model % self.n_head:
            raise FieldError(
                "d_model", f"{self.d_model} is not divisible by n_head={self.n_head}; pick a multiple"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise FieldError("dropout", f"must be in [0, 1), got {self.dropout}")

    def to_config(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _preset_names() -> str:
    return ", ".join(MODEL_PRESETS)


def block_parameters(cfg: ModelConfig) -> int:
    """The parameters of the transformer blocks, 12·d² + 13·d per layer: a floor on `GPT.num_params`
    known from the config alone (the embeddings' size depends on the data)."""
    return cfg.n_layer * (12 * cfg.d_model**2 + 13 * cfg.d_model)


def check_model_memory(cfg: ModelConfig, bytes_per_parameter: int, reserved: int = 0) -> None:
    """Refuse, before a block is built, a model whose `block_parameters` at `bytes_per_parameter` (the
    weights, and when it trains here their gradients and optimizer state) need more than the memory
    available besides `reserved` bytes (the data's), naming the numbers: 10^9 layers would otherwise be
    built one by one for hours. A floor, like the data's estimate: what it refuses cannot fit."""
    have = available_memory()
    params = block_parameters(cfg)
    need = params * bytes_per_parameter
    if have is not None and need + reserved > have:
        besides = f" besides the data's {reserved / 1e9:.1f} GB" if reserved >= 5e7 else ""
        raise UserError(
            f"model: {cfg.n_layer:,} layers of width {cfg.d_model:,} hold at least {params:,} parameters, "
            f"{need / 1e9:.1f} GB to train, more than the {max(have - reserved, 0) / 1e9:.1f} GB available"
            f"{besides}; lower model.n_layer or model.d_model, or use a machine with more memory"
        )


def _target_weight(y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per-target loss weight: `mask` (all ones if None), zero wherever the target is PAD."""
    weight = (y != PAD_ID).float()
    return weight if mask is None else weight * mask


def _masked_cross_entropy(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    ce = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
    weight = weight.flatten().to(ce.dtype)
    return (ce * weight).sum() / weight.sum().clamp_min(1.0)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.dropout = cfg.dropout
        self.c_attn = nn.Linear(cfg.d_model, 3 * cfg.d_model)  # q, k, v in one matmul
        self.c_proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(
        self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0, start: int = 0
    ) -> torch.Tensor:
        """Attention output at query positions `start`..T−1 (keys and values come from every position)."""
        B, T, C = x.shape
        if start == 0:
            q, k, v = self.c_attn(x).split(C, dim=2)  # split on channels: its backward is a cheap concat
        else:  # queries from the suffix only: the fused weight's q rows and kv rows (views)
            w, b = self.c_attn.weight, self.c_attn.bias
            q = F.linear(x[:, start:], w[:C], b[:C])
            k, v = F.linear(x, w[C:], b[C:]).split(C, dim=2)
        q, k, v = (self._heads(t) for t in (q, k, v))
        p = self.dropout if self.training else 0.0
        if cache is not None and cache.pos is not None:  # one query per row: plain matmuls beat SDPA
            k, v = self._append(cache, layer, k, v)
            scores = (q @ k.transpose(-1, -2)).mul_(q.shape[-1] ** -0.5).add_(cache.mask)
            y = scores.softmax(-1) @ v
        else:
            if cache is not None:  # prefill: remember every position's key and value
                cache.k[layer, :, :, :T] = k
                cache.v[layer, :, :, :T] = v
            if start:  # query start + i sees keys 0..start + i
                causal = torch.ones(T - start, T, dtype=torch.bool, device=x.device).tril(diagonal=start)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=causal, dropout_p=p)
            else:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)
        y = y.transpose(1, 2).reshape(B, T - start, C)
        return self.resid_drop(self.c_proj(y))

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        """(B, T, C) → (B, H, T, C / H), a view."""
        B, T, C = t.shape
        return t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)

    @staticmethod
    def _append(
        cache: KVCache, layer: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write one new key/value per row at its own position; return the keys/values to attend to."""
        rows = torch.arange(k.shape[0], device=k.device)
        cache.k[layer, rows, :, cache.pos] = k[:, :, 0].to(cache.k.dtype)  # autocast computes in bf16
        cache.v[layer, rows, :, cache.pos] = v[:, :, 0].to(cache.v.dtype)
        t_now = cache.mask.shape[-1]
        return cache.k[layer, :, :, :t_now], cache.v[layer, :, :, :t_now]


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.d_model, 4 * cfg.d_model)
        self.c_proj = nn.Linear(4 * cfg.d_model, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg)

    def forward(
        self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0, start: int = 0
    ) -> torch.Tensor:
        """Outputs at positions `start`..T−1; earlier positions still serve as keys and values."""
        x = x[:, start:] + self.attn(self.ln_1(x), cache, layer, start)
        return x + self.mlp(self.ln_2(x))


class GPT(GreedyDecoding, nn.Module):
    """Decoder-only transformer over token ids; sequences are at most `block_size` tokens long."""

    def __init__(self, cfg: ModelConfig, vocab_size: int, block_size: int):
        super().__init__()
        cfg.validate()
        if vocab_size < 1 or block_size < 1:
            raise ValueError(f"vocab_size and block_size must be positive, got {vocab_size}, {block_size}")
        self.cfg = cfg
        self.vocab_size = vocab_size
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, cfg.d_model)
        self.wpe = nn.Embedding(block_size, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.lm_head = nn.Linear(cfg.d_model, vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied: one matrix reads and writes tokens
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # GPT-2: scale residual branches by depth
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self) -> int:
        """Trainable parameters, the tied embedding counted once."""
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self, seq_len: float | None = None) -> float:
        """Training FLOPs (forward + backward) per token of a sequence of `seq_len` tokens.

        6 FLOPs per matmul parameter (every parameter but the positional table, the tied head included)
        plus causal attention: the token at position t scores and mixes t keys, 4·t·d FLOPs forward per
        layer, ×3 with backward; averaged over t = 1..T that is 6·n_layer·d_model·(T + 1).
        """
        T = self.block_size if seq_len is None else seq_len
        matmul_params = self.num_params() - self.wpe.weight.numel()
        return 6.0 * matmul_params + 6.0 * self.cfg.n_layer * self.cfg.d_model * (T + 1)

    def _hidden(
        self, idx: torch.Tensor, pos: torch.Tensor, cache: KVCache | None = None, start: int = 0
    ) -> torch.Tensor:
        """Final-LayerNorm hidden states of tokens `idx` at positions `pos` (broadcastable to idx).

        Only positions `start`.. are returned; the last block computes nothing else, since no later
        layer reads the earlier positions' outputs.
        """
        h = self.drop(self.wte(idx) + self.wpe(pos))
        last = len(self.blocks) - 1
        for layer, block in enumerate(self.blocks):
            h = block(h, cache, layer, start if layer == last else 0)
        return self.ln_f(h)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor | None = None, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, vocab) for ids `x` (B, T); with targets `y`, also the mean cross-entropy.

        The loss averages over targets where `mask` is nonzero (weighted by it) and `y` is not PAD;
        without `mask`, over every non-PAD target.
        """
        n = self._check_length(x)
        logits = self.lm_head(self._hidden(x, torch.arange(n, device=x.device)))
        if y is None:
            return logits, None
        return logits, _masked_cross_entropy(logits, y, _target_weight(y, mask))

    def loss(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The loss of `forward(x, y, mask)`, computing only what it depends on (the training fast path).

        Targets before the first column where any row's target counts (the prompts, with an answer-only
        mask) need no last-block queries, MLP or head: the last block runs only from that column on.
        """
        n = self._check_length(x)
        weight = _target_weight(y, mask)
        counted = torch.nonzero(weight.any(0))
        start = int(counted[0]) if len(counted) else n - 1
        logits = self.lm_head(self._hidden(x, torch.arange(n, device=x.device), start=start))
        return _masked_cross_entropy(logits, y[:, start:], weight[:, start:])

    def _check_length(self, x: torch.Tensor) -> int:
        n = x.shape[1]
        if n > self.block_size:
            raise ValueError(f"sequence of {n} tokens is longer than block_size={self.block_size}")
        return n
