"""The `program` family: instructions that are whole Markov programs, executed to completion.

An instruction is an ordered `MarkovProgram` of k rules (patterns from another registered family, the
replacements uniform strings, each rule terminating with probability `terminating`); an example is an
input string and the string the program halts with. What makes programs hard and distinct is set here:
k, the number of execution steps an example takes (`steps`; the generator resamples inputs and programs
until executions halt within `max_steps` with a step count in that range, every intermediate string at
most `max_len` characters long), rule lengths (the dataset's `pattern_len` / `replacement_len`) and the
alphabet. `test_steps` and `test_input_len` add out-of-distribution splits (longer executions, longer
inputs); `strict: N` reserves N rule patterns for a held-out split (`test_unseen_strict`) whose programs
use only those patterns, which no training (or test_unseen) program uses.

`answer` chooses what the model writes: the final string only (`final`), or the execution trace
(`trace`: every intermediate string, the last being the result) as a scratchpad the loss covers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from rewritelab.config import FieldError
from rewritelab.data.families import Family, RandomFamily, register
from rewritelab.data.ranges import Context, IntRange

AnswerFormat = Literal["final", "trace"]


@register
@dataclass(frozen=True)
class ProgramFamily(Family):
    """Markov programs of `k` rules whose executions take `steps` rewrites (see the module docstring)."""

    name: ClassVar[str] = "program"

    k: IntRange = IntRange(2, 3)
    patterns: Family = field(default_factory=RandomFamily)
    terminating: float = 0.0
    steps: IntRange = IntRange(1, 4)
    max_steps: int = 32
    max_len: int = 32
    test_steps: IntRange | None = None
    test_input_len: IntRange | None = None
    strict: int = 0
    answer: AnswerFormat = "final"

    def validate(self) -> None:
        if self.k.lo < 1:
            raise FieldError("k", f"a program needs at least 1 rule, got {self.k.to_config()}")
        if isinstance(self.patterns, ProgramFamily):
            raise FieldError("patterns", "rule patterns come from a pattern family (random, repeated, ...)")
        try:
            self.patterns.validate()
        except FieldError as e:
            raise FieldError(f"patterns.{e.field}", e.message) from None
        if not 0.0 <= self.terminating <= 1.0:
            raise FieldError("terminating", f"a probability in [0, 1], got {self.terminating}")
        if self.strict < 0:
            raise FieldError(
                "strict", f"a number of reserved patterns, >= 0 (0: no strict split), got {self.strict}"
            )
        if 0 < self.strict < self.k.lo:
            raise FieldError(
                "strict",
                f"{self.strict} reserved patterns cannot make programs of {self.k.lo} distinct rules",
            )
        if self.max_steps < 1:
            raise FieldError("max_steps", f"the step cap must be >= 1, got {self.max_steps}")
        if self.steps.lo < 1:
            raise FieldError("steps", f"executions take at least 1 step, got {self.steps.to_config()}")
        if self.steps.hi > self.max_steps:
            raise FieldError(
                "steps",
                f"up to {self.steps.hi} steps exceed the step cap max_steps={self.max_steps}; "
                "raise max_steps or lower steps",
            )
        if self.test_steps is not None:
            if self.test_steps.lo <= self.steps.hi:
                raise FieldError(
                    "test_steps",
                    f"out-of-distribution executions must be longer than the trained ones (steps up to "
                    f"{self.steps.hi}), got {self.test_steps.to_config()}",
                )
            if self.test_steps.hi > self.max_steps:
                raise FieldError(
                    "test_steps",
                    f"up to {self.test_steps.hi} steps exceed the step cap max_steps={self.max_steps}",
                )
        if self.test_input_len is not None and self.test_input_len.hi > self.max_len:
            raise FieldError(
                "test_input_len",
                f"inputs of up to {self.test_input_len.hi} characters exceed max_len={self.max_len}",
            )

    def capacity(self, ctx: Context) -> int:
        """Distinct rule patterns (those of the `patterns` family)."""
        return self.patterns.capacity(ctx)

    def program_count(self, ctx: Context, replacements: int) -> int:
        """Distinct programs: ordered rules, each a pattern, a replacement and maybe a terminating mark."""
        rules = self.capacity(ctx) * replacements * (2 if 0.0 < self.terminating < 1.0 else 1)
        return sum(rules**k for k in self.k.values())

    def length_range(self, ctx: Context) -> IntRange:
        return self.patterns.length_range(ctx)
