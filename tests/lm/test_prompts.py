"""Prompt rendering, the encrypted task and the SFT export of `rewritelab generate --format`."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from rewritelab.cli import main
from rewritelab.config import from_dict
from rewritelab.data import DatasetSpec, apply_once, generate_dataset
from rewritelab.lm import cipher_table, instruction, sft_records, task_dataset
from rewritelab.lm.prompts import spell, unspell

DATA = {"alphabet": "abcdef", "input_len": 6, "pattern_len": 2, "replacement_len": 3, "num_rules": 4,
        "budget": 40, "test_rules": 2, "test_examples_per_rule": 5, "noop_frac": 0.4, "seed": 0}  # fmt: skip
SPEC = from_dict(DatasetSpec, DATA, "data")


def test_cipher_is_a_seeded_permutation():
    table = cipher_table("abcdef", 3)
    assert sorted(table.values()) == list("abcdef") and table == cipher_table("abcdef", 3)
    assert table != cipher_table("abcdef", 4)


def test_encrypted_task_enciphers_the_rewrite_and_keeps_the_rest():
    ds = generate_dataset(SPEC)
    enc = task_dataset(ds, "encrypted", 3)
    table = cipher_table("abcdef", 3)
    split, plain = enc.splits["train"], ds.splits["train"]
    for p, r, z, y in zip(split.pattern, split.replacement, split.input, split.output, strict=True):
        assert y == apply_once(p, r, z).translate(table)
    assert split.noop.tolist() == plain.noop.tolist() and 0 < split.noop.mean() < 1
    assert task_dataset(ds, "rewrite", 3) is ds


def test_sft_records_in_both_styles():
    split = generate_dataset(SPEC).splits["test_seen"]
    plain = next(sft_records(split, "instruction", encrypted=False))
    assert plain["prompt"].startswith(
        instruction(split.pattern[0], split.replacement[0], split.input[0], False)
    )
    assert plain["prompt"].endswith("Answer:") and plain["completion"] == " " + split.output[0]
    chat = next(sft_records(split, "chat", encrypted=True))
    assert [m["role"] for m in chat["prompt"] + chat["completion"]] == ["user", "assistant"]
    assert chat["completion"][0]["content"] == split.output[0]
    assert chat["prompt"][0]["content"].endswith("Then encrypt the result.")


def test_generate_format_chat_writes_sft_files(tmp_path, capsys):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"data": DATA}))
    assert main(["generate", str(config), "--out", str(tmp_path / "d"), "--format", "chat"]) == 0
    for name in ("train", "test_seen", "test_unseen"):
        lines = (tmp_path / "d" / "sft" / f"{name}.jsonl").read_text().splitlines()
        assert lines and all(json.loads(line)["completion"][0]["role"] == "assistant" for line in lines)
    assert main(["generate", str(config), "--out", str(tmp_path / "e"), "--format", "instruction"]) == 0
    assert "completion" in json.loads((tmp_path / "e" / "sft" / "train.jsonl").read_text().splitlines()[0])


@given(st.text(alphabet="abcdefghij", max_size=12), st.sampled_from(["plain", "chat"]))
def test_spaced_letters_round_trip_through_the_answer_text(text, template):
    from rewritelab.lm.encode import answer_text, prediction_text

    for spaced in (False, True):
        assert unspell(spell(text, spaced), spaced) == text
        assert prediction_text(template, answer_text(template, text, spaced), spaced) == text
    assert spell(text, True).split() == list(text)


def test_spaced_rendering_writes_every_string_one_letter_per_word(tmp_path, capsys):
    message = instruction("ab", "", "cabd", encrypted=False, spaced=True)
    assert message == 'Replace the first occurrence of "a b" in "c a b d" with "".'
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"data": DATA, "lm": {"letters": "spaced"}}))
    assert main(["generate", str(config), "--out", str(tmp_path / "d"), "--format", "instruction"]) == 0
    split = generate_dataset(SPEC).splits["train"]
    first = json.loads((tmp_path / "d" / "sft" / "train.jsonl").read_text().splitlines()[0])
    assert first["completion"] == " " + " ".join(split.output[0])


def test_unknown_letters_setting_is_one_line_exit_2_before_writing(tmp_path, capsys):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"data": DATA, "lm": {"letters": "split"}}))
    assert main(["generate", str(config), "--out", str(tmp_path / "d"), "--format", "chat"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lm.letters" in err and not (tmp_path / "d").exists()
