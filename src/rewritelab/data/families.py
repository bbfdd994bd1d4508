"""Instruction families: registered samplers of rewrite-rule patterns.

A family decides what the *pattern* of a rule looks like (replacements are always uniform strings, drawn
by `sampling`). `random` draws uniform strings; the restricted families of the reference study's E4 build
patterns from a short block and a repetition count `k`:

- `repeated`: every block character repeated k times (`aaabbbccc`: block `abc`, k = 3),
- `periodic`: the block repeated k times (`abcabc`: block `abc`, k = 2),
- `mirrored`: the block and its mirror image alternating, k segments (`abccbaabc`: k = 3),

and `mixed` (module `mixed`) is a weighted mixture of the others. Each family is a dataclass with typed
fields, `validate()` (raising `FieldError`), a vectorised `sample(n, rng, ctx)` that works on integer codes
(indices into the alphabet), `capacity(ctx)` (how many distinct patterns it can produce, used to reject
impossible requests) and `length_range(ctx)`. Adding a family is one class decorated with `@register`.

A block family has two modes. By default the block length is drawn from `block_len` and the pattern has
`block_len × k` characters (lengths vary with k). With `pattern_len: L` (the reference study's E4
construction) every pattern has exactly L characters: k is drawn uniformly from the divisors of L inside the
`k` range and the block has L / k characters, so test rules at a smaller k differ from the training rules in
structure only, never in length.

So that a pattern's `k` is well defined (one pattern, one reading), the restricted families only build
blocks with a unique decomposition: `repeated` blocks have no two equal neighbours (`aab` would read as
k = 6 then 3), `periodic` blocks are primitive (not themselves a power such as `abab`), and `mirrored`
blocks are not palindromes (a palindrome mirrored is just periodic).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from rewritelab.config import FieldError, build_section
from rewritelab.data.ranges import Context, IntRange, PatternBatch
from rewritelab.errors import UserError
from rewritelab.textfmt import quoted

_MAX_RESAMPLE_ROUNDS = 200
FAMILIES: dict[str, type[Family]] = {}


def register(cls: type[Family]) -> type[Family]:
    """Class decorator: make a family available under `cls.name` in configs."""
    if not cls.name or cls.name in FAMILIES:
        raise ValueError(f"family name {cls.name!r} is empty or already registered")
    FAMILIES[cls.name] = cls
    return cls


def _known() -> str:
    return ", ".join(sorted(FAMILIES))


class Family:
    """Base of every family. Config forms: the bare name (`repeated`) or a mapping with `name`."""

    name: ClassVar[str] = ""

    def validate(self) -> None:
        """Check the family's own fields; raise `FieldError(field, message)`."""

    def sample(self, n: int, rng: np.random.Generator, ctx: Context) -> PatternBatch:
        raise NotImplementedError

    def capacity(self, ctx: Context) -> int:
        """Number of distinct patterns the family can produce (an upper bound where noted)."""
        raise NotImplementedError

    def length_range(self, ctx: Context) -> IntRange:
        """Shortest and longest pattern the family can produce."""
        raise NotImplementedError

    def describe(self) -> str:
        """One-line label, e.g. `repeated(k=3-4, block_len=2-4)`."""
        parts = [f"{f.name}={_describe_value(getattr(self, f.name))}" for f in dataclasses.fields(self)]
        return f"{self.name}({', '.join(parts)})" if parts else self.name

    @classmethod
    def from_config(cls, value: Any, where: str) -> Family:
        """`random` | `{name: repeated, k: [3, 4], ...}` → a validated family instance."""
        if isinstance(value, Family):
            return value
        if isinstance(value, str):
            name, fields = value, {}
        elif isinstance(value, dict):
            fields = dict(value)
            name = fields.pop("name", None)
            if name is None:
                raise UserError(f"{where}: a family mapping needs a `name` (one of {_known()})")
        else:
            raise UserError(
                f"{where}: expected a family name ({_known()}) or a mapping with `name`, got {quoted(value)}"
            )
        family_cls = FAMILIES.get(name) if isinstance(name, str) else None
        if family_cls is None:
            raise UserError(f"{where}: unknown family {quoted(name)}; registered families: {_known()}")
        return build_section(family_cls, fields, where)

    def to_config(self) -> str | dict[str, Any]:
        """The bare name when every field has its default, otherwise the full mapping."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if all(_is_default(f, values[f.name]) for f in dataclasses.fields(self)):
            return self.name
        return {"name": self.name, **{k: _to_plain(v) for k, v in values.items()}}


def _is_default(f: dataclasses.Field, value: Any) -> bool:
    if f.default is not dataclasses.MISSING:
        return value == f.default
    if f.default_factory is not dataclasses.MISSING:
        return value == f.default_factory()
    return False


def _to_plain(value: Any) -> Any:
    to_config = getattr(value, "to_config", None)
    if to_config is not None:
        return to_config()
    if isinstance(value, (list, tuple)):
        return [_to_plain(v) for v in value]
    return value


def _describe_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_describe_value(v) for v in value) + "]"
    describe = getattr(value, "describe", None)
    return describe() if describe is not None else str(value)


@register
@dataclass(frozen=True)
class RandomFamily(Family):
    """Uniform strings; the length is drawn uniformly from the dataset's `pattern_len`."""

    name: ClassVar[str] = "random"

    def sample(self, n: int, rng: np.random.Generator, ctx: Context) -> PatternBatch:
        lengths = ctx.pattern_len.sample(rng, n)
        codes = rng.integers(0, ctx.alphabet_size, size=(n, ctx.pattern_len.hi), dtype=np.uint8)
        return PatternBatch(codes, lengths, np.zeros(n, dtype=np.int64), [self.name] * n)

    def capacity(self, ctx: Context) -> int:
        return sum(ctx.alphabet_size**length for length in ctx.pattern_len.values())

    def length_range(self, ctx: Context) -> IntRange:
        return ctx.pattern_len


