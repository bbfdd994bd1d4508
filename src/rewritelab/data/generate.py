"""`DatasetSpec` → `Dataset` (train / validation / test_seen / test_unseen): `generate_dataset`.

The rule pool is split by construction: the held-out rules (test_unseen) are sampled first and their
patterns are excluded when the training rules are sampled, then the validation rules exclude the patterns
of both; the disjointness is then verified and recorded in the manifest. Every answer comes from the
reference rewriter `rules.apply_once` (see `inputs`).

Randomness: one master `seed`; `numpy.random.SeedSequence(seed).spawn` gives independent streams for the
held-out rules, training rules, training counts, training inputs, test_seen and test_unseen, so e.g. the
test_unseen split does not change when only `num_rules` changes. The validation streams come after those
(`spawn(n + 2)[:n] == spawn(n)`): the other splits are byte for byte those of a dataset without one.
"""

from __future__ import annotations

import numpy as np

from rewritelab import __version__
from rewritelab.config import FieldError, to_dict
from rewritelab.data.codec import Codec
from rewritelab.data.inputs import make_split
from rewritelab.data.manifest import (
    frequency_table,
    split_summary,
    verify_disjoint,
    verify_validation_disjoint,
)
from rewritelab.data.memory import check_memory
from rewritelab.data.program_data import generate_programs, program_examples
from rewritelab.data.sampling import RuleSet, sample_rules, training_counts
from rewritelab.data.spec import DatasetSpec, replacement_count
from rewritelab.data.tables import Dataset, ProgramSplit, ProgramTable, RuleTable, Split
from rewritelab.errors import UserError
from rewritelab.layout import VALIDATION

_STREAMS = ("heldout_rules", "train_rules", "train_counts", "train_inputs", "test_seen", "test_unseen")
_VALIDATION_STREAMS = ("validation_rules", "validation")  # appended: the streams above keep their draws


def generate_dataset(spec: DatasetSpec) -> Dataset:
    """Sample the rules, the training counts and every split of `spec` (deterministic in `spec.seed`)."""
    try:
        spec.validate()
    except FieldError as e:
        raise UserError(f"data.{e.field}: {e.message}") from None
    check_memory(spec)  # before minutes of sampling, not after
    if spec.programs is not None:
        return generate_programs(spec, spec.programs)
    streams = _STREAMS + _VALIDATION_STREAMS
    seeds = np.random.SeedSequence(spec.seed).spawn(len(streams))
    rngs = {name: np.random.default_rng(s) for name, s in zip(streams, seeds, strict=True)}
    codec = Codec(spec.alphabet)
    num_rules, num_heldout = spec.num_rules, spec.test_rules

    heldout_sample = sample_rules(
        spec.heldout_family, num_heldout, rngs["heldout_rules"], spec, codec, set(), "test_rules"
    )
    heldout_patterns = set(heldout_sample[0])
    _check_room_for_training(spec, len(heldout_patterns))
    train_sample = sample_rules(
        spec.family, num_rules, rngs["train_rules"], spec, codec, heldout_patterns, "num_rules"
    )
    counts = training_counts(
        num_rules, spec.train_examples, spec.rule_distribution, spec.alpha, rngs["train_counts"]
    )
    train_rules = _rule_set(np.arange(num_rules, dtype=np.int64), train_sample, counts, codec)
    heldout = _rule_set(
        np.arange(num_rules, num_rules + num_heldout, dtype=np.int64),
        heldout_sample,
        np.zeros(num_heldout, dtype=np.int64),
        codec,
    )
    disjointness = verify_disjoint(train_rules, heldout)

    per_rule = spec.test_examples_per_rule
    seen_rng = rngs["test_seen"]
    eligible = np.flatnonzero(counts > 0)
    chosen = np.sort(seen_rng.choice(eligible, size=min(num_heldout, len(eligible)), replace=False))
    test_occ = spec.test_occurrence_counts
    test_field = "test_occurrences" if spec.test_occurrences is not None else "occurrences"
    splits = {
        "train": make_split(
            train_rules, np.repeat(np.arange(num_rules), counts), spec.occurrences, spec,
            rngs["train_inputs"], codec, "occurrences",
        ),
        "test_seen": make_split(
            train_rules, np.repeat(chosen, per_rule), test_occ, spec, seen_rng, codec, test_field
        ),
        "test_unseen": make_split(
            heldout, np.repeat(np.arange(num_heldout), per_rule), test_occ, spec, rngs["test_unseen"],
            codec, test_field,
        ),
    }  # fmt: skip
    validation = None
    if spec.validation_rules:
        validation = _validation_rules(spec, rngs["validation_rules"], codec, train_rules, heldout)
        disjointness.update(verify_validation_disjoint(validation, train_rules, heldout))
        per_val = spec.validation_examples_per_rule
        rows = np.repeat(np.arange(spec.validation_rules), per_val)
        val = make_split(validation, rows, test_occ, spec, rngs["validation"], codec, test_field)
        splits = {"train": splits["train"], VALIDATION: val, **splits}  # the file and table order
    rules = _rule_table(train_rules, heldout, validation)
    manifest = {
        "rewritelab_version": __version__,
        "spec": to_dict(spec),
        "train_examples": spec.train_examples,
        "examples_per_rule": spec.train_examples / num_rules,
        "splits": {name: split_summary(split) for name, split in splits.items()},
        "rule_frequency": frequency_table(counts),
        "disjointness": disjointness,
        "seed_streams": list(streams if validation is not None else _STREAMS),
    }
    return Dataset(spec=spec, splits=splits, manifest=manifest, rules=rules)


