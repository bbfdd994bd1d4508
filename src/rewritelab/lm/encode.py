"""Examples → token ids of a pretrained tokenizer, batches, and the logits at answer positions only.

Prompt and answer are tokenized separately and concatenated, so the answer's tokens (and where they
start) are the same whatever the prompt. The answer ends with the tokenizer's end-of-sequence token.
Only the positions whose next token is an answer token are passed through the output head: with a
49k-token vocabulary the head on every prompt position would dominate a step (cf. `GPT.loss`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from rewritelab.data import Split
from rewritelab.errors import UserError
from rewritelab.lm.prompts import instruction, plain_answer, plain_prompt, spell, unspell


def resolve_template(template: str, tokenizer: Any) -> str:
    """`auto` → `chat` when the tokenizer has a chat template, else `plain`."""
    has_chat = bool(getattr(tokenizer, "chat_template", None))
    if template == "chat" and not has_chat:
        raise UserError("lm.template: chat, but this tokenizer has no chat template; use plain (or auto)")
    if template == "auto":
        return "chat" if has_chat else "plain"
    return template


def answer_text(template: str, output: str, spaced: bool = False) -> str:
    output = spell(output, spaced)
    return plain_answer(output) if template == "plain" else output


def prediction_text(template: str, written: str, spaced: bool = False) -> str:
    """The inverse of `answer_text` on what a model wrote."""
    return unspell(written[1:] if template == "plain" and written.startswith(" ") else written, spaced)


def prompt_ids(tokenizer: Any, template: str, message: str) -> list[int]:
    if template == "chat":
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": message}], add_generation_prompt=True, tokenize=False
        )
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return list(tokenizer(plain_prompt(message))["input_ids"])  # with the model's BOS, if it has one


@dataclass(frozen=True)
class LMEncoded:
    """A split in a pretrained tokenizer: example i is `ids[offsets[i]:offsets[i+1]]`, of which the
    first `prompt_len[i]` tokens are the prompt and the rest the answer (end-of-sequence included)."""

    ids: np.ndarray  # int64, flat
    offsets: np.ndarray  # int64, N + 1
    prompt_len: np.ndarray  # int64, N

    def __len__(self) -> int:
        return len(self.prompt_len)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def prompts(self, rows: np.ndarray) -> list[list[int]]:
        return [self.ids[self.offsets[i] : self.offsets[i] + self.prompt_len[i]].tolist() for i in rows]

    def answers(self, rows: np.ndarray) -> list[list[int]]:
        return [self.ids[self.offsets[i] + self.prompt_len[i] : self.offsets[i + 1]].tolist() for i in rows]

    def subset(self, rows: np.ndarray) -> LMEncoded:
        pieces = [self.ids[self.offsets[i] : self.offsets[i + 1]] for i in rows]
        offsets = np.concatenate([[0], np.cumsum([len(p) for p in pieces])]).astype(np.int64)
        ids = np.concatenate(pieces) if pieces else self.ids[:0]
        return LMEncoded(ids, offsets, self.prompt_len[np.asarray(rows, dtype=np.int64)])

    def batch(self, rows: np.ndarray) -> Batch:
        """Right-padded inputs (the last token dropped), their attention mask, and the (row, column)
        of every position whose next token is an answer token, with that token as the target."""
        lengths = self.lengths[rows] - 1
        width = int(lengths.max())
        x = np.zeros((len(rows), width), dtype=np.int64)
        attention = np.zeros((len(rows), width), dtype=np.int64)
        r, c, t = [], [], []
        for j, i in enumerate(rows):
            seq = self.ids[self.offsets[i] : self.offsets[i + 1]]
            x[j, : len(seq) - 1] = seq[:-1]
            attention[j, : len(seq) - 1] = 1
            cols = np.arange(self.prompt_len[i] - 1, len(seq) - 1)
            r.append(np.full(len(cols), j))
            c.append(cols)
            t.append(seq[cols + 1])
        cat = np.concatenate
        return Batch(*(torch.from_numpy(a) for a in (x, attention, cat(r), cat(c), cat(t))))


class Batch(NamedTuple):
    x: torch.Tensor  # (B, T) input ids, right-padded with 0
    attention: torch.Tensor  # (B, T) 1 on real tokens
    rows: torch.Tensor  # (N,) answer positions: batch row ...
    cols: torch.Tensor  # (N,) ... and column
    targets: torch.Tensor  # (N,) the answer token that follows

    def to(self, device: torch.device) -> Batch:
        return Batch(*(t.to(device) for t in self))


def encode_split(
    split: Split, tokenizer: Any, template: str, encrypted: bool, spaced: bool = False
) -> LMEncoded:
    """Tokenize every example of a split (`template` resolved: plain or chat; `spaced`: see `spell`)."""
    eos = tokenizer.eos_token_id
    pieces, prompt_len = [], []
    for p, r, z, y in zip(split.pattern, split.replacement, split.input, split.output, strict=True):
        prompt = prompt_ids(tokenizer, template, instruction(p, r, z, encrypted, spaced))
        answer = list(tokenizer(answer_text(template, y, spaced), add_special_tokens=False)["input_ids"])
        pieces.append(np.array([*prompt, *answer, eos], dtype=np.int64))
        prompt_len.append(len(prompt))
    lengths = [len(p) for p in pieces]
    ids = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return LMEncoded(ids, offsets, np.array(prompt_len, dtype=np.int64))


def causal_lm(model: Any) -> Any:
    """The transformers model under a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def answer_logits(model: Any, batch: Batch) -> torch.Tensor:
    """(N, vocab) logits at the answer positions: the backbone on the whole batch, the head on N rows."""
    lm = causal_lm(model)
    backbone = getattr(lm, lm.base_model_prefix)
    hidden = backbone(input_ids=batch.x, attention_mask=batch.attention).last_hidden_state
    return lm.get_output_embeddings()(hidden[batch.rows, batch.cols])


HEAD_TOLERANCE = 1e-4  # atol and rtol of `check_head`: float32 rounding of a head (~1e-6), with margin


@torch.no_grad()
def check_head(model: Any, batch: Batch) -> None:
    """Refuse an architecture whose logits are more than head(backbone(x)) (a logit scale or soft cap
    that `answer_logits` would skip), by comparing with the model's own forward once.

    Both heads run in float32 on the hidden states the base computed (a forward hook swaps the head's
    output for an fp32 one): a bf16 head rounds each logit to 8 bits, and a CPU's bf16 kernels may round
    the head over every position and the one over answer rows differently (an Intel Xeon did), so only in
    fp32 does the tolerance separate rounding (~1e-6) from a scale or cap, whatever the base's dtype."""
    handle = causal_lm(model).get_output_embeddings().register_forward_hook(_float32_head)
    try:
        full = model(input_ids=batch.x, attention_mask=batch.attention).logits[batch.rows, batch.cols]
        ours = answer_logits(model, batch)
    finally:
        handle.remove()
    if not torch.allclose(full.float(), ours, atol=HEAD_TOLERANCE, rtol=HEAD_TOLERANCE):
        kind = causal_lm(model).config.model_type
        raise UserError(
            f"lm.model: the {kind} architecture computes its logits in a way rewritelab "
            "does not reproduce (a logit scale or cap); it is not supported"
        )


def _float32_head(
    head: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor
) -> torch.Tensor:
    """A forward hook: the head's output recomputed in float32 from its input (what the model does with
    it afterwards, a scale or a cap, still runs)."""
    bias = getattr(head, "bias", None)
    return torch.nn.functional.linear(
        inputs[0].float(), head.weight.float(), None if bias is None else bias.float()
    )
