"""A small decoder-only GPT (GPT-2 layout) and batched greedy decoding with a key/value cache.

Layout follows GPT-2 so weights map one-to-one onto Hugging Face's `GPT2LMHeadModel`: pre-LayerNorm
blocks, fused QKV projection (`c_attn`, output laid out `[q | k | v]`), GELU MLP of width 4× (the exact
erf form, faster on CPU than GPT-2's tanh approximation; HF: `activation_function="gelu"`),
learned positional embeddings, output head tied to the token embedding. Attention runs through
`scaled_dot_product_attention` (flash kernels on CPU and GPU), except for single-query decode steps.

Only the loss needs the last block's outputs, and only where a target counts: `GPT.loss` and the decode
prefill run the last block from the first position that matters (the answer, the prompt's last token).

Decoding pads prompts on the RIGHT, so the prefill is an ordinary causal forward pass and every token
keeps its natural position. Row `i` (prompt length `L_i`) writes its `s`-th generated token at position
`L_i + s`, overwriting the padding there, and attends only to positions `<= L_i + s`; the cache stays
dense without per-row position offsets. Finished rows leave the batch; optional drafts (known answers)
are verified in the prefill, like speculative decoding with a free draft model.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rewritelab.config import FieldError
from rewritelab.errors import UserError
from rewritelab.tokenizer import PAD_ID

MODEL_PRESETS: dict[str, dict[str, int]] = {
    "paper": {"n_layer": 6, "d_model": 256, "n_head": 4},  # the paper's GPT-2: ~4.7M parameters
    "cpu-tiny": {"n_layer": 2, "d_model": 64, "n_head": 2},
    "cpu-small": {"n_layer": 2, "d_model": 128, "n_head": 4},
    "cpu-base": {"n_layer": 4, "d_model": 128, "n_head": 4},
}
DEFAULT_DECODE_BATCH = 256  # rows decoded together; larger batches fall out of cache on CPU


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
            raise UserError(f"{where}: expected a mapping such as {{preset: cpu-small}}, got {value!r}")
        preset = value.get("preset")
        if preset is not None and preset not in MODEL_PRESETS:
            raise UserError(f"{where}.preset: unknown preset {preset!r}; valid presets: {_preset_names()}")
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


def _target_weight(y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Per-target loss weight: `mask` (all ones if None), zero wherever the target is PAD."""
    weight = (y != PAD_ID).float()
    return weight if mask is None else weight * mask


