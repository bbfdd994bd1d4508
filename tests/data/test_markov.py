"""Markov programs: classic rulesets, halting, the step limit, the ruleset parser and the CLI."""

from __future__ import annotations

import doctest
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from rewritelab.cli import main
from rewritelab.data import (
    DEFAULT_MAX_STEPS,
    MarkovProgram,
    Rule,
    Step,
    StepLimitError,
    load_ruleset,
    parse_ruleset,
)
from rewritelab.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "markov"
APPLES = "I bought a B of As from T S."

# (file, input, expected output, number of rewrites): the Rosetta Code "Execute a Markov algorithm" cases.
CLASSIC = [
    ("1-apples.txt", APPLES, "I bought a bag of apples from my brother.", 5),
    ("2-terminating.txt", APPLES, "I bought a bag of apples from T shop.", 3),
    (
        "3-literal-syntax.txt",
        "I bought a B of As W my Bgage from T S.",
        "I bought a bag of apples with my money from T shop.",
        9,
    ),
    ("4-unary-multiplication.txt", "_1111*11_", "11111111", 54),
    ("5-turing-machine.txt", "000000A000000", "00011H1111000", 13),
]


@pytest.mark.parametrize(("name", "text", "expected", "steps"), CLASSIC)
def test_classic_rulesets(name, text, expected, steps):
    program = load_ruleset(EXAMPLES / name)
    assert program.run(text) == expected
    assert len(list(program.trace(text))) == steps


def test_unary_multiplication_multiplies():
    program = load_ruleset(EXAMPLES / "4-unary-multiplication.txt")
    for a in range(1, 5):
        for b in range(2, 5):  # the classic engine needs b >= 2 (it leaves "_1_"-style debris for b = 1)
            assert program.run(f"_{'1' * a}*{'1' * b}_") == "1" * (a * b)


def test_trace_reports_each_rewrite():
    program = parse_ruleset("A -> apple\nB -> bag\nS -> .shop\n")
    steps = list(program.trace("B A S S"))
    assert steps == [
        Step(1, 0, Rule("A", "apple"), "B apple S S"),
        Step(2, 1, Rule("B", "bag"), "bag apple S S"),
        Step(3, 2, Rule("S", "shop", terminating=True), "bag apple shop S"),
    ]


def test_terminating_rule_halts_at_once():
    program = MarkovProgram([Rule("a", "b", terminating=True), Rule("b", "c")])
    assert program.run("aa") == "ba"


def test_halts_when_no_rule_applies():
    program = MarkovProgram([Rule("a", "b"), Rule("b", "c")])
    assert [s.text for s in program.trace("aa")] == ["ba", "bb", "cb", "cc"]
    assert program.run("xyz") == "xyz"
    assert MarkovProgram([]).run("abc") == "abc"


def test_first_rule_in_order_wins_over_leftmost_position():
    program = MarkovProgram([Rule("b", "B", terminating=True), Rule("a", "A", terminating=True)])
    assert program.run("ab") == "aB"


def test_empty_pattern_matches_at_position_zero():
    assert MarkovProgram([Rule("", "x", terminating=True)]).run("ab") == "xab"
    with pytest.raises(StepLimitError):
        MarkovProgram([Rule("", "x")]).run("ab", max_steps=100)


def test_step_limit_stops_a_runaway_program():
    program = MarkovProgram([Rule("a", "aa")])
    with pytest.raises(StepLimitError, match=r"within 5 steps.*--max-steps") as info:
        program.run("a", max_steps=5)
    assert isinstance(info.value, UserError)
    assert info.value.text == "a" * 6
    assert DEFAULT_MAX_STEPS == 10_000


def test_step_limit_counts_rewrites_exactly():
    # "aaa" → "" takes three rewrites, then no rule applies.
    program = MarkovProgram([Rule("a", "")])
    assert program.run("aaa", max_steps=3) == ""
    with pytest.raises(StepLimitError):
        program.run("aaa", max_steps=2)
    terminating = MarkovProgram([Rule("b", "", terminating=True), Rule("a", "b")])
    assert terminating.run("a", max_steps=2) == ""
    assert MarkovProgram([Rule("a", "b")]).run("b", max_steps=0) == "b"


def test_negative_step_limit_is_a_user_error():
    with pytest.raises(UserError, match="max_steps"):
        MarkovProgram([Rule("a", "b")]).run("a", max_steps=-1)


# --- parser ---


def test_comments_and_blank_lines_are_skipped():
    program = parse_ruleset("# a comment\n\n   \n  # indented comment\nA -> B\n\t\n")
    assert program.rules == (Rule("A", "B"),)


def test_spaces_inside_patterns_and_replacements_are_kept():
    program = parse_ruleset("the shop -> my brother\n")
    assert program.rules == (Rule("the shop", "my brother"),)


def test_only_the_single_space_separator_is_consumed():
    program = parse_ruleset("a  ->  b \n")
    assert program.rules == (Rule("a ", " b "),)


