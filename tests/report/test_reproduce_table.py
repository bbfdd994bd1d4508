"""The `rewritelab reproduce` summary: one table line per run (its sentences are the report's headline)."""

from __future__ import annotations

from rewritelab.report import RunRow, reproduce_table

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


def test_table_has_one_line_per_run_with_both_accuracies():
    table = reproduce_table([row("num_rules=10.seed=0", 10, 0.99, 0.02)]).splitlines()
    assert len(table) == 3 and table[0].split()[:3] == ["run", "I", "S"]
    assert "99.0% [98.0, 100.0]" in table[2] and "2.0% [0.0, 4.0]" in table[2]


def test_the_no_op_share_has_its_own_header_and_s_one_precision():
    table = reproduce_table([row("a", 3, 0.9, 0.1, noop=0.3), row("b", 10, 0.9, 0.1)]).splitlines()
    assert "no-op share" in table[0]
    assert table[2].split()[1:5] == ["3", "333.3", "uniform", "30%"]
    assert table[3].split()[1:5] == ["10", "100", "uniform", "0%"]


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