def _masked_cross_entropy(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    ce = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
    weight = weight.flatten().to(ce.dtype)
    return (ce * weight).sum() / weight.sum().clamp_min(1.0)


@dataclass
class _Cache:
    """Keys and values of every layer, (n_layer, B, H, T, head_dim), written in place.

    `pos is None` while prefilling the prompts; during a decode step `pos` (B,) is the position each
    row's new token takes and `mask` (B, 1, 1, T_now) is 0 on the keys each row may attend to, -inf
    elsewhere.
    """

    k: torch.Tensor
    v: torch.Tensor
    pos: torch.Tensor | None = None
    mask: torch.Tensor | None = None


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.dropout = cfg.dropout
        self.c_attn = nn.Linear(cfg.d_model, 3 * cfg.d_model)  # q, k, v in one matmul
        self.c_proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(
        self, x: torch.Tensor, cache: _Cache | None = None, layer: int = 0, start: int = 0
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
        cache: _Cache, layer: int, k: torch.Tensor, v: torch.Tensor
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
        self, x: torch.Tensor, cache: _Cache | None = None, layer: int = 0, start: int = 0
    ) -> torch.Tensor:
        """Outputs at positions `start`..T−1; earlier positions still serve as keys and values."""
        x = x[:, start:] + self.attn(self.ln_1(x), cache, layer, start)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
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
        self, idx: torch.Tensor, pos: torch.Tensor, cache: _Cache | None = None, start: int = 0
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

    @torch.inference_mode()
    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        max_new_tokens: int,
        eos_id: int,
        use_cache: bool = True,
        batch_size: int = DEFAULT_DECODE_BATCH,
        drafts: Sequence[Sequence[int]] | None = None,
    ) -> list[list[int]]:
        """Greedy continuation of every prompt, in input order, each ending at its first `eos_id`.

        A row stops at EOS (which it includes), after `max_new_tokens`, or once a token has been
        predicted from position `block_size - 1`. Prompts are sorted by length and decoded
        `batch_size` rows at a time, so padding is small; rows that finish leave the batch.
        `use_cache=False` re-runs the whole sequence every step (the slow reference).

        `drafts` (e.g. the reference answers, when evaluating) are guesses at the continuations: the
        prefill also runs over each draft, the longest prefix that greedy decoding would reproduce is
        accepted at once, and decoding goes on from the first disagreement. The output is exactly the
        greedy one whatever the drafts; a good model on its own test set then needs few decode steps.
        """
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        if drafts is not None and len(drafts) != len(prompts):
            raise ValueError(f"got {len(drafts)} drafts for {len(prompts)} prompts")
        lengths = [len(p) for p in prompts]
        if any(n < 1 or n > self.block_size for n in lengths):
            raise ValueError(f"every prompt needs 1..block_size={self.block_size} tokens")
        order = sorted(range(len(prompts)), key=lengths.__getitem__)
        was_training = self.training
        self.eval()
        try:
            out: list[list[int]] = [[] for _ in prompts]
            for lo in range(0, len(order), batch_size):
                rows = order[lo : lo + batch_size]
                batch_drafts = [drafts[i] if drafts is not None else () for i in rows]
                batch = self._decode_batch(
                    [prompts[i] for i in rows], batch_drafts, max_new_tokens, eos_id, use_cache
                )
                for i, tokens in zip(rows, batch, strict=True):
                    out[i] = tokens
            return out
        finally:
            self.train(was_training)

    def _decode_batch(
        self,
        prompts: list[Sequence[int]],
        drafts: list[Sequence[int]],
        max_new_tokens: int,
        eos_id: int,
        use_cache: bool,
    ) -> list[list[int]]:
        if max_new_tokens == 0:
            return [[] for _ in prompts]
        device = self.wte.weight.device
        B = len(prompts)
        L = torch.tensor([len(p) for p in prompts], device=device)
        # New tokens each row may add: its last one is predicted at position block_size - 1, never fed.
        budget = (self.block_size + 1 - L).clamp_max(max_new_tokens)
        total = int((L + budget).max()) - 1  # positions any row may feed (<= block_size)
        fed = [_draft_to_feed(d, int(b) - 1, eos_id) for d, b in zip(drafts, budget.tolist(), strict=True)]
        seq = _right_pad([[*p, *d] for p, d in zip(prompts, fed, strict=True)], total, PAD_ID).to(device)
        cache = self._new_cache(B, total) if use_cache else None

        # Prefill over prompts and drafts: the prediction after each accepted draft token comes free.
        k = max(len(d) for d in fed) + 1
        width = max(len(p) + len(d) for p, d in zip(prompts, fed, strict=True))
        at = (L[:, None] - 1 + torch.arange(k, device=device)).clamp_max(width - 1)
        pred = self._logits_at(seq[:, :width], at, cache).argmax(-1)  # (B, k)
        guess = _right_pad(fed, k - 1, -1).to(device)
        accepted = (pred[:, :-1] == guess).cumprod(1).sum(1)  # leading draft tokens greedy agrees with
        out = torch.full((B, int(budget.max())), PAD_ID, dtype=torch.long, device=device)
        out[:, : k - 1] = torch.where(torch.arange(k - 1, device=device) < accepted[:, None], guess, PAD_ID)
        token = pred.gather(1, accepted[:, None])[:, 0]
        out[torch.arange(B, device=device), accepted] = token
        n_new = accepted + 1
        return self._decode_loop(seq, cache, L, budget, out, token, n_new, eos_id)

    def _decode_loop(
        self,
        seq: torch.Tensor,
        cache: _Cache | None,
        L: torch.Tensor,
        budget: torch.Tensor,
        out: torch.Tensor,
        token: torch.Tensor,
        n_new: torch.Tensor,
        eos_id: int,
    ) -> list[list[int]]:
        """One token per live row per step until every row has hit EOS or its budget.

        Row r of the working batch is row `rows[r]` of `out`; finished rows are dropped from the
        working batch (and cache) once they are a quarter of it, so they stop costing compute.
        """
        rows = torch.arange(len(L), device=L.device)
        count = n_new.clone()  # tokens generated, by output row
        done = (token == eos_id) | (n_new >= budget)
        while not bool(done.all()):
            if 4 * int(done.sum()) >= len(done):
                keep = torch.nonzero(~done)[:, 0]
                rows, L, budget, token, n_new, done, seq = (
                    t[keep] for t in (rows, L, budget, token, n_new, done, seq)
                )
                if cache is not None:
                    cache.k, cache.v = cache.k[:, keep], cache.v[:, keep]
            pos = (L + n_new - 1).clamp_max(seq.shape[1] - 1)  # finished rows may point past the end
            if cache is None:
                seq[torch.arange(len(L), device=L.device), pos] = token
                logits = self._logits_at(seq[:, : int(pos.max()) + 1], pos[:, None])[:, 0]
            else:
                logits = self._decode_step(token, pos, cache)
            token = logits.argmax(-1)
            live = ~done
            out[rows[live], n_new[live]] = token[live]
            n_new = n_new + live
            count[rows] = n_new
            done = done | (token == eos_id) | (n_new >= budget)
        return [row[:c] for row, c in zip(out.tolist(), count.tolist(), strict=True)]

    def _new_cache(self, batch: int, total: int) -> _Cache:
        w = self.wte.weight
        shape = (self.cfg.n_layer, batch, self.cfg.n_head, total, self.cfg.d_model // self.cfg.n_head)
        k = torch.zeros(shape, dtype=w.dtype, device=w.device)  # masked keys must still be finite
        return _Cache(k, torch.zeros_like(k))

    def _logits_at(self, seq: torch.Tensor, at: torch.Tensor, cache: _Cache | None = None) -> torch.Tensor:
        """Causal pass over `seq` (B, T), filling `cache` if given; logits (B, K, V) at positions `at` (B, K).

        The last block runs only from the earliest position asked for.
        """
        start = int(at.min())
        h = self._hidden(seq, torch.arange(seq.shape[1], device=seq.device), cache, start=start)
        return self.lm_head(h.gather(1, (at - start)[:, :, None].expand(-1, -1, h.shape[-1])))

    def _decode_step(self, token: torch.Tensor, pos: torch.Tensor, cache: _Cache) -> torch.Tensor:
        """Logits after feeding each row's `token` at its position `pos` (B,), extending the cache."""
        keys = torch.arange(int(pos.max()) + 1, device=pos.device)
        cache.pos = pos
        cache.mask = torch.zeros(keys.shape, dtype=cache.k.dtype, device=pos.device).masked_fill(
            keys > pos[:, None], float("-inf")
        )[:, None, None, :]
        return self.lm_head(self._hidden(token[:, None], pos[:, None], cache)[:, 0])


def _draft_to_feed(draft: Sequence[int], room: int, eos_id: int) -> list[int]:
    """The draft tokens worth feeding: up to its first EOS (never fed: it ends the row), at most `room`."""
    draft = list(draft)
    if eos_id in draft:
        draft = draft[: draft.index(eos_id)]
    return draft[: max(room, 0)]


def _right_pad(rows: list[list[int]], width: int, fill: int) -> torch.Tensor:
    """Rows of ids as one (len(rows), width) int64 tensor, `fill` after each row's end (no per-row ops)."""
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=int(lengths.sum()))
    out = np.full((len(rows), width), fill, dtype=np.int64)
    out[np.arange(width) < lengths[:, None]] = flat
    return torch.from_numpy(out)
