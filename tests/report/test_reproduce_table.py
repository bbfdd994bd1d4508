"""The `rewritelab reproduce` summary: one table line per run and the measured contrast sentences."""

from __future__ import annotations

from rewritelab.report import RunRow, contrast_sentences, reproduce_table
from rewritelab.sweep import Sweep, expand, parse_sweep

BASE = {
    "data": {"alphabet": "abc", "num_rules": 5, "budget": 100},
    "model": {"n_layer": 1, "n_head": 1, "d_model": 8},
    "train": {"max_steps": 5},
}


def sweep_of(grid, seeds=(0,)) -> Sweep:
    return parse_sweep({"base": BASE, "grid": grid, "seeds": list(seeds)}, "t", "test")


# --- the reproduce summary ----------------------------------------------------------------------------


def row(run_id, num_rules, seen, unseen, seed=0, noop=0.0):
    return RunRow(
        run_id=run_id,
        num_rules=num_rules,
        examples_per_rule=1000 / num_rules,
        budget=1000,
        rule_distribution="uniform",
        alpha=1.0,
        noop_frac=noop,
        family="random",
        seed=seed,
        accuracy={"test_seen": seen, "test_unseen": unseen},
        ci={"test_seen": (seen - 0.01, seen + 0.01), "test_unseen": (unseen - 0.02, unseen + 0.02)},
    )


def test_contrast_sentence_is_computed_from_the_rows():
    sweep = sweep_of([{"data.num_rules": [10, 100, 1000]}], seeds=[0, 1])
    rows = [
        row("num_rules=10.seed=0", 10, 0.99, 0.02),
        row("num_rules=10.seed=1", 10, 0.97, 0.04),
        row("num_rules=100.seed=0", 100, 0.9, 0.5),
        row("num_rules=1000.seed=0", 1000, 0.95, 0.9),
        row("num_rules=1000.seed=1", 1000, 0.93, 0.8),
    ]
    (sentence,) = contrast_sentences(sweep, rows)
    assert sentence == (
        "Unseen-rule accuracy rises from 3.0% with 10 rules to 85.0% with 1000 rules at the same budget of "
        "1000 examples (seen-rule accuracy 98.0% / 94.0%, mean of 2 seeds)."
    )
    falling = [row("num_rules=10.seed=0", 10, 0.9, 0.5), row("num_rules=1000.seed=0", 1000, 0.9, 0.1)]
    assert "falls from 50.0%" in contrast_sentences(sweep_of([{"data.num_rules": [10, 1000]}]), falling)[0]


def test_contrast_is_per_group_of_the_other_parameters_and_absent_without_num_rules():
    sweep = sweep_of([{"data.noop_frac": [0.0, 0.3]}, {"data.num_rules": [10, 1000]}])
    rows = [
        row(
            r.run_id,
            r.params["data.num_rules"],
            0.9,
            0.1 if r.params["data.num_rules"] == 10 else 0.8,
            noop=r.params["data.noop_frac"],
        )
        for r in expand(sweep)
    ]
    sentences = contrast_sentences(sweep, rows)
    assert len(sentences) == 2 and "(noop_frac 0.0)" in sentences[0] and "(noop_frac 0.3)" in sentences[1]
    assert contrast_sentences(sweep_of([{"data.noop_frac": [0.0, 0.3]}]), rows) == []


def test_table_has_one_line_per_run_with_both_accuracies():
    table = reproduce_table([row("num_rules=10.seed=0", 10, 0.99, 0.02)]).splitlines()
    assert len(table) == 3 and table[0].split()[:3] == ["run", "I", "S"]
    assert "99.0% [98.0, 100.0]" in table[2] and "2.0% [0.0, 4.0]" in table[2]


def program_row(run_id, num_rules, unseen):
    accuracy = {"test_seen": 0.9, "test_unseen": unseen, "test_unseen_strict": unseen / 2}
    accuracy["test_ood_steps"] = 0.1
    base = row(run_id, num_rules, 0.9, unseen)
    return RunRow(**{**vars(base), "family": "program(random)", "accuracy": accuracy, "ci": {}})


def test_program_runs_add_their_splits_to_the_table_and_speak_of_programs():
    rows = [program_row("num_rules=10.seed=0", 10, 0.2), program_row("num_rules=1000.seed=0", 1000, 0.8)]
    table = reproduce_table(rows).splitlines()
    assert "strict acc [95% CI]" in table[0] and "ood steps acc [95% CI]" in table[0]
    assert "ood length" not in table[0] and "40.0%" in table[3] and "10.0%" in table[3]
    (sentence,) = contrast_sentences(sweep_of([{"data.num_rules": [10, 1000]}]), rows)
    assert sentence.startswith("Unseen-program accuracy rises from 20.0% with 10 programs to 80.0% with 1000")
