"""Rewrite rules and Markov programs: the ground truth every example's answer comes from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """`pattern → replacement`, applied once at the leftmost occurrence of `pattern`."""

    pattern: str
    replacement: str
    terminating: bool = False

    def apply(self, text: str) -> str:
        return apply_once(self.pattern, self.replacement, text)


def apply_once(pattern: str, replacement: str, text: str) -> str:
    """Replace the leftmost occurrence of `pattern` in `text` by `replacement`; no-op if absent.

    An empty pattern occurs at position 0, so the replacement is prepended (the classic Markov convention).
    """
    i = text.find(pattern)
    if i < 0:
        return text
    return text[:i] + replacement + text[i + len(pattern) :]


def count_occurrences(pattern: str, text: str) -> int:
    """Number of (possibly overlapping) occurrences of a non-empty `pattern` in `text`."""
    if not pattern:
        raise ValueError("count_occurrences needs a non-empty pattern")
    count, i = 0, text.find(pattern)
    while i >= 0:
        count += 1
        i = text.find(pattern, i + 1)
    return count
