"""Program datasets: `generate_programs(spec)` for a spec whose family is `program`.

Program pools are sampled in this order, each excluding what came before: the strict pool (its rule
patterns are then banned from training programs), the held-out pool (programs different from every
other), the training pool, then the validation pool (programs different from all of those, none using a
reserved pattern, drawn from streams after the others so the other pools and splits keep their bytes);
`program_sampling` draws them and their examples. The out-of-distribution splits run the held-out
programs on longer executions (`test_steps`) or longer inputs (`test_input_len`); a program that cannot
produce such examples within its attempts is left out of that split (the manifest records how many took
part).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rewritelab import __version__
from rewritelab.config import to_dict
from rewritelab.data.manifest import frequency_table
from rewritelab.data.program_sampling import ProgramSampler
from rewritelab.data.programs import ProgramFamily
from rewritelab.data.rules import MarkovProgram
from rewritelab.data.sampling import training_counts
from rewritelab.data.spec import DatasetSpec
from rewritelab.data.tables import Dataset, ProgramSplit, ProgramTable
from rewritelab.errors import UserError
from rewritelab.layout import VALIDATION

STREAMS = (
    "strict_programs", "heldout_programs", "train_programs", "train_counts", "train_inputs",
    "test_seen", "test_unseen", "test_unseen_strict", "test_ood_steps", "test_ood_length",
    "validation_programs", "validation",
)  # fmt: skip
VALIDATION_STREAMS = STREAMS[-2:]  # appended: spawn(n + 2)[:n] == spawn(n), the others keep their draws


def generate_programs(spec: DatasetSpec, family: ProgramFamily) -> Dataset:
    """Every pool and split of a program dataset (deterministic in `spec.seed`); `spec` is validated."""
    seeds = np.random.SeedSequence(spec.seed).spawn(len(STREAMS))
    rngs = {name: np.random.default_rng(s) for name, s in zip(STREAMS, seeds, strict=True)}
    sampler = ProgramSampler(spec, family)
    n_train, n_test, per = spec.num_rules, spec.test_rules, spec.test_examples_per_rule

    strict_rng = rngs["strict_programs"]
    reserved = sampler.reserve_patterns(family.strict, strict_rng)
    strict = (
        sampler.pool(n_test, strict_rng, set(), reserved, "family.strict", strict=True) if reserved else []
    )
    heldout = sampler.pool(n_test, rngs["heldout_programs"], set(strict), reserved, "test_rules")
    train = sampler.pool(n_train, rngs["train_programs"], set(strict) | set(heldout), reserved, "num_rules")
    counts = training_counts(
        n_train, spec.train_examples, spec.rule_distribution, spec.alpha, rngs["train_counts"]
    )
    n_val, taken = spec.validation_rules, set(strict) | set(heldout) | set(train)
    validation = sampler.pool(n_val, rngs["validation_programs"], taken, reserved, "validation_rules")
    disjointness = verify_programs_disjoint(train, heldout, strict, validation)

    train_ids = np.arange(n_train, dtype=np.int64)
    heldout_ids = np.arange(n_train, n_train + n_test, dtype=np.int64)
    strict_ids = np.arange(n_train + n_test, n_train + n_test + len(strict), dtype=np.int64)
    val_ids = np.arange(len(taken), len(taken) + n_val, dtype=np.int64)  # after every other pool's ids
    zeros = np.zeros(n_test, dtype=np.int64)
    each = np.full(n_test, per, dtype=np.int64)
    seen_rng = rngs["test_seen"]
    eligible = np.flatnonzero(counts > 0)
    chosen = np.zeros(n_train, dtype=np.int64)
    chosen[seen_rng.choice(eligible, size=min(n_test, len(eligible)), replace=False)] = per
    steps, lengths = family.steps, spec.input_len
    unseen, unseen_strict = (heldout, heldout_ids, each, zeros), (strict, strict_ids, each, zeros)
    # The arguments of `ProgramSampler.split`, one entry per split in file order.
    plan = {"train": (train, train_ids, counts, counts, rngs["train_inputs"], steps, lengths, False)}
    if n_val:
        val_each = np.full(n_val, spec.validation_examples_per_rule, dtype=np.int64)
        val_rng, val_zeros = rngs["validation"], np.zeros(n_val, dtype=np.int64)
        plan[VALIDATION] = (validation, val_ids, val_each, val_zeros, val_rng, steps, lengths, False)
    plan["test_seen"] = (train, train_ids, chosen, counts, seen_rng, steps, lengths, False)
    plan["test_unseen"] = (*unseen, rngs["test_unseen"], steps, lengths, False)
    if strict:
        plan["test_unseen_strict"] = (*unseen_strict, rngs["test_unseen_strict"], steps, lengths, False)
    if family.test_steps is not None:
        plan["test_ood_steps"] = (*unseen, rngs["test_ood_steps"], family.test_steps, lengths, True)
    if family.test_input_len is not None:
        plan["test_ood_length"] = (*unseen, rngs["test_ood_length"], steps, family.test_input_len, True)
    splits, used = {}, {}
    for name, args in plan.items():
        splits[name], used[name] = sampler.split(*args)
        if args[-1] and used[name] == 0:
            field = "test_steps" if name == "test_ood_steps" else "test_input_len"
            raise UserError(
                f"data.family.{field}: none of the {n_test} held-out programs produced {per} examples for "
                f"{name}; bring the range closer to the trained one or raise max_steps / max_len"
            )
    programs = [*train, *heldout, *strict, *validation]
    table = ProgramTable(
        rule_id=np.concatenate([train_ids, heldout_ids, strict_ids, val_ids]),
        split=["train"] * n_train + ["heldout"] * n_test + ["strict"] * len(strict) + [VALIDATION] * n_val,
        program=programs,
        k=np.array([len(p.rules) for p in programs], dtype=np.int64),
        family=[family.patterns.name] * len(programs),
        train_count=np.concatenate([counts, np.zeros(len(programs) - n_train, dtype=np.int64)]),
    )
    manifest = {
        "rewritelab_version": __version__,
        "spec": to_dict(spec),
        "train_examples": spec.train_examples,
        "examples_per_rule": spec.train_examples / n_train,
        "splits": {name: _summary(split, used[name]) for name, split in splits.items()},
        "rule_frequency": frequency_table(counts),
        "disjointness": disjointness,
        "seed_streams": list(STREAMS if n_val else STREAMS[: -len(VALIDATION_STREAMS)]),
    }
    return Dataset(spec=spec, splits=splits, manifest=manifest, rules=table)


def program_examples(
    spec: DatasetSpec, family: ProgramFamily, pool: ProgramTable, n: int, rng: np.random.Generator
) -> ProgramSplit:
    """`n` fresh examples of programs drawn uniformly from `pool`, in the family's step range."""
    per_program = np.bincount(rng.integers(0, len(pool), size=n), minlength=len(pool))
    sampler = ProgramSampler(spec, family)
    args = (pool.program, pool.rule_id, per_program, pool.train_count, rng, family.steps, spec.input_len)
    split, _ = sampler.split(*args, ood=False)
    return split


