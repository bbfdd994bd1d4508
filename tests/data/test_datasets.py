"""DatasetSpec → Dataset: every example checked against the reference rewriter, splits, counts, files."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_families import enumerate_family

from rewritelab.config import from_dict, to_dict
from rewritelab.data import (
    COLUMNS,
    DATA_FILES,
    Component,
    Context,
    Dataset,
    DatasetSpec,
    Family,
    IntRange,
    MixedFamily,
    RandomFamily,
    RepeatedFamily,
    Split,
    apply_once,
    count_occurrences,
    dataset_stats,
    generate_dataset,
    gini,
    largest_remainder,
    load_dataset,
    training_counts,
    write_dataset,
)
from rewritelab.errors import UserError


def spec_of(**data) -> DatasetSpec:
    return from_dict(DatasetSpec, data, "data")


SMALL = dict(
    alphabet="abcdef",
    input_len=[8, 12],
    pattern_len=[2, 4],
    replacement_len=[1, 4],
    num_rules=50,
    budget=1000,
    test_rules=20,
    test_examples_per_rule=5,
)


# ---------------------------------------------------------------------------------------------------------
# The invariants every dataset must satisfy


def check_dataset(ds: Dataset, data: dict) -> None:  # noqa: C901 - one block per invariant
    spec = ds.spec
    alphabet = spec.alphabet
    pattern_len = (spec.pattern_len.lo, spec.pattern_len.hi)
    train_space = enumerate_family(data.get("family", "random"), alphabet, pattern_len)
    test_space = enumerate_family(
        data.get("test_family") or data.get("family", "random"), alphabet, pattern_len
    )
    occ_train = set(spec.occurrences.counts)
    occ_test = set(spec.test_occurrence_counts.counts)
    rules = ds.rules
    train_ids = {i for i, s in zip(rules.rule_id.tolist(), rules.split, strict=True) if s == "train"}
    counts = dict(zip(rules.rule_id.tolist(), rules.train_count.tolist(), strict=True))

    # Rule pools: distinct rules, the right sizes, held-out patterns never training patterns.
    train_patterns = {p for p, s in zip(rules.pattern, rules.split, strict=True) if s == "train"}
    heldout_patterns = {p for p, s in zip(rules.pattern, rules.split, strict=True) if s == "heldout"}
    val_patterns = {p for p, s in zip(rules.pattern, rules.split, strict=True) if s == "validation"}
    pools = spec.num_rules + spec.test_rules + spec.validation_rules
    assert len(train_ids) == spec.num_rules and len(rules) == pools
    assert len(set(zip(rules.pattern, rules.replacement, strict=True))) == len(rules)
    assert not train_patterns & heldout_patterns
    assert not val_patterns & (train_patterns | heldout_patterns)
    disjointness = ds.manifest["disjointness"]
    assert disjointness["heldout_patterns_in_train"] == 0
    if spec.validation_rules:
        assert (
            disjointness["validation_patterns_in_train"]
            == disjointness["validation_patterns_in_heldout"]
            == 0
        )
        assert disjointness["validation_rules"] == spec.validation_rules
    else:
        assert "validation" not in ds.splits and not any(k.startswith("validation") for k in disjointness)
    assert sum(counts[i] for i in train_ids) == spec.train_examples

    for name, split in ds.splits.items():
        allowed = occ_train if name == "train" else occ_test
        space = test_space if name in ("test_unseen", "validation") else train_space
        rule_of = {}
        for row in split.rows():
            p, r, x = row["pattern"], row["replacement"], row["input"]
            assert row["output"] == apply_once(p, r, x)
            assert row["occurrences"] == count_occurrences(p, x)
            assert row["noop"] == (p not in x)
            if not row["noop"]:
                assert row["occurrences"] in allowed
            assert spec.input_len.lo <= len(x) <= spec.input_len.hi
            assert spec.replacement_len.lo <= len(r) <= spec.replacement_len.hi
            assert set(x) <= set(alphabet) and set(r) <= set(alphabet)
            assert p in space
            assert row["train_count"] == counts[row["rule_id"]]
            rule_of.setdefault(row["rule_id"], (p, r))
            assert rule_of[row["rule_id"]] == (p, r)
        assert len(set(rule_of.values())) == len(rule_of)  # distinct rules within the split
        assert int(split.noop.sum()) == round(spec.noop_frac * len(split))

    train, seen, unseen = ds.splits["train"], ds.splits["test_seen"], ds.splits["test_unseen"]
    assert len(train) == spec.train_examples
    assert Counter(train.rule_id.tolist()) == {i: counts[i] for i in train_ids if counts[i] > 0}
    eligible = {i for i in train_ids if counts[i] > 0}
    assert set(seen.rule_id.tolist()) <= eligible
    assert len(seen) == min(spec.test_rules, len(eligible)) * spec.test_examples_per_rule
    assert len(unseen) == spec.test_rules * spec.test_examples_per_rule
    assert not set(unseen.rule_id.tolist()) & train_ids
    assert not set(unseen.pattern) & set(train.pattern)
    if spec.validation_rules:
        validation = ds.splits["validation"]
        assert len(validation) == spec.validation_rules * spec.validation_examples_per_rule
        assert Counter(validation.rule_id.tolist()) == {
            i: spec.validation_examples_per_rule for i in range(pools - spec.validation_rules, pools)
        }
        assert not set(validation.train_count.tolist()) - {0}


# ---------------------------------------------------------------------------------------------------------
# Property test over small specs (tiny alphabets, short strings, every family)

ALPHABETS = ["ab", "abc", 'x"\\', "αβγ"]


@st.composite
def block_family_configs(draw):
    name = draw(st.sampled_from(["random", "repeated", "periodic", "mirrored"]))
    if name == "random":
        return "random"
    k_lo = draw(st.integers(1, 2))
    b_lo = draw(st.integers(2 if name == "mirrored" else 1, 2))
    return {
        "name": name,
        "k": [k_lo, k_lo + draw(st.integers(0, 1))],
        "block_len": [b_lo, b_lo + draw(st.integers(0, 1))],
    }


@st.composite
def family_configs(draw):
    if draw(st.integers(0, 4)) > 0:
        return draw(block_family_configs())
    components = [draw(block_family_configs()) for _ in range(2)]
    components[1] = {"name": components[1]} if isinstance(components[1], str) else dict(components[1])
    components[1]["weight"] = draw(st.sampled_from([1, 2.5]))
    return {"name": "mixed", "components": components}


@st.composite
def small_specs(draw):
    alphabet = draw(st.sampled_from(ALPHABETS))
    p_lo = draw(st.integers(1, 3))
    pattern_len = [p_lo, p_lo + draw(st.integers(0, 1))]
    family = draw(family_configs())
    test_family = draw(family_configs()) if draw(st.booleans()) else None
    counts = draw(st.lists(st.integers(1, 3), min_size=1, max_size=2, unique=True))
    occurrences = counts if len(counts) > 1 or draw(st.booleans()) else counts[0]
    if len(counts) > 1 and draw(st.booleans()):
        occurrences = {"counts": counts, "weights": [1, 3]}
    test_occurrences = draw(st.sampled_from([None, 1, [1, 2, 3]]))

    ctx = Context(len(alphabet), IntRange(*pattern_len))
    longest = max(Family.from_config(f or family, "f").length_range(ctx).hi for f in (family, test_family))
    most = max(counts + ([1, 2, 3] if test_occurrences else []))
    in_lo = most * (longest + 1) + draw(st.integers(0, 2))  # room for a gap between copies
    input_len = [in_lo, in_lo + draw(st.integers(0, 3))]

    replacement_len = draw(st.sampled_from([[1, 1], [0, 2], [1, 2]]))
    replacements = sum(len(alphabet) ** n for n in range(replacement_len[0], replacement_len[1] + 1))
    train_space = len(enumerate_family(family, alphabet, tuple(pattern_len)))
    test_space = len(enumerate_family(test_family or family, alphabet, tuple(pattern_len)))
    test_rules = draw(st.integers(1, max(1, min(6, test_space * replacements, train_space - 1))))
    room = (train_space - test_rules) * replacements  # held-out rules use at most test_rules patterns
    assume(room >= 1)
    num_rules = draw(st.integers(1, max(1, min(40, room))))
    near_capacity = draw(st.booleans()) and room <= 40
    if near_capacity:
        num_rules = room
    # Validation rules need patterns of their own: each other rule takes at most one of the test family's.
    free = (test_space - test_rules - num_rules) * replacements
    validation_rules = draw(st.integers(0, max(0, min(3, free))))
    data = dict(
        alphabet=alphabet,
        input_len=input_len,
        pattern_len=pattern_len,
        replacement_len=replacement_len,
        family=family,
        test_family=test_family,
        num_rules=num_rules,
        noop_frac=draw(st.sampled_from([0.0, 0.25, 0.5])),
        rule_distribution=draw(st.sampled_from(["uniform", "powerlaw"])),
        alpha=draw(st.sampled_from([0.1, 1.0, 3.0])),
        occurrences=occurrences,
        test_occurrences=test_occurrences,
        test_rules=test_rules,
        test_examples_per_rule=draw(st.integers(1, 4)),
        validation_rules=validation_rules,
        validation_examples_per_rule=draw(st.integers(1, 3)),
        seed=draw(st.integers(0, 2**31)),
    )
    if draw(st.booleans()):
        data["budget"] = num_rules * draw(st.integers(1, 6)) + draw(st.integers(0, 5))
    else:
        data["budget"] = None
        data["examples_per_rule"] = draw(st.integers(1, 5))
    return data


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=small_specs())
def test_generated_datasets_satisfy_every_invariant(data):
    check_dataset(generate_dataset(spec_of(**data)), data)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31), test_rules=st.integers(1, 3), pattern_len=st.sampled_from([[1, 2], [2, 2]])
)
def test_disjointness_at_full_capacity(seed, test_rules, pattern_len):
    """Tiny alphabet, every possible training rule requested: held-out patterns still never leak."""
    patterns = 2 ** pattern_len[1] + (2 if pattern_len[0] == 1 else 0)
    data = dict(
        alphabet="ab",
        input_len=[5, 6],
        pattern_len=pattern_len,
        replacement_len=1,
        num_rules=(patterns - test_rules) * 2,  # held-out rules use at most test_rules patterns
        budget=None,
        examples_per_rule=2,
        test_rules=test_rules,
        test_examples_per_rule=2,
        validation_rules=0,  # no room left
        seed=seed,
    )
    check_dataset(generate_dataset(spec_of(**data)), data)


def test_exact_capacity_is_checked_after_the_heldout_rules_are_drawn():
    """2 patterns × 2 replacements: 2 held-out rules leave 2 or 0 training rules, depending on the draw."""
    outcomes = set()
    for seed in range(30):
        data = dict(
            alphabet="ab",
            input_len=4,
            pattern_len=1,
            replacement_len=1,
            num_rules=2,
            budget=4,
            validation_rules=0,
        )
        try:
            check_dataset(
                generate_dataset(spec_of(**data, test_rules=2, seed=seed)), data | {"test_rules": 2}
            )
            outcomes.add("ok")
        except UserError as e:
            assert str(e).startswith("data.num_rules: the 2 held-out rules use 2 patterns")
            outcomes.add("error")
    assert outcomes == {"ok", "error"}


# ---------------------------------------------------------------------------------------------------------
# Training counts


@given(
    weights=st.lists(st.floats(0.0, 1e6, allow_nan=False), min_size=1, max_size=50).filter(
        lambda w: sum(w) > 0
    ),
    total=st.integers(0, 10**7),
)
def test_largest_remainder_sums_exactly_and_stays_within_one(weights, total):
    w = np.array(weights)
    counts = largest_remainder(w, total)
    assert counts.sum() == total
    assert np.all(np.abs(counts - w / w.sum() * total) < 1 + 1e-6)


def test_uniform_counts_spread_the_remainder():
    counts = training_counts(7, 100, "uniform", 1.0, np.random.default_rng(0))
    assert counts.sum() == 100 and set(counts.tolist()) == {14, 15} and (counts == 15).sum() == 2


def test_smaller_alpha_is_more_skewed_on_the_same_seed():
    alphas = [4.0, 1.0, 0.5, 0.2, 0.1, 0.03]
    tables = [training_counts(1000, 10**6, "powerlaw", a, np.random.default_rng(3)) for a in alphas]
    assert all(t.sum() == 10**6 for t in tables)
    top10 = [np.sort(t)[::-1][:100].sum() / 10**6 for t in tables]
    ginis = [gini(t) for t in tables]
    assert all(a < b for a, b in zip(top10, top10[1:], strict=False)), top10
    assert all(a < b for a, b in zip(ginis, ginis[1:], strict=False)), ginis
    assert top10[0] < 0.2 and top10[-1] > 0.9


def test_powerlaw_dataset_manifest_and_uniform_reference():
    skewed = generate_dataset(spec_of(**SMALL, rule_distribution="powerlaw", alpha=0.1))
    flat = generate_dataset(spec_of(**SMALL))
    freq, flat_freq = skewed.manifest["rule_frequency"], flat.manifest["rule_frequency"]
    assert sum(freq["histogram"].values()) == 50
    assert freq["top_10pct_share"] > 0.3 > flat_freq["top_10pct_share"] == 0.1
    assert flat_freq["histogram"] == {"20": 50} and flat_freq["gini"] == 0.0
    assert len(skewed.splits["train"]) == 1000
    check_dataset(skewed, SMALL)


# ---------------------------------------------------------------------------------------------------------
# Splits, determinism, streams


def test_noops_and_occurrence_mixture():
    data = dict(
        SMALL,
        input_len=[12, 14],
        pattern_len=2,
        noop_frac=0.3,
        occurrences={"counts": [1, 4], "weights": [9, 1]},
    )
    ds = generate_dataset(spec_of(**dict(data, budget=5000)))
    train = ds.splits["train"]
    assert int(train.noop.sum()) == 1500
    applied = Counter(train.occurrences[~train.noop].tolist())
    assert set(applied) == {1, 4} and 0.85 < applied[1] / 3500 < 0.95
    check_dataset(ds, data)


def test_same_spec_same_dataset_and_streams_are_independent():
    a, b = generate_dataset(spec_of(**SMALL)), generate_dataset(spec_of(**SMALL))
    for name in a.splits:
        assert list(a.splits[name].rows()) == list(b.splits[name].rows())
    other_seed = generate_dataset(spec_of(**SMALL, seed=1))
    assert other_seed.splits["train"].input != a.splits["train"].input
    # Changing only I keeps the held-out rules and the test_unseen split (their own seed streams).
    more_rules = generate_dataset(spec_of(**dict(SMALL, num_rules=100)))
    unseen_a, unseen_b = a.splits["test_unseen"], more_rules.splits["test_unseen"]
    assert unseen_a.input == unseen_b.input and unseen_a.pattern == unseen_b.pattern


def test_split_api():
    split = generate_dataset(spec_of(**SMALL)).splits["test_unseen"]
    rows = list(split.rows())
    assert len(rows) == len(split) == 100
    assert list(rows[0]) == list(COLUMNS)
    json.dumps(rows)  # JSON-ready: Python ints and bools
    sub = split.subset([5, 2])
    assert isinstance(sub, Split) and len(sub) == 2
    assert list(sub.rows()) == [rows[5], rows[2]]
    assert len(split.subset([])) == 0


def test_direct_spec_is_validated_by_generate():
    with pytest.raises(UserError, match=r"^data\.alpha: must be > 0"):
        generate_dataset(DatasetSpec(alpha=0.0))
    bad_k = RepeatedFamily(k=IntRange(0, 2))
    with pytest.raises(UserError, match=r"^data\.test_family\.k: must be >= 1"):
        generate_dataset(DatasetSpec(test_family=bad_k))
    mixed = MixedFamily((Component(RandomFamily()), Component(bad_k, 2.0)))
    with pytest.raises(UserError, match=r"^data\.family\.components\[1\]\.k: must be >= 1"):
        generate_dataset(DatasetSpec(family=mixed))


def test_default_spec_is_the_paper_setting():
    spec = DatasetSpec()
    assert (spec.alphabet, spec.input_len, spec.pattern_len, spec.replacement_len) == (
        "abcdefghijklmnopqrstuvwxyz",
        IntRange(50, 50),
        IntRange(20, 20),
        IntRange(1, 20),
    )
    assert (spec.num_rules, spec.train_examples, spec.test_rules, spec.test_examples_per_rule) == (
        1000,
        10**6,
        100,
        10,
    )
    assert from_dict(DatasetSpec, to_dict(spec), "data") == spec
    spec.validate()


# ---------------------------------------------------------------------------------------------------------
# Files


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_files_are_byte_identical_for_the_same_seed(tmp_path):
    write_dataset(generate_dataset(spec_of(**SMALL)), tmp_path / "a")
    write_dataset(generate_dataset(spec_of(**SMALL)), tmp_path / "b")
    write_dataset(generate_dataset(spec_of(**SMALL, seed=1)), tmp_path / "c")
    names = [*DATA_FILES, "manifest.json"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(names)
    for name in names:
        assert sha(tmp_path / "a" / name) == sha(tmp_path / "b" / name)
    for name in DATA_FILES:
        assert sha(tmp_path / "a" / name) != sha(tmp_path / "c" / name)
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    for name in DATA_FILES:
        assert manifest["files"][name]["sha256"] == sha(tmp_path / "a" / name)
    assert manifest["splits"]["train"] == {"examples": 1000, "rules": 50, "noops": 0}
    assert manifest["spec"]["num_rules"] == 50 and manifest["rewritelab_version"]


def test_load_round_trips_and_lines_are_json(tmp_path):
    data = dict(
        SMALL, alphabet='ab"\\é', noop_frac=0.2, family={"name": "periodic", "k": [1, 2], "block_len": [1, 2]}
    )
    ds = generate_dataset(spec_of(**data))
    write_dataset(ds, tmp_path / "d")
    for line in (tmp_path / "d" / "train.jsonl").read_text("utf-8").splitlines():
        assert list(json.loads(line)) == list(COLUMNS)
    back = load_dataset(tmp_path / "d")
    assert back.spec == ds.spec
    for name in ds.splits:
        assert list(back.splits[name].rows()) == list(ds.splits[name].rows())
    assert list(back.rules.rows()) == list(ds.rules.rows())
    assert "train" in dataset_stats(back)


def test_rules_file_lists_every_rule(tmp_path):
    ds = generate_dataset(spec_of(**SMALL, rule_distribution="powerlaw", alpha=0.05))
    write_dataset(ds, tmp_path / "d")
    rules = [json.loads(line) for line in (tmp_path / "d" / "rules.jsonl").read_text().splitlines()]
    assert Counter(r["split"] for r in rules) == {"train": 50, "heldout": 20, "validation": 200}
    assert any(r["train_count"] == 0 for r in rules if r["split"] == "train")  # skewed: some rules unused
    assert sum(r["train_count"] for r in rules) == 1000


@pytest.mark.parametrize("damage", ["missing", "edited", "manifest"])
def test_load_rejects_damaged_datasets(tmp_path, damage):
    write_dataset(generate_dataset(spec_of(**SMALL)), tmp_path / "d")
    target = tmp_path / "d" / ("manifest.json" if damage == "manifest" else "test_seen.jsonl")
    if damage == "missing":
        target.unlink()
    else:
        target.write_bytes(target.read_bytes()[:-40])
    with pytest.raises(UserError, match=r"regenerate the dataset"):
        load_dataset(tmp_path / "d")


def test_load_missing_dir(tmp_path):
    with pytest.raises(UserError, match="not a rewritelab dataset"):
        load_dataset(tmp_path / "nowhere")


def test_write_refuses_a_foreign_directory_and_replaces_a_dataset(tmp_path):
    ds = generate_dataset(spec_of(**SMALL))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not a rewritelab dataset"):
        write_dataset(ds, foreign)
    assert (foreign / "notes.txt").read_text() == "mine"
    write_dataset(ds, tmp_path / "d")
    write_dataset(generate_dataset(spec_of(**SMALL, seed=4)), tmp_path / "d")
    assert load_dataset(tmp_path / "d").spec.seed == 4


def test_hf_export_loads_with_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = generate_dataset(spec_of(**SMALL, noop_frac=0.1))
    write_dataset(ds, tmp_path / "d", hf=True)
    hf = datasets.load_from_disk(str(tmp_path / "d" / "hf"))
    assert set(hf) == {"train", "validation", "test_seen", "test_unseen"}  # HF's name for it
    assert hf["train"].num_rows == 1000
    assert hf["test_unseen"][3] == list(ds.splits["test_unseen"].rows())[3]
