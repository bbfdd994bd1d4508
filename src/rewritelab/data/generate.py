"""`DatasetSpec` → `Dataset` (train / test_seen / test_unseen) → JSONL files, and back.

The rule pool is split by construction: the held-out rules (test_unseen) are sampled first and their
patterns are excluded when the training rules are sampled; the disjointness is then verified and recorded
in the manifest. Every answer comes from the reference rewriter `rules.apply_once`.

Generation is vectorised so that the paper's 10^6 training examples take seconds: strings are built as
rectangular `uint8` arrays of alphabet indices, grouped by (input length, pattern length); the pattern is
written at random non-overlapping positions of a random fill; every window is compared with the pattern
to count overlapping matches, and accidental extra matches are repaired by redrawing the fill characters
under them (rows that cannot be repaired are redrawn from scratch with a fresh length). Rows become `str`
through a UCS-4 string view of a code-point array, never a per-character join.

Randomness: one master `seed`; `numpy.random.SeedSequence(seed).spawn` gives independent streams for the
held-out rules, training rules, training counts, training inputs, test_seen and test_unseen, so e.g. the
test_unseen split does not change when only `num_rules` changes.
"""

from __future__ import annotations

import hashlib
import json
import math
import string
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rewritelab import __version__
from rewritelab.config import FieldError, from_dict, to_dict
from rewritelab.data.families import Context, Family, IntRange, RandomFamily
from rewritelab.data.rules import apply_once
from rewritelab.errors import UserError
from rewritelab.io import atomic_dir

SPLITS = ("train", "test_seen", "test_unseen")
COLUMNS = (
    "rule_id", "pattern", "replacement", "input", "output",
    "noop", "occurrences", "family", "k", "train_count",
)  # fmt: skip
RULE_COLUMNS = ("rule_id", "split", "pattern", "replacement", "family", "k", "train_count")
DATA_FILES = (*(f"{name}.jsonl" for name in SPLITS), "rules.jsonl")
_STREAMS = ("heldout_rules", "train_rules", "train_counts", "train_inputs", "test_seen", "test_unseen")
_MAX_ALPHABET = 256  # strings are built as uint8 index arrays

_MAX_RULE_ROUNDS = 24  # rule sampling: draw rounds before giving up on finding enough distinct rules
_MAX_RULE_BATCH = 1 << 20
_INPUT_ROUNDS = 64  # input generation: fresh redraws (new length, positions, fill) of a failed row
_REPAIR_ROUNDS = 32  # local redraws of the fill under accidental matches, per fresh draw
_FILL_CHUNK = 1 << 13  # rows processed at once: keeps the working arrays in cache
_WRITE_CHUNK = 1 << 16  # JSONL lines joined per write


# ---------------------------------------------------------------------------------------------------------
# The spec


@dataclass(frozen=True)
class Occurrences:
    """How many times the pattern occurs in an applied input: `3`, `[1, 5, 10]` or `{counts, weights}`."""

    counts: tuple[int, ...] = (1,)
    weights: tuple[float, ...] | None = None  # None: uniform over counts

    def __post_init__(self) -> None:  # Python-side construction; configs get `from_config`'s messages
        if not self.counts or min(self.counts) < 1:
            raise ValueError(f"Occurrences: counts must be >= 1, got {self.counts}")
        if self.weights is not None and len(self.weights) != len(self.counts):
            raise ValueError("Occurrences: one weight per count")

    @classmethod
    def from_config(cls, value: Any, where: str) -> Occurrences:
        if isinstance(value, Occurrences):
            return value
        weights = None
        if isinstance(value, dict):
            unknown = set(value) - {"counts", "weights"}
            if unknown:
                raise UserError(f"{where}: unknown key {sorted(unknown)[0]!r} (known keys: counts, weights)")
            if "counts" not in value:
                raise UserError(f"{where}.counts: required, e.g. {{counts: [1, 5, 10], weights: [1, 1, 1]}}")
            counts = _int_list(value["counts"], f"{where}.counts")
            if value.get("weights") is not None:
                weights = _weights(value["weights"], len(counts), f"{where}.weights")
        else:
            counts = _int_list(value, where)
        if len(set(counts)) != len(counts):
            raise UserError(
                f"{where}: counts must be distinct, got {list(counts)}; use weights to favour one"
            )
        if min(counts) < 1:
            raise UserError(f"{where}: counts must be >= 1 (no-ops are set by noop_frac), got {list(counts)}")
        return cls(counts, weights)

    def to_config(self) -> int | list[int] | dict[str, list]:
        if self.weights is not None:
            return {"counts": list(self.counts), "weights": list(self.weights)}
        return self.counts[0] if len(self.counts) == 1 else list(self.counts)

    @property
    def max(self) -> int:
        return max(self.counts)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        counts = np.array(self.counts, dtype=np.int64)
        if len(counts) == 1:
            return np.full(n, counts[0], dtype=np.int64)
        p = None if self.weights is None else np.array(self.weights) / sum(self.weights)
        return rng.choice(counts, size=n, p=p)


