"""Value types shared by the families and the spec: `IntRange`, the sampling `Context`, `PatternBatch`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rewritelab.errors import UserError
from rewritelab.textfmt import quoted


@dataclass(frozen=True)
class IntRange:
    """An inclusive integer range, written in YAML as `n` (fixed) or `[min, max]`."""

    lo: int
    hi: int

    @classmethod
    def of(cls, value: int | tuple[int, int] | list[int] | IntRange) -> IntRange:
        """Python-side shorthand: `IntRange.of(3)`, `IntRange.of((2, 4))`."""
        if isinstance(value, IntRange):
            return value
        return cls.from_config(value, "range")

    @classmethod
    def from_config(cls, value: Any, where: str) -> IntRange:
        if _is_int(value):
            return cls(int(value), int(value))
        if isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_int(v) for v in value):
            lo, hi = (int(v) for v in value)
            if lo > hi:
                raise UserError(
                    f"{where}: min {lo} is larger than max {hi}; write [min, max] with min <= max"
                )
            return cls(lo, hi)
        raise UserError(f"{where}: expected an integer or a list [min, max] of integers, got {quoted(value)}")

    def to_config(self) -> int | list[int]:
        return self.lo if self.lo == self.hi else [self.lo, self.hi]

    def __str__(self) -> str:
        return str(self.lo) if self.lo == self.hi else f"{self.lo}-{self.hi}"

    def __len__(self) -> int:
        return self.hi - self.lo + 1

    def values(self) -> range:
        return range(self.lo, self.hi + 1)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """`n` values drawn uniformly from the range (int64)."""
        return rng.integers(self.lo, self.hi + 1, size=n, dtype=np.int64)


def _is_int(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and value.is_integer()
    )


@dataclass(frozen=True)
class Context:
    """What a family needs to know about the dataset: the alphabet size and `random`'s pattern length."""

    alphabet_size: int
    pattern_len: IntRange


@dataclass(frozen=True, eq=False)
class PatternBatch:
    """`n` sampled patterns as alphabet indices: row i is `codes[i, :lengths[i]]` (the rest is padding)."""

    codes: np.ndarray  # (n, width) uint8
    lengths: np.ndarray  # (n,) int64
    k: np.ndarray  # (n,) int64, 0 where the family has no k
    family: list[str]  # the (component) family that sampled each pattern

    def __len__(self) -> int:
        return len(self.lengths)
