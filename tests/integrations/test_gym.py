"""reasoning-gym datasets: entries reproducible from (seed, index), metadata to split by, held-out
instructions kept held out, registration with the real reasoning-gym and its composite dataset."""

from __future__ import annotations

import pytest

from rewritelab.config import from_dict
from rewritelab.data import DatasetSpec, generate_dataset
from rewritelab.errors import UserError
from rewritelab.integrations.gym import RewriteTaskConfig, RewriteTaskDataset

reasoning_gym = pytest.importorskip("reasoning_gym")

DATA = {"alphabet": "abcdef", "input_len": [6, 9], "pattern_len": 2, "replacement_len": [1, 3],
        "num_rules": 30, "budget": 300, "test_rules": 10, "noop_frac": 0.25, "occurrences": [1, 2],
        "seed": 4}  # fmt: skip
PROGRAMS = {"alphabet": "abcd", "input_len": [4, 8], "pattern_len": [1, 2], "replacement_len": [0, 2],
            "num_rules": 6, "test_rules": 3, "family": {"name": "program", "k": [2, 3], "terminating": 0.2,
            "steps": [1, 3], "max_steps": 12, "max_len": 14, "strict": 3}}  # fmt: skip


def dataset(split: str = "train", seed: int = 1, size: int = 200, **config) -> RewriteTaskDataset:
    data = config.pop("data", DATA)
    return RewriteTaskDataset(RewriteTaskConfig(data=data, split=split, seed=seed, size=size, **config))


def test_entries_are_a_function_of_seed_and_index():
    a, b = dataset(), dataset()
    assert [b[i] for i in (150, 3, 70)] == [a[150], a[3], a[70]]  # any access order
    assert list(a) == [a[i] for i in range(len(a))] and len(list(a)) == 200
    assert [e["question"] for e in dataset(seed=2)] != [e["question"] for e in a]
    assert a[10_000]["metadata"]["source_index"] == 10_000  # endless: any index is an example


def test_metadata_splits_results_and_answers_verify():
    rows = list(dataset(split="test_unseen"))
    meta = rows[0]["metadata"]
    assert {"rule_id", "heldout", "family", "k", "occurrences", "noop", "split"} <= meta.keys()
    assert all(e["metadata"]["heldout"] and e["metadata"]["split"] == "test_unseen" for e in rows)
    assert 0.15 < sum(e["metadata"]["noop"] for e in rows) / len(rows) < 0.35
    assert {e["metadata"]["occurrences"] for e in rows} == {0, 1, 2}
    ds = dataset(split="test_unseen")
    assert all(ds.score_answer(e["answer"], e) == 1.0 for e in rows)
    applied = next(e for e in rows if not e["metadata"]["noop"])
    assert ds.score_answer(applied["metadata"]["input"], applied) == 0.0


def test_heldout_instructions_never_reach_training():
    spec = from_dict(DatasetSpec, DATA, "data")
    full = generate_dataset(spec).rules  # the pools are those of the dataset generate writes
    heldout = {int(i) for i, s in zip(full.rule_id, full.split, strict=True) if s == "heldout"}
    train = {e["metadata"]["rule_id"] for e in dataset(size=600)}
    unseen = {e["metadata"]["rule_id"] for e in dataset(split="test_unseen", seed=9, size=300)}
    seen = {e["metadata"]["rule_id"] for e in dataset(split="test_seen", size=300)}
    assert unseen == heldout and not train & unseen and seen <= train and len(train) == 30
    train_patterns = {e["metadata"]["pattern"] for e in dataset(size=600)}
    assert not train_patterns & {e["metadata"]["pattern"] for e in dataset(split="test_unseen")}


def test_the_validation_split_draws_only_validation_instructions():
    full = generate_dataset(from_dict(DatasetSpec, DATA, "data")).rules
    pools = {name: {int(i) for i, s in zip(full.rule_id, full.split, strict=True) if s == name} for name in
             ("train", "heldout", "validation")}  # fmt: skip
    rows = list(dataset(split="validation", size=600))
    assert {e["metadata"]["rule_id"] for e in rows} <= pools["validation"]
    assert all(e["metadata"]["heldout"] and e["metadata"]["split"] == "validation" for e in rows)
    assert not pools["validation"] & (pools["train"] | pools["heldout"])
    with pytest.raises(UserError, match="validation needs data.validation_rules > 0"):
        dataset(split="validation", data={**DATA, "validation_rules": 0})


def test_program_splits_carry_k_and_steps():
    strict = list(dataset(split="test_unseen_strict", size=40, data=PROGRAMS))
    train = list(dataset(size=100, data=PROGRAMS))
    assert all(e["metadata"]["k"] == len(e["metadata"]["program"]) >= 2 for e in strict)
    assert {e["metadata"]["steps"] for e in train} <= {1, 2, 3}
    assert not {e["metadata"]["rule_id"] for e in train} & {e["metadata"]["rule_id"] for e in strict}
    assert all(dataset(data=PROGRAMS).score_answer(e["answer"], e) == 1.0 for e in strict)


def test_registered_with_reasoning_gym_and_composed_with_its_tasks():
    config = {"data": DATA, "split": "test_unseen", "task": "encrypted", "seed": 5, "size": 20}
    ours = reasoning_gym.create_dataset("rewritelab", **config)
    assert (
        isinstance(ours, reasoning_gym.dataset.ProceduralDataset)
        and ours[0] == dataset(split="test_unseen", seed=5, size=20, task="encrypted")[0]
    )
    from reasoning_gym.composite import CompositeConfig, CompositeDataset
    from reasoning_gym.composite import DatasetSpec as GymSpec

    mixed = CompositeDataset(CompositeConfig(size=60, seed=0, datasets=[
        GymSpec("rewritelab", 1.0, {"data": DATA, "split": "train"}),
        GymSpec("basic_arithmetic", 1.0, {}),
    ]))  # fmt: skip
    sources = [e["metadata"]["source_dataset"] for e in mixed]
    assert {"rewritelab", "basic_arithmetic"} == set(sources)
    for e in mixed:
        assert mixed.score_answer(e["answer"], e) == 1.0
        if e["metadata"]["source_dataset"] == "rewritelab":
            assert mixed.score_answer(e["answer"] + "a", e) == 0.0  # no credit for containing the target


def test_shaped_reward_only_when_asked():
    entry = dataset()[0]
    wrong = entry["answer"] + "x"
    assert dataset().score_answer(wrong, entry) == 0.0
    assert 0.0 < dataset(shaped_reward=True).score_answer(wrong, entry) < 1.0


@pytest.mark.parametrize(
    ("config", "match"),
    [({"split": "dev"}, "split"), ({"data": {**DATA, "rule_distribution": "powerlaw"}}, "uniformly"),
     ({"split": "test_unseen_strict"}, "strict"), ({"data": {**DATA, "num_rules": 0}}, "num_rules")],
)  # fmt: skip
def test_bad_configs_are_user_errors(config, match):
    with pytest.raises(UserError, match=match):
        dataset(**config)
