"""Rewrite rules and Markov programs: the ground truth every example's answer comes from.

A `Rule` rewrites the leftmost occurrence of its pattern once; that single rewrite is the task the models
learn. A `MarkovProgram` applies such rules repeatedly (a Markov algorithm), which makes the same
primitive Turing-complete; `parse_ruleset` reads the classic text format (see docs/markov.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from rewritelab.errors import UserError
from rewritelab.textfmt import quoted

DEFAULT_MAX_STEPS = 10_000
SEPARATOR = " -> "
TERMINATOR = "."


@dataclass(frozen=True)
class Rule:
    """`pattern → replacement`, applied once at the leftmost occurrence of `pattern`."""

    pattern: str
    replacement: str
    terminating: bool = False

    def apply(self, text: str) -> str:
        return apply_once(self.pattern, self.replacement, text)

    def __str__(self) -> str:
        """The rule as one line of the ruleset format (`pattern -> replacement`, `.` if terminating)."""
        return f"{self.pattern}{SEPARATOR}{TERMINATOR if self.terminating else ''}{self.replacement}"


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


class StepLimitError(UserError):
    """A Markov program still had a rule to apply after `max_steps` rewrites (it probably never halts)."""

    def __init__(self, max_steps: int, text: str):
        self.max_steps = max_steps
        self.text = text
        super().__init__(
            f"max_steps: the Markov program did not halt within {max_steps} steps; "
            "raise the limit (--max-steps N) or fix the rules that rewrite forever"
        )


class Step(NamedTuple):
    """One rewrite of a Markov program: `rules[rule_index]` turned the previous string into `text`."""

    step: int
    rule_index: int
    rule: Rule
    text: str


@dataclass(frozen=True)
class MarkovProgram:
    """An ordered list of rules executed as a Markov algorithm.

    Each step applies the first rule (in order) whose pattern occurs, at its leftmost occurrence, once.
    The program halts after a terminating rule fires or when no rule applies.
    """

    rules: Sequence[Rule]

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(self.rules))  # immutable, whatever sequence was given

    def trace(self, text: str, max_steps: int = DEFAULT_MAX_STEPS) -> Iterator[Step]:
        """Yield every rewrite in order; raise `StepLimitError` rather than exceed `max_steps` rewrites.

        A program that halts right after its `max_steps`-th rewrite succeeds.
        """
        if max_steps < 0:
            raise UserError(f"max_steps: must be >= 0, got {max_steps}")
        step = 0
        while True:
            found = self._first_applicable(text)
            if found is None:
                return
            if step == max_steps:
                raise StepLimitError(max_steps, text)
            index, rule = found
            text = rule.apply(text)
            step += 1
            yield Step(step, index, rule, text)
            if rule.terminating:
                return

    def run(self, text: str, max_steps: int = DEFAULT_MAX_STEPS) -> str:
        """The string the program halts with."""
        for step in self.trace(text, max_steps):
            text = step.text
        return text

    def _first_applicable(self, text: str) -> tuple[int, Rule] | None:
        for index, rule in enumerate(self.rules):
            if rule.pattern in text:
                return index, rule
        return None


def _parse_line(line: str) -> Rule | None:
    """One line of a ruleset → a `Rule`, or None for a blank or comment line; ValueError without separator.

    The separator is the first ` -> `; both sides are literal (no stripping). A line ending in ` ->` has
    an empty replacement, so an editor that strips trailing spaces cannot change a rule's meaning.
    """
    if not line.strip() or line.lstrip().startswith("#"):
        return None
    pattern, sep, replacement = line.partition(SEPARATOR)
    if not sep and line.endswith(" ->"):
        pattern, sep, replacement = line[: -len(" ->")], SEPARATOR, ""
    if not sep:
        raise ValueError(f"no {SEPARATOR!r} separator")
    terminating = replacement.startswith(TERMINATOR)
    if terminating:
        replacement = replacement[len(TERMINATOR) :]
    return Rule(pattern, replacement, terminating)


def parse_ruleset(text: str, source: str = "<string>") -> MarkovProgram:
    """Parse the classic ruleset text (one `pattern -> replacement` per line, `#` comments) into a program."""
    rules = []
    for number, line in enumerate(text.split("\n"), start=1):
        try:
            rule = _parse_line(line.removesuffix("\r"))
        except ValueError:
            raise UserError(
                f"{source}, line {number}: expected 'pattern -> replacement' "
                f"(the separator is ' -> ' with one space on each side), got {quoted(line)}"
            ) from None
        if rule is not None:
            rules.append(rule)
    if not rules:
        raise UserError(f"{source}: no rules found; write one 'pattern -> replacement' per line")
    return MarkovProgram(rules)


def load_ruleset(path: str | Path) -> MarkovProgram:
    """Read and parse a UTF-8 ruleset file; a missing, unreadable or non-UTF-8 file is a `UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"rules file not found: {path}; pass the path of a 'pattern -> replacement' file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise UserError(f"{path}: cannot read the rules file ({e.strerror}); check its permissions") from None
    except UnicodeDecodeError as e:
        raise UserError(
            f"{path}: not UTF-8 (invalid byte at offset {e.start}); save the file as UTF-8"
        ) from None
    return parse_ruleset(text, source=str(path))
