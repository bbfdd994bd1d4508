"""Instruction families: sampled patterns checked against an independent, brute-force reconstruction."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewritelab.config import dump_yaml, from_dict
from rewritelab.data import (
    FAMILIES,
    Context,
    Family,
    IntRange,
    MirroredFamily,
    MixedFamily,
    PeriodicFamily,
    RandomFamily,
    RepeatedFamily,
    primitive_words,
)
from rewritelab.errors import UserError

# ---------------------------------------------------------------------------------------------------------
# An independent reference: every pattern a family config allows, by enumeration (itertools, plain str)


def _span(value: Any, default: tuple[int, int]) -> range:
    if value is None:
        lo, hi = default
    elif isinstance(value, int):
        lo = hi = value
    else:
        lo, hi = value
    return range(lo, hi + 1)


def is_primitive(word: str) -> bool:
    """A word is a proper power iff it occurs inside its square other than at 0 and len."""
    return (word + word).find(word, 1) == len(word)


def enumerate_family(cfg: Any, alphabet: str, pattern_len: tuple[int, int]) -> set[str]:
    """All patterns of a family config (the YAML form), built directly from the definitions."""
    name = cfg if isinstance(cfg, str) else cfg["name"]
    cfg = {} if isinstance(cfg, str) else cfg
    if name == "random":
        lo, hi = pattern_len
        return {"".join(w) for n in range(lo, hi + 1) for w in itertools.product(alphabet, repeat=n)}
    if name == "mixed":
        return set().union(*(enumerate_family(c, alphabet, pattern_len) for c in cfg["components"]))
    out = set()
    for b, k in _block_and_k(name, cfg):
        for block in map("".join, itertools.product(alphabet, repeat=b)):
            if name == "repeated" and all(x != y for x, y in itertools.pairwise(block)):
                out.add("".join(ch * k for ch in block))
            elif name == "periodic" and is_primitive(block):
                out.add(block * k)
            elif name == "mirrored" and block != block[::-1]:
                out.add("".join(block if j % 2 == 0 else block[::-1] for j in range(k)))
    return out


def _block_and_k(name: str, cfg: dict) -> list[tuple[int, int]]:
    """(block length, k) pairs of a config: both ranges crossed, or the divisors of `pattern_len`."""
    ks = _span(cfg.get("k"), (3, 4))
    length = cfg.get("pattern_len")
    if length is None:
        return [(b, k) for b in _span(cfg.get("block_len"), (2, 4)) for k in ks]
    min_block = 2 if name == "mirrored" else 1
    return [(length // k, k) for k in ks if length % k == 0 and length // k >= min_block]


def has_structure(name: str, pattern: str, k: int) -> bool:
    """Does `pattern` decompose as the family says, with exactly this k?"""
    if name == "random":
        return k == 0
    if len(pattern) % k:
        return False
    b = len(pattern) // k
    if name == "repeated":
        runs = [len(list(group)) for _, group in itertools.groupby(pattern)]
        return all(r == k for r in runs)
    if name == "periodic":
        block = pattern[:b]
        return pattern == block * k and is_primitive(block)
    if name == "mirrored":
        block = pattern[:b]
        segments = [pattern[j * b : (j + 1) * b] for j in range(k)]
        return block != block[::-1] and all(
            s == (block if j % 2 == 0 else block[::-1]) for j, s in enumerate(segments)
        )
    raise AssertionError(name)


def decode(batch, alphabet: str) -> list[str]:
    return [
        "".join(alphabet[c] for c in row[:n])
        for row, n in zip(batch.codes.tolist(), batch.lengths.tolist(), strict=True)
    ]


def parse(cfg: Any) -> Family:
    return Family.from_config(cfg, "data.family")


# ---------------------------------------------------------------------------------------------------------
# Structure of sampled patterns

small_block = st.tuples(st.integers(1, 3), st.integers(0, 2)).map(lambda t: [t[0], t[0] + t[1]])
block_family = st.builds(
    lambda name, k, b: {
        "name": name,
        "k": k,
        "block_len": [max(b[0], 2), max(b[1], 2)] if name == "mirrored" else b,
    },
    st.sampled_from(["repeated", "periodic", "mirrored"]),
    small_block,
    small_block,
)


@settings(max_examples=60, deadline=None)
@given(
    cfg=block_family,
    alphabet=st.sampled_from(["ab", "abc", "abcdefghijklmnopqrstuvwxyz"]),
    seed=st.integers(0, 2**32),
)
def test_block_families_sample_their_structure(cfg, alphabet, seed):
    family = parse(cfg)
    ctx = Context(len(alphabet), IntRange(1, 1))
    batch = family.sample(300, np.random.default_rng(seed), ctx)
    patterns = decode(batch, alphabet)
    k_lo, k_hi = cfg["k"]
    b_lo, b_hi = cfg["block_len"]
    for pattern, k, name in zip(patterns, batch.k.tolist(), batch.family, strict=True):
        assert name == cfg["name"]
        assert k_lo <= k <= k_hi and b_lo <= len(pattern) // k <= b_hi
        assert has_structure(name, pattern, k), (pattern, k)
    lengths = family.length_range(ctx)
    assert all(lengths.lo <= len(p) <= lengths.hi for p in patterns)


fixed_length_family = st.builds(
    lambda name, k, length: {"name": name, "k": k, "pattern_len": length},
    st.sampled_from(["repeated", "periodic", "mirrored"]),
    st.tuples(st.integers(1, 4), st.integers(0, 12)).map(lambda t: [t[0], t[0] + t[1]]),
    st.integers(4, 12),
).filter(lambda cfg: _block_and_k(cfg["name"], cfg))


@settings(max_examples=60, deadline=None)
@given(
    cfg=fixed_length_family,
    alphabet=st.sampled_from(["ab", "abc", "abcdefghijklmnopqrstuvwxyz"]),
    seed=st.integers(0, 2**32),
)
def test_fixed_length_families_keep_the_length_and_draw_k_from_its_divisors(cfg, alphabet, seed):
    family = parse(cfg)
    batch = family.sample(400, np.random.default_rng(seed), Context(len(alphabet), IntRange(1, 1)))
    allowed = {k for _, k in _block_and_k(cfg["name"], cfg)}
    for pattern, k in zip(decode(batch, alphabet), batch.k.tolist(), strict=True):
        assert len(pattern) == cfg["pattern_len"] and k in allowed
        assert has_structure(cfg["name"], pattern, k), (pattern, k)
    assert family.length_range(Context(2, IntRange(1, 1))) == IntRange(cfg["pattern_len"], cfg["pattern_len"])


def test_fixed_length_k_is_uniform_over_the_divisors():
    """E4's construction: k uniform over the admissible divisors, not weighted by their block counts."""
    family = parse({"name": "periodic", "k": [3, 12], "pattern_len": 12})
    batch = family.sample(20_000, np.random.default_rng(3), Context(26, IntRange(1, 1)))
    shares = Counter(batch.k.tolist())
    assert set(shares) == {3, 4, 6, 12}
    assert all(0.23 < count / 20_000 < 0.27 for count in shares.values())
    mirrored = parse({"name": "mirrored", "k": [3, 12], "pattern_len": 12})
    assert mirrored.k_values() == [3, 4, 6]  # a 1-letter block is its own mirror image


