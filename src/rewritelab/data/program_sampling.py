"""Sampling for program datasets: programs, their pools and the examples of each program.

A program joins a pool only if it is *viable*: of `_PROBE` candidate inputs, at least `_PROBE_HITS`
execute within the step range, halting within `max_steps` with no string longer than `max_len`.
Examples come from candidate inputs (random fill with the program's patterns planted at random places,
so that executions are long enough) kept only when their execution has the wanted number of steps.
Every trace and answer comes from `MarkovProgram.trace`. The caller (`program_data`) passes a generator
per stream, so each pool and split is deterministic on its own.
"""

from __future__ import annotations

import numpy as np

from rewritelab.data.codec import Codec
from rewritelab.data.programs import ProgramFamily
from rewritelab.data.ranges import IntRange
from rewritelab.data.rules import MarkovProgram, Rule, StepLimitError
from rewritelab.data.sampling import random_codes
from rewritelab.data.spec import DatasetSpec
from rewritelab.data.tables import ProgramSplit
from rewritelab.errors import UserError

_PROBE, _PROBE_HITS = 32, 2
_EARLY_GIVE_UP = 200  # program draws without a single viable one: the family cannot produce any
_DRAWS_PER_PROGRAM = 50
_TRIES_PER_EXAMPLE, _TRIES_EXTRA = 200, 1024  # candidate inputs allowed per wanted example (+ a margin)
_OOD_TRIES_PER_EXAMPLE, _OOD_TRIES_EXTRA = 64, 256


def execute(program: MarkovProgram, text: str, max_steps: int, max_len: int) -> list[str] | None:
    """Every intermediate string of `program` run on `text`; None if it does not halt within
    `max_steps` rewrites or a string grows past `max_len` characters."""
    trace = []
    try:
        for step in program.trace(text, max_steps):
            if len(step.text) > max_len:
                return None
            trace.append(step.text)
    except StepLimitError:
        return None
    return trace


