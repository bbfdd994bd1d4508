"""`DatasetSpec` → `Dataset` (train / test_seen / test_unseen): `generate_dataset`.

The rule pool is split by construction: the held-out rules (test_unseen) are sampled first and their
patterns are excluded when the training rules are sampled; the disjointness is then verified and recorded
in the manifest. Every answer comes from the reference rewriter `rules.apply_once` (see `inputs`).

Randomness: one master `seed`; `numpy.random.SeedSequence(seed).spawn` gives independent streams for the
held-out rules, training rules, training counts, training inputs, test_seen and test_unseen, so e.g. the
test_unseen split does not change when only `num_rules` changes.
"""

from __future__ import annotations

import numpy as np

from rewritelab import __version__
from rewritelab.config import FieldError, to_dict
from rewritelab.data.codec import Codec
from rewritelab.data.inputs import make_split
from rewritelab.data.manifest import frequency_table, split_summary, verify_disjoint
from rewritelab.data.memory import check_memory
from rewritelab.data.program_data import generate_programs, program_examples
from rewritelab.data.sampling import RuleSet, sample_rules, training_counts
from rewritelab.data.spec import DatasetSpec, replacement_count
from rewritelab.data.tables import Dataset, ProgramSplit, ProgramTable, RuleTable, Split
from rewritelab.errors import UserError

_STREAMS = ("heldout_rules", "train_rules", "train_counts", "train_inputs", "test_seen", "test_unseen")


def generate_dataset(spec: DatasetSpec) -> Dataset:
    """Sample the rules, the training counts and every split of `spec` (deterministic in `spec.seed`)."""
    try:
        spec.validate()
    except FieldError as e:
        raise UserError(f"data.{e.field}: {e.message}") from None
    check_memory(spec)  # before minutes of sampling, not after
    if spec.programs is not None:
        return generate_programs(spec, spec.programs)
    seeds = np.random.SeedSequence(spec.seed).spawn(len(_STREAMS))
    rngs = {name: np.random.default_rng(s) for name, s in zip(_STREAMS, seeds, strict=True)}
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
    rules = _rule_table(train_rules, heldout)
    manifest = {
        "rewritelab_version": __version__,
        "spec": to_dict(spec),
        "train_examples": spec.train_examples,
        "examples_per_rule": spec.train_examples / num_rules,
        "splits": {name: split_summary(split) for name, split in splits.items()},
        "rule_frequency": frequency_table(counts),
        "disjointness": disjointness,
        "seed_streams": list(_STREAMS),
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


def _rule_table(train: RuleSet, heldout: RuleSet) -> RuleTable:
    return RuleTable(
        rule_id=np.concatenate([train.rule_id, heldout.rule_id]),
        split=["train"] * len(train.pattern) + ["heldout"] * len(heldout.pattern),
        pattern=train.pattern + heldout.pattern,
        replacement=train.replacement + heldout.replacement,
        family=train.family + heldout.family,
        k=np.concatenate([train.k, heldout.k]),
        train_count=np.concatenate([train.train_count, heldout.train_count]),
    )


def _rule_set(
    ids: np.ndarray, sampled: tuple[list[str], list[str], list[int], list[str]], counts: np.ndarray, codec
) -> RuleSet:
    patterns, replacements, ks, families = sampled
    codes, lengths = codec.encode(patterns)
    return RuleSet(
        ids, patterns, replacements, families, np.array(ks, dtype=np.int64), counts, codes, lengths
    )