def _int_list(value: Any, where: str) -> tuple[int, ...]:
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items or not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        raise UserError(f"{where}: expected an integer or a non-empty list of integers, got {value!r}")
    return tuple(items)


def _weights(value: Any, n: int, where: str) -> tuple[float, ...]:
    ok = isinstance(value, (list, tuple)) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in value
    )
    if not ok or len(value) != n:
        raise UserError(f"{where}: expected {n} positive numbers (one per count), got {value!r}")
    return tuple(float(v) for v in value)


@dataclass(frozen=True)
class DatasetSpec:
    """Every knob of a dataset (the `data:` config section). Defaults: the paper's main setting."""

    alphabet: str = string.ascii_lowercase
    input_len: IntRange = IntRange(50, 50)
    pattern_len: IntRange = IntRange(20, 20)
    replacement_len: IntRange = IntRange(1, 20)
    family: Family = field(default_factory=RandomFamily)
    test_family: Family | None = None
    num_rules: int = 1000
    budget: int | None = 1_000_000
    examples_per_rule: int | None = None
    noop_frac: float = 0.0
    rule_distribution: Literal["uniform", "powerlaw"] = "uniform"
    alpha: float = 1.0
    occurrences: Occurrences = Occurrences()
    test_occurrences: Occurrences | None = None
    test_rules: int = 100
    test_examples_per_rule: int = 10
    seed: int = 0

    @property
    def train_examples(self) -> int:
        """The training budget I × S."""
        return self.budget if self.budget is not None else self.num_rules * (self.examples_per_rule or 0)

    @property
    def heldout_family(self) -> Family:
        return self.test_family if self.test_family is not None else self.family

    @property
    def test_occurrence_counts(self) -> Occurrences:
        return self.test_occurrences if self.test_occurrences is not None else self.occurrences

    def context(self) -> Context:
        return Context(len(self.alphabet), self.pattern_len)

    def validate(self) -> None:
        """Reject every request that cannot be generated, naming the field and the fix."""
        _check_alphabet(self.alphabet)
        for name in ("family", "test_family"):  # already checked when parsed; not when built in Python
            family = getattr(self, name)
            try:
                if family is not None:
                    family.validate()
            except FieldError as e:
                raise FieldError(f"{name}.{e.field}", e.message) from None
        self._check_sizes()
        self._check_budget()
        if not 0.0 <= self.noop_frac < 1.0:
            raise FieldError("noop_frac", f"must be in [0, 1) (a share of examples), got {self.noop_frac}")
        if not (math.isfinite(self.alpha) and self.alpha > 0):
            raise FieldError("alpha", f"must be > 0 (smaller = more skewed), got {self.alpha}")
        self._check_fit()
        self._check_capacity()

    def _check_sizes(self) -> None:
        for name in ("input_len", "pattern_len"):
            if getattr(self, name).lo < 1:
                raise FieldError(name, f"lengths must be >= 1, got {getattr(self, name).to_config()}")
        if self.replacement_len.lo < 0:
            raise FieldError(
                "replacement_len", f"lengths must be >= 0, got {self.replacement_len.to_config()}"
            )
        for name in ("num_rules", "test_rules", "test_examples_per_rule"):
            if getattr(self, name) < 1:
                raise FieldError(name, f"must be >= 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise FieldError("seed", f"must be >= 0, got {self.seed}")

    def _check_budget(self) -> None:
        if (self.budget is None) == (self.examples_per_rule is None):
            both = self.budget is not None
            raise FieldError(
                "budget" if not both else "examples_per_rule",
                "set exactly one of budget (total training examples) and examples_per_rule"
                + ("; add `budget: null` to use examples_per_rule" if both else ""),
            )
        if self.examples_per_rule is not None and self.examples_per_rule < 1:
            raise FieldError("examples_per_rule", f"must be >= 1, got {self.examples_per_rule}")
        if self.budget is not None and self.budget < self.num_rules:
            raise FieldError(
                "budget",
                f"{self.budget} examples cannot cover {self.num_rules} rules; raise budget to >= num_rules",
            )

    def _check_fit(self) -> None:
        """Every pattern, repeated its largest occurrence count, must fit in the shortest input."""
        ctx, shortest = self.context(), self.input_len.lo
        train_len = self.family.length_range(ctx).hi
        test_len = max(train_len, self.heldout_family.length_range(ctx).hi)
        for family_field, family, longest in (
            ("family", self.family, train_len),
            ("test_family", self.heldout_family, test_len),
        ):
            if longest > shortest:
                name = "pattern_len" if isinstance(family, RandomFamily) else family_field
                raise FieldError(
                    name,
                    f"patterns of up to {longest} characters do not fit in inputs as short as {shortest}; "
                    "shorten the patterns or lengthen input_len",
                )
        test_field = "test_occurrences" if self.test_occurrences is not None else "occurrences"
        for name, occ, longest in (
            ("occurrences", self.occurrences, train_len),
            (test_field, self.test_occurrence_counts, test_len),
        ):
            if occ.max * longest > shortest:
                raise FieldError(
                    name,
                    f"{occ.max} non-overlapping copies of a pattern of up to {longest} characters need "
                    f"{occ.max * longest} characters, but inputs can be as short as {shortest}; "
                    "lower the counts, shorten the patterns or lengthen input_len",
                )

    def _check_capacity(self) -> None:
        ctx = self.context()
        replacements = replacement_count(len(self.alphabet), self.replacement_len)
        heldout = self.heldout_family.capacity(ctx) * replacements
        if self.test_rules > heldout:
            raise FieldError(
                "test_rules",
                f"the {self.heldout_family.describe()} family allows at most {heldout} distinct rules with "
                "this alphabet and these lengths; lower test_rules or allow longer patterns/replacements",
            )
        patterns = self.family.capacity(ctx)
        if self.heldout_family == self.family:  # held-out rules use up at least ceil(T / R) patterns
            patterns -= -(-self.test_rules // replacements)
        if self.num_rules > patterns * replacements:
            raise FieldError(
                "num_rules",
                f"the {self.family.describe()} family allows at most {max(patterns, 0) * replacements} "
                f"distinct training rules besides the {self.test_rules} held-out ones with this alphabet and "
                "these lengths; lower num_rules or test_rules, or allow longer patterns/replacements",
            )


def _check_alphabet(alphabet: str) -> None:
    if len(alphabet) < 2:
        raise FieldError("alphabet", f"needs at least 2 distinct characters, got {alphabet!r}")
    if len(alphabet) > _MAX_ALPHABET:
        raise FieldError("alphabet", f"at most {_MAX_ALPHABET} characters are supported, got {len(alphabet)}")
    repeated = sorted({ch for ch in alphabet if alphabet.count(ch) > 1})
    if repeated:
        raise FieldError(
            "alphabet", f"characters must be distinct; {''.join(repeated)!r} occur more than once"
        )
    bad = [ch for ch in alphabet if ch.isspace() or not ch.isprintable()]
    if bad:
        raise FieldError(
            "alphabet", f"{bad[0]!r} is whitespace, a control or a non-printable character; use visible ones"
        )


def replacement_count(alphabet_size: int, lengths: IntRange) -> int:
    """Distinct replacement strings with a length in `lengths`."""
    return sum(alphabet_size**length for length in lengths.values())


# ---------------------------------------------------------------------------------------------------------
# Columnar tables


class _Columns:
    """Shared behaviour of column-oriented tables: numpy arrays and lists of equal length."""

    columns: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(getattr(self, self.columns[0]))

    def rows(self) -> Iterator[dict[str, Any]]:
        """One JSON-ready dict per row (Python ints and bools), keys in column order."""
        values = [_as_list(getattr(self, name)) for name in self.columns]
        for row in zip(*values, strict=True):
            yield dict(zip(self.columns, row, strict=True))

    def subset(self, indices: Sequence[int] | np.ndarray):
        """A new table with the rows at `indices` (in that order)."""
        idx = np.asarray(indices, dtype=np.int64)
        return type(self)(**{name: _take(getattr(self, name), idx) for name in self.columns})

    def to_lists(self) -> dict[str, list]:
        return {name: _as_list(getattr(self, name)) for name in self.columns}


def _as_list(column: Any) -> list:
    return column.tolist() if isinstance(column, np.ndarray) else list(column)


def _take(column: Any, idx: np.ndarray) -> Any:
    if isinstance(column, np.ndarray):
        return column[idx]
    return np.array(column, dtype=object)[idx].tolist() if len(idx) else []


@dataclass(frozen=True, eq=False)
class Split(_Columns):
    """One split, column-oriented (see docs/architecture.md): example i is the i-th entry of each column."""

    rule_id: np.ndarray  # int64
    pattern: list[str]
    replacement: list[str]
    input: list[str]
    output: list[str]
    noop: np.ndarray  # bool
    occurrences: np.ndarray  # int64, overlapping matches of the pattern in the input
    family: list[str]
    k: np.ndarray  # int64
    train_count: np.ndarray  # int64

    columns = COLUMNS


@dataclass(frozen=True, eq=False)
class RuleTable(_Columns):
    """Every rule of a dataset: the training rules (`split == "train"`) then the held-out ones."""

    rule_id: np.ndarray
    split: list[str]  # "train" or "heldout"
    pattern: list[str]
    replacement: list[str]
    family: list[str]
    k: np.ndarray
    train_count: np.ndarray

    columns = RULE_COLUMNS


@dataclass(frozen=True, eq=False)
class Dataset:
    """A generated (or loaded) dataset: the spec, the three splits, the manifest and the rule table."""

    spec: DatasetSpec
    splits: dict[str, Split]
    manifest: dict[str, Any]
    rules: RuleTable


# ---------------------------------------------------------------------------------------------------------
# Alphabet codec: rectangular index arrays <-> Python strings


class _Codec:
    """Maps alphabet indices (uint8) to strings and back through UCS-4 views of numpy arrays."""

    def __init__(self, alphabet: str):
        self.size = len(alphabet)
        self.points = np.array([ord(ch) for ch in alphabet], dtype=np.uint32)
        order = np.argsort(self.points)
        self._sorted, self._order = self.points[order], order.astype(np.uint8)

    def decode(self, codes: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """Rows of `codes` (truncated to `lengths`) as an object array of `str`."""
        n, width = codes.shape
        if width == 0:
            return np.full(n, "", dtype=object)
        points = self.points[codes]
        if lengths is not None:
            points[np.arange(width) >= lengths[:, None]] = 0  # NUL padding: dropped by numpy's str view
        return points.view(f"U{width}").ravel().astype(object)

    def encode(self, strings: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Strings over the alphabet → (n, max length) indices (padding is index 0) and lengths."""
        lengths = np.fromiter(map(len, strings), dtype=np.int64, count=len(strings))
        width = max(int(lengths.max(initial=0)), 1)
        points = np.array(strings, dtype=f"U{width}").view(np.uint32).reshape(len(strings), width)
        index = np.minimum(np.searchsorted(self._sorted, points), self.size - 1)
        return self._order[index], lengths


def _random_codes(n: int, rng: np.random.Generator, alphabet_size: int, lengths: IntRange):
    return (
        rng.integers(0, alphabet_size, size=(n, lengths.hi), dtype=np.uint8),
        lengths.sample(rng, n),
    )


# ---------------------------------------------------------------------------------------------------------
# Rules


@dataclass(frozen=True, eq=False)
class _RuleSet:
    """Rules being generated, with their patterns as index arrays for input generation."""

    rule_id: np.ndarray
    pattern: list[str]
    replacement: list[str]
    family: list[str]
    k: np.ndarray
    train_count: np.ndarray
    codes: np.ndarray
    lengths: np.ndarray


def _sample_rules(
    family: Family,
    n: int,
    rng: np.random.Generator,
    spec: DatasetSpec,
    codec: _Codec,
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
        cand_r = codec.decode(*_random_codes(batch, rng, codec.size, spec.replacement_len)).tolist()
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


def _rule_set(
    ids: np.ndarray, sampled: tuple[list[str], list[str], list[int], list[str]], counts: np.ndarray, codec
) -> _RuleSet:
    patterns, replacements, ks, families = sampled
    codes, lengths = codec.encode(patterns)
    return _RuleSet(
        ids, patterns, replacements, families, np.array(ks, dtype=np.int64), counts, codes, lengths
    )


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


# ---------------------------------------------------------------------------------------------------------
# Inputs


def _make_inputs(
    rules: _RuleSet,
    ex: np.ndarray,
    counts: np.ndarray,
    input_len: IntRange,
    rng: np.random.Generator,
    codec: _Codec,
    field_name: str,
) -> list[str]:
    """One input per example holding its rule's pattern exactly `counts[i]` times (0: never).

    Each round draws a length for every pending row, groups rows by (input length, pattern length) so
    that a group is one rectangular array, and fills it; rows that fail go to the next round.
    """
    out = np.empty(len(ex), dtype=object)
    pending = np.arange(len(ex))
    for _ in range(_INPUT_ROUNDS):
        if len(pending) == 0:
            return out.tolist()
        lin = input_len.sample(rng, len(pending))
        plen = rules.lengths[ex[pending]]
        key = lin * (int(rules.lengths.max()) + 1) + plen
        order = np.argsort(key, kind="stable")
        failed = []
        for group in np.split(order, np.flatnonzero(np.diff(key[order])) + 1):
            length, p = int(lin[group[0]]), int(plen[group[0]])
            for lo in range(0, len(group), _FILL_CHUNK):
                rows = pending[group[lo : lo + _FILL_CHUNK]]
                fill, ok = _fill_rows(rules.codes[ex[rows], :p], counts[rows], length, rng, codec.size)
                out[rows[ok]] = codec.decode(fill[ok])
                failed.append(rows[~ok])
        pending = np.concatenate(failed)
    row = int(pending[0])
    need = f"exactly {counts[row]} times" if counts[row] else "zero times"
    raise UserError(
        f"data.{field_name}: could not build an input of length {input_len} holding the pattern "
        f"{rules.pattern[ex[row]]!r} {need} (overlapping matches count) in {_INPUT_ROUNDS} attempts; "
        "the request is (nearly) impossible: lengthen input_len or lower the occurrence counts"
    )


def _fill_rows(pattern: np.ndarray, counts: np.ndarray, length: int, rng: np.random.Generator, size: int):
    """Random rows of `length` holding row i's pattern exactly `counts[i]` times; returns (codes, ok)."""
    m, p = pattern.shape
    fill = rng.integers(0, size, size=(m, length), dtype=np.uint8)
    protected = np.zeros((m, length), dtype=bool)
    is_start = np.zeros((m, length - p + 1), dtype=bool)
    if counts.any():
        rows, starts = _placements(counts, p, length, rng)
        cols = starts[:, None] + np.arange(p)
        fill[rows[:, None], cols] = pattern[rows]
        protected[rows[:, None], cols] = True
        is_start[rows, starts] = True
    extra = _matches(fill, pattern) & ~is_start
    bad = np.flatnonzero(extra.any(axis=1))
    for _ in range(_REPAIR_ROUNDS):
        if len(bad) == 0:
            break
        # A match made only of inserted characters cannot be repaired here: the row is redrawn later.
        fixable = ~(extra[bad] & (_window_sums(~protected[bad], p) == 0)).any(axis=1)
        bad = bad[fixable]
        redraw = _covered(extra[bad], p, length) & ~protected[bad]
        sub = fill[bad]
        sub[redraw] = rng.integers(0, size, size=int(redraw.sum()), dtype=np.uint8)
        fill[bad] = sub
        extra[bad] = _matches(sub, pattern[bad]) & ~is_start[bad]
        bad = bad[extra[bad].any(axis=1)]
    return fill, ~extra.any(axis=1)


def _placements(counts: np.ndarray, p: int, length: int, rng: np.random.Generator):
    """Start positions of `counts[i]` non-overlapping copies in row i, as flat (rows, starts).

    Copies are separated by at least one fill character where that fits, so that a match straddling
    two copies (`aa` + `aa`) always has a fill character the repair can redraw.
    """
    c = counts
    gap = ((c >= 2) & (c * p + c - 1 <= length)).astype(np.int64)
    free = length - c * p - np.maximum(c - 1, 0) * gap
    j = np.arange(int(c.max()))
    valid = j < c[:, None]
    offsets = np.sort(np.where(valid, rng.integers(0, free[:, None] + 1, size=valid.shape), length), axis=1)
    starts = offsets + j * (p + gap[:, None])
    rows, cols = np.nonzero(valid)
    return rows, starts[rows, cols]


def _matches(text: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """(m, L − p + 1) bool: does row i's pattern occur at each start position (overlaps included)?"""
    p = pattern.shape[1]
    w = text.shape[1] - p + 1
    found = text[:, :w] == pattern[:, :1]
    same = np.empty_like(found)
    for t in range(1, p):
        np.equal(text[:, t : t + w], pattern[:, t : t + 1], out=same)
        found &= same
    return found


def _window_sums(mask: np.ndarray, p: int) -> np.ndarray:
    """Number of True entries in each length-p window of each row."""
    total = np.zeros((mask.shape[0], mask.shape[1] + 1), dtype=np.int32)
    np.cumsum(mask, axis=1, out=total[:, 1:])
    return total[:, p:] - total[:, : mask.shape[1] - p + 1]


def _covered(starts: np.ndarray, p: int, length: int) -> np.ndarray:
    """(m, length) bool: positions inside a length-p window starting at a True entry of `starts`."""
    w = starts.shape[1]
    total = np.zeros((starts.shape[0], w + 1), dtype=np.int32)
    np.cumsum(starts, axis=1, out=total[:, 1:])
    pos = np.arange(length)
    return (total[:, np.minimum(pos, w - 1) + 1] - total[:, np.maximum(pos - p + 1, 0)]) > 0


def _make_split(
    rules: _RuleSet,
    example_rule: np.ndarray,
    occurrences: Occurrences,
    spec: DatasetSpec,
    rng: np.random.Generator,
    codec: _Codec,
    field_name: str,
) -> Split:
    """Examples of `rules` (example i uses rule `example_rule[i]`), in a seeded random order."""
    n = len(example_rule)
    ex = example_rule[rng.permutation(n)]
    noop = np.zeros(n, dtype=bool)
    noop[rng.permutation(n)[: round(spec.noop_frac * n)]] = True
    counts = np.where(noop, 0, occurrences.sample(rng, n))
    inputs = _make_inputs(rules, ex, counts, spec.input_len, rng, codec, field_name)
    pattern, replacement = _take(rules.pattern, ex), _take(rules.replacement, ex)
    return Split(
        rule_id=rules.rule_id[ex],
        pattern=pattern,
        replacement=replacement,
        input=inputs,
        output=list(map(apply_once, pattern, replacement, inputs)),
        noop=noop,
        occurrences=counts,
        family=_take(rules.family, ex),
        k=rules.k[ex],
        train_count=rules.train_count[ex],
    )


# ---------------------------------------------------------------------------------------------------------
# Generation


def generate_dataset(spec: DatasetSpec) -> Dataset:
    """Sample the rules, the training counts and every split of `spec` (deterministic in `spec.seed`)."""
    try:
        spec.validate()
    except FieldError as e:
        raise UserError(f"data.{e.field}: {e.message}") from None
    seeds = np.random.SeedSequence(spec.seed).spawn(len(_STREAMS))
    rngs = {name: np.random.default_rng(s) for name, s in zip(_STREAMS, seeds, strict=True)}
    codec = _Codec(spec.alphabet)
    num_rules, num_heldout = spec.num_rules, spec.test_rules

    heldout_sample = _sample_rules(
        spec.heldout_family, num_heldout, rngs["heldout_rules"], spec, codec, set(), "test_rules"
    )
    heldout_patterns = set(heldout_sample[0])
    _check_room_for_training(spec, len(heldout_patterns))
    train_sample = _sample_rules(
        spec.family, num_rules, rngs["train_rules"], spec, codec, heldout_patterns, "num_rules"
    )
    counts = training_counts(
        num_rules, spec.train_examples, spec.rule_distribution, spec.alpha, rngs["train_counts"]
    )
    train_rules = _rule_set(np.arange(num_rules, dtype=np.int64), train_sample, counts, codec)
    heldout = _rule_set(
        np.arange(num_rules, num_rules + num_heldout, dtype=np.int64),
        heldout_sample,
        np.zeros(num_heldout, dtype=np.int64),
        codec,
    )
    disjointness = _verify_disjoint(train_rules, heldout)

    per_rule = spec.test_examples_per_rule
    seen_rng = rngs["test_seen"]
    eligible = np.flatnonzero(counts > 0)
    chosen = np.sort(seen_rng.choice(eligible, size=min(num_heldout, len(eligible)), replace=False))
    test_occ = spec.test_occurrence_counts
    test_field = "test_occurrences" if spec.test_occurrences is not None else "occurrences"
    splits = {
        "train": _make_split(
            train_rules, np.repeat(np.arange(num_rules), counts), spec.occurrences, spec,
            rngs["train_inputs"], codec, "occurrences",
        ),
        "test_seen": _make_split(
            train_rules, np.repeat(chosen, per_rule), test_occ, spec, seen_rng, codec, test_field
        ),
        "test_unseen": _make_split(
            heldout, np.repeat(np.arange(num_heldout), per_rule), test_occ, spec, rngs["test_unseen"],
            codec, test_field,
        ),
    }  # fmt: skip
    rules = _rule_table(train_rules, heldout)
    manifest = {
        "rewritelab_version": __version__,
        "spec": to_dict(spec),
        "train_examples": spec.train_examples,
        "examples_per_rule": spec.train_examples / num_rules,
        "splits": {name: _split_summary(split) for name, split in splits.items()},
        "rule_frequency": frequency_table(counts),
        "disjointness": disjointness,
        "seed_streams": list(_STREAMS),
    }
    return Dataset(spec=spec, splits=splits, manifest=manifest, rules=rules)


def _check_room_for_training(spec: DatasetSpec, heldout_patterns: int) -> None:
    """Exact capacity check once the held-out patterns are known (same family for both pools)."""
    if spec.heldout_family != spec.family:
        return
    room = (spec.family.capacity(spec.context()) - heldout_patterns) * replacement_count(
        len(spec.alphabet), spec.replacement_len
    )
    if spec.num_rules > room:
        raise UserError(
            f"data.num_rules: the {spec.test_rules} held-out rules use {heldout_patterns} patterns, which "
            f"leaves room for only {max(room, 0)} distinct training rules; lower num_rules or test_rules, "
            "or allow more patterns (longer pattern_len, a larger alphabet)"
        )


def _verify_disjoint(train: _RuleSet, heldout: _RuleSet) -> dict[str, int]:
    """Recheck what sampling guaranteed: no held-out pattern is a training pattern."""
    train_patterns, heldout_patterns = set(train.pattern), set(heldout.pattern)
    overlap = len(train_patterns & heldout_patterns)
    if overlap:
        raise RuntimeError(f"{overlap} held-out patterns are also training patterns (a generator bug)")
    return {
        "heldout_patterns_in_train": overlap,
        "heldout_rules": len(heldout.pattern),
        "heldout_patterns": len(heldout_patterns),
        "train_rules": len(train.pattern),
        "train_patterns": len(train_patterns),
    }


def _rule_table(train: _RuleSet, heldout: _RuleSet) -> RuleTable:
    return RuleTable(
        rule_id=np.concatenate([train.rule_id, heldout.rule_id]),
        split=["train"] * len(train.pattern) + ["heldout"] * len(heldout.pattern),
        pattern=train.pattern + heldout.pattern,
        replacement=train.replacement + heldout.replacement,
        family=train.family + heldout.family,
        k=np.concatenate([train.k, heldout.k]),
        train_count=np.concatenate([train.train_count, heldout.train_count]),
    )


def _split_summary(split: Split) -> dict[str, int]:
    return {
        "examples": len(split),
        "rules": len(np.unique(split.rule_id)),
        "noops": int(split.noop.sum()),
    }


def frequency_table(counts: np.ndarray) -> dict[str, Any]:
    """Compact summary of training examples per rule: histogram, range, mean, concentration."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    ranked = np.sort(counts)[::-1]
    values, freq = np.unique(counts, return_counts=True)
    if len(values) <= 20:
        histogram, bins = (
            {str(v): int(f) for v, f in zip(values.tolist(), freq.tolist(), strict=True)},
            "exact",
        )
    else:
        histogram, bins = _log2_histogram(counts), "log2"
    return {
        "rules": len(counts),
        "min": int(counts.min()),
        "max": int(counts.max()),
        "mean": round(float(counts.mean()), 6),
        "rules_without_examples": int((counts == 0).sum()),
        "top_1pct_share": _top_share(ranked, 0.01, total),
        "top_10pct_share": _top_share(ranked, 0.10, total),
        "gini": round(gini(counts), 6),
        "histogram": histogram,
        "histogram_bins": bins,
    }


def _top_share(ranked: np.ndarray, fraction: float, total: int) -> float:
    top = max(1, math.ceil(fraction * len(ranked)))
    return round(float(ranked[:top].sum()) / total, 6) if total else 0.0


def _log2_histogram(counts: np.ndarray) -> dict[str, int]:
    """Rules per count bin 0, 1, 2-3, 4-7, ... (keys in increasing order)."""
    bins = np.where(counts > 0, np.floor(np.log2(np.maximum(counts, 1))).astype(np.int64) + 1, 0)
    out = {}
    for b, f in zip(*np.unique(bins, return_counts=True), strict=True):
        lo, hi = (0, 0) if b == 0 else (2 ** (b - 1), 2**b - 1)
        out[str(lo) if lo == hi else f"{lo}-{hi}"] = int(f)
    return out


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of the counts: 0 when every rule has as many examples, → 1 when one has all."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return 0.0
    return float(2 * np.sum(np.arange(1, n + 1) * x) / (n * total) - (n + 1) / n)


def dataset_stats(ds: Dataset) -> str:
    """A short human-readable statistics table of a dataset."""
    header = ("split", "examples", "rules", "no-ops", "input len", "pattern len", "occurrences")
    lines = [header]
    for name, split in ds.splits.items():
        in_len = np.fromiter(map(len, split.input), dtype=np.int64, count=len(split))
        p_len = np.fromiter(map(len, split.pattern), dtype=np.int64, count=len(split))
        lines.append(
            (
                name,
                str(len(split)),
                str(len(np.unique(split.rule_id))),
                f"{int(split.noop.sum())} ({split.noop.mean():.0%})" if len(split) else "0",
                _span(in_len),
                _span(p_len),
                _span(split.occurrences),
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    table = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in lines]
    freq = ds.manifest["rule_frequency"]
    spec = ds.spec
    dist = spec.rule_distribution + (
        f" (alpha={spec.alpha:g})" if spec.rule_distribution == "powerlaw" else ""
    )
    table += [
        f"family: {spec.family.describe()}; held out: {spec.heldout_family.describe()}; "
        f"alphabet: {len(spec.alphabet)} characters; seed {spec.seed}",
        f"training examples per rule ({dist}): min {freq['min']}, max {freq['max']}, mean {freq['mean']:g}; "
        f"top 1% of rules hold {freq['top_1pct_share']:.1%}, top 10% hold {freq['top_10pct_share']:.1%}",
        f"held-out patterns found in training: {ds.manifest['disjointness']['heldout_patterns_in_train']}",
    ]
    return "\n".join(table)


def _span(values: np.ndarray) -> str:
    if len(values) == 0:
        return "-"
    lo, hi = int(values.min()), int(values.max())
    return str(lo) if lo == hi else f"{lo}-{hi}"


# ---------------------------------------------------------------------------------------------------------
# Files


def check_output_dir(out_dir: str | Path) -> None:
    """Refuse to replace a directory that is not a dataset (an existing dataset is regenerated in place)."""
    out = Path(out_dir)
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory; choose another output path")
    if any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise UserError(f"{out}: exists and is not a rewritelab dataset; choose a new directory or remove it")


def require_hf():
    """The Hugging Face `datasets` package, or a `UserError` saying how to install it."""
    try:
        import datasets as hf_datasets
    except ImportError:
        raise UserError(
            "--format hf: the Hugging Face 'datasets' package is not installed; pip install 'rewritelab[hf]'"
        ) from None
    return hf_datasets


def write_dataset(ds: Dataset, out_dir: str | Path, hf: bool = False) -> dict[str, Any]:
    """Write the JSONL splits, rules.jsonl and manifest.json (plus `hf/` if asked) atomically.

    Returns the manifest as written, with the SHA-256 of every data file.
    """
    out = Path(out_dir)
    check_output_dir(out)
    hf_module = require_hf() if hf else None
    escape = _escaper(ds.spec.alphabet)
    with atomic_dir(out) as tmp:
        files = {}
        for name, split in ds.splits.items():
            files[f"{name}.jsonl"] = _write_chunks(tmp / f"{name}.jsonl", _split_chunks(split, escape))
        files["rules.jsonl"] = _write_chunks(tmp / "rules.jsonl", _rule_chunks(ds.rules, escape))
        manifest = {**ds.manifest, "files": files}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", "utf-8")
        if hf_module is not None:
            _write_hf(hf_module, ds, tmp / "hf")
    return manifest


def _escaper(alphabet: str):
    """Strings over an alphabet without `"` or `\\` are already valid JSON string bodies."""
    if '"' not in alphabet and "\\" not in alphabet:
        return lambda column: column
    return lambda column: [json.dumps(s, ensure_ascii=False)[1:-1] for s in column]


def _write_chunks(path: Path, chunks: Iterable[str]) -> dict[str, Any]:
    digest, size, lines = hashlib.sha256(), 0, 0
    with open(path, "wb") as f:
        for chunk in chunks:
            data = chunk.encode("utf-8")
            digest.update(data)
            f.write(data)
            size += len(data)
            lines += chunk.count("\n")
    return {"sha256": digest.hexdigest(), "bytes": size, "lines": lines}


_BOOL = ("false", "true")


def _split_chunks(split: Split, escape) -> Iterator[str]:
    cols = (
        split.rule_id.tolist(), escape(split.pattern), escape(split.replacement), escape(split.input),
        escape(split.output), split.noop.tolist(), split.occurrences.tolist(), split.family,
        split.k.tolist(), split.train_count.tolist(),
    )  # fmt: skip
    for lo in range(0, len(split), _WRITE_CHUNK):
        yield "".join(
            [
                f'{{"rule_id": {i}, "pattern": "{p}", "replacement": "{r}", "input": "{x}", "output": "{y}", '
                f'"noop": {_BOOL[n]}, "occurrences": {o}, "family": "{f}", "k": {k}, "train_count": {c}}}\n'
                for i, p, r, x, y, n, o, f, k, c in zip(
                    *(col[lo : lo + _WRITE_CHUNK] for col in cols), strict=True
                )
            ]
        )


def _rule_chunks(rules: RuleTable, escape) -> Iterator[str]:
    cols = (
        rules.rule_id.tolist(), rules.split, escape(rules.pattern), escape(rules.replacement), rules.family,
        rules.k.tolist(), rules.train_count.tolist(),
    )  # fmt: skip
    for lo in range(0, len(rules), _WRITE_CHUNK):
        yield "".join(
            [
                f'{{"rule_id": {i}, "split": "{s}", "pattern": "{p}", "replacement": "{r}", "family": "{f}", '
                f'"k": {k}, "train_count": {c}}}\n'
                for i, s, p, r, f, k, c in zip(*(col[lo : lo + _WRITE_CHUNK] for col in cols), strict=True)
            ]
        )


def _write_hf(hf_module, ds: Dataset, path: Path) -> None:
    was_enabled = hf_module.is_progress_bar_enabled()
    hf_module.disable_progress_bars()  # keep the CLI's output to the statistics table
    try:
        dataset_dict = hf_module.DatasetDict(
            {name: hf_module.Dataset.from_dict(split.to_lists()) for name, split in ds.splits.items()}
        )
        dataset_dict.save_to_disk(str(path))
    finally:
        if was_enabled:
            hf_module.enable_progress_bars()


def load_dataset(data_dir: str | Path) -> Dataset:
    """Read a written dataset back, verifying every file against the SHA-256 in its manifest."""
    root = Path(data_dir)
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        raise UserError(
            f"{root}: not a rewritelab dataset (no manifest.json); create one with "
            f"`rewritelab generate CONFIG.yaml --out {root}`"
        )
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
        files = manifest["files"]
        spec_data = manifest["spec"]
    except (ValueError, KeyError, TypeError):
        raise UserError(
            f"{manifest_path}: damaged (not a dataset manifest); regenerate the dataset"
        ) from None
    tables = {}
    for name in DATA_FILES:
        tables[name] = _read_jsonl(root / name, files.get(name, {}).get("sha256"))
    spec = from_dict(DatasetSpec, spec_data, f"{manifest_path}: data")
    splits = {
        name: _columns_from_rows(Split, tables[f"{name}.jsonl"], root / f"{name}.jsonl") for name in SPLITS
    }
    rules = _columns_from_rows(RuleTable, tables["rules.jsonl"], root / "rules.jsonl")
    return Dataset(spec=spec, splits=splits, manifest=manifest, rules=rules)


def _read_jsonl(path: Path, sha256: str | None) -> list[dict[str, Any]]:
    if not path.is_file():
        raise UserError(f"{path}: missing from the dataset directory; regenerate the dataset")
    data = path.read_bytes()
    if sha256 is None or hashlib.sha256(data).hexdigest() != sha256:
        raise UserError(
            f"{path}: SHA-256 does not match manifest.json (modified or truncated); regenerate the dataset"
        )
    try:
        lines = data.decode("utf-8").splitlines()
        return json.loads("[" + ",".join(lines) + "]")
    except ValueError:
        raise UserError(f"{path}: damaged (not one JSON object per line); regenerate the dataset") from None


_INT_COLUMNS = {"rule_id", "occurrences", "k", "train_count"}


def _columns_from_rows(cls, rows: list[dict[str, Any]], path: Path):
    try:
        values = {name: [row[name] for row in rows] for name in cls.columns}
    except (KeyError, TypeError):
        raise UserError(f"{path}: damaged (a row lacks a column of {', '.join(cls.columns)})") from None
    for name in cls.columns:
        if name in _INT_COLUMNS:
            values[name] = np.array(values[name], dtype=np.int64)
        elif name == "noop":
            values[name] = np.array(values[name], dtype=bool)
    return cls(**values)
