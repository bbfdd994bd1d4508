"""The validation split: held-out rules (programs) of its own, disjoint from training and test_unseen and
recorded so in the manifest, drawn from streams after the others so every other split keeps its bytes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from rewritelab.config import from_dict
from rewritelab.data import (
    DatasetSpec,
    apply_once,
    dataset_stats,
    generate_dataset,
    load_dataset,
    manifest_without_validation,
    without_validation,
    write_dataset,
)

REPEATED = {"name": "repeated", "k": 2, "pattern_len": 4}
SPECS = {
    "plain": dict(
        alphabet="abcdef", input_len=[8, 12], pattern_len=[2, 4], replacement_len=[1, 4], num_rules=50,
        budget=1000, test_rules=20, test_examples_per_rule=5, seed=3,
    ),
    "mixed": dict(
        alphabet="abcdefgh", input_len=[12, 16], pattern_len=4, replacement_len=[0, 3],
        family={"name": "periodic", "k": [2, 4], "pattern_len": 4},
        test_family={"name": "mixed", "components": ["random", REPEATED]},
        num_rules=40, examples_per_rule=7, noop_frac=0.25, rule_distribution="powerlaw", alpha=0.5,
        occurrences=[1, 2], test_occurrences=[1, 2, 3], test_rules=15, test_examples_per_rule=4, seed=11,
    ),
    "programs": dict(
        alphabet="abcd", input_len=[4, 8], pattern_len=[1, 2], replacement_len=[0, 2],
        family={"name": "program", "k": [2, 3], "terminating": 0.2, "steps": [1, 3], "max_steps": 12,
                "max_len": 14, "test_steps": [4, 6], "test_input_len": [9, 11], "strict": 4},
        num_rules=20, budget=200, test_rules=8, test_examples_per_rule=3, seed=5,
    ),
}  # fmt: skip

# SHA-256 of each file these specs gave before validation splits existed (the code of commit 37c70d8).
BEFORE = {
    "plain": {
        "rules.jsonl": "d93889b274dc1baeca93f182b915fa786bf073c4c7ab0c0d6e0fdd6837cb1301",
        "test_seen.jsonl": "07053cb2a6287d1dc50781fb4f96e449abcc26b096c6113ddb470a0f0addb744",
        "test_unseen.jsonl": "ade0c658f36641a3236032d0e6c0e88e0966ceb42d4e4bdc75aafbb96c88a749",
        "train.jsonl": "45b67c388547d90da66b664826278e519e1d115749e89bb92e99e5b2ab4d4b46",
    },
    "mixed": {
        "rules.jsonl": "d605c7c6f2303bb1f972d104b452579e1afa5bef83a090571d24728d76903ea5",
        "test_seen.jsonl": "e6d03401ea88080f0bd424f4c87f265b5aab291f396a6e6b5104cfb615bba535",
        "test_unseen.jsonl": "9baa2f26bda60c983780811447a7e1961f17e5e3d26df8ee568d5d7c2fb0dfdd",
        "train.jsonl": "86ba796b64defbd47c86d9cfbd59710266e8b1cf658ae114e9ced3e06d173c0d",
    },
    "programs": {
        "rules.jsonl": "6fd42fe9f810283f6705f4d1059665b8e6e37d0df0809811876797b355c6b431",
        "test_ood_length.jsonl": "fed64b3d698e44d1d738c56f61c564ae45a3810546c216828da13f977582cb25",
        "test_ood_steps.jsonl": "dcbf2514b79d39085a00d7e8e581e5851dfef29d9f43088f5617efd793dded0a",
        "test_seen.jsonl": "d4c9797d914ee2d477e274414b1f50acd39524e36632d3a0e0231c908685bdb4",
        "test_unseen.jsonl": "7200c5d1d396ae71d9ce1445fd7e1cd824b00c37762de56df87bf4cc110b3ae7",
        "test_unseen_strict.jsonl": "fe53e57d46e5f1b832f4866e56b2607fe3c43ebdf83b64a8f345cdc2f09c6421",
        "train.jsonl": "2c2fc9def16bb1147ed32b7a0e4f6dfeef7c50c7651faf620b3f01ac0186c45f",
    },
}


def spec_of(name: str, **changes) -> DatasetSpec:
    return from_dict(DatasetSpec, {**SPECS[name], **changes}, "data")


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("validation")
    for name in SPECS:
        write_dataset(generate_dataset(spec_of(name)), root / name)
    return {name: root / name for name in SPECS}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_validation_streams_come_after_the_others():
    """SeedSequence children are numbered: spawning two more leaves the first n streams as they were."""
    for seed in (0, 5, 2**31):
        longer, shorter = np.random.SeedSequence(seed).spawn(12), np.random.SeedSequence(seed).spawn(10)
        assert [s.generate_state(4).tolist() for s in longer[:10]] == [
            s.generate_state(4).tolist() for s in shorter
        ]


@pytest.mark.parametrize("name", SPECS)
def test_a_validation_split_leaves_every_other_file_byte_identical(written, name):
    """The splits and rules of the code before validation splits, byte for byte, now with a validation
    split beside them (its rules appended to rules.jsonl)."""
    folder = written[name]
    assert (folder / "validation.jsonl").is_file()
    for file, digest in BEFORE[name].items():
        if file == "rules.jsonl":
            lines = (folder / file).read_bytes().splitlines(keepends=True)
            kept = [line for line in lines if json.loads(line)["split"] != "validation"]
            assert len(kept) < len(lines) and sha256(b"".join(kept)) == digest
        else:
            assert sha256((folder / file).read_bytes()) == digest, file


@pytest.mark.parametrize("name", ["plain", "mixed"])
def test_validation_rules_are_disjoint_from_training_and_test_unseen_in_the_manifest(written, name):
    ds = load_dataset(written[name])
    by_split = {}
    for split, pattern in zip(ds.rules.split, ds.rules.pattern, strict=True):
        by_split.setdefault(split, set()).add(pattern)
    assert not by_split["validation"] & (by_split["train"] | by_split["heldout"])
    check = ds.manifest["disjointness"]
    assert check["validation_patterns_in_train"] == check["validation_patterns_in_heldout"] == 0
    assert check["validation_rules"] == ds.spec.validation_rules == 200
    assert check["validation_patterns"] == len(by_split["validation"])
    validation = ds.splits["validation"]
    assert len(validation) == 200 * 5 == ds.manifest["splits"]["validation"]["examples"]
    validation_ids = {
        i for i, s in zip(ds.rules.rule_id.tolist(), ds.rules.split, strict=True) if s == "validation"
    }
    assert set(validation.rule_id.tolist()) == validation_ids
    assert not set(validation.train_count.tolist()) - {0}
    assert all(y == apply_once(p, r, x) for p, r, x, y in zip(*(validation.to_lists()[c] for c in (
        "pattern", "replacement", "input", "output")), strict=True))  # fmt: skip
    assert "validation patterns found in training or held out: 0" in dataset_stats(ds)
    assert list(ds.splits) == ["train", "validation", "test_seen", "test_unseen"]


def test_validation_programs_are_in_no_other_pool_and_use_no_strict_pattern(written):
    ds = load_dataset(written["programs"])
    pools: dict[str, set] = {}
    for split, program in zip(ds.rules.split, ds.rules.program, strict=True):
        pools.setdefault(split, set()).add(program)
    assert len(pools["validation"]) == 200
    assert not pools["validation"] & (pools["train"] | pools["heldout"] | pools["strict"])
    strict_patterns = {rule.pattern for program in pools["strict"] for rule in program.rules}
    assert not strict_patterns & {rule.pattern for program in pools["validation"] for rule in program.rules}
    check = ds.manifest["disjointness"]
    assert check["validation_programs"] == 200 and not any(
        v for k, v in check.items() if k.startswith("validation_programs_in_")
    )
    validation = ds.splits["validation"]
    assert len(validation) == 1000 and all(
        program.run(x, 12) == y
        for program, x, y in zip(validation.program, validation.input, validation.output, strict=True)
    )
    steps = ds.spec.programs.steps
    assert steps.lo <= validation.steps.min() and validation.steps.max() <= steps.hi


@pytest.mark.parametrize("name", SPECS)
def test_the_validation_split_is_deterministic_and_sized_by_its_fields(written, name, tmp_path):
    write_dataset(generate_dataset(spec_of(name)), tmp_path / "again")
    for file in ("validation.jsonl", "rules.jsonl", "manifest.json"):
        assert (tmp_path / "again" / file).read_bytes() == (written[name] / file).read_bytes()
    small = generate_dataset(spec_of(name, validation_rules=7, validation_examples_per_rule=2))
    assert len(small.splits["validation"]) == 14 and small.manifest["splits"]["validation"]["rules"] == 7
    none = generate_dataset(spec_of(name, validation_rules=0))
    assert "validation" not in none.splits and "validation" not in none.rules.split
    assert "validation" not in json.dumps(none.manifest["disjointness"])
    assert none.manifest["seed_streams"] == manifest_without_validation(small.manifest)["seed_streams"]
    for split, table in none.splits.items():
        assert list(table.rows()) == list(small.splits[split].rows())


@pytest.mark.parametrize("name", ["plain", "programs"])
def test_a_dataset_written_before_validation_splits_loads_without_one(written, name, tmp_path):
    """An old dataset directory: no validation file, no validation entries in its manifest or spec."""
    old = tmp_path / "old"
    write_dataset(without_validation(load_dataset(written[name])), old)
    assert "validation" not in (old / "manifest.json").read_text() and not (old / "validation.jsonl").exists()
    ds = load_dataset(old)
    assert ds.spec.validation_rules == 0 and "validation" not in ds.splits
    assert ds.spec == dataclasses.replace(spec_of(name), validation_rules=0)
    for split in ds.splits:
        assert (old / f"{split}.jsonl").read_bytes() == (written[name] / f"{split}.jsonl").read_bytes()
