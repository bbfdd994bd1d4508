"""`check_head` by precision: a bf16 frozen base passes whatever its kernels' rounding, while an
architecture that scales or caps its logits after the head is refused in either precision."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from torch import nn

from rewritelab.errors import UserError
from rewritelab.lm import LoraSettings, attach_lora
from rewritelab.lm.encode import Batch, LMEncoded, check_head

VOCAB = 512
SMALL = {"vocab_size": VOCAB, "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 1,
         "num_attention_heads": 4, "num_key_value_heads": 2, "initializer_range": 0.3, "bos_token_id": 0,
         "eos_token_id": 0, "pad_token_id": 0}  # fmt: skip


def answer_batch() -> Batch:
    """Two right-padded sequences of random tokens, the last 12 of each the answer."""
    rng = np.random.default_rng(0)
    lengths = [40, 31]
    ids = rng.integers(1, VOCAB, sum(lengths))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return LMEncoded(ids, offsets, np.array([28, 19])).batch(np.arange(2))


def adapted(config: transformers.PretrainedConfig, dtype: torch.dtype) -> nn.Module:
    """A random model of `config`, frozen in `dtype`, with a LoRA adapter as an `lm:` run builds it."""
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config).to(dtype).requires_grad_(False)
    return attach_lora(model, LoraSettings(rank=4, target_modules=["q_proj", "v_proj"]), seed=0)


class RowDependentHead(nn.Linear):
    """A bf16 head that rounds differently over every position (3-D input, the model's own forward) than
    over the answer rows (2-D): the two halves of the hidden features are summed after rounding each, as a
    CPU kernel that picks its blocking by the number of rows may (the issue's Intel Xeon)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return super().forward(x)
        k = x.shape[-1] // 2
        return nn.functional.linear(x[..., :k], self.weight[:, :k]) + nn.functional.linear(
            x[..., k:], self.weight[:, k:]
        )


def test_a_bf16_base_whose_kernels_round_by_shape_passes():
    """The model's logits are head(backbone(x)) exactly; only the bf16 rounding of the two head calls
    differs (by an ulp, ~0.03 at these logits: far beyond an fp32 tolerance). The check runs both heads
    in fp32, so the model is accepted."""
    model = adapted(transformers.LlamaConfig(**SMALL), torch.bfloat16)
    lm = model.get_base_model()
    head = RowDependentHead(lm.lm_head.in_features, VOCAB, bias=False, dtype=torch.bfloat16)
    head.weight = lm.lm_head.weight
    lm.lm_head = head
    batch = answer_batch()
    with torch.no_grad():  # the premise: in bf16, the model's own logits differ from the head on the rows
        own = model(input_ids=batch.x, attention_mask=batch.attention).logits[batch.rows, batch.cols]
        hidden = lm.model(input_ids=batch.x, attention_mask=batch.attention).last_hidden_state
        assert (own - head(hidden[batch.rows, batch.cols])).abs().max() > 1e-2
    check_head(model, batch)
    assert not any(h for h in lm.lm_head._forward_hooks.values())  # the fp32 hook is gone afterwards


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_plain_llama_passes_in_either_precision(dtype):
    check_head(adapted(transformers.LlamaConfig(**SMALL), dtype), answer_batch())


CAPPED_OR_SCALED = {
    # Gemma 2: logits = 30 tanh(logits / 30), its published cap
    "gemma2": lambda: transformers.Gemma2Config(**SMALL, head_dim=32, final_logit_softcapping=30.0),
    # Cohere: logits * logit_scale (its default, 1/16)
    "cohere": lambda: transformers.CohereConfig(**SMALL),
    # Granite: logits / logits_scaling
    "granite": lambda: transformers.GraniteConfig(**SMALL, logits_scaling=8.0),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("kind", sorted(CAPPED_OR_SCALED))
def test_a_logit_cap_or_scale_is_refused_in_either_precision(kind, dtype):
    model = adapted(CAPPED_OR_SCALED[kind](), dtype)
    with pytest.raises(UserError, match=f"the {kind} architecture computes its logits"):
        check_head(model, answer_batch())