def test_has_structure_rejects_counterexamples():
    """The reference itself can fail: wrong k, equal neighbours, a non-primitive or palindromic block."""
    assert has_structure("repeated", "aaabbbccc", 3) and not has_structure("repeated", "aaabbbccc", 1)
    assert not has_structure("repeated", "aaaaaabbb", 3)  # block `aab` has equal neighbours
    assert has_structure("periodic", "abcabc", 2) and not has_structure("periodic", "abababab", 2)
    assert has_structure("mirrored", "abccbaabc", 3) and not has_structure("mirrored", "abcabcabc", 3)
    assert not has_structure("mirrored", "abaaba", 2)  # palindromic block


def test_random_family_uses_the_dataset_pattern_len():
    ctx = Context(3, IntRange(2, 5))
    batch = RandomFamily().sample(2000, np.random.default_rng(0), ctx)
    assert set(batch.lengths.tolist()) == {2, 3, 4, 5}
    assert (batch.k == 0).all() and set(batch.family) == {"random"}
    assert batch.codes.max() < 3


@pytest.mark.parametrize(
    "cfg",
    [
        "random",
        {"name": "repeated", "k": [1, 3], "block_len": [1, 3]},
        {"name": "periodic", "k": [1, 2], "block_len": [1, 4]},
        {"name": "mirrored", "k": [1, 3], "block_len": [2, 3]},
        {"name": "repeated", "k": [1, 4], "pattern_len": 4},
        {"name": "periodic", "k": [2, 6], "pattern_len": 6},
        {"name": "mirrored", "k": [1, 6], "pattern_len": 6},
    ],
)
@pytest.mark.parametrize("alphabet", ["ab", "abc"])
def test_capacity_matches_enumeration_and_sampling_covers_the_space(cfg, alphabet):
    pattern_len = (1, 4)
    family = parse(cfg)
    ctx = Context(len(alphabet), IntRange(*pattern_len))
    every = enumerate_family(cfg, alphabet, pattern_len)
    if isinstance(family, MirroredFamily):
        assert family.capacity(ctx) >= len(every)  # documented as an upper bound
    else:
        assert family.capacity(ctx) == len(every)
    sampled = set(decode(family.sample(20_000, np.random.default_rng(1), ctx), alphabet))
    assert sampled == every


