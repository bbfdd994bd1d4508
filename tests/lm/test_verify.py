"""The verifier: strict exact match recomputed from each entry's own instruction (rewriter, interpreter,
cipher), raw model text unwrapped, the optional shaped reward; property tests against the rewriter and
the Markov interpreter."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from rewritelab.config import from_dict
from rewritelab.data import (
    DatasetSpec,
    MarkovProgram,
    Rule,
    StepLimitError,
    apply_once,
    generate_dataset,
    program_rows,
)
from rewritelab.errors import UserError
from rewritelab.lm import cipher_table, edit_similarity, entries, extract_answer, score_answer, task_dataset
from rewritelab.lm.prompts import spell

ALPHABET = "abcd"
words = st.text(alphabet=ALPHABET, max_size=8)
DATA = {"alphabet": "abcdef", "input_len": 6, "pattern_len": 2, "replacement_len": 3, "num_rules": 4,
        "budget": 40, "test_rules": 2, "test_examples_per_rule": 5, "noop_frac": 0.4, "seed": 0}  # fmt: skip
PROGRAMS = {"alphabet": "abcd", "input_len": [4, 8], "pattern_len": [1, 2], "replacement_len": [0, 2],
            "num_rules": 6, "budget": 30, "test_rules": 3, "test_examples_per_rule": 3,
            "family": {"name": "program", "k": [2, 3], "terminating": 0.2, "steps": [1, 3], "max_steps": 12,
                       "max_len": 14}}  # fmt: skip


def rewrite_entry(pattern: str, replacement: str, text: str, **meta) -> dict:
    return {"metadata": {"pattern": pattern, "replacement": replacement, "input": text, **meta}}


def wrappings(answer: str) -> list:
    """Ways a model's raw output may carry the answer: our plain template's cue and space, chat headers
    and end-of-turn tokens, TRL's conversational completions."""
    return [
        answer, f" {answer}", f"Answer: {answer}\n", f"<|im_start|>assistant\n{answer}<|im_end|>",
        f"{answer}<|endoftext|>", [{"role": "assistant", "content": answer}],
    ]  # fmt: skip


@given(st.text(alphabet=ALPHABET, min_size=1, max_size=3), words, words, words)
def test_rewrite_scores_one_exactly_for_the_reference_rewrite(pattern, replacement, text, other):
    entry = rewrite_entry(pattern, replacement, text)
    target = apply_once(pattern, replacement, text)
    assert all(score_answer(a, entry) == 1.0 for a in wrappings(target))
    assume(other != target)
    assert score_answer(other, entry) == 0.0
    assert score_answer(f"Answer: {other}", entry) == 0.0
    assert 0.0 <= score_answer(other, entry, shaped=True) < 1.0


@given(st.text(alphabet=ALPHABET, min_size=1, max_size=3), words, words)
def test_copying_the_input_earns_nothing_where_the_rule_applies(pattern, replacement, text):
    entry = rewrite_entry(pattern, replacement, pattern + text)
    assume(apply_once(pattern, replacement, pattern + text) != pattern + text)
    assert score_answer(pattern + text, entry) == 0.0  # reasoning-gym's default would give partial credit


rules = st.builds(Rule, st.text(alphabet=ALPHABET, min_size=1, max_size=2), st.text(ALPHABET, max_size=2),
                  st.booleans())  # fmt: skip


@given(st.lists(rules, min_size=1, max_size=4), words, words)
def test_program_scores_one_exactly_for_the_interpreters_result(program_rules, text, other):
    program = MarkovProgram(program_rules)
    try:
        target = program.run(text, max_steps=20)
    except StepLimitError:
        assume(False)
    entry = {"metadata": {"program": program_rows(program), "input": text, "max_steps": 20}}
    assert all(score_answer(a, entry) == 1.0 for a in wrappings(target))
    assume(other != target)
    assert score_answer(other, entry) == 0.0


@given(st.text(alphabet=ALPHABET, min_size=1, max_size=3), words, words, st.integers(0, 50))
def test_encrypted_task_needs_the_enciphered_rewrite(pattern, replacement, text, seed):
    entry = rewrite_entry(pattern, replacement, text, task="encrypted", alphabet=ALPHABET, cipher_seed=seed)
    plain = apply_once(pattern, replacement, text)
    secret = plain.translate(cipher_table(ALPHABET, seed))
    assert score_answer(secret, entry) == 1.0
    assert score_answer(plain, entry) == float(plain == secret)


@given(words, words)
def test_spaced_letters_are_read_back(text, replacement):
    entry = rewrite_entry("a", replacement, text, letters="spaced")
    target = apply_once("a", replacement, text)
    assert score_answer(spell(target, True), entry) == 1.0
    assert score_answer(" " + spell(target, True), entry) == 1.0


@given(words, words)
def test_shaped_reward_is_one_only_for_equal_strings(a, b):
    similarity = edit_similarity(a, b)
    assert 0.0 <= similarity <= 1.0 and (similarity == 1.0) == (a == b)
    assert similarity == edit_similarity(b, a)


def test_shaped_reward_counts_edits():
    entry = rewrite_entry("b", "xx", "abc")  # target "axxc"
    assert score_answer("axc", entry) == 0.0
    assert score_answer("axc", entry, shaped=True) == pytest.approx(0.75)
    assert score_answer(None, entry, shaped=True) == 0.0


def test_every_generated_example_verifies():
    """The verifier agrees with the outputs evaluation scores against (rewrites, programs, encrypted)."""
    for data, task in ((DATA, "rewrite"), (DATA, "encrypted"), (PROGRAMS, "rewrite")):
        spec = from_dict(DatasetSpec, data, "data")
        plain = generate_dataset(spec)
        stored = task_dataset(plain, task, 5)
        max_steps = spec.programs.max_steps if spec.programs else 0
        for name, split in plain.splits.items():
            rows = list(entries(split, name, task, 5, spec.alphabet, max_steps=max_steps))
            assert rows and [e["answer"] for e in rows] == list(stored.splits[name].output)
            outputs = stored.splits[name].output
            assert all(score_answer(y, e) == 1.0 for y, e in zip(outputs, rows, strict=True))
            assert all(e["metadata"]["heldout"] == (name in ("test_unseen", "validation")) for e in rows)


def test_program_entries_carry_what_a_trainer_splits_by():
    spec = from_dict(DatasetSpec, PROGRAMS, "data")
    entry = next(entries(generate_dataset(spec).splits["test_unseen"], "test_unseen", max_steps=12))
    meta = entry["metadata"]
    assert meta["heldout"] and meta["k"] == len(meta["program"]) and meta["steps"] >= 1
    assert "Run this Markov algorithm" in entry["question"] and meta["source_dataset"] == "rewritelab"


def test_extract_answer_takes_the_last_assistant_message_and_rejects_non_text():
    said = [{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}, {"role": "assistant",
            "content": " z<|im_end|>"}]  # fmt: skip
    assert extract_answer(said) == "z"
    assert extract_answer([{"role": "user", "content": "y"}]) is None and extract_answer(3) is None


def test_entries_that_are_not_ours_are_user_errors():
    with pytest.raises(UserError, match="metadata"):
        score_answer("abc", {"question": "q", "answer": "abc"})
    with pytest.raises(UserError, match="rewritelab instruction"):
        score_answer("abc", {"metadata": {"input": "abc"}})