def verify_programs_disjoint(
    train: list[MarkovProgram],
    heldout: list[MarkovProgram],
    strict: list[MarkovProgram],
    validation: Sequence[MarkovProgram] = (),
) -> dict[str, int]:
    """Recheck what sampling guaranteed: no held-out program is a training program, no rule pattern of a
    strict program occurs in a training program, and no validation program is in another pool."""
    train_set = set(train)
    train_patterns = {rule.pattern for program in train for rule in program.rules}
    strict_patterns = {rule.pattern for program in strict for rule in program.rules}
    result = {
        "heldout_programs_in_train": sum(p in train_set for p in heldout),
        "strict_programs_in_train": sum(p in train_set for p in strict),
        "strict_patterns_in_train": len(strict_patterns & train_patterns),
        "train_programs": len(train_set),
        "heldout_programs": len(set(heldout)),
        "strict_programs": len(set(strict)),
        "strict_patterns": len(strict_patterns),
    }
    if validation:
        result.update(
            validation_programs_in_train=sum(p in train_set for p in validation),
            validation_programs_in_heldout=len(set(validation) & set(heldout)),
            validation_programs_in_strict=len(set(validation) & set(strict)),
            validation_programs=len(set(validation)),
        )
    overlap = {k: v for k, v in result.items() if "_in_" in k and v}
    if overlap:
        raise RuntimeError(f"held-out programs overlap training: {overlap} (a generator bug)")
    return result


def _summary(split: ProgramSplit, programs: int) -> dict[str, int]:
    steps = split.steps
    return {
        "examples": len(split),
        "rules": programs,
        "min_steps": int(steps.min()) if len(steps) else 0,
        "max_steps": int(steps.max()) if len(steps) else 0,
    }
