"""Input generation: one input per example, holding its rule's pattern exactly the requested number of times.

Generation is vectorised so that the paper's 10^6 training examples take seconds: strings are built as
rectangular `uint8` arrays of alphabet indices, grouped by (input length, pattern length); the pattern is
written at random non-overlapping positions of a random fill; every window is compared with the pattern
to count overlapping matches, and accidental extra matches are repaired by redrawing the fill characters
under them (rows that cannot be repaired are redrawn from scratch with a fresh length). Every answer
comes from the reference rewriter `rules.apply_once`.
"""

from __future__ import annotations

import numpy as np

from rewritelab.data.codec import Codec
from rewritelab.data.ranges import IntRange
from rewritelab.data.rules import apply_once
from rewritelab.data.sampling import RuleSet
from rewritelab.data.spec import DatasetSpec, Occurrences
from rewritelab.data.tables import Split, take
from rewritelab.errors import UserError

_INPUT_ROUNDS = 64  # input generation: fresh redraws (new length, positions, fill) of a failed row
_REPAIR_ROUNDS = 32  # local redraws of the fill under accidental matches, per fresh draw
_FILL_CHUNK = 1 << 13  # rows processed at once: keeps the working arrays in cache


def _make_inputs(
    rules: RuleSet,
    ex: np.ndarray,
    counts: np.ndarray,
    input_len: IntRange,
    rng: np.random.Generator,
    codec: Codec,
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


def make_split(
    rules: RuleSet,
    example_rule: np.ndarray,
    occurrences: Occurrences,
    spec: DatasetSpec,
    rng: np.random.Generator,
    codec: Codec,
    field_name: str,
) -> Split:
    """Examples of `rules` (example i uses rule `example_rule[i]`), in a seeded random order."""
    n = len(example_rule)
    ex = example_rule[rng.permutation(n)]
    noop = np.zeros(n, dtype=bool)
    noop[rng.permutation(n)[: round(spec.noop_frac * n)]] = True
    counts = np.where(noop, 0, occurrences.sample(rng, n))
    inputs = _make_inputs(rules, ex, counts, spec.input_len, rng, codec, field_name)
    pattern, replacement = take(rules.pattern, ex), take(rules.replacement, ex)
    return Split(
        rule_id=rules.rule_id[ex],
        pattern=pattern,
        replacement=replacement,
        input=inputs,
        output=list(map(apply_once, pattern, replacement, inputs)),
        noop=noop,
        occurrences=counts,
        family=take(rules.family, ex),
        k=rules.k[ex],
        train_count=rules.train_count[ex],
    )
