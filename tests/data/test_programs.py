"""Program datasets: answers from the interpreter, disjoint pools, OOD splits, determinism, bad input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rewritelab.cli import main
from rewritelab.config import from_dict
from rewritelab.data import (
    DatasetSpec,
    MarkovProgram,
    ProgramFamily,
    Rule,
    StepLimitError,
    execute,
    generate_dataset,
    load_dataset,
    write_dataset,
)
from rewritelab.errors import UserError

FAMILY = {
    "name": "program",
    "k": [2, 3],
    "terminating": 0.2,
    "steps": [1, 3],
    "max_steps": 12,
    "max_len": 14,
    "test_steps": [4, 6],
    "test_input_len": [9, 11],
    "strict": 4,
}
DATA = {
    "alphabet": "abcd",
    "input_len": [4, 8],
    "pattern_len": [1, 2],
    "replacement_len": [0, 2],
    "family": FAMILY,
    "num_rules": 20,
    "budget": 200,
    "test_rules": 8,
    "test_examples_per_rule": 3,
}


def spec_of(data: dict | None = None, **family) -> DatasetSpec:
    data = {**DATA, **(data or {}), "family": {**FAMILY, **family}}
    return from_dict(DatasetSpec, data, "data")


@pytest.fixture(scope="module")
def dataset():
    return generate_dataset(spec_of())


def test_every_answer_and_trace_comes_from_the_interpreter(dataset):
    family = dataset.spec.family
    for name, split in dataset.splits.items():
        assert len(split) > 0, name
        for row in split.rows():
            program = MarkovProgram([Rule(**r) for r in row["program"]])
            steps = [s.text for s in program.trace(row["input"], family.max_steps)]
            assert row["trace"] == steps
            assert row["output"] == program.run(row["input"], family.max_steps) == steps[-1]
            assert row["steps"] == len(steps) and row["k"] == len(program.rules)
            assert max(map(len, steps)) <= family.max_len


def test_splits_have_the_requested_steps_and_lengths(dataset):
    s = dataset.splits
    for name in ("train", "test_seen", "test_unseen", "test_unseen_strict", "test_ood_length"):
        assert s[name].steps.min() >= 1 and s[name].steps.max() <= 3, name
    assert s["test_ood_steps"].steps.min() >= 4 and s["test_ood_steps"].steps.max() <= 6
    assert {len(x) for x in s["test_ood_length"].input} <= set(range(9, 12))
    assert {len(x) for x in s["train"].input} <= set(range(4, 9))
    assert len(s["train"]) == 200 and len(set(s["train"].rule_id.tolist())) == 20


def test_heldout_pools_are_disjoint_from_training_and_recorded(dataset):
    s = dataset.splits
    train = set(s["train"].program)
    assert train.isdisjoint(s["test_unseen"].program)
    assert train.isdisjoint(s["test_unseen_strict"].program)
    assert set(s["test_seen"].program) <= train
    assert set(s["test_ood_steps"].program) <= set(s["test_unseen"].program)
    train_patterns = {r.pattern for p in train for r in p.rules}
    strict_patterns = {r.pattern for p in s["test_unseen_strict"].program for r in p.rules}
    assert len(strict_patterns) <= 4 and strict_patterns.isdisjoint(train_patterns)
    unseen_patterns = {r.pattern for p in s["test_unseen"].program for r in p.rules}
    assert strict_patterns.isdisjoint(unseen_patterns)
    d = dataset.manifest["disjointness"]
    assert d["heldout_programs_in_train"] == d["strict_patterns_in_train"] == 0
    assert (d["train_programs"], d["heldout_programs"], d["strict_programs"]) == (20, 8, 8)


def test_rules_within_a_program_have_distinct_patterns(dataset):
    for program in dataset.rules.program:
        patterns = [r.pattern for r in program.rules]
        assert len(set(patterns)) == len(patterns)


def file_hashes(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


def test_deterministic_by_seed_and_round_trips_through_files(tmp_path, dataset):
    write_dataset(dataset, tmp_path / "a")
    write_dataset(generate_dataset(spec_of()), tmp_path / "b")
    assert file_hashes(tmp_path / "a") == file_hashes(tmp_path / "b")
    write_dataset(generate_dataset(spec_of({"seed": 1})), tmp_path / "c")
    assert file_hashes(tmp_path / "a")["train.jsonl"] != file_hashes(tmp_path / "c")["train.jsonl"]
    back = load_dataset(tmp_path / "a")
    assert list(back.splits) == list(dataset.splits)
    for name, split in dataset.splits.items():
        assert list(back.splits[name].rows()) == list(split.rows())
    assert list(back.rules.rows()) == list(dataset.rules.rows())
    row = json.loads((tmp_path / "a" / "test_unseen.jsonl").read_text().splitlines()[0])
    assert set(row["program"][0]) == {"pattern", "replacement", "terminating"}


@settings(max_examples=200, deadline=None)
@given(
    rules=st.lists(
        st.tuples(st.text("ab", min_size=1, max_size=2), st.text("ab", max_size=3), st.booleans()),
        min_size=1,
        max_size=3,
    ),
    text=st.text("ab", max_size=8),
    max_steps=st.integers(1, 10),
    max_len=st.integers(1, 12),
)
def test_execute_agrees_with_the_interpreter(rules, text, max_steps, max_len):
    program = MarkovProgram([Rule(*r) for r in rules])
    trace = execute(program, text, max_steps, max_len)
    try:
        steps = [s.text for s in program.trace(text, max_steps)]
    except StepLimitError:
        assert trace is None
        return
    if any(len(s) > max_len for s in steps):
        assert trace is None
    else:
        assert trace == steps
        assert (trace[-1] if trace else text) == program.run(text, max_steps)


@pytest.mark.parametrize(
    ("family", "data", "message"),
    [
        ({"max_steps": 0}, {}, "data.family.max_steps: the step cap must be >= 1"),
        ({"steps": [2, 20]}, {}, "data.family.steps: up to 20 steps exceed the step cap max_steps=12"),
        ({"steps": [0, 2]}, {}, "data.family.steps: executions take at least 1 step"),
        ({"test_steps": [2, 5]}, {}, "data.family.test_steps: out-of-distribution executions must be longer"),
        ({"test_input_len": [6, 10]}, {}, "data.family.test_input_len: out-of-distribution inputs must be"),
        (
            {"max_len": 6, "test_input_len": None},
            {},
            "data.input_len: inputs of up to 8 characters exceed family.max_len=6",
        ),
        ({"k": [0, 2]}, {}, "data.family.k: a program needs at least 1 rule"),
        ({"terminating": 1.5}, {}, "data.family.terminating: a probability in [0, 1]"),
        ({"strict": 1}, {}, "data.family.strict: 1 reserved patterns cannot make programs of 2"),
        ({}, {"noop_frac": 0.2}, "data.noop_frac: applies to single rewrites only"),
        ({"patterns": "program"}, {}, "data.family.patterns"),
        ({"strict": 20}, {}, "data.family.strict: reserving 20 of the 20 possible rule patterns"),
    ],
)
def test_bad_program_configs_name_the_field(family, data, message):
    with pytest.raises(UserError, match=None) as err:
        generate_dataset(spec_of(data, **family))
    assert str(err.value).startswith(message), str(err.value)


def test_a_family_that_cannot_halt_within_the_caps_is_one_clear_error():
    # Every replacement is longer than its pattern and no rule terminates: strings outgrow max_len.
    spec = spec_of(
        {"replacement_len": [3, 3], "pattern_len": 1},
        terminating=0.0,
        steps=[10, 12],
        test_steps=None,
        strict=0,
    )
    with pytest.raises(UserError, match=r"^data\.num_rules|^data\.test_rules") as err:
        generate_dataset(spec)
    assert "too few programs halt within max_steps=12" in str(err.value)


def test_generate_cli_writes_program_splits_and_bad_input_exits_2(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"data": DATA}), encoding="utf-8")
    assert main(["generate", str(config), "--out", str(tmp_path / "out")]) == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert "test_ood_steps.jsonl" in names and "test_unseen_strict.jsonl" in names
    assert "held-out programs found in training: 0" in capsys.readouterr().out
    args = ["generate", str(config), "--out", str(tmp_path / "bad"), "--set", "data.family.max_steps=0"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data.family.max_steps" in err[0]
    assert not (tmp_path / "bad").exists()


def test_program_family_config_round_trips():
    family = spec_of().family
    assert isinstance(family, ProgramFamily)
    assert from_dict(DatasetSpec, {**DATA, "family": family.to_config()}, "data").family == family
