"""Paper scale on a GPU: tokens/s of the `paper` model on paper-scale data, and what E1 would cost.

The `*-paper` presets have never run on a GPU. This trains the paper's GPT (6 × 256, `model.preset:
paper`) for a few minutes on length-grouped batches of paper-scale rewrites (a-z, inputs of 50, patterns
of 20, replacements of 1-20) at the e1-paper preset's batch size, in bf16 autocast and in fp32 side by
side (interleaved timed windows), and projects from the faster of the two:

  hours per E1 point  = the preset's steps per run (epochs × budget / batch_size) / measured steps/s
  hours per E1 sweep  = hours per point × grid points × seeds (runs one after another on this GPU)

    python benchmarks/gpu_paper_scale.py [--seconds 120] [--dtypes bfloat16 float32] [--compile]

On a machine without CUDA it says so and exits with status 2 (`--device cpu` runs it anyway, as a smoke
test of the script: the CPU figures mean nothing for the GPU).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time

import numpy as np
import torch

from _common import rewrite_split
from rewritelab.config import from_dict
from rewritelab.model import GPT, ModelConfig
from rewritelab.sweep import expand, load_sweep
from rewritelab.tokenizer import Tokenizer, length_batches

ALPHABET = "abcdefghijklmnopqrstuvwxyz"


def e1_plan(preset: str) -> tuple[int, int, int]:
    """(batch size, optimizer steps per run, number of runs) of the preset, as `sweep` would run it."""
    runs = expand(load_sweep(preset))
    base = runs[0].config
    train, data = base["train"], base["data"]
    steps = math.ceil(train["epochs"] * data["budget"] / train["batch_size"])
    if train.get("max_steps"):
        steps = min(steps, train["max_steps"])
    return train["batch_size"], steps, len(runs)


def make_batches(batch_size: int, n_batches: int, device: torch.device):
    tok = Tokenizer(ALPHABET)
    enc = tok.encode_split(rewrite_split("paper", batch_size * n_batches, num_rules=1000))
    order = length_batches(enc.lengths, batch_size, np.random.default_rng(0))
    batches = [tuple(t.to(device, non_blocking=True) for t in enc.batch(b)) for b in order]
    return batches, int(enc.lengths.max()), tok.vocab_size


def autocast(device: torch.device, dtype: str):
    if dtype == "bfloat16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_window(model, opt, batches, device, dtype: str, seconds: float) -> tuple[int, int, float]:
    """Train for about `seconds`; return (steps, non-pad input tokens, elapsed seconds)."""
    steps = tokens = 0
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        x, y, mask = batches[steps % len(batches)]
        with autocast(device, dtype):
            loss = model.loss(x, y, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        steps += 1
        tokens += int((x != 0).sum())
        if steps % 20 == 0:
            sync()
    sync()
    return steps, tokens, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="timed training per dtype")
    parser.add_argument("--windows", type=int, default=4, help="interleaved windows the time is cut into")
    dtypes = ["bfloat16", "float32"]
    parser.add_argument("--dtypes", nargs="+", default=dtypes, choices=dtypes)
    parser.add_argument("--preset", default="e1-paper")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model first")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_paper_scale: no CUDA device here (use --device cpu for a smoke test)", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    batch_size, steps_per_run, n_runs = e1_plan(args.preset)
    batches, block, vocab = make_batches(batch_size, 64, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"torch {torch.__version__} on {name}; {args.preset}: batch {batch_size}, "
          f"{steps_per_run:,} steps per run, {n_runs} runs")  # fmt: skip
    results = {}
    contenders = {}
    for dtype in args.dtypes:
        torch.manual_seed(0)
        model = GPT(from_dict(ModelConfig, {"preset": "paper"}, "model"), vocab, block).to(device)
        if args.compile:
            model = torch.compile(model)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=0.01)
        train_window(model, opt, batches, device, dtype, min(10.0, args.seconds / 4))  # warm-up
        contenders[dtype] = (model, opt)
        results[dtype] = [0, 0, 0.0]
    for _ in range(args.windows):
        for dtype, (model, opt) in contenders.items():
            steps, tokens, elapsed = train_window(
                model, opt, batches, device, dtype, args.seconds / args.windows
            )
            for i, v in enumerate((steps, tokens, elapsed)):
                results[dtype][i] += v
    print(f"{'dtype':9} {'steps/s':>8} {'tokens/s':>11} {'h / E1 point':>13} {'h / E1 sweep':>13}")
    for dtype, (steps, tokens, elapsed) in results.items():
        rate = steps / elapsed
        hours = steps_per_run / rate / 3600
        print(f"{dtype:9} {rate:8.2f} {tokens / elapsed:11,.0f} {hours:13.2f} {hours * n_runs:13.1f}")
    if len(results) == 2:
        bf16, fp32 = (results[d][0] / results[d][2] for d in ("bfloat16", "float32"))
        print(f"bf16 / fp32 speed: {bf16 / fp32:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
