"""Batched greedy decoding with a key/value cache, for `model.GPT` (a mixin: it uses the model's
`block_size`, `cfg`, `wte`, `lm_head` and `_hidden`).

Decoding pads prompts on the RIGHT, so the prefill is an ordinary causal forward pass and every token
keeps its natural position. Row `i` (prompt length `L_i`) writes its `s`-th generated token at position
`L_i + s`, overwriting the padding there, and attends only to positions `<= L_i + s`; the cache stays
dense without per-row position offsets. Finished rows leave the batch; optional drafts (known answers)
are verified in the prefill, like speculative decoding with a free draft model.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from rewritelab.tokenizer import PAD_ID

DEFAULT_DECODE_BATCH = 256  # rows decoded together; larger batches fall out of cache on CPU


@dataclass
class KVCache:
    """Keys and values of every layer, (n_layer, B, H, T, head_dim), written in place.

    `pos is None` while prefilling the prompts; during a decode step `pos` (B,) is the position each
    row's new token takes and `mask` (B, 1, 1, T_now) is 0 on the keys each row may attend to, -inf
    elsewhere.
    """

    k: torch.Tensor
    v: torch.Tensor
    pos: torch.Tensor | None = None
    mask: torch.Tensor | None = None


class GreedyDecoding:
    """`generate` and its decode steps; `GPT` provides the forward pass they call."""

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
        cache: KVCache | None,
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

    def _new_cache(self, batch: int, total: int) -> KVCache:
        w = self.wte.weight
        shape = (self.cfg.n_layer, batch, self.cfg.n_head, total, self.cfg.d_model // self.cfg.n_head)
        k = torch.zeros(shape, dtype=w.dtype, device=w.device)  # masked keys must still be finite
        return KVCache(k, torch.zeros_like(k))

    def _logits_at(self, seq: torch.Tensor, at: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Causal pass over `seq` (B, T), filling `cache` if given; logits (B, K, V) at positions `at` (B, K).

        The last block runs only from the earliest position asked for.
        """
        start = int(at.min())
        h = self._hidden(seq, torch.arange(seq.shape[1], device=seq.device), cache, start=start)
        return self.lm_head(h.gather(1, (at - start)[:, :, None].expand(-1, -1, h.shape[-1])))

    def _decode_step(self, token: torch.Tensor, pos: torch.Tensor, cache: KVCache) -> torch.Tensor:
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