def test_primitive_word_count():
    for a in (2, 3):
        for n in range(1, 7):
            words = map("".join, itertools.product("abc"[:a], repeat=n))
            assert primitive_words(a, n) == sum(is_primitive(w) for w in words)


# ---------------------------------------------------------------------------------------------------------
# mixed


def test_mixed_respects_components_and_weights():
    cfg = {
        "name": "mixed",
        "components": [
            {"name": "repeated", "weight": 1, "k": [3, 4], "block_len": 2},
            {"name": "periodic", "weight": 3, "k": 2, "block_len": [2, 3]},
        ],
    }
    family = parse(cfg)
    batch = family.sample(4000, np.random.default_rng(7), Context(26, IntRange(20, 20)))
    patterns = decode(batch, "abcdefghijklmnopqrstuvwxyz")
    shares = Counter(batch.family)
    assert set(shares) == {"repeated", "periodic"}
    assert 0.70 < shares["periodic"] / 4000 < 0.80
    for pattern, k, name in zip(patterns, batch.k.tolist(), batch.family, strict=True):
        assert has_structure(name, pattern, k)
        if name == "repeated":
            assert k in (3, 4) and len(pattern) == 2 * k
        else:
            assert k == 2 and len(pattern) in (4, 6)


def test_mixed_capacity_and_lengths_cover_components():
    family = parse({"name": "mixed", "components": ["repeated", {"name": "mirrored", "k": 1}]})
    ctx = Context(3, IntRange(1, 1))
    assert family.capacity(ctx) == RepeatedFamily().capacity(ctx) + MirroredFamily(k=IntRange(1, 1)).capacity(
        ctx
    )
    assert family.length_range(ctx) == IntRange(2, 16)


# ---------------------------------------------------------------------------------------------------------
# Config forms


def test_bare_name_and_mapping_forms():
    assert parse("random") == RandomFamily()
    assert parse("periodic") == PeriodicFamily()
    assert parse({"name": "repeated", "k": 5, "block_len": [1, 2]}) == RepeatedFamily(
        IntRange(5, 5), IntRange(1, 2)
    )
    assert set(FAMILIES) == {"random", "repeated", "periodic", "mirrored", "mixed", "program"}


