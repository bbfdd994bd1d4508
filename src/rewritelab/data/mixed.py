"""The `mixed` family: a weighted mixture of other families (`Component`s), registered like the others.

The package's `__init__` imports this module, so the registry always holds `mixed`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from rewritelab.config import FieldError
from rewritelab.data.families import Family, register
from rewritelab.data.programs import ProgramFamily
from rewritelab.data.ranges import Context, IntRange, PatternBatch
from rewritelab.errors import UserError
from rewritelab.textfmt import quoted


@dataclass(frozen=True)
class Component:
    """One family of a `mixed` family with its sampling weight (`{name: periodic, weight: 2, k: 3}`)."""

    family: Family
    weight: float = 1.0

    @classmethod
    def from_config(cls, value: Any, where: str) -> Component:
        if isinstance(value, Component):
            return value
        weight: Any = 1.0
        if isinstance(value, dict):
            value = dict(value)
            weight = value.pop("weight", 1.0)
        if not (_is_number(weight) and math.isfinite(weight) and weight > 0):
            raise UserError(f"{where}.weight: must be a positive number, got {quoted(weight)}")
        name = value.get("name") if isinstance(value, dict) else value
        if name == MixedFamily.name or isinstance(value, MixedFamily):
            raise UserError(
                f"{where}: a mixed family cannot contain another mixed family; list its components"
            )
        if name == ProgramFamily.name or isinstance(value, ProgramFamily):
            raise UserError(f"{where}: a mixed family mixes pattern families; program is not one")
        return cls(Family.from_config(value, where), float(weight))

    def to_config(self) -> dict[str, Any]:
        family = self.family.to_config()
        as_mapping = {"name": family} if isinstance(family, str) else family
        return {**as_mapping, "weight": self.weight}

    def describe(self) -> str:
        return f"{self.weight:g}×{self.family.describe()}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@register
@dataclass(frozen=True)
class MixedFamily(Family):
    """A weighted mixture: each pattern comes from one component, drawn with probability ∝ weight.

    `capacity` is the sum over components, an upper bound when components can spell the same pattern.
    """

    name: ClassVar[str] = "mixed"

    components: tuple[Component, ...] = field(default=())

    def validate(self) -> None:
        if not self.components:
            raise FieldError(
                "components", "list at least one family, e.g. [{name: repeated, weight: 1}, {name: periodic}]"
            )
        for i, component in enumerate(self.components):  # components built in Python skip from_config
            if isinstance(component.family, (MixedFamily, ProgramFamily)):
                raise FieldError(
                    f"components[{i}]", "components must be pattern families (not mixed, program)"
                )
            if not (math.isfinite(component.weight) and component.weight > 0):
                raise FieldError(
                    f"components[{i}].weight", f"must be a positive number, got {component.weight}"
                )
            try:
                component.family.validate()
            except FieldError as e:
                raise FieldError(f"components[{i}].{e.field}", e.message) from None

    def sample(self, n: int, rng: np.random.Generator, ctx: Context) -> PatternBatch:
        weights = np.array([c.weight for c in self.components])
        which = rng.choice(len(self.components), size=n, p=weights / weights.sum())
        width = max(c.family.length_range(ctx).hi for c in self.components)
        codes = np.zeros((n, width), dtype=np.uint8)
        lengths = np.zeros(n, dtype=np.int64)
        k = np.zeros(n, dtype=np.int64)
        family = np.empty(n, dtype=object)
        for j, component in enumerate(self.components):
            rows = np.flatnonzero(which == j)
            if len(rows) == 0:
                continue
            part = component.family.sample(len(rows), rng, ctx)
            codes[rows, : part.codes.shape[1]] = part.codes
            lengths[rows], k[rows] = part.lengths, part.k
            family[rows] = part.family
        return PatternBatch(codes, lengths, k, family.tolist())

    def capacity(self, ctx: Context) -> int:
        return sum(c.family.capacity(ctx) for c in self.components)

    def length_range(self, ctx: Context) -> IntRange:
        ranges = [c.family.length_range(ctx) for c in self.components]
        return IntRange(min(r.lo for r in ranges), max(r.hi for r in ranges))