def test_regex_metacharacters_are_literal():
    program = parse_ruleset(".*+?()[] -> ^$\\1|{2}\n")
    assert program.rules == (Rule(".*+?()[]", "^$\\1|{2}"),)
    assert program.run("x.*+?()[]y") == "x^$\\1|{2}y"
    assert program.run("xyz") == "xyz"


def test_first_separator_splits_and_arrows_may_appear_in_replacements():
    program = parse_ruleset("Bgage -> ->.*\n->.* -> money\n")
    assert program.rules == (Rule("Bgage", "->.*"), Rule("->.*", "money"))


def test_leading_dot_marks_a_terminating_rule():
    program = parse_ruleset("a -> .b\nc -> .\nd -> ..e\n")
    assert program.rules == (
        Rule("a", "b", terminating=True),
        Rule("c", "", terminating=True),
        Rule("d", ".e", terminating=True),
    )


def test_empty_pattern_and_empty_replacement():
    assert parse_ruleset(" -> x").rules == (Rule("", "x"),)
    assert parse_ruleset("a -> ").rules == (Rule("a", ""),)
    assert parse_ruleset("a ->").rules == (Rule("a", ""),)  # trailing space stripped by an editor


def test_crlf_line_endings():
    assert parse_ruleset("a -> b\r\nc -> .d\r\n").rules == (Rule("a", "b"), Rule("c", "d", terminating=True))


def test_missing_separator_names_source_and_line():
    with pytest.raises(UserError, match=r"^rules\.txt, line 3: expected 'pattern -> replacement'"):
        parse_ruleset("# ok\na -> b\na->b\n", source="rules.txt")
    with pytest.raises(UserError, match="line 1"):
        parse_ruleset("a\t->\tb")


def test_a_ruleset_without_rules_is_an_error():
    with pytest.raises(UserError, match="no rules"):
        parse_ruleset("# only a comment\n\n")


rule_text = st.text(alphabet="ab #.->\t", max_size=6)


@given(rule_text, rule_text, st.booleans())
def test_str_of_a_rule_parses_back_to_the_rule(pattern, replacement, terminating):
    line = str(Rule(pattern, replacement, terminating))
    assume(line.find(" -> ") == len(pattern))  # the pattern itself holds no separator
    assume(not pattern.lstrip().startswith("#"))  # not a comment line
    assume(terminating or not replacement.startswith("."))  # a leading '.' would read as terminating
    assert parse_ruleset(line).rules == (Rule(pattern, replacement, terminating),)


def test_load_ruleset_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_ruleset(tmp_path / "missing.txt")
    with pytest.raises(UserError, match="not found"):
        load_ruleset(tmp_path)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 -> tea\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"not UTF-8 \(invalid byte at offset 3\)"):
        load_ruleset(latin1)
    bad = tmp_path / "bad.txt"
    bad.write_text("a -> b\nno separator\n", encoding="utf-8")
    with pytest.raises(UserError, match=f"^{bad}, line 2:"):
        load_ruleset(bad)


def test_load_ruleset_accepts_a_utf8_bom(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeff# comment\né -> e\n".encode())
    assert load_ruleset(path).rules == (Rule("é", "e"),)


# --- CLI ---


def test_cli_prints_the_result(capsys):
    assert main(["markov", str(EXAMPLES / "1-apples.txt"), "--input", APPLES]) == 0
    out, err = capsys.readouterr()
    assert out == "I bought a bag of apples from my brother.\n"
    assert err == ""


def test_cli_trace_prints_each_step_then_the_result(capsys):
    assert main(["markov", str(EXAMPLES / "2-terminating.txt"), "--input", APPLES, "--trace"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "step 1: rule 0 (A -> apple): I bought a B of apples from T S.",
        "step 2: rule 1 (B -> bag): I bought a bag of apples from T S.",
        "step 3: rule 2 (S -> .shop): I bought a bag of apples from T shop.",
        "I bought a bag of apples from T shop.",
    ]


def _cli_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    return err


def test_cli_bad_rules_file_is_one_line_and_exit_2(capsys, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("a -> b\nc => d\n", encoding="utf-8")
    assert "line 2" in _cli_error(capsys, ["markov", str(bad), "--input", "x"])
    assert "not found" in _cli_error(capsys, ["markov", str(tmp_path / "none.txt"), "--input", "x"])


def test_cli_runaway_program_names_the_limit(capsys, tmp_path):
    loop = tmp_path / "loop.txt"
    loop.write_text("a -> aa\n", encoding="utf-8")
    err = _cli_error(capsys, ["markov", str(loop), "--input", "a", "--max-steps", "7"])
    assert "7 steps" in err and "--max-steps" in err


def test_cli_in_a_subprocess_reports_bad_input_without_traceback(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff -> x\n")
    proc = subprocess.run(
        [sys.executable, "-m", "rewritelab", "markov", str(bad), "--input", "x"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "not UTF-8" in proc.stderr


def test_docs_examples_are_true():
    result = doctest.testfile(str(ROOT / "docs" / "markov.md"), module_relative=False)
    assert result.attempted >= 6 and result.failed == 0
