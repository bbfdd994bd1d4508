"""Column-oriented tables: a `Split` of examples, the `RuleTable`, and the `Dataset` that holds them.

Example i of a split is the i-th entry of each column (numpy arrays and lists of equal length); see
docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rewritelab.data.spec import DatasetSpec

COLUMNS = (
    "rule_id", "pattern", "replacement", "input", "output",
    "noop", "occurrences", "family", "k", "train_count",
)  # fmt: skip
RULE_COLUMNS = ("rule_id", "split", "pattern", "replacement", "family", "k", "train_count")


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
