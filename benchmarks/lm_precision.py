"""E6's LoRA step with the frozen base in fp32 vs bf16, side by side: time per step, the ratio, and how far
the numerics drift (the loss step by step, then test loss and accuracy) — what `dtype: auto` trades.

Both contenders are e6-cpu's first run as the `lm:` run kind builds it (`LM.build`: the built-in
SmolLM2-135M-Instruct read from its cached de-quantized copy, `rewritelab.lm.dequant`; LoRA rank 16 on
peft's default modules; e6-cpu's batch of 8), one with `train.dtype` float32 and one bfloat16 (the base in
bf16 under bf16 autocast, the adapter and AdamW in fp32). The same adapter init (up to bf16 rounding: peft
draws it in the base's dtype), the same batches, AdamW at the preset's peak learning rate (no warmup: the
drift shows from the first steps); timed round-robin in one process, so load from other processes hits
both alike. After the timed passes both adapters are scored on
the same test examples: mean cross-entropy per answer token, answer-token accuracy and exact match
(teacher-forced). With `--loading`, the model's load time is compared too: transformers reading the GGUF
file itself (and whether it left any layer packed, i.e. not a plain `nn.Linear`) vs the cached float copy.

    .venv/bin/python benchmarks/lm_precision.py --threads 1 --steps 8 --reps 3 --loading   # ~3 min
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \\
        .venv/bin/python benchmarks/lm_precision.py --threads 1 --steps 4 --reps 2   # no native bf16
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn

from _common import set_threads
from rewritelab.data import generate_dataset
from rewritelab.kinds import build_run_config
from rewritelab.lm import LM, lm_train_step, teacher_forced
from rewritelab.lm.encode import answer_logits
from rewritelab.lm.hf import model_source, readable_source, require
from rewritelab.run import autocast_for
from rewritelab.run.device import cpu_bf16_speedup
from rewritelab.sweep import expand, load_sweep
from rewritelab.textfmt import plural
from train_throughput import time_round_robin

DTYPES = ("float32", "bfloat16")
CPU = torch.device("cpu")


def contender(cfg: Any, dataset: Any, dtype: str) -> tuple[Any, Any, Any]:
    """(built run, optimizer, autocast) of the run with its base in `dtype`."""
    cfg = replace(cfg, train=replace(cfg.train, dtype=dtype))
    built = LM.build(cfg, dataset, CPU)
    trainable = [p for p in built.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=cfg.train.lr, betas=(cfg.train.beta1, cfg.train.beta2))
    return built, optimizer, autocast_for(CPU, dtype, frozen_base=True)


@torch.inference_mode()
def scores_on_tests(built: Any, amp: Any, examples: int) -> dict[str, float]:
    """Mean cross-entropy per answer token, answer-token accuracy and exact match on the first `examples`
    of each test split (the same rows for every contender)."""
    nats = hits = tokens = exact = n = 0.0
    for name, enc in built.encoded.items():
        if name == "train" or not len(enc):
            continue
        rows = np.arange(min(examples, len(enc)))
        for chunk in np.array_split(rows, max(1, len(rows) // 8)):
            b = enc.batch(chunk)
            with amp:
                logits = answer_logits(built.model, b).float()
            nats += float(nn.functional.cross_entropy(logits, b.targets, reduction="sum"))
            hits += float((logits.argmax(-1) == b.targets).sum())
            tokens += len(b.targets)
        exact += float(teacher_forced(built.model, enc, rows, CPU, amp).sum())
        n += len(rows)
    return {"loss": nats / tokens, "token accuracy": hits / tokens, "exact match": exact / n}


def loading(cfg: Any) -> None:
    """Seconds to load the base as transformers reads the GGUF file itself and from the cached copy."""
    transformers = require("transformers")
    source, gguf = model_source(cfg.lm)
    copy = readable_source(cfg.lm, transformers)  # made here if missing, so both timings below are reads
    for name, kwargs in (("GGUF file, transformers' own read", {"gguf_file": gguf}), ("cached copy", {})):
        start = time.perf_counter()
        model = transformers.AutoModelForCausalLM.from_pretrained(
            source if kwargs else copy, dtype=torch.bfloat16, **kwargs
        )
        seconds = time.perf_counter() - start
        layers = [m for n, m in model.named_modules() if n.endswith("_proj")]
        packed = sum(type(m) is not nn.Linear for m in layers)
        print(f"  load in bf16, {name}: {seconds:.1f} s; {packed} of {len(layers)} projections packed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="e6-cpu", help="an lm: preset; its first run (default e6-cpu)")
    parser.add_argument("--steps", type=int, default=8, help="training steps per timed pass (default 8)")
    parser.add_argument("--reps", type=int, default=3, help="timed passes per contender (best reported)")
    parser.add_argument("--eval-examples", type=int, default=64, help="per test split (default 64)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1, as a run)")
    parser.add_argument("--loading", action="store_true", help="also time loading the GGUF file vs the copy")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    threads = set_threads(args.threads)
    cfg = build_run_config(expand(load_sweep(args.preset, args.overrides))[0].config)
    dataset = generate_dataset(cfg.data)
    contenders = {dtype: contender(cfg, dataset, dtype) for dtype in DTYPES}
    adapters = [
        [p.detach().clone() for p in built.model.parameters() if p.requires_grad]
        for built, _, _ in contenders.values()
    ]
    pairs = list(zip(*adapters, strict=True))
    rounded = all(torch.equal(a.bfloat16().float(), b) for a, b in pairs)
    init_gap = max(float((a - b).abs().max()) for a, b in pairs)
    train = contenders["float32"][0].encoded["train"]
    rows = np.random.default_rng(0).permutation(len(train))[: args.steps * cfg.train.batch_size]
    batches = list(rows.reshape(args.steps, cfg.train.batch_size))
    losses: dict[str, list[float]] = {dtype: [] for dtype in DTYPES}

    def step_of(dtype: str):
        built, optimizer, amp = contenders[dtype]

        def step(batch: np.ndarray) -> None:
            losses[dtype].append(lm_train_step(built.model, train, batch, cfg.train.grad_accum, CPU, amp))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return step

    results = time_round_robin({dtype: step_of(dtype) for dtype in DTYPES}, batches, args.reps)
    answer_tokens = int((train.lengths[rows] - train.prompt_len[rows]).sum())
    print(
        f"torch {torch.__version__}, transformers {require('transformers').__version__}, "
        f"{plural(threads, 'thread')}; "
        f"cpu_bf16_speedup {cpu_bf16_speedup():.2f}; {args.preset}'s first run: {cfg.lm.model}, "
        f"LoRA rank {cfg.lm.lora.rank}, {plural(args.steps, 'step')} of {cfg.train.batch_size} examples "
        f"({int(train.lengths[rows].sum()) / len(rows):.0f} tokens each, {answer_tokens} answer tokens)"
    )
    print(
        f"adapter init: max |bf16 - fp32| {init_gap:.2e}"
        + (
            " (peft draws it in the base's dtype: the fp32 init rounded to bf16)"
            if rounded and init_gap
            else ""
        )
    )
    for dtype, (best, median) in results.items():
        print(f"  {dtype:9} base: {best / args.steps:6.3f} s/step (median {median / args.steps:.3f})")
    print(f"bf16 / fp32 speed-up: {results['float32'][0] / results['bfloat16'][0]:.2f}x")
    drift = np.abs(np.subtract(losses["bfloat16"], losses["float32"]))
    print(
        f"training loss, same batches ({len(drift)} steps): first step fp32 {losses['float32'][0]:.4f}, "
        f"bf16 {losses['bfloat16'][0]:.4f}; last fp32 {losses['float32'][-1]:.4f}, bf16 "
        f"{losses['bfloat16'][-1]:.4f}; |difference| max {drift.max():.4f}, mean {drift.mean():.4f}"
    )
    scores = {
        dtype: scores_on_tests(built, amp, args.eval_examples)
        for dtype, (built, _, amp) in contenders.items()
    }
    for metric in scores["float32"]:
        fp32, bf16 = scores["float32"][metric], scores["bfloat16"][metric]
        print(f"  test {metric:14}: fp32 {fp32:.4f}, bf16 {bf16:.4f} (bf16 - fp32 {bf16 - fp32:+.4f})")
    if args.loading:
        loading(cfg)


if __name__ == "__main__":
    main()
