"""Data-generation throughput: `generate_dataset` vs a naive one-example-at-a-time Python generator.

Both build training examples at the paper's lengths (alphabet a-z, inputs of 50, patterns of 20,
replacements of 1-20, 1000 rules, the pattern exactly once in every input, output from `apply_once`):

  ours   `rewritelab.data.generate_dataset` for the whole dataset (10^6 training examples plus the
         two small test splits): vectorised numpy, grouped rectangular arrays, repair of extra matches
  naive  a straightforward loop: per example, a `random.choice` fill, the pattern inserted at a random
         position, rejection while the pattern occurs more than once, then `apply_once`; it runs on a
         subsample (default 50 000 examples) and is reported in examples/s

The two are timed alternately (`--repeats` rounds, medians reported) in one process pinned to one core,
so that load from other processes hits both alike. The acceptance criterion is 10^6 examples in <= 20 s.

    .venv/bin/python benchmarks/generate_throughput.py [--examples 1000000] [--naive-examples 50000]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import string
import tempfile
import time
from pathlib import Path

from rewritelab.data import (
    DatasetSpec,
    IntRange,
    apply_once,
    count_occurrences,
    generate_dataset,
    load_dataset,
    write_dataset,
)

ALPHABET = string.ascii_lowercase
INPUT_LEN, PATTERN_LEN, REPLACEMENT_LEN = 50, 20, (1, 20)
NUM_RULES = 1000
TARGET_SECONDS = 20.0


def pin_to_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    return "not pinned (no sched_setaffinity on this platform)"


def paper_spec(examples: int, seed: int) -> DatasetSpec:
    return DatasetSpec(
        alphabet=ALPHABET,
        input_len=IntRange(INPUT_LEN, INPUT_LEN),
        pattern_len=IntRange(PATTERN_LEN, PATTERN_LEN),
        replacement_len=IntRange(*REPLACEMENT_LEN),
        num_rules=NUM_RULES,
        budget=examples,
        seed=seed,
    )


def ours(examples: int, seed: int) -> float:
    """Seconds for `generate_dataset` to build `examples` training examples (plus the test splits)."""
    spec = paper_spec(examples, seed)
    t0 = time.perf_counter()
    dataset = generate_dataset(spec)
    seconds = time.perf_counter() - t0
    assert len(dataset.splits["train"]) == examples
    return seconds


def files(examples: int) -> tuple[float, float, int]:
    """Seconds to write the dataset's JSONL files and to load them back (hashes verified), and bytes."""
    dataset = generate_dataset(paper_spec(examples, seed=0))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        manifest = write_dataset(dataset, Path(tmp) / "data")
        t1 = time.perf_counter()
        load_dataset(Path(tmp) / "data")
        t2 = time.perf_counter()
    return t1 - t0, t2 - t1, sum(f["bytes"] for f in manifest["files"].values())


def naive(examples: int, seed: int) -> float:
    """Seconds for the one-example-at-a-time generator to build `examples` examples."""
    rng = random.Random(seed)

    def word(length: int) -> str:
        return "".join(rng.choice(ALPHABET) for _ in range(length))

    t0 = time.perf_counter()
    rules = [(word(PATTERN_LEN), word(rng.randint(*REPLACEMENT_LEN))) for _ in range(NUM_RULES)]
    rows = []
    for _ in range(examples):
        pattern, replacement = rules[rng.randrange(NUM_RULES)]
        while True:
            fill = word(INPUT_LEN - PATTERN_LEN)
            at = rng.randint(0, len(fill))
            text = fill[:at] + pattern + fill[at:]
            if count_occurrences(pattern, text) == 1:
                break
        rows.append((pattern, replacement, text, apply_once(pattern, replacement, text)))
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=1_000_000, help="training examples for ours")
    parser.add_argument("--naive-examples", type=int, default=50_000, help="examples for the naive loop")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds (medians are reported)")
    args = parser.parse_args()

    print(
        f"generate throughput: {pin_to_one_core()}; paper lengths (input {INPUT_LEN}, pattern {PATTERN_LEN})"
    )
    ours_s, naive_s = [], []
    for r in range(args.repeats):
        ours_s.append(ours(args.examples, seed=r))
        naive_s.append(naive(args.naive_examples, seed=r))
        print(f"  round {r + 1}: ours {ours_s[-1]:.2f} s for {args.examples}, naive {naive_s[-1]:.2f} s for "
              f"{args.naive_examples}")  # fmt: skip
    ours_rate = args.examples / statistics.median(ours_s)
    naive_rate = args.naive_examples / statistics.median(naive_s)
    ours_median, naive_median = statistics.median(ours_s), statistics.median(naive_s)
    print(f"ours : {ours_rate:12,.0f} examples/s  ({ours_median:.2f} s for {args.examples:,})")
    print(f"naive: {naive_rate:12,.0f} examples/s  ({naive_median:.2f} s for {args.naive_examples:,})")
    print(f"ratio: ours is {ours_rate / naive_rate:.1f}x the naive generator")
    per_million = 1e6 / ours_rate
    verdict = "MET" if per_million <= TARGET_SECONDS else "NOT MET"
    print(f"target 10^6 examples in <= {TARGET_SECONDS:.0f} s on one core: {verdict} ({per_million:.2f} s)")
    write_s, load_s, size = files(args.examples)
    print(f"files: write_dataset {write_s:.2f} s, load_dataset {load_s:.2f} s ({size / 1e6:.0f} MB of JSONL)")


if __name__ == "__main__":
    main()