_DEFAULT_BLOCK_LEN = IntRange(2, 4)


@dataclass(frozen=True)
class _BlockFamily(Family):
    """A block turned into a pattern of `block × k` characters: `block_len` free, or `pattern_len` fixed."""

    k: IntRange = IntRange(3, 4)
    block_len: IntRange = _DEFAULT_BLOCK_LEN
    pattern_len: int | None = None

    min_block_len: ClassVar[int] = 1

    def validate(self) -> None:
        if self.k.lo < 1:
            raise FieldError("k", f"must be >= 1, got {self.k.to_config()}")
        if self.pattern_len is not None:
            self._validate_fixed_length()
        elif self.block_len.lo < self.min_block_len:
            raise FieldError(
                "block_len",
                f"must be >= {self.min_block_len} for family {self.name!r}, got {self.block_len.to_config()}",
            )

    def _validate_fixed_length(self) -> None:
        if self.block_len != _DEFAULT_BLOCK_LEN:
            raise FieldError(
                "block_len",
                "set block_len or pattern_len, not both (with pattern_len the block is L / k long)",
            )
        if self.pattern_len < 1:
            raise FieldError("pattern_len", f"must be >= 1, got {self.pattern_len}")
        if not self.k_values():
            raise FieldError(
                "k",
                f"no divisor of pattern_len {self.pattern_len} in {self.k} leaves a block of at least "
                f"{self.min_block_len} characters for family {self.name!r}",
            )

    def k_values(self) -> list[int]:
        """The k this family draws: the whole range, or the divisors of `pattern_len` inside it."""
        if self.pattern_len is None:
            return list(self.k.values())
        length = self.pattern_len
        return [k for k in self.k.values() if length % k == 0 and length // k >= self.min_block_len]

    def block_range(self) -> IntRange:
        """Shortest and longest block the family builds."""
        if self.pattern_len is None:
            return self.block_len
        ks = self.k_values()
        return IntRange(self.pattern_len // ks[-1], self.pattern_len // ks[0])

    def length_range(self, ctx: Context) -> IntRange:
        if self.pattern_len is not None:
            return IntRange(self.pattern_len, self.pattern_len)
        return IntRange(self.block_len.lo * self.k.lo, self.block_len.hi * self.k.hi)

    def capacity(self, ctx: Context) -> int:
        if self.pattern_len is not None:
            return sum(self.blocks(ctx.alphabet_size, self.pattern_len // k) for k in self.k_values())
        blocks = sum(self.blocks(ctx.alphabet_size, b) for b in self.block_len.values())
        return len(self.k) * blocks

    def to_config(self) -> str | dict[str, Any]:
        """As `Family.to_config`, without the unused `pattern_len: null` or `block_len` of the other mode."""
        cfg = super().to_config()
        if isinstance(cfg, dict):
            cfg.pop("block_len" if self.pattern_len is not None else "pattern_len")
        return cfg

    def describe(self) -> str:
        if self.pattern_len is None:
            return f"{self.name}(k={self.k}, block_len={self.block_len})"
        return f"{self.name}(k={self.k}, pattern_len={self.pattern_len})"

    def blocks(self, alphabet_size: int, block_len: int) -> int:
        """Number of allowed blocks of one length."""
        raise NotImplementedError

    def sample(self, n: int, rng: np.random.Generator, ctx: Context) -> PatternBatch:
        if self.pattern_len is None:
            b = self.block_len.sample(rng, n)
            k = self.k.sample(rng, n)
        else:
            k = rng.choice(np.array(self.k_values(), dtype=np.int64), size=n)
            b = self.pattern_len // k
        block = self.sample_blocks(b, rng, ctx.alphabet_size)
        cols = np.arange(self.length_range(ctx).hi)
        index = np.minimum(self.block_index(cols[None, :], b[:, None], k[:, None]), block.shape[1] - 1)
        codes = np.take_along_axis(block, index, axis=1).astype(np.uint8)
        return PatternBatch(codes, b * k, k, [self.name] * n)

    def sample_blocks(self, b: np.ndarray, rng: np.random.Generator, alphabet_size: int) -> np.ndarray:
        """(n, max b) codes; row i's first b[i] entries are an allowed block."""
        block = rng.integers(0, alphabet_size, size=(len(b), self.block_range().hi), dtype=np.int64)
        bad = self.rejected(block, b)
        for _ in range(_MAX_RESAMPLE_ROUNDS):
            if not bad.any():
                return block
            rows = np.flatnonzero(bad)
            block[rows] = rng.integers(0, alphabet_size, size=(len(rows), block.shape[1]), dtype=np.int64)
            bad[rows] = self.rejected(block[rows], b[rows])
        raise RuntimeError(f"family {self.name!r}: block rejection did not converge")  # p < 0.75**200

    def rejected(self, block: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Rows whose block is not allowed (the default allows every block)."""
        return np.zeros(len(b), dtype=bool)

    @staticmethod
    def block_index(cols: np.ndarray, b: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Which block character sits at each pattern column."""
        raise NotImplementedError


@register
@dataclass(frozen=True)
class RepeatedFamily(_BlockFamily):
    """Each block character repeated k times: `aaabbbccc` (block `abc`, k = 3); neighbours differ."""

    name: ClassVar[str] = "repeated"

    def blocks(self, alphabet_size: int, block_len: int) -> int:
        return alphabet_size * (alphabet_size - 1) ** (block_len - 1)

    def sample_blocks(self, b: np.ndarray, rng: np.random.Generator, alphabet_size: int) -> np.ndarray:
        # A uniform first character, then steps of 1 … A−1 (mod A): uniform over blocks, neighbours differ.
        n, width = len(b), self.block_range().hi
        first = rng.integers(0, alphabet_size, size=(n, 1), dtype=np.int64)
        steps = rng.integers(1, alphabet_size, size=(n, width - 1), dtype=np.int64)
        return (first + np.concatenate([np.zeros((n, 1), np.int64), np.cumsum(steps, axis=1)], axis=1)) % (
            alphabet_size
        )

    @staticmethod
    def block_index(cols: np.ndarray, b: np.ndarray, k: np.ndarray) -> np.ndarray:
        return cols // k


@register
@dataclass(frozen=True)
class PeriodicFamily(_BlockFamily):
    """The block repeated k times: `abcabc` (block `abc`, k = 2); the block is primitive."""

    name: ClassVar[str] = "periodic"

    def blocks(self, alphabet_size: int, block_len: int) -> int:
        return primitive_words(alphabet_size, block_len)

    def rejected(self, block: np.ndarray, b: np.ndarray) -> np.ndarray:
        bad = np.zeros(len(b), dtype=bool)
        for length in np.unique(b).tolist():
            rows = np.flatnonzero(b == length)
            for d in _proper_divisors(length):  # period d dividing the length: the block is (prefix)^(b/d)
                bad[rows] |= (block[rows, : length - d] == block[rows, d:length]).all(axis=1)
        return bad

    @staticmethod
    def block_index(cols: np.ndarray, b: np.ndarray, k: np.ndarray) -> np.ndarray:
        return cols % b


@register
@dataclass(frozen=True)
class MirroredFamily(_BlockFamily):
    """The block and its mirror image alternating, k segments: `abccbaabc` (k = 3); not a palindrome.

    `capacity` is an upper bound here: rarely, two (block, k) pairs spell the same pattern.
    """

    name: ClassVar[str] = "mirrored"
    min_block_len: ClassVar[int] = 2  # a 1-character block is its own mirror image

    def blocks(self, alphabet_size: int, block_len: int) -> int:
        return alphabet_size**block_len - alphabet_size ** ((block_len + 1) // 2)

    def rejected(self, block: np.ndarray, b: np.ndarray) -> np.ndarray:
        bad = np.zeros(len(b), dtype=bool)
        for length in np.unique(b).tolist():
            rows = np.flatnonzero(b == length)
            bad[rows] = (block[rows, :length] == block[rows, length - 1 :: -1]).all(axis=1)
        return bad

    @staticmethod
    def block_index(cols: np.ndarray, b: np.ndarray, k: np.ndarray) -> np.ndarray:
        segment, offset = cols // b, cols % b
        return np.where(segment % 2 == 0, offset, b - 1 - offset)


def primitive_words(alphabet_size: int, length: int) -> int:
    """Words of `length` over `alphabet_size` letters that are not a power of a shorter word (Möbius sum)."""
    return sum(_mobius(d) * alphabet_size ** (length // d) for d in range(1, length + 1) if length % d == 0)


def _proper_divisors(n: int) -> list[int]:
    return [d for d in range(1, n) if n % d == 0]


def _mobius(n: int) -> int:
    result, p = 1, 2
    while p * p <= n:
        if n % p == 0:
            n //= p
            if n % p == 0:
                return 0
            result = -result
        p += 1
    return -result if n > 1 else result