def sample_examples(
    spec: DatasetSpec, pool: RuleTable | ProgramTable, n: int, rng: np.random.Generator, test: bool
) -> Split | ProgramSplit:
    """`n` fresh examples of instructions drawn uniformly from `pool` (rows of a dataset's rule or program
    table), made as `generate_dataset` makes a split's examples (inputs, no-op share, occurrences: the
    test settings with `test`), in a seeded random order. For generators that produce examples on demand
    from a fixed instruction pool (e.g. the reasoning-gym datasets of `rewritelab.integrations`)."""
    if isinstance(pool, ProgramTable) and spec.programs is not None:
        return program_examples(spec, spec.programs, pool, n, rng)
    codec = Codec(spec.alphabet)
    sampled = (list(pool.pattern), list(pool.replacement), pool.k.tolist(), list(pool.family))
    rules = _rule_set(pool.rule_id, sampled, pool.train_count, codec)
    occurrences = spec.test_occurrence_counts if test else spec.occurrences
    field = "test_occurrences" if test and spec.test_occurrences is not None else "occurrences"
    return make_split(rules, rng.integers(0, len(pool), size=n), occurrences, spec, rng, codec, field)


def _check_room_for_training(spec: DatasetSpec, heldout_patterns: int) -> None:
    """Exact capacity check once the held-out patterns are known (same family for both pools)."""
    if spec.heldout_family != spec.family:
        return
    room = (spec.family.capacity(spec.context()) - heldout_patterns) * replacement_count(
        len(spec.alphabet), spec.replacement_len
    )
    if spec.num_rules > room:
        raise UserError(
            f"data.num_rules: the {spec.test_rules} held-out rules use {heldout_patterns} patterns, which "
            f"leaves room for only {max(room, 0)} distinct training rules; lower num_rules or test_rules, "
            "or allow more patterns (longer pattern_len, a larger alphabet)"
        )


def _validation_rules(
    spec: DatasetSpec, rng: np.random.Generator, codec: Codec, train: RuleSet, heldout: RuleSet
) -> RuleSet:
    """The validation rules: drawn like the held-out ones, none with a training or held-out pattern."""
    taken = set(train.pattern) | set(heldout.pattern)
    n, first = spec.validation_rules, len(train.pattern) + len(heldout.pattern)
    if spec.heldout_family == spec.family:
        room = (spec.family.capacity(spec.context()) - len(taken)) * replacement_count(
            len(spec.alphabet), spec.replacement_len
        )
        if n > room:
            raise UserError(
                f"data.validation_rules: the training and held-out rules use {len(taken)} patterns, which "
                f"leaves room for only {max(room, 0)} validation rules; lower validation_rules (0: no "
                "validation split) or allow more patterns (longer pattern_len, a larger alphabet)"
            )
    sampled = sample_rules(spec.heldout_family, n, rng, spec, codec, taken, "validation_rules")
    ids = np.arange(first, first + n, dtype=np.int64)
    return _rule_set(ids, sampled, np.zeros(n, dtype=np.int64), codec)


def _rule_table(train: RuleSet, heldout: RuleSet, validation: RuleSet | None) -> RuleTable:
    """Training rules, then the held-out ones, then the validation ones (ids in that order)."""
    parts = [(train, "train"), (heldout, "heldout")]
    if validation is not None:
        parts.append((validation, VALIDATION))
    return RuleTable(
        rule_id=np.concatenate([rules.rule_id for rules, _ in parts]),
        split=[name for rules, name in parts for _ in rules.pattern],
        pattern=[p for rules, _ in parts for p in rules.pattern],
        replacement=[r for rules, _ in parts for r in rules.replacement],
        family=[f for rules, _ in parts for f in rules.family],
        k=np.concatenate([rules.k for rules, _ in parts]),
        train_count=np.concatenate([rules.train_count for rules, _ in parts]),
    )


def _rule_set(
    ids: np.ndarray, sampled: tuple[list[str], list[str], list[int], list[str]], counts: np.ndarray, codec
) -> RuleSet:
    patterns, replacements, ks, families = sampled
    codes, lengths = codec.encode(patterns)
    return RuleSet(
        ids, patterns, replacements, families, np.array(ks, dtype=np.int64), counts, codes, lengths
    )
