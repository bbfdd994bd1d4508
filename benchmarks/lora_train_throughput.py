"""LoRA training throughput: rewritelab's `lm:` step vs a plain transformers + peft loop, same batches.

Both contenders train the same LoRA adapter (same init, from `attach_lora` with one seed) on the same
base weights and the same batches of rewrite prompts (plain template), fp32, AdamW on the adapter:

  ours    `lm.lm_train_step`: the backbone on the batch, the output head only at answer positions
  plain   `model(input_ids, attention_mask, labels)`: right-padded batches, full (B, T, vocab) logits,
          prompt and padding labelled -100 (transformers' own shifted cross-entropy)

The two losses are the same mean over answer tokens; the first step's losses are printed as a check.
With a 49k-token vocabulary the head on every prompt position is most of a step, which `ours` skips.
By default the model is a small random Llama with SmolLM2's vocabulary (49,152) and a character
tokenizer, so the benchmark needs no download and runs in under a minute; `--model` takes a model
directory or built-in name (e.g. smollm2-135m-instruct) and its own tokenizer instead. Timed
round-robin in one process, so load from other processes hits both alike. Target: ours >= 1.5x.

With `--bf16` a third contender runs: ours with the frozen base in bf16 under bf16 autocast (the adapter
and AdamW in fp32), what `dtype: auto` picks for an `lm:` run on a CPU with native bf16; it prints its
ratio to ours in fp32 (target >= 1.8x on native-bf16 CPUs).

    .venv/bin/python benchmarks/lora_train_throughput.py [--model NAME] [--steps 8] [--reps 3] [--bf16]
"""

from __future__ import annotations

import argparse
import copy
import string
from collections.abc import Callable
from contextlib import nullcontext

import numpy as np
import torch

from _common import rewrite_split, set_threads
from rewritelab.lm import (
    LMConfig,
    LMEncoded,
    LoraSettings,
    attach_lora,
    encode_split,
    lm_train_step,
    load_model,
    load_tokenizer,
)
from train_throughput import time_round_robin

SMOLLM2_VOCAB = 49_152
Rows = np.ndarray


def char_tokenizer():
    """One token per character (a BPE with no merges), `<eos>` as end of sequence and padding."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    chars = string.ascii_letters + string.digits + string.punctuation + " \n"
    backend = Tokenizer(models.BPE(vocab={"<eos>": 0, **{c: i + 1 for i, c in enumerate(chars)}}, merges=[]))
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>", pad_token="<eos>")


def random_llama(args: argparse.Namespace):
    """A random Llama of SmolLM2's vocabulary and head shape (untied), `--layers` deep."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(
        vocab_size=SMOLLM2_VOCAB, hidden_size=args.width, intermediate_size=args.width * 8 // 3,
        num_hidden_layers=args.layers, num_attention_heads=args.width // 64, num_key_value_heads=3,
        max_position_embeddings=512, bos_token_id=0, eos_token_id=0, pad_token_id=0,
        tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config).requires_grad_(False)


def plain_batch(enc: LMEncoded, rows: Rows) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded full sequences, their mask, labels -100 outside the answer (as a plain SFT loop)."""
    width = int(enc.lengths[rows].max())
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    labels = np.full((len(rows), width), -100, dtype=np.int64)
    for j, i in enumerate(rows):
        seq = enc.ids[enc.offsets[i] : enc.offsets[i + 1]]
        ids[j, : len(seq)] = seq
        mask[j, : len(seq)] = 1
        labels[j, enc.prompt_len[i] : len(seq)] = seq[enc.prompt_len[i] :]
    return torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(labels)


def ours_step(model, enc: LMEncoded, losses: list[float], amp=None) -> Callable[[Rows], None]:
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    amp = amp or nullcontext()

    def step(rows: Rows) -> None:
        losses.append(lm_train_step(model, enc, rows, 1, torch.device("cpu"), amp))
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def plain_step(model, enc: LMEncoded, losses: list[float]) -> Callable[[Rows], None]:
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step(rows: Rows) -> None:
        ids, mask, labels = plain_batch(enc, rows)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels, use_cache=False).loss
        loss.backward()
        losses.append(float(loss.detach()))
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model directory or built-in name (default: a random Llama)")
    parser.add_argument("--layers", type=int, default=4, help="random Llama: layers (default 4)")
    parser.add_argument("--width", type=int, default=192, help="random Llama: hidden size (default 192)")
    parser.add_argument("--rank", type=int, default=16, help="LoRA rank (default 16)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=8, help="training steps per timed pass")
    parser.add_argument("--reps", type=int, default=3, help="timed passes per contender (best reported)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    parser.add_argument("--bf16", action="store_true", help="add ours with a bf16 frozen base")
    args = parser.parse_args()
    threads = set_threads(args.threads)
    if args.model:
        cfg = LMConfig(model=args.model)
        tokenizer, base = load_tokenizer(cfg), load_model(cfg, torch.device("cpu"))
    else:
        tokenizer, base = char_tokenizer(), random_llama(args)
    split = rewrite_split("cpu", args.batch_size * args.steps)
    enc = encode_split(split, tokenizer, "plain", encrypted=False)
    batches = np.arange(len(enc)).reshape(args.steps, args.batch_size)
    lora = LoraSettings(rank=args.rank, alpha=2.0 * args.rank)
    ours_model, plain_model = (attach_lora(copy.deepcopy(base), lora, seed=0).train() for _ in range(2))
    pairs = zip(ours_model.parameters(), plain_model.parameters(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs), "the two adapters must start equal"
    ours_losses: list[float] = []
    plain_losses: list[float] = []
    contenders = {
        "ours": ours_step(ours_model, enc, ours_losses),
        "plain": plain_step(plain_model, enc, plain_losses),
    }
    bf16_losses: list[float] = []
    if args.bf16:
        bf16_model = attach_lora(copy.deepcopy(base).to(torch.bfloat16), lora, seed=0).train()
        amp = torch.autocast("cpu", dtype=torch.bfloat16)
        contenders["ours-bf16"] = ours_step(bf16_model, enc, bf16_losses, amp)
    results = time_round_robin(contenders, list(batches), args.reps)
    params = sum(p.numel() for p in base.parameters())
    tokens = int(enc.lengths.sum())
    answers = int((enc.lengths - enc.prompt_len).sum())
    print(
        f"torch {torch.__version__}, {threads} threads; model {args.model or 'random Llama'} "
        f"({params / 1e6:.1f}M params, vocab {base.config.vocab_size:,}), LoRA rank {args.rank}"
    )
    print(
        f"{args.steps} steps of {args.batch_size} examples, {tokens / len(enc):.0f} tokens per example "
        f"({answers / tokens:.0%} answer); first-step loss ours {ours_losses[0]:.4f}, "
        f"plain {plain_losses[0]:.4f}"
    )
    for name, (best, median) in results.items():
        print(f"  {name:9} {tokens / best:9,.0f} tokens/s (median {tokens / median:,.0f})")
    print(f"ours / plain: {results['plain'][0] / results['ours'][0]:.2f}x (target >= 1.5x)")
    if args.bf16:
        print(
            f"ours-bf16 / ours: {results['ours'][0] / results['ours-bf16'][0]:.2f}x (target >= 1.8x with "
            f"native bf16); first-step loss ours-bf16 {bf16_losses[0]:.4f}"
        )


if __name__ == "__main__":
    main()
