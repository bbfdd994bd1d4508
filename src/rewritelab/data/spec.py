"""`DatasetSpec`: every knob of a dataset (the `data:` config section) and its validation.

`DatasetSpec.validate` rejects every request that cannot be generated (alphabet, sizes, budget, fit of
the patterns in the inputs, capacity of the families), naming the field and the fix. `Occurrences` says
how many times the pattern occurs in an applied input.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from rewritelab.config import FieldError, check_seed
from rewritelab.data.families import Family, RandomFamily
from rewritelab.data.programs import ProgramFamily
from rewritelab.data.ranges import Context, IntRange
from rewritelab.errors import UserError
from rewritelab.textfmt import quoted

_MAX_ALPHABET = 256  # strings are built as uint8 index arrays
# Characters of an input, a pattern or a replacement: 4x the paper's longest inputs, and a bound on the
# capacity counts (sums of alphabet^length over the lengths), which take hours for lengths of 10^6.
MAX_STRING_LEN = 2000
DEFAULT_BUDGET = 1_000_000  # the paper's training budget (examples), when neither budget nor S is set


@dataclass(frozen=True)
class Occurrences:
    """How many times the pattern occurs in an applied input: `3`, `[1, 5, 10]` or `{counts, weights}`."""

    counts: tuple[int, ...] = (1,)
    weights: tuple[float, ...] | None = None  # None: uniform over counts

    @classmethod
    def normalize(cls, value: Any, where: str) -> Any:
        """`3` and `[1, 5, 10]` are shorthands for `{counts: ...}` (uniform weights)."""
        if isinstance(value, Occurrences):
            return {"counts": value.counts, "weights": value.weights}
        if isinstance(value, dict):
            if "counts" not in value:
                raise UserError(f"{where}.counts: required, e.g. {{counts: [1, 5, 10], weights: [1, 1, 1]}}")
            return value
        return {"counts": value if isinstance(value, (list, tuple)) else [value]}

    def validate(self) -> None:
        if not self.counts:
            raise FieldError("counts", "give at least one count")
        if len(set(self.counts)) != len(self.counts):
            raise FieldError(
                "counts", f"must be distinct, got {quoted(list(self.counts))}; weights favour one"
            )
        if min(self.counts) < 1:
            raise FieldError(
                "counts", f"must be >= 1 (no-ops are set by noop_frac), got {quoted(list(self.counts))}"
            )
        if self.weights is not None and (
            len(self.weights) != len(self.counts) or not all(math.isfinite(w) and w > 0 for w in self.weights)
        ):
            raise FieldError(
                "weights",
                f"expected {len(self.counts)} positive numbers (one per count), "
                f"got {quoted(list(self.weights))}",
            )

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
    budget: int | None = None  # default DEFAULT_BUDGET, unless examples_per_rule is given
    examples_per_rule: int | None = None
    noop_frac: float = 0.0
    rule_distribution: Literal["uniform", "powerlaw"] = "uniform"
    alpha: float = 1.0
    occurrences: Occurrences = Occurrences()
    test_occurrences: Occurrences | None = None
    test_rules: int = 100
    test_examples_per_rule: int = 10
    # The validation split: held-out rules of its own, drawn like test_unseen's (0: none). 1,000 examples:
    # a 1-point move is 10 examples, above the median move (0.5-0.7 points) between the last evaluations of
    # the committed 1,000-example curves; many rules of few examples, as one rule's examples tend to succeed
    # or fail together; scoring them all costs about 5 training steps of 64 examples.
    validation_rules: int = 200
    validation_examples_per_rule: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        # Setting S alone is enough: the default budget applies only when neither is given.
        if self.budget is None and self.examples_per_rule is None:
            object.__setattr__(self, "budget", DEFAULT_BUDGET)

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

    @property
    def programs(self) -> ProgramFamily | None:
        """The program family when instructions are Markov programs, else None (single rewrites)."""
        return self.family if isinstance(self.family, ProgramFamily) else None

    def context(self) -> Context:
        return Context(len(self.alphabet), self.pattern_len)

    def validate(self) -> None:
        """Reject every request that cannot be generated, naming the field and the fix."""
        _check_alphabet(self.alphabet)
        # The parts were checked when parsed, but not when the spec is built in Python.
        for name in ("family", "test_family", "occurrences", "test_occurrences"):
            part = getattr(self, name)
            try:
                if part is not None:
                    part.validate()
            except FieldError as e:
                raise FieldError(f"{name}.{e.field}", e.message) from None
        self._check_sizes()
        self._check_validation()
        self._check_budget()
        if not 0.0 <= self.noop_frac < 1.0:
            raise FieldError("noop_frac", f"must be in [0, 1) (a share of examples), got {self.noop_frac}")
        if not (math.isfinite(self.alpha) and self.alpha > 0):
            raise FieldError("alpha", f"must be > 0 (smaller = more skewed), got {self.alpha}")
        if self.programs is not None:
            self._check_programs(self.programs)
            return
        self._check_fit()
        self._check_capacity()

    def _check_programs(self, family: ProgramFamily) -> None:
        """Program datasets: the single-rewrite knobs that have no meaning here, lengths, capacity."""
        single_only = {
            "noop_frac": self.noop_frac != 0.0,
            "occurrences": self.occurrences != Occurrences(),
            "test_occurrences": self.test_occurrences is not None,
            "test_family": self.test_family is not None,
        }
        for name, is_set in single_only.items():
            if is_set:
                raise FieldError(name, "applies to single rewrites only; remove it for the program family")
        if self.input_len.hi > family.max_len:
            raise FieldError(
                "input_len",
                f"inputs of up to {self.input_len.hi} characters exceed family.max_len={family.max_len}; "
                "raise max_len or shorten input_len",
            )
        ood = family.test_input_len
        if ood is not None and ood.lo <= self.input_len.hi:
            raise FieldError(
                "family.test_input_len",
                f"out-of-distribution inputs must be longer than the trained ones (input_len up to "
                f"{self.input_len.hi}), got {ood.to_config()}",
            )
        if family.strict >= family.capacity(self.context()):
            raise FieldError(
                "family.strict",
                f"reserving {family.strict} of the {family.capacity(self.context())} possible rule patterns "
                "leaves none for training; lower strict or allow more patterns",
            )
        pools = self.num_rules + self.test_rules * (2 if family.strict else 1) + self.validation_rules
        count = family.program_count(
            self.context(), replacement_count(len(self.alphabet), self.replacement_len)
        )
        if pools > count:
            raise FieldError(
                "num_rules",
                f"the {family.describe()} family allows at most {count} distinct programs, fewer than the "
                f"{pools} requested (num_rules plus the held-out and validation pools); lower num_rules, "
                "test_rules or validation_rules",
            )

    def _check_sizes(self) -> None:
        for name in ("input_len", "pattern_len"):
            if getattr(self, name).lo < 1:
                raise FieldError(name, f"lengths must be >= 1, got {getattr(self, name).to_config()}")
        for name in ("input_len", "pattern_len", "replacement_len"):
            if getattr(self, name).hi > MAX_STRING_LEN:
                length = getattr(self, name).to_config()
                raise FieldError(name, f"lengths of at most {MAX_STRING_LEN:,} characters, got {length}")
        if self.replacement_len.lo < 0:
            raise FieldError(
                "replacement_len", f"lengths must be >= 0, got {self.replacement_len.to_config()}"
            )
        for name in ("num_rules", "test_rules", "test_examples_per_rule"):
            if getattr(self, name) < 1:
                raise FieldError(name, f"must be >= 1, got {getattr(self, name)}")
        check_seed("seed", self.seed)

    def _check_validation(self) -> None:
        if self.validation_rules < 0:
            raise FieldError(
                "validation_rules", f"must be >= 0 (0: no validation split), got {self.validation_rules}"
            )
        if self.validation_examples_per_rule < 1:
            raise FieldError(
                "validation_examples_per_rule", f"must be >= 1, got {self.validation_examples_per_rule}"
            )

    def _check_budget(self) -> None:
        if self.budget is not None and self.examples_per_rule is not None:
            raise FieldError(
                "examples_per_rule",
                "set one of budget (total training examples, I x S) and examples_per_rule (S), not both",
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
        same_family = self.heldout_family == self.family
        if same_family:  # held-out rules use up at least ceil(T / R) patterns
            patterns -= -(-self.test_rules // replacements)
        if self.num_rules > patterns * replacements:
            raise FieldError(
                "num_rules",
                f"the {self.family.describe()} family allows at most {max(patterns, 0) * replacements} "
                f"distinct training rules besides the {self.test_rules} held-out ones with this alphabet and "
                "these lengths; lower num_rules or test_rules, or allow longer patterns/replacements",
            )
        # Validation rules take patterns of their own: at least ceil(V / R) besides the held-out ones (and
        # the training ones, of the same family); the generator checks the exact room once those are drawn.
        pools = (self.validation_rules, self.test_rules, self.num_rules if same_family else 0)
        needed = sum(-(-rules // replacements) for rules in pools)
        if self.validation_rules and needed > self.heldout_family.capacity(ctx):
            raise FieldError(
                "validation_rules",
                f"the {self.heldout_family.describe()} family has too few patterns for "
                f"{self.validation_rules} validation rules besides the held-out and training ones with this "
                "alphabet and these lengths; lower validation_rules (0: no validation split) or allow "
                "longer patterns",
            )


def _check_alphabet(alphabet: str) -> None:
    if len(alphabet) < 2:
        raise FieldError("alphabet", f"needs at least 2 distinct characters, got {quoted(alphabet)}")
    if len(alphabet) > _MAX_ALPHABET:
        raise FieldError("alphabet", f"at most {_MAX_ALPHABET} characters are supported, got {len(alphabet)}")
    repeated = sorted({ch for ch in alphabet if alphabet.count(ch) > 1})
    if repeated:
        raise FieldError(
            "alphabet", f"characters must be distinct; {quoted(''.join(repeated))} occur more than once"
        )
    bad = [ch for ch in alphabet if ch.isspace() or not ch.isprintable()]
    if bad:
        raise FieldError(
            "alphabet", f"{bad[0]!r} is whitespace, a control or a non-printable character; use visible ones"
        )


def replacement_count(alphabet_size: int, lengths: IntRange) -> int:
    """Distinct replacement strings with a length in `lengths`."""
    return sum(alphabet_size**length for length in lengths.values())
