"""`apply_once` and `count_occurrences` against independent references, and `Rule` behaviour."""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rewritelab.data import Rule, apply_once, count_occurrences

# A two-letter alphabet makes occurrences, overlaps and near-misses frequent.
small = st.text(alphabet="ab", max_size=12)
short = st.text(alphabet="ab", max_size=4)
nonempty_short = st.text(alphabet="ab", min_size=1, max_size=4)


def leftmost_by_scan(pattern: str, text: str) -> int:
    """First position where every character of `pattern` matches, compared one character at a time."""
    for start in range(len(text) - len(pattern) + 1):
        if all(text[start + k] == pattern[k] for k in range(len(pattern))):
            return start
    return -1


def apply_by_scan(pattern: str, replacement: str, text: str) -> str:
    start = leftmost_by_scan(pattern, text)
    if start < 0:
        return text
    return text[:start] + replacement + text[start + len(pattern) :]


def apply_by_regex(pattern: str, replacement: str, text: str) -> str:
    # A function replacement keeps `\1`-like text in the replacement literal.
    return re.sub(re.escape(pattern), lambda _: replacement, text, count=1)


def count_by_window(pattern: str, text: str) -> int:
    n = len(pattern)
    return sum(text[i : i + n] == pattern for i in range(len(text) - n + 1))


@given(short, short, small)
@example("aa", "x", "aaa")  # overlapping occurrences: only the leftmost is replaced
@example("", "x", "ab")  # the empty pattern occurs at position 0
@example("", "", "")
@example("ab", "ba", "ba")  # absent: a no-op
def test_apply_once_matches_character_scan(pattern, replacement, text):
    assert apply_once(pattern, replacement, text) == apply_by_scan(pattern, replacement, text)


@given(short, st.text(alphabet="ab\\1", max_size=4), small)
@example("a", "\\1\\g<0>", "bab")
def test_apply_once_matches_regex_sub(pattern, replacement, text):
    assert apply_once(pattern, replacement, text) == apply_by_regex(pattern, replacement, text)


@given(short, short, small)
def test_apply_once_changes_length_only_when_the_pattern_occurs(pattern, replacement, text):
    out = apply_once(pattern, replacement, text)
    if pattern in text:
        assert len(out) == len(text) - len(pattern) + len(replacement)
    else:
        assert out == text


@given(short, small)
def test_replacing_a_pattern_by_itself_is_the_identity(pattern, text):
    assert apply_once(pattern, pattern, text) == text


def test_apply_once_examples_from_the_paper():
    assert apply_once("aa", "bac", "caaba") == "cbacba"
    assert apply_once("iss", "art", "mississippi") == "martissippi"
    assert apply_once("aa", "x", "aaa") == "xa"
    assert apply_once("", "x", "ab") == "xab"


@given(nonempty_short, small)
@example("aa", "aaaa")  # three overlapping occurrences
@example("aba", "ababa")
def test_count_occurrences_matches_sliding_window(pattern, text):
    assert count_occurrences(pattern, text) == count_by_window(pattern, text)


def test_count_occurrences_counts_overlaps():
    assert count_occurrences("aa", "aaaa") == 3
    assert count_occurrences("aba", "ababa") == 2
    assert count_occurrences("b", "aaa") == 0


def test_count_occurrences_rejects_the_empty_pattern():
    with pytest.raises(ValueError, match="non-empty"):
        count_occurrences("", "abc")


@given(short, short, small)
def test_rule_apply_is_apply_once(pattern, replacement, text):
    assert Rule(pattern, replacement).apply(text) == apply_once(pattern, replacement, text)


def test_rule_is_an_immutable_hashable_value():
    rule = Rule("ab", "c")
    assert rule.terminating is False
    assert rule == Rule("ab", "c", terminating=False)
    assert rule != Rule("ab", "c", terminating=True)
    assert len({rule, Rule("ab", "c")}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        rule.pattern = "x"  # type: ignore[misc]


def test_rule_str_is_its_ruleset_line():
    assert str(Rule("the shop", "my brother")) == "the shop -> my brother"
    assert str(Rule("S", "shop", terminating=True)) == "S -> .shop"
    assert str(Rule("", "x")) == " -> x"