class ProgramSampler:
    """Programs and inputs of one spec; every draw comes from the generator passed in."""

    def __init__(self, spec: DatasetSpec, family: ProgramFamily):
        self.spec, self.family, self.codec = spec, family, Codec(spec.alphabet)

    def draw_program(self, rng: np.random.Generator, reserved: list[str] | None) -> MarkovProgram | None:
        """One random program (its patterns drawn from `reserved` if given, else from the pattern family),
        or None when two rules would share a pattern (the second one could never fire)."""
        k = int(self.family.k.sample(rng, 1)[0])
        if reserved is not None:
            if k > len(reserved):
                return None
            patterns = [reserved[i] for i in rng.choice(len(reserved), size=k, replace=False).tolist()]
        else:
            batch = self.family.patterns.sample(k, rng, self.spec.context())
            patterns = self.codec.decode(batch.codes, batch.lengths).tolist()
            if len(set(patterns)) < k:
                return None
        replacements = self.codec.decode(*random_codes(k, rng, self.codec.size, self.spec.replacement_len))
        terminating = (rng.random(k) < self.family.terminating).tolist()
        rules = zip(patterns, replacements.tolist(), terminating, strict=True)
        return MarkovProgram([Rule(*rule) for rule in rules])

    def reserve_patterns(self, n: int, rng: np.random.Generator) -> list[str]:
        """`n` distinct patterns of the pattern family, in draw order: the strict pool's patterns."""
        reserved: list[str] = []
        for _ in range(_DRAWS_PER_PROGRAM * n + _EARLY_GIVE_UP):
            if len(reserved) == n:
                break
            batch = self.family.patterns.sample(1, rng, self.spec.context())
            pattern = self.codec.decode(batch.codes, batch.lengths)[0]
            if pattern not in reserved:
                reserved.append(pattern)
        if len(reserved) < n:
            raise UserError(
                f"data.family.strict: found only {len(reserved)} of {n} distinct patterns to reserve for "
                "test_unseen_strict; lower strict or allow more patterns (pattern_len, alphabet)"
            )
        return reserved

    def candidates(
        self, program: MarkovProgram, n: int, rng: np.random.Generator, lengths: IntRange, plants: int
    ):
        """`n` random inputs, each with up to `plants` copies of the program's patterns written into it."""
        size = lengths.sample(rng, n)
        texts = self.codec.decode(rng.integers(0, self.codec.size, (n, lengths.hi), dtype=np.uint8), size)
        count = rng.integers(0, plants + 1, size=n)
        which = rng.integers(0, len(program.rules), size=int(count.sum())).tolist()
        where = rng.random(int(count.sum())).tolist()
        out, j = [], 0
        for text, c in zip(texts.tolist(), count.tolist(), strict=True):
            for _ in range(c):
                pattern = program.rules[which[j]].pattern
                if len(pattern) <= len(text):
                    at = int(where[j] * (len(text) - len(pattern) + 1))
                    text = text[:at] + pattern + text[at + len(pattern) :]
                j += 1
            out.append(text)
        return out

    def examples(
        self,
        program: MarkovProgram,
        m: int,
        rng: np.random.Generator,
        steps: IntRange,
        lengths: IntRange,
        tries: int,
    ) -> list[tuple[str, list[str]]]:
        """Up to `m` (input, trace) pairs whose execution takes `steps` rewrites, from <= `tries` inputs."""
        found: list[tuple[str, list[str]]] = []
        tried = 0
        while len(found) < m and tried < tries:
            batch = min(max(2 * (m - len(found)), 16), tries - tried)
            tried += batch
            for text in self.candidates(program, batch, rng, lengths, steps.hi):
                trace = execute(program, text, self.family.max_steps, self.family.max_len)
                if trace is not None and steps.lo <= len(trace) <= steps.hi:
                    found.append((text, trace))
                    if len(found) == m:
                        break
        return found

    def pool(
        self,
        n: int,
        rng: np.random.Generator,
        exclude: set[MarkovProgram],
        reserved: list[str],
        field_name: str,
        strict: bool = False,
    ) -> list[MarkovProgram]:
        """`n` distinct viable programs, none in `exclude`: built from the `reserved` patterns only
        (`strict`) or with none of them."""
        banned = set() if strict else set(reserved)
        programs: list[MarkovProgram] = []
        taken = set(exclude)
        draws = 0
        while len(programs) < n:
            if draws >= _DRAWS_PER_PROGRAM * n + _EARLY_GIVE_UP or (draws >= _EARLY_GIVE_UP and not programs):
                raise self._no_programs(len(programs), n, draws, field_name)
            draws += 1
            program = self.draw_program(rng, reserved if strict else None)
            if program is None or program in taken or any(r.pattern in banned for r in program.rules):
                continue
            probe = self.examples(program, _PROBE_HITS, rng, self.family.steps, self.spec.input_len, _PROBE)
            if len(probe) == _PROBE_HITS:
                taken.add(program)
                programs.append(program)
        return programs

    def _no_programs(self, found: int, n: int, draws: int, field_name: str) -> UserError:
        f = self.family
        return UserError(
            f"data.{field_name}: found only {found} of {n} usable programs in {draws} draws from the "
            f"{f.describe()} family: too few programs halt within max_steps={f.max_steps} after "
            f"{f.steps} steps with strings of at most max_len={f.max_len} characters on inputs of "
            f"{self.spec.input_len} characters (banned and held-out programs excluded); widen family.steps, "
            "raise max_steps or max_len, allow terminating rules, shorter replacements or other lengths"
        )

    def split(
        self,
        programs: list[MarkovProgram],
        ids: np.ndarray,
        per_program: np.ndarray,
        train_count: np.ndarray,
        rng: np.random.Generator,
        steps: IntRange,
        lengths: IntRange,
        ood: bool,
    ) -> tuple[ProgramSplit, int]:
        """Examples of each program (`per_program[i]` of program i) in a seeded random order, and how many
        programs took part. An OOD program short of examples is left out; otherwise that is an error."""
        rows: list[tuple[int, str, list[str]]] = []
        used = 0
        for i, (program, m) in enumerate(zip(programs, per_program.tolist(), strict=True)):
            if m == 0:
                continue
            tries = m * (_OOD_TRIES_PER_EXAMPLE if ood else _TRIES_PER_EXAMPLE) + (
                _OOD_TRIES_EXTRA if ood else _TRIES_EXTRA
            )
            found = self.examples(program, m, rng, steps, lengths, tries)
            if len(found) < m:
                if ood:
                    continue
                raise UserError(
                    f"data.family: program {int(ids[i])} produced only {len(found)} of {m} inputs with "
                    f"{steps} steps in {tries} attempts; widen family.steps or input_len"
                )
            used += 1
            rows.extend((i, text, trace) for text, trace in found)
        order = rng.permutation(len(rows))
        rows = [rows[j] for j in order.tolist()]
        which = np.array([r[0] for r in rows], dtype=np.int64)
        return (
            ProgramSplit(
                rule_id=ids[which],
                program=[programs[i] for i in which.tolist()],
                input=[r[1] for r in rows],
                output=[r[2][-1] for r in rows],
                trace=[r[2] for r in rows],
                steps=np.array([len(r[2]) for r in rows], dtype=np.int64),
                k=np.array([len(programs[i].rules) for i in which.tolist()], dtype=np.int64),
                family=[self.family.patterns.name] * len(rows),
                train_count=train_count[which],
            ),
            used,
        )
