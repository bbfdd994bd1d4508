"""Training throughput: our GPT vs Hugging Face `GPT2LMHeadModel` of identical size, same batches.

One training step is forward + backward + AdamW step in fp32 on length-grouped, answer-masked batches of
rewrite sequences (~8k tokens per step), for the `paper` model on paper-scale data and `cpu-small` on the
CPU presets' data. All contenders start from the same weights and see the same batches; they are timed
round-robin in one process, so load from other processes hits all of them alike:

  ours                 `GPT.loss` (the last block runs only from the first answer column)
  ours (forward)       `GPT.forward(x, y, mask)`: full logits, the like-for-like implementation
  HF                   GPT2LMHeadModel, activation "gelu" (our function), SDPA attention, no KV cache,
                       the same masked loss computed from its logits
  HF (stock gelu_new)  the same with GPT-2's default activation (tanh GELU written as Python ops)

tokens/s counts non-pad input tokens. MFU = model FLOPs (`GPT.flops_per_token`: 6 × parameters + causal
attention, for the full model even where `GPT.loss` skips some) × tokens/s / the fp32 matmul peak
measured here (best of several 2048² `torch.mm`).

    .venv/bin/python benchmarks/train_throughput.py [--models paper cpu-small] [--steps 4] [--reps 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from _common import hf_gpt2, matmul_peak_flops, rewrite_split, set_threads
from rewritelab.config import from_dict
from rewritelab.model import GPT, ModelConfig
from rewritelab.tokenizer import Tokenizer, length_batches

SCALE_OF_MODEL = {"paper": "paper", "cpu-small": "cpu", "cpu-base": "cpu", "cpu-tiny": "cpu"}
ALPHABET = {"paper": "abcdefghijklmnopqrstuvwxyz", "cpu": "abcdef"}
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def make_batches(scale: str, tokens_per_step: int, steps: int, seed: int = 0) -> tuple[list[Batch], int]:
    """`steps` length-grouped answer-masked batches of ~`tokens_per_step` tokens, and the block size."""
    tok = Tokenizer(ALPHABET[scale])
    enc = tok.encode_split(rewrite_split(scale, 20_000, seed=seed))
    batch_size = max(1, round(tokens_per_step / enc.lengths.mean()))
    batches = length_batches(enc.lengths, batch_size, np.random.default_rng(seed))[:steps]
    return [enc.batch(b) for b in batches], int(enc.lengths.max())


def ours_step(model: GPT, use_fast_loss: bool) -> Callable[[Batch], None]:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step(batch: Batch) -> None:
        x, y, mask = batch
        loss = model.loss(x, y, mask) if use_fast_loss else model(x, y, mask)[1]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def hf_step(hf) -> Callable[[Batch], None]:
    """HF on the same inputs, with the same masked loss computed from its logits (no KV cache built)."""
    opt = torch.optim.AdamW(hf.parameters(), lr=1e-3)

    def step(batch: Batch) -> None:
        x, y, mask = batch
        logits = hf(input_ids=x, use_cache=False).logits
        ce = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
        loss = (ce * mask.flatten()).sum() / mask.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def time_round_robin(steps: dict[str, Callable[[Batch], None]], batches: list[Batch], reps: int):
    """Seconds per pass over `batches` for each contender: best and median of `reps` interleaved passes."""
    for step in steps.values():
        step(batches[0])  # warm-up: allocator, kernels, optimizer state
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(reps):
        for name, step in steps.items():
            t0 = time.perf_counter()
            for batch in batches:
                step(batch)
            times[name].append(time.perf_counter() - t0)
    return {name: (min(t), statistics.median(t)) for name, t in times.items()}


def bench_model(preset: str, args: argparse.Namespace, peak: float) -> None:
    scale = SCALE_OF_MODEL[preset]
    batches, block_size = make_batches(scale, args.tokens_per_step, args.steps)
    lengths = [(x != 0).sum(1) + 1 for x, _, _ in batches]  # full sequence lengths (x starts with a letter)
    tokens = sum(int((n - 1).sum()) for n in lengths)
    torch.manual_seed(0)
    model = GPT(from_dict(ModelConfig, {"preset": preset}, "model"), len(ALPHABET[scale]) + 4, block_size)
    flops = sum(k * model.flops_per_token(k) for n in lengths for k in (n - 1).tolist())
    contenders = {
        "ours": ours_step(model, use_fast_loss=True),
        "ours (forward)": ours_step(_copy(model), use_fast_loss=False),
        "HF": hf_step(hf_gpt2(model, activation="gelu").train()),
        "HF (stock gelu_new)": hf_step(hf_gpt2(model, activation="gelu_new").train()),
    }
    results = time_round_robin(contenders, batches, args.reps)
    hf_best, stock_best = results["HF"][0], results["HF (stock gelu_new)"][0]
    print(
        f"\n{preset}: {model.num_params() / 1e6:.2f}M params, {scale}-scale data, "
        f"{len(batches)} steps of {tokens / len(batches):,.0f} tokens (batch {batches[0][0].shape[0]})"
    )
    print(f"  {'contender':22} {'tokens/s':>9} {'median':>9} {'vs HF':>6} {'vs stock':>8} {'MFU':>5}")
    for name, (best, median) in results.items():
        print(
            f"  {name:22} {tokens / best:9,.0f} {tokens / median:9,.0f} {hf_best / best:5.2f}x "
            f"{stock_best / best:7.2f}x {flops / best / peak:5.0%}"
        )


def _copy(model: GPT) -> GPT:
    twin = GPT(model.cfg, model.vocab_size, model.block_size)
    twin.load_state_dict(model.state_dict())
    return twin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["paper", "cpu-small"], choices=list(SCALE_OF_MODEL))
    parser.add_argument("--tokens-per-step", type=int, default=8192)
    parser.add_argument("--steps", type=int, default=4, help="training steps per timed pass")
    parser.add_argument("--reps", type=int, default=3, help="timed passes per contender (best reported)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    args = parser.parse_args()
    threads = set_threads(args.threads)
    peak = matmul_peak_flops()
    print(f"torch {torch.__version__}, {threads} threads, fp32 matmul peak {peak / 1e9:.0f} GFLOP/s")
    print("tokens/s: best of the timed passes (median beside it); other processes share this CPU")
    for preset in args.models:
        bench_model(preset, args, peak)


if __name__ == "__main__":
    main()
