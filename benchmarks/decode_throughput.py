"""Exact-match evaluation by greedy decoding: our batched KV-cache `GPT.generate` vs HF `generate`.

Our model (default `cpu-small`) is trained in-process, then copied into a Hugging Face `GPT2LMHeadModel`;
both decode the same 2,000 test prompts greedily with their KV caches, in the same length-sorted batches
(HF gets them left-padded with an attention mask, as it requires). Predictions are compared token for
token. Decoders:

  ours          `GPT.generate(prompts, ...)`: plain batched greedy decoding
  ours, drafts  `GPT.generate(prompts, ..., drafts=answers)`: the reference answers are verified in the
                prefill and decoding resumes at the first disagreement (same output, fewer steps when the
                model is right); what an evaluator that knows the answers can use
  ours, evaluator  `rewritelab.run.score_split`, what `rewritelab evaluate` runs: one teacher-forced
                pass marks every answer greedy decoding would reproduce (an exact test, not an
                approximation), then only the misses are decoded for their predictions
  HF generate   `do_sample=False, num_beams=1, use_cache=True`

Two scenarios: a few-rule task the model masters (high accuracy), and the CPU presets' lengths with a
briefly trained model (mostly wrong answers, where drafts cannot help). Timed passes alternate between
the decoders so that load from other processes hits all alike.

    .venv/bin/python benchmarks/decode_throughput.py [--scenarios few-rule cpu-scale] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from _common import few_rule_split, hf_gpt2, rewrite_split, set_threads
from rewritelab.config import from_dict
from rewritelab.model import GPT, ModelConfig
from rewritelab.run import score_split
from rewritelab.tokenizer import EOS_ID, PAD_ID, Encoded, Tokenizer


def train_briefly(model: GPT, enc: Encoded, steps: int, batch_size: int = 64, seed: int = 0) -> float:
    """AdamW on random batches, warmup then linear decay: enough for realistic answers and EOS."""
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    model.train()
    for step in range(steps):
        x, y, mask = enc.batch(rng.integers(0, len(enc), batch_size))
        for group in opt.param_groups:
            group["lr"] = 3e-3 * min(1.0, (step + 1) / 20) * (1 - step / steps)
        loss = model.loss(x, y, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return loss.item()


def hf_generate(hf, prompts: list[list[int]], max_new_tokens: int, batch_size: int) -> list[list[int]]:
    """HF greedy decoding in the same length-sorted batches, left-padded; outputs cut after EOS."""
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[list[int]] = [[] for _ in prompts]
    for lo in range(0, len(order), batch_size):
        rows = order[lo : lo + batch_size]
        width = max(len(prompts[i]) for i in rows)
        ids = torch.full((len(rows), width), PAD_ID, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for r, i in enumerate(rows):
            ids[r, width - len(prompts[i]) :] = torch.tensor(prompts[i])
            attention[r, width - len(prompts[i]) :] = 1
        with torch.inference_mode():
            seqs = hf.generate(
                input_ids=ids, attention_mask=attention, max_new_tokens=max_new_tokens, do_sample=False,
                num_beams=1, eos_token_id=EOS_ID, pad_token_id=PAD_ID, use_cache=True,
            )  # fmt: skip
        for r, i in enumerate(rows):
            new = seqs[r, width:].tolist()
            out[i] = new[: new.index(EOS_ID) + 1] if EOS_ID in new else new
    return out


SCENARIOS = {
    # name: (alphabet, training split, test split, training steps)
    "few-rule": ("abcd", lambda: few_rule_split(20_000, seed=0), lambda n: few_rule_split(n, seed=1), 1000),
    "cpu-scale": (
        "abcdef",
        lambda: rewrite_split("cpu", 20_000, num_rules=50, seed=0),
        lambda n: rewrite_split("cpu", n, num_rules=50, seed=1),
        600,
    ),
}
SCENARIO_NOTES = {
    "few-rule": "three rules over abcd, inputs of 4-7 characters: the model masters it (high accuracy)",
    "cpu-scale": "the CPU presets' lengths, 50 rules, fresh inputs: briefly trained, so mostly wrong",
}


def run_scenario(name: str, args: argparse.Namespace) -> None:
    alphabet, make_train, make_test, steps = SCENARIOS[name]
    tok = Tokenizer(alphabet)
    raw_test = make_test(args.examples)
    train, test = tok.encode_split(make_train()), tok.encode_split(raw_test)
    indices = range(len(test))
    prompts, answers = test.prompts(indices), test.answers(indices)
    max_new = max(len(a) for a in answers)
    # Room for every prompt plus max_new tokens, so neither decoder is cut short by the position table.
    block_size = max(int(train.lengths.max()), max(len(p) for p in prompts) + max_new)
    torch.manual_seed(0)
    model = GPT(from_dict(ModelConfig, {"preset": args.model}, "model"), tok.vocab_size, block_size)
    t0 = time.perf_counter()
    loss = train_briefly(model, train, steps)
    print(f"\n{name}: {SCENARIO_NOTES[name]}")
    print(
        f"  {args.model} ({model.num_params() / 1e6:.2f}M params) trained {steps} steps in "
        f"{time.perf_counter() - t0:.0f} s (final loss {loss:.3f}); {len(prompts)} test prompts of "
        f"{np.mean([len(p) for p in prompts]):.1f} tokens, up to {max_new} new tokens"
    )
    model.eval()
    hf = hf_gpt2(model).eval()

    def scored(outputs: list[list[int]]) -> tuple[np.ndarray, list[str]]:
        correct = np.array([o == a for o, a in zip(outputs, answers, strict=True)])
        return correct, [tok.decode(o) for o in outputs]

    decoders = {  # each gives (exact match per example, predicted answer text per example)
        "ours": lambda: scored(model.generate(prompts, max_new, EOS_ID, batch_size=args.batch_size)),
        "ours, drafts": lambda: scored(
            model.generate(prompts, max_new, EOS_ID, batch_size=args.batch_size, drafts=answers)
        ),
        "ours, evaluator": lambda: score_split(model, tok, raw_test, test),
        "HF generate": lambda: scored(hf_generate(hf, prompts, max_new, args.batch_size)),
    }
    best = dict.fromkeys(decoders, float("inf"))
    outputs = {}
    for _ in range(args.reps):
        for decoder, decode in decoders.items():
            t0 = time.perf_counter()
            outputs[decoder] = decode()
            best[decoder] = min(best[decoder], time.perf_counter() - t0)
    reference = outputs["HF generate"][1]
    header = f"{'decoder':16} {'examples/s':>10} {'seconds':>8} {'exact match':>11} {'same as HF':>10}"
    print(f"  {header} {'vs HF':>6}")
    for decoder, seconds in best.items():
        correct, predictions = outputs[decoder]
        same = np.mean([p == r for p, r in zip(predictions, reference, strict=True)])
        print(
            f"  {decoder:16} {len(prompts) / seconds:10,.0f} {seconds:8.2f} {np.mean(correct):11.1%} "
            f"{same:10.1%} {best['HF generate'] / seconds:5.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--model", default="cpu-small", help="model preset")
    parser.add_argument("--examples", type=int, default=2000, help="test examples to decode")
    parser.add_argument("--batch-size", type=int, default=256, help="rows decoded together (both sides)")
    parser.add_argument("--reps", type=int, default=3, help="timed passes per decoder (best reported)")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all cores)")
    args = parser.parse_args()
    threads = set_threads(args.threads)
    print(f"torch {torch.__version__}, {threads} threads; batches of {args.batch_size} for every decoder")
    print("seconds: best of the timed passes; other processes share this CPU, so compare the ratios")
    for name in args.scenarios:
        run_scenario(name, args)


if __name__ == "__main__":
    main()
