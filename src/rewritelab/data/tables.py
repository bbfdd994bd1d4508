"""Column-oriented tables: a `Split` of examples, the `RuleTable`, and the `Dataset` that holds them.

Example i of a split is the i-th entry of each column (numpy arrays and lists of equal length); see
docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewritelab.data.rules import MarkovProgram, Rule
from rewritelab.data.spec import DatasetSpec

COLUMNS = (
    "rule_id", "pattern", "replacement", "input", "output",
    "noop", "occurrences", "family", "k", "train_count",
)  # fmt: skip
RULE_COLUMNS = ("rule_id", "split", "pattern", "replacement", "family", "k", "train_count")
# Program datasets: held-out programs (test_unseen), programs whose rule patterns never occur in training
# (test_unseen_strict), and held-out programs on longer executions or longer inputs (the OOD splits).
PROGRAM_COLUMNS = ("rule_id", "program", "input", "output", "trace", "steps", "k", "family", "train_count")
PROGRAM_TABLE_COLUMNS = ("rule_id", "split", "program", "k", "family", "train_count")


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
        return type(self)(**{name: take(getattr(self, name), idx) for name in self.columns})

    def to_lists(self) -> dict[str, list]:
        return {name: _as_list(getattr(self, name)) for name in self.columns}


def _as_list(column: Any) -> list:
    return column.tolist() if isinstance(column, np.ndarray) else list(column)


def take(column: Any, idx: np.ndarray) -> Any:
    if isinstance(column, np.ndarray):
        return column[idx]
    return [column[i] for i in idx.tolist()]  # not via numpy: rows may be lists (programs, traces)


def program_rows(program: MarkovProgram) -> list[dict[str, Any]]:
    """A program as JSON: its rules in order, as `{pattern, replacement, terminating}`."""
    return [
        {"pattern": r.pattern, "replacement": r.replacement, "terminating": r.terminating}
        for r in program.rules
    ]


def program_from_rows(rows: list[dict[str, Any]]) -> MarkovProgram:
    return MarkovProgram([Rule(r["pattern"], r["replacement"], bool(r["terminating"])) for r in rows])


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
    """Every rule of a dataset: the training rules (`split == "train"`), the held-out ones (`heldout`,
    test_unseen's), then the validation ones (`validation`)."""

    rule_id: np.ndarray
    split: list[str]  # "train", "heldout" or "validation"
    pattern: list[str]
    replacement: list[str]
    family: list[str]
    k: np.ndarray
    train_count: np.ndarray

    columns = RULE_COLUMNS


class _ProgramColumns(_Columns):
    """Tables with a `program` column: rows write each program as a list of rule objects."""

    def rows(self) -> Iterator[dict[str, Any]]:
        for row in super().rows():
            yield {**row, "program": program_rows(row["program"])}

    def to_lists(self) -> dict[str, list]:
        lists = super().to_lists()
        return {**lists, "program": [program_rows(p) for p in lists["program"]]}


@dataclass(frozen=True, eq=False)
class ProgramSplit(_ProgramColumns):
    """One split of a program dataset: example i runs `program[i]` on `input[i]`.

    `trace[i]` holds every intermediate string (`steps[i]` of them, the last equal to `output[i]`).
    """

    rule_id: np.ndarray  # int64: the program's id
    program: list[MarkovProgram]
    input: list[str]
    output: list[str]
    trace: list[list[str]]
    steps: np.ndarray  # int64
    k: np.ndarray  # int64: rules in the program
    family: list[str]  # the pattern family of the program's rules
    train_count: np.ndarray  # int64

    columns = PROGRAM_COLUMNS


@dataclass(frozen=True, eq=False)
class ProgramTable(_ProgramColumns):
    """Every program of a dataset: `split` is train, heldout, strict (the test_unseen_strict pool) or
    validation."""

    rule_id: np.ndarray
    split: list[str]
    program: list[MarkovProgram]
    k: np.ndarray
    family: list[str]
    train_count: np.ndarray

    columns = PROGRAM_TABLE_COLUMNS


@dataclass(frozen=True, eq=False)
class Dataset:
    """A generated (or loaded) dataset: the spec, its splits, the manifest and the rule (program) table."""

    spec: DatasetSpec
    splits: dict[str, Split | ProgramSplit]
    manifest: dict[str, Any]
    rules: RuleTable | ProgramTable
