"""Tokenizer: layout, vectorised vs one-by-one encoding, batch masks, compactness, length grouping."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rewritelab.data import apply_once
from rewritelab.errors import UserError
from rewritelab.tokenizer import ANS_ID, EOS_ID, PAD_ID, SEP_ID, Tokenizer, length_batches

ALPHABET = "abcd"


@dataclass
class Split:
    """The four columns a `datasets.Split` has, built here so these tests stand alone."""

    pattern: list[str] = field(default_factory=list)
    replacement: list[str] = field(default_factory=list)
    input: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)


def make_split(rows: list[tuple[str, str, str]]) -> Split:
    split = Split()
    for pattern, replacement, text in rows:
        split.pattern.append(pattern)
        split.replacement.append(replacement)
        split.input.append(text)
        split.output.append(apply_once(pattern, replacement, text))
    return split


words = st.text(alphabet=ALPHABET, max_size=8)
rows = st.lists(st.tuples(words, words, words), min_size=1, max_size=12)


def test_vocabulary_and_sequence_layout():
    tok = Tokenizer("abc")
    assert tok.vocab == ["<pad>", "<sep>", "<ans>", "<eos>", "a", "b", "c"]
    assert (PAD_ID, SEP_ID, ANS_ID, EOS_ID) == (0, 1, 2, 3)
    assert tok.vocab_size == 7
    assert tok.encode_prompt("ab", "c", "cab") == [4, 5, 1, 6, 1, 6, 4, 5, 2]
    assert tok.encode_answer("cc") == [6, 6, 3]
    enc = tok.encode_split(make_split([("ab", "c", "cab")]))
    assert enc.tokens.tolist() == [4, 5, 1, 6, 1, 6, 4, 5, 2, 6, 6, 3]
    assert enc.offsets.tolist() == [0, 12]
    assert enc.prompt_len.tolist() == [9]


@settings(max_examples=60, deadline=None)
@given(rows)
def test_split_encoding_matches_one_by_one_and_round_trips(data):
    tok = Tokenizer(ALPHABET)
    split = make_split(data)
    enc = tok.encode_split(split)
    assert len(enc) == len(data)
    for i, (p, r, x) in enumerate(data):
        prompt = tok.encode_prompt(p, r, x)
        answer = tok.encode_answer(split.output[i])
        assert enc.tokens[enc.offsets[i] : enc.offsets[i + 1]].tolist() == prompt + answer
        assert enc.prompts([i]) == [prompt]
        assert enc.answers([i]) == [answer]
        assert tok.decode(answer) == split.output[i]
        assert tok.decode(prompt) == p + r + x  # specials are skipped


def test_encoding_is_compact():
    tok = Tokenizer(ALPHABET)
    split = make_split([("ab", "c", "dabd"), ("", "aa", "b"), ("cc", "", "ccc")])
    enc = tok.encode_split(split)
    assert enc.tokens.dtype == np.uint8
    assert enc.offsets.dtype == np.int64 and enc.prompt_len.dtype == np.int32
    characters = sum(
        len(s) for col in (split.pattern, split.replacement, split.input, split.output) for s in col
    )
    assert enc.tokens.nbytes == characters + 4 * len(split.input)  # one byte per character or special


def test_empty_split_encodes_to_empty_arrays():
    enc = Tokenizer(ALPHABET).encode_split(make_split([]))
    assert len(enc) == 0 and enc.tokens.size == 0 and enc.offsets.tolist() == [0]


def test_large_alphabet_uses_wider_ids_and_round_trips():
    alphabet = "".join(chr(0x100 + i) for i in range(300))  # beyond latin-1 and beyond 256 ids
    tok = Tokenizer(alphabet)
    split = make_split(
        [(alphabet[299] + alphabet[0], alphabet[5], alphabet[:3] + alphabet[299] + alphabet[0])]
    )
    enc = tok.encode_split(split)
    assert enc.tokens.dtype == np.uint16
    assert enc.tokens.max() == 4 + 299
    assert tok.decode(enc.answers([0])[0]) == split.output[0]


@pytest.mark.parametrize(
    ("row", "column", "char"),
    [
        (("ab", "c", "abz"), "input", "z"),
        (("ab", "Q", "ab"), "replacement", "Q"),
        (("a€", "c", "ab"), "pattern", "€"),  # outside latin-1
        (("ab", "c", "a\x01b"), "input", "\x01"),  # a special's stand-in inside the text
    ],
)
def test_unknown_character_is_a_user_error(row, column, char):
    tok = Tokenizer(ALPHABET)
    split = make_split([("ab", "c", "dab"), row])
    with pytest.raises(UserError, match=re.escape(f"example 1 ({column}): character {char!r}")):
        tok.encode_split(split)
    with pytest.raises(UserError, match=column):
        tok.encode_prompt(*row)


@pytest.mark.parametrize("alphabet", ["", "abca", "ab c", "ab\n", "a\x01"])
def test_bad_alphabet_is_a_user_error(alphabet):
    with pytest.raises(UserError, match="alphabet"):
        Tokenizer(alphabet)


def test_decode_stops_at_eos_and_skips_specials():
    tok = Tokenizer(ALPHABET)
    assert tok.decode([4, SEP_ID, 5, PAD_ID, ANS_ID, 6, EOS_ID, 7]) == "abc"
    assert tok.decode(np.array([7, 7])) == "dd"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([4, 99])


@settings(max_examples=40, deadline=None)
@given(rows, st.data())
def test_batch_shapes_padding_and_masks(data, draw):
    tok = Tokenizer(ALPHABET)
    enc = tok.encode_split(make_split(data))
    idx = draw.draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=6))
    x, y, mask = enc.batch(idx)
    _, _, mask_all = enc.batch(idx, loss_on="all")
    lengths = enc.lengths[idx]
    assert x.shape == y.shape == mask.shape == (len(idx), lengths.max() - 1)
    assert x.dtype == y.dtype == torch.int64 and mask.dtype == torch.float32
    for row, i in enumerate(idx):
        seq = enc.tokens[enc.offsets[i] : enc.offsets[i + 1]].tolist()
        n, p = len(seq), int(enc.prompt_len[i])
        assert x[row, : n - 1].tolist() == seq[:-1]
        assert y[row, : n - 1].tolist() == seq[1:]
        assert (x[row, n - 1 :] == PAD_ID).all() and (y[row, n - 1 :] == PAD_ID).all()
        expected = [1.0 if p - 1 <= t < n - 1 else 0.0 for t in range(x.shape[1])]
        assert mask[row].tolist() == expected
        assert mask_all[row].tolist() == [1.0 if t < n - 1 else 0.0 for t in range(x.shape[1])]
        assert y[row][mask[row] > 0].tolist() == enc.answers([i])[0]  # the answer and EOS, nothing else


def test_batch_rejects_bad_arguments():
    enc = Tokenizer(ALPHABET).encode_split(make_split([("a", "b", "a")]))
    with pytest.raises(ValueError, match="loss_on"):
        enc.batch([0], loss_on="prompt")
    with pytest.raises(ValueError, match="non-empty"):
        enc.batch([])


def test_encode_split_columns_must_align():
    split = make_split([("a", "b", "a")])
    split.output.append("b")
    with pytest.raises(UserError, match="columns differ in length"):
        Tokenizer(ALPHABET).encode_split(split)


def test_length_batches_cover_every_example_once_deterministically():
    lengths = np.random.default_rng(0).integers(5, 60, 1000)
    batches = length_batches(lengths, 32, np.random.default_rng(1))
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    assert all(1 <= len(b) <= 32 for b in batches)
    again = length_batches(lengths, 32, np.random.default_rng(1))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    other = length_batches(lengths, 32, np.random.default_rng(2))
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other, strict=True))
    ordered = length_batches(lengths, 32, np.random.default_rng(1), shuffle=False)
    assert np.all(np.diff(lengths[np.concatenate(ordered)]) >= 0)


def sequence_lengths(rng, n, input_len, pattern_len, replacement_len, noop_frac=0.0):
    """Token counts of `pattern SEP replacement SEP input ANS output EOS` under the given length ranges."""
    i = rng.integers(input_len[0], input_len[1] + 1, n)
    p = np.minimum(rng.integers(pattern_len[0], pattern_len[1] + 1, n), i)
    r = rng.integers(replacement_len[0], replacement_len[1] + 1, n)
    output = np.where(rng.random(n) < noop_frac, i, i - p + r)
    return p + r + i + output + 4


def padding_waste(batches, lengths):
    """Share of the computed positions (B × (Tmax − 1) per batch) that are padding."""
    computed = sum(len(b) * (lengths[b].max() - 1) for b in batches)
    return 1 - sum(int((lengths[b] - 1).sum()) for b in batches) / computed


@pytest.mark.parametrize(
    "ranges",
    [
        dict(input_len=(50, 50), pattern_len=(20, 20), replacement_len=(1, 20)),  # paper scale
        dict(input_len=(8, 12), pattern_len=(2, 4), replacement_len=(1, 4)),  # cpu presets
        dict(input_len=(1, 50), pattern_len=(1, 20), replacement_len=(1, 20), noop_frac=0.3),
        dict(input_len=(100, 100), pattern_len=(40, 40), replacement_len=(1, 40)),
    ],
)
@pytest.mark.parametrize("batch_size", [32, 256])
def test_length_batches_waste_under_ten_percent(ranges, batch_size):
    rng = np.random.default_rng(0)
    lengths = sequence_lengths(rng, 50_000, **ranges)
    assert padding_waste(length_batches(lengths, batch_size, rng), lengths) < 0.10


def test_random_batches_would_waste_more():
    """The grouping is what keeps waste low: plain random batches of the widest distribution do not."""
    rng = np.random.default_rng(0)
    lengths = sequence_lengths(rng, 50_000, (1, 50), (1, 20), (1, 20), noop_frac=0.3)
    random_batches = np.array_split(rng.permutation(len(lengths)), len(lengths) // 256)
    assert padding_waste(random_batches, lengths) > 0.25