@pytest.mark.parametrize(
    "family",
    [
        RandomFamily(),
        MirroredFamily(),
        RepeatedFamily(k=IntRange(3, 60)),
        PeriodicFamily(k=IntRange(3, 12), pattern_len=12),
        parse({"name": "mixed", "components": [{"name": "periodic", "weight": 2, "k": [2, 3]}, "mirrored"]}),
    ],
)
def test_to_config_round_trips(family):
    cfg = family.to_config()
    assert parse(cfg) == family
    assert dump_yaml({"family": family})  # plain data YAML can write


def test_defaults_serialise_as_the_bare_name():
    assert RandomFamily().to_config() == "random"
    assert RepeatedFamily().to_config() == "repeated"
    assert RepeatedFamily(k=IntRange(2, 2)).to_config() == {"name": "repeated", "k": 2, "block_len": [2, 4]}
    fixed = MirroredFamily(k=IntRange(2, 2), pattern_len=12)
    assert fixed.to_config() == {"name": "mirrored", "k": 2, "pattern_len": 12}
    assert fixed.describe() == "mirrored(k=2, pattern_len=12)"
    assert RepeatedFamily().describe() == "repeated(k=3-4, block_len=2-4)"


@pytest.mark.parametrize(
    "cfg, where",
    [
        (
            "spiral",
            "data.family: unknown family 'spiral'; registered families: mirrored, mixed, periodic, "
            "program, random",
        ),
        ({"k": 3}, "data.family: a family mapping needs a `name`"),
        ({"name": "repeated", "kk": 3}, "data.family: unknown key 'kk'"),
        ({"name": "random", "k": 3}, "data.family: unknown key 'k'"),
        ({"name": "repeated", "k": [4, 3]}, "data.family.k: min 4 is larger than max 3"),
        ({"name": "repeated", "k": 0}, "data.family.k: must be >= 1"),
        ({"name": "periodic", "block_len": "two"}, "data.family.block_len: expected an integer or a list"),
        ({"name": "mirrored", "block_len": 1}, "data.family.block_len: must be >= 2 for family 'mirrored'"),
        (
            {"name": "periodic", "block_len": 3, "pattern_len": 12},
            "data.family.block_len: set block_len or pattern_len, not both",
        ),
        ({"name": "periodic", "k": 5, "pattern_len": 12}, "data.family.k: no divisor of pattern_len 12 in 5"),
        ({"name": "mirrored", "k": [7, 12], "pattern_len": 12}, "leaves a block of at least 2 characters"),
        ({"name": "repeated", "pattern_len": 0}, "data.family.pattern_len: must be >= 1"),
        ({"name": "mixed"}, "data.family.components: list at least one family"),
        (
            {"name": "mixed", "components": [{"name": "mixed"}]},
            "data.family.components[0]: a mixed family cannot",
        ),
        (
            {"name": "mixed", "components": [{"name": "random", "weight": 0}]},
            "components[0].weight: must be a positive",
        ),
        ({"name": "mixed", "components": [{"name": "bogus"}]}, "components[0]: unknown family 'bogus'"),
        (3, "data.family: expected a family name"),
    ],
)
def test_bad_family_configs_name_the_field(cfg, where):
    with pytest.raises(UserError) as err:
        parse(cfg)
    assert where in str(err.value)
    assert "\n" not in str(err.value)


def test_family_field_parses_through_config_from_dict():
    from dataclasses import dataclass, field

    @dataclass
    class Section:
        family: Family = field(default_factory=RandomFamily)
        other: Family | None = None

    built = from_dict(Section, {"family": {"name": "periodic", "k": 2}, "other": "mirrored"}, "data")
    assert built.family == PeriodicFamily(k=IntRange(2, 2)) and built.other == MirroredFamily()
    assert from_dict(Section, {}, "data").other is None
    assert isinstance(parse({"name": "mixed", "components": ["random"]}), MixedFamily)
