"""The `cpu` recipe's training cost: tokens/s of one training step at batch 64 (the recipe) vs larger batches
and bf16 autocast, and the E1 wall time they imply — the levers the ≤ 60-minute E1 target can pull.

The recipe is v2's (`_base-cpu`, as e2-cpu uses it unchanged: AdamW, 5,000 steps) on E1's data (I = 1000
rules: a-z, patterns of 4, inputs of 8) and model (`cpu-base`, 4 × 128). One step = `GPT.loss` forward +
backward + gradient clipping + the optimizer, as the trainer runs it. Every contender trains on the same
examples (a pass is a fixed number of examples, cut into batches of its size) and the contenders are timed
round-robin in one process, so load from other processes hits all of them alike. The projection assumes
what a `--workers 2` sweep does on 2 cores: two runs side by side, one thread each, so run it with
`--threads 1` for that figure.

`--muon` adds e1-cpu's recipe v3 (`_base-cpu-muon`: Muon, whose Newton-Schulz iterations cost extra per
step, in `muon_dtype: auto`'s precision on this CPU) at its 2,000 steps, or at `--steps N`, so the "E1"
column reads as steps to the end x seconds per step, side by side with v2's recipe. `--muon-dtypes`
adds the same recipe with the iterations in the precisions named (bf16 is emulated, and slow, on CPUs
without native bf16).

    .venv/bin/python benchmarks/cpu_recipe_throughput.py --threads 1 [--bf16] [--muon [--steps N]] [--reps 3]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from _common import matmul_peak_flops, set_threads
from rewritelab.data import generate_dataset
from rewritelab.model import GPT
from rewritelab.run import load_run_config, make_optimizer
from rewritelab.sweep import expand, load_sweep
from rewritelab.tokenizer import Tokenizer, length_batches

RUNS_PER_E1 = 18  # e1-cpu: 6 values of I × 3 seeds
WORKERS = 2


def recipe(preset: str):
    """A preset's first run at I = 1000 without no-ops: its config (data, model, train sections)."""
    runs = expand(load_sweep(preset))
    config = next(
        r.config for r in runs if r.config["data"]["num_rules"] == 1000 and not r.config["data"]["noop_frac"]
    )
    return load_run_config(config)


def contender(model: GPT, enc, examples: np.ndarray, batch: int, bf16: bool, train) -> Callable[[], int]:
    """One pass over `examples` in batches of `batch`, stepped by the optimizer `train` configures;
    returns the tokens it trained on."""
    opt = make_optimizer(model, train)
    amp = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    batches = [enc.batch(b) for b in length_batches(enc.lengths[examples], batch, np.random.default_rng(0))]
    tokens = int(enc.lengths[examples].sum())

    def run() -> int:
        for x, y, mask in batches:
            with amp:
                loss = model.loss(x, y, mask)
            opt.zero_grad(set_to_none=True)
            loss.float().backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        return tokens

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--bf16", action="store_true", help="add batch 64 under bf16 autocast")
    parser.add_argument("--muon", action="store_true", help="add e1-cpu's Muon recipe at batch 64")
    parser.add_argument("--steps", type=int, default=None, help="steps of the --muon run (default: e1-cpu's)")
    parser.add_argument(
        "--muon-dtypes",
        nargs="+",
        default=[],
        choices=["float32", "bfloat16"],
        help="add e1-cpu's Muon recipe with its Newton-Schulz iterations in each of these precisions",
    )
    parser.add_argument("--examples", type=int, default=1024, help="examples per timed pass")
    parser.add_argument("--reps", type=int, default=3, help="timed passes per contender (best reported)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    args = parser.parse_args()
    threads = set_threads(args.threads)
    cfg = recipe("e2-cpu")  # _base-cpu unchanged: the v2 recipe (AdamW, 5,000 steps) on E1's data
    dataset = generate_dataset(cfg.data)
    tokenizer = Tokenizer.for_data(cfg.data)
    enc = tokenizer.encode_split(dataset.splits["train"])
    examples = np.arange(min(args.examples, len(enc)))
    torch.manual_seed(0)
    template = GPT(cfg.model, tokenizer.vocab_size, int(enc.lengths.max()))
    flops_per_token = template.flops_per_token(float(enc.lengths.mean()))
    recipe_steps = cfg.train.max_steps
    runs = {}
    for batch in args.batches:
        runs[f"batch {batch}, fp32"] = (batch, False, cfg.train, recipe_steps)
    if args.bf16:
        runs[f"batch {args.batches[0]}, bf16"] = (args.batches[0], True, cfg.train, recipe_steps)
    if args.muon:
        muon = recipe("e1-cpu").train  # _base-cpu-muon: the same data and model
        runs[f"batch {args.batches[0]}, muon"] = (args.batches[0], False, muon, args.steps or muon.max_steps)
    for muon_dtype in args.muon_dtypes:
        muon = dataclasses.replace(recipe("e1-cpu").train, muon_dtype=muon_dtype)
        name = f"muon, NS {'fp32' if muon_dtype == 'float32' else 'bf16'}"
        runs[name] = (args.batches[0], False, muon, args.steps or muon.max_steps)
    steps = {}
    for name, (batch, bf16, train, _) in runs.items():
        model = GPT(template.cfg, template.vocab_size, template.block_size)
        model.load_state_dict(template.state_dict())
        model.train()
        steps[name] = contender(model, enc, examples, batch, bf16, train)
        steps[name]()  # warm-up: allocator, kernels, optimizer state
    times: dict[str, list[float]] = {name: [] for name in steps}
    tokens = {}
    for _ in range(args.reps):
        for name, step in steps.items():
            t0 = time.perf_counter()
            tokens[name] = step()
            times[name].append(time.perf_counter() - t0)
    peak = matmul_peak_flops()
    tokens_per_step = cfg.train.batch_size * float(enc.lengths.mean())
    per_run = recipe_steps * tokens_per_step
    print(
        f"torch {torch.__version__}, {threads} threads, fp32 matmul peak {peak / 1e9:.0f} GFLOP/s; "
        f"cpu-base {template.num_params() / 1e6:.2f}M params, {enc.lengths.mean():.1f} tokens/example; "
        f"an E1 run trains {per_run / 1e6:.2f}M tokens "
        f"({recipe_steps} steps of {cfg.train.batch_size})"
    )
    base = min(times[next(iter(times))])
    print(f"  {'contender':16} {'tokens/s':>9} {'median':>9} {'vs recipe':>9} {'MFU':>5} {'E1, 3 seeds':>12}")
    for name, t in times.items():
        best, median = min(t), statistics.median(t)
        rate = tokens[name] / best
        run_tokens = runs[name][3] * tokens_per_step  # steps to the end of this contender's run
        e1_min = RUNS_PER_E1 * run_tokens / (WORKERS * rate) / 60  # training only, two runs side by side
        print(
            f"  {name:16} {rate:9,.0f} {tokens[name] / median:9,.0f} {base / best:8.2f}x "
            f"{flops_per_token * rate / peak:5.0%} {e1_min:9.0f} min"
        )


if __name__ == "__main__":
    main()
