"""GPT: configuration, causality, loss masking, tied weights, KV-cache decoding, and that it learns."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rewritelab.config import from_dict
from rewritelab.data import apply_once
from rewritelab.errors import UserError
from rewritelab.model import GPT, MODEL_PRESETS, ModelConfig
from rewritelab.tokenizer import EOS_ID, PAD_ID, Tokenizer

TINY = ModelConfig(n_layer=2, n_head=2, d_model=32)


def random_model(vocab: int = 12, block: int = 48, dtype=torch.float64, seed: int = 0) -> GPT:
    """Random weights; float64 makes exact-argmax comparisons immune to rounding-order differences."""
    torch.manual_seed(seed)
    return GPT(TINY, vocab, block).to(dtype).eval()


def random_prompts(n: int, vocab: int = 12, max_len: int = 20, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(4, vocab, rng.integers(1, max_len + 1)).tolist() for _ in range(n)]


# --- configuration -------------------------------------------------------------------------------------


def test_preset_fills_fields_and_explicit_keys_override():
    paper = from_dict(ModelConfig, {"preset": "paper"}, "model")
    assert (paper.n_layer, paper.d_model, paper.n_head, paper.dropout) == (6, 256, 4, 0.0)
    small = from_dict(ModelConfig, {"preset": "cpu-small", "n_layer": 3, "dropout": 0.1}, "model")
    assert (small.n_layer, small.d_model, small.n_head, small.dropout) == (3, 128, 4, 0.1)
    assert from_dict(ModelConfig, "cpu-tiny", "model") == from_dict(ModelConfig, {"preset": "cpu-tiny"}, "m")
    assert {"paper", "cpu-tiny", "cpu-small", "cpu-base"} <= set(MODEL_PRESETS)


def test_config_round_trips_and_works_inside_a_run_config():
    @dataclasses.dataclass
    class Run:
        model: ModelConfig

    run = from_dict(Run, {"model": {"preset": "paper", "d_model": 128}}, "run")
    assert run.model.d_model == 128 and run.model.preset == "paper"
    assert from_dict(ModelConfig, run.model.to_config(), "model") == run.model
    explicit = from_dict(ModelConfig, {"n_layer": 1, "n_head": 1, "d_model": 8}, "model")
    assert explicit.preset is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"preset": "huge"}, r"model\.preset: unknown preset 'huge'; valid presets: paper, cpu-tiny"),
        ({"preset": "paper", "layers": 2}, r"model: unknown key 'layers' \(did you mean 'n_layer'\?\)"),
        ({"n_layer": 2}, r"model: missing n_head, d_model; .* model\.preset to one of: paper"),
        ({"preset": "paper", "n_head": 3}, r"model\.d_model: 256 is not divisible by n_head=3"),
        ({"preset": "paper", "n_layer": 0}, r"model\.n_layer: must be a positive integer"),
        ({"preset": "paper", "dropout": 1.5}, r"model\.dropout: must be in \[0, 1\)"),
        ({"preset": "paper", "n_layer": "six"}, r"model\.n_layer: expected an integer"),
        (7, r"model: expected a mapping"),
    ],
)
def test_bad_model_config_is_a_user_error(value, message):
    with pytest.raises(UserError, match=message):
        from_dict(ModelConfig, value, "model")


# --- architecture --------------------------------------------------------------------------------------


def test_parameter_count_tied_weights_and_flops():
    vocab, block, d, L = 30, 150, 256, 6
    model = GPT(from_dict(ModelConfig, "paper", "model"), vocab, block)
    assert model.lm_head.weight is model.wte.weight
    per_layer = 12 * d * d + 13 * d  # qkv, proj, 4x MLP weights + their biases + two LayerNorms
    assert model.num_params() == vocab * d + block * d + L * per_layer + 2 * d
    assert 4.7e6 < model.num_params() < 4.9e6  # the paper's "~5M parameters"
    expected = 6 * (model.num_params() - block * d) + 6 * L * d * (100 + 1)
    assert model.flops_per_token(100) == expected


def test_tied_head_receives_gradient_from_both_uses():
    model = random_model()
    x = torch.tensor([[4, 5, 6, 7]])
    _, loss = model(x, torch.tensor([[5, 6, 7, 8]]))
    loss.backward()
    assert model.lm_head.weight.grad is model.wte.weight.grad
    assert model.wte.weight.grad[11].abs().sum() > 0  # never an input, only an output row: head gradient
    assert model.wte.weight.grad[4].abs().sum() > 0


def test_state_dict_round_trip_keeps_weights_tied():
    model = random_model(seed=1)
    twin = random_model(seed=2)
    twin.load_state_dict(model.state_dict())
    assert twin.lm_head.weight is twin.wte.weight
    x = torch.tensor([[4, 5, 6]])
    assert torch.equal(model(x)[0], twin(x)[0])


def test_causality_future_tokens_do_not_change_earlier_logits():
    model = random_model()
    x = torch.tensor([random_prompts(1, max_len=16, seed=3)[0] + [4] * 16])[:, :16]
    logits, _ = model(x)
    for t in (0, 5, 15):
        changed = x.clone()
        changed[0, t] = 11 if x[0, t] != 11 else 10
        new_logits, _ = model(changed)
        assert torch.equal(new_logits[0, :t], logits[0, :t])
        assert not torch.allclose(new_logits[0, t:], logits[0, t:])


def test_loss_counts_only_masked_non_pad_targets():
    model = random_model()
    torch.manual_seed(5)
    x = torch.randint(4, 12, (3, 10))
    y = torch.randint(4, 12, (3, 10))
    mask = torch.zeros(3, 10, dtype=torch.float64)
    mask[:, 6:] = 1.0
    logits, loss = model(x, y, mask)
    manual = torch.nn.functional.cross_entropy(logits[:, 6:].flatten(0, 1), y[:, 6:].flatten())
    assert torch.allclose(loss, manual)
    other = y.clone()
    other[:, :6] = torch.randint(4, 12, (3, 6))  # unmasked targets: no effect
    assert torch.equal(model(x, other, mask)[1], loss)
    other[1, 8] = 4 if y[1, 8] != 4 else 5  # a masked target: changes the loss
    assert not torch.allclose(model(x, other, mask)[1], loss)
    padded = y.clone()
    padded[2, 7:] = PAD_ID  # PAD targets never count, even where the mask is 1
    expected = torch.cat([(logits[:2, 6:]).flatten(0, 1), logits[2, 6:7]])
    targets = torch.cat([y[:2, 6:].flatten(), y[2, 6:7]])
    assert torch.allclose(model(x, padded, mask)[1], torch.nn.functional.cross_entropy(expected, targets))
    no_mask = model(x, padded)[1]
    keep = padded != PAD_ID
    assert torch.allclose(no_mask, torch.nn.functional.cross_entropy(logits[keep], padded[keep]))


def test_fast_loss_equals_forward_loss_and_gradients():
    model = random_model()
    model.train()
    torch.manual_seed(6)
    x = torch.randint(1, 12, (4, 14))
    y = torch.randint(1, 12, (4, 14))
    mask = torch.zeros(4, 14, dtype=torch.float64)
    for row, first in enumerate([9, 5, 11, 7]):  # answer regions start at different columns
        mask[row, first:] = 1.0
    _, full = model(x, y, mask)
    full.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    fast = model.loss(x, y, mask)
    fast.backward()
    assert torch.allclose(fast, full, rtol=1e-12, atol=0)
    for g, p in zip(grads, model.parameters(), strict=True):
        assert torch.allclose(p.grad, g, rtol=1e-9, atol=1e-12)
    assert model.loss(x, y, torch.zeros_like(mask)) == 0


def test_sequences_longer_than_block_size_are_rejected():
    model = random_model(block=8)
    with pytest.raises(ValueError, match="block_size=8"):
        model(torch.zeros(1, 9, dtype=torch.long))


# --- decoding ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cached_uncached_and_one_by_one_decoding_agree(dtype):
    model = random_model(dtype=dtype)
    prompts = random_prompts(24)
    cached = model.generate(prompts, 15, eos_id=-1)  # -1: never stops early
    assert [len(c) for c in cached] == [15] * 24
    assert model.generate(prompts, 15, eos_id=-1, use_cache=False) == cached
    assert [model.generate([p], 15, eos_id=-1)[0] for p in prompts] == cached
    assert model.generate(prompts, 15, eos_id=-1, batch_size=5) == cached  # several sorted sub-batches


@pytest.mark.parametrize("use_cache", [True, False])
def test_rows_stop_at_eos_and_finished_rows_do_not_change(use_cache):
    model = random_model()
    prompts = random_prompts(30, seed=1)
    full = model.generate(prompts, 20, eos_id=-1)
    counts = np.bincount(np.concatenate([row[1:] for row in full]), minlength=12)
    eos = int(np.argmax(counts))  # a token many rows produce mid-way: use it as the end marker
    stopped = model.generate(prompts, 20, eos_id=eos, use_cache=use_cache)
    for row, out in zip(full, stopped, strict=True):
        expected = row[: row.index(eos) + 1] if eos in row else row
        assert out == expected
    assert sum(len(out) < 20 for out in stopped) >= 5  # the test exercised early stops


@pytest.mark.parametrize("use_cache", [True, False])
def test_drafts_never_change_the_output(use_cache):
    model = random_model()
    prompts = random_prompts(30, seed=2)
    plain = model.generate(prompts, 20, eos_id=-1)
    counts = np.bincount(np.concatenate([row[1:] for row in plain]), minlength=12)
    eos = int(np.argmax(counts))
    expected = model.generate(prompts, 20, eos_id=eos)
    rng = np.random.default_rng(0)
    drafts = {
        "exact": expected,
        "garbage": [rng.integers(4, 12, rng.integers(0, 25)).tolist() for _ in prompts],
        "right then wrong": [row[: len(row) // 2] + [4, 5, 6] for row in expected],
        "too long": [row[:-1] + [eos] * 30 for row in expected],
        "empty": [[] for _ in prompts],
    }
    for name, draft in drafts.items():
        got = model.generate(prompts, 20, eos_id=eos, use_cache=use_cache, drafts=draft, batch_size=8)
        assert got == expected, name
    with pytest.raises(ValueError, match="drafts"):
        model.generate(prompts, 20, eos_id=eos, drafts=drafts["exact"][:-1])


@pytest.mark.parametrize("use_cache", [True, False])
def test_a_row_finished_by_its_draft_waits_while_others_decode(use_cache):
    model = random_model()
    prompts = [[4, 5, 6, 7, 8]] * 2 + random_prompts(6, max_len=5, seed=4)
    expected = model.generate(prompts, 4, eos_id=-1)
    drafts = [expected[0]] + [[] for _ in prompts[1:]]  # row 0 is complete after the prefill
    assert model.generate(prompts, 4, eos_id=-1, drafts=drafts, use_cache=use_cache) == expected


def test_generation_stops_at_the_block_size():
    model = random_model(block=12)
    prompts = [[4] * 3, [5] * 10, [6] * 12]
    outs = model.generate(prompts, 50, eos_id=-1)
    assert [len(o) for o in outs] == [10, 3, 1]  # the last token comes from position 11
    assert model.generate(prompts, 50, eos_id=-1, use_cache=False) == outs
    assert model.generate(prompts, 50, eos_id=-1, drafts=[o + [4] * 20 for o in outs]) == outs
    with pytest.raises(ValueError, match="block_size"):
        model.generate([[4] * 13], 1, eos_id=-1)


def test_generation_and_loss_run_under_bf16_autocast():
    model = random_model(dtype=torch.float32)
    prompts = random_prompts(6, seed=5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain = model.generate(prompts, 5, eos_id=-1)
        drafted = model.generate(prompts, 5, eos_id=-1, drafts=[[4, 5]] * len(prompts))
        x = torch.tensor([prompts[0]])
        loss = model.loss(x, x)
    assert [len(o) for o in plain] == [len(o) for o in drafted] == [5] * len(prompts)
    assert all(0 <= t < 12 for o in plain + drafted for t in o)
    assert torch.isfinite(loss)


def test_generate_restores_training_mode_and_needs_no_grad():
    model = random_model()
    model.train()
    out = model.generate([[4, 5]], 3, eos_id=-1)
    assert model.training and len(out[0]) == 3
    assert all(p.grad is None for p in model.parameters())


# --- learning ------------------------------------------------------------------------------------------

RULES = [("ab", "c"), ("ca", "dd"), ("db", "b")]


def rewrite_examples(rng: np.random.Generator, n: int):
    """Inputs of 4-7 characters over "abcd" with one of RULES' patterns planted: every rewrite applies."""
    columns: dict[str, list[str]] = {"pattern": [], "replacement": [], "input": [], "output": []}
    for _ in range(n):
        pattern, replacement = RULES[rng.integers(len(RULES))]
        filler = "".join(rng.choice(list("abcd"), rng.integers(2, 6)))
        at = int(rng.integers(0, len(filler) + 1))
        text = filler[:at] + pattern + filler[at:]
        output = apply_once(pattern, replacement, text)
        for key, value in zip(columns, (pattern, replacement, text, output), strict=True):
            columns[key].append(value)
    return SimpleNamespace(**columns)


def test_tiny_model_learns_few_rule_rewrites(one_thread):
    rng = np.random.default_rng(0)
    tok = Tokenizer("abcd")
    train = tok.encode_split(rewrite_examples(rng, 4000))
    test = tok.encode_split(rewrite_examples(rng, 200))
    torch.manual_seed(0)
    model = GPT(ModelConfig(n_layer=2, n_head=4, d_model=64), tok.vocab_size, 32)
    steps = 1000
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20) * (1 - s / steps))
    for _ in range(steps):
        x, y, mask = train.batch(rng.integers(0, len(train), 64))
        loss = model.loss(x, y, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
    indices = range(len(test))
    predictions = model.generate(test.prompts(indices), 12, EOS_ID)
    accuracy = np.mean([p == a for p, a in zip(predictions, test.answers(indices), strict=True)])
    assert accuracy >= 0.95
