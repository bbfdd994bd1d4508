"""Rule sampling and training counts.

`sample_rules` draws distinct (pattern, replacement) rules: the pattern from a family, the replacement
a uniform string; `training_counts` gives each training rule its number of examples (uniform or a power
law), summing exactly to the budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rewritelab.data.codec import Codec
from rewritelab.data.families import Family
from rewritelab.data.ranges import IntRange
from rewritelab.data.spec import DatasetSpec
from rewritelab.errors import UserError

_MAX_RULE_ROUNDS = 24  # rule sampling: draw rounds before giving up on finding enough distinct rules
_MAX_RULE_BATCH = 1 << 20


def random_codes(n: int, rng: np.random.Generator, alphabet_size: int, lengths: IntRange):
    return (
        rng.integers(0, alphabet_size, size=(n, lengths.hi), dtype=np.uint8),
        lengths.sample(rng, n),
    )


@dataclass(frozen=True, eq=False)
class RuleSet:
    """Rules being generated, with their patterns as index arrays for input generation."""

    rule_id: np.ndarray
    pattern: list[str]
    replacement: list[str]
    family: list[str]
    k: np.ndarray
    train_count: np.ndarray
    codes: np.ndarray
    lengths: np.ndarray


def sample_rules(
    family: Family,
    n: int,
    rng: np.random.Generator,
    spec: DatasetSpec,
    codec: Codec,
    exclude: set[str],
    field_name: str,
) -> tuple[list[str], list[str], list[int], list[str]]:
    """`n` distinct (pattern, replacement) rules whose patterns avoid `exclude`, in draw order."""
    ctx = spec.context()
    patterns: list[str] = []
    replacements: list[str] = []
    ks: list[int] = []
    families: list[str] = []
    seen: set[tuple[str, str]] = set()
    drawn = 0
    for attempt in range(_MAX_RULE_ROUNDS):
        missing = n - len(patterns)
        if missing == 0:
            break
        batch = missing if attempt == 0 else min(max(2 * missing, 1024 << attempt), _MAX_RULE_BATCH)
        drawn += batch
        sampled = family.sample(batch, rng, ctx)
        cand_p = codec.decode(sampled.codes, sampled.lengths).tolist()
        cand_r = codec.decode(*random_codes(batch, rng, codec.size, spec.replacement_len)).tolist()
        cand_k = sampled.k.tolist()
        for i, rule in enumerate(zip(cand_p, cand_r, strict=True)):
            if rule in seen or rule[0] in exclude:
                continue
            seen.add(rule)
            patterns.append(rule[0])
            replacements.append(rule[1])
            ks.append(cand_k[i])
            families.append(sampled.family[i])
            if len(patterns) == n:
                break
    if len(patterns) < n:
        raise UserError(
            f"data.{field_name}: found only {len(patterns)} of {n} distinct rules in {drawn} draws from the "
            f"{family.describe()} family (held-out patterns excluded): the family, lengths and alphabet "
            f"allow too few rules; lower {field_name} or allow more patterns (lengths, alphabet, k ranges)"
        )
    return patterns, replacements, ks, families


def training_counts(
    num_rules: int, budget: int, distribution: str, alpha: float, rng: np.random.Generator
) -> np.ndarray:
    """Training examples per rule, summing exactly to `budget`.

    `uniform`: budget // I each, the remainder to the first rules. `powerlaw`: one weight per rule from
    the density α·x^(α−1) on (0, 1) (inverse CDF: x = U^(1/α)), normalised and rounded by largest
    remainder; smaller α gives a more skewed table (rules may get 0 examples).
    """
    if distribution == "uniform":
        counts = np.full(num_rules, budget // num_rules, dtype=np.int64)
        counts[: budget % num_rules] += 1
        return counts
    with np.errstate(divide="ignore"):  # U = 0 gives weight 0
        log_weights = np.log(rng.random(num_rules)) / alpha
    return largest_remainder(np.exp(log_weights - log_weights.max()), budget)  # max weight 1: no underflow


def largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer counts ∝ `weights` summing exactly to `total` (ties go to the lower index)."""
    quotas = weights / weights.sum() * total
    counts = np.floor(quotas).astype(np.int64)
    short = total - int(counts.sum())
    order = np.argsort(-(quotas - counts), kind="stable")
    counts[order[:short]] += 1
    return counts
