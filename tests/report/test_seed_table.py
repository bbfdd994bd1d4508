"""The seed table (`rewritelab results --format seeds`): every seed's value, the mean, both intervals."""

from __future__ import annotations

import math

import pytest

from rewritelab.cli import main
from rewritelab.report import load_runs, seed_cells, seed_rows, seed_table, t_quantile
from rewritelab.store import load_results, record_run
from support import data_section, e1_points, e2_points, fake_summary, make_sweep


def cells(table: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]


def test_each_condition_and_split_has_its_seeds_mean_and_t_interval(tmp_path):
    sweep = make_sweep(tmp_path / "e1", e1_points(), seeds=(0, 1, 2))
    frame = load_results(sweep)
    rows = {(r[0], r[1]): r for r in cells(seed_table(sweep))}
    assert len(rows) == 5 * 2  # five values of I × (seen, unseen)
    unseen = frame[(frame["num_rules"] == 300) & (frame["split"] == "test_unseen")].sort_values("seed")
    values = [100 * v for v in unseen["accuracy"]]
    row = rows[("I = 300", "test_unseen")]
    assert row[2] == "0, 1, 2" and row[3] == " / ".join(f"{v:.1f}" for v in values)
    mean = sum(values) / 3
    half = t_quantile(2) * math.sqrt(sum((v - mean) ** 2 for v in values) / 2) / math.sqrt(3)
    assert row[4] == f"{mean:.1f}" and row[5] == f"[{max(0, mean - half):.1f}, {mean + half:.1f}]"
    bootstrap_low = sum(100 * v for v in unseen["ci_low"]) / 3
    assert row[6].startswith(f"[{bootstrap_low:.1f},")
    assert row[7] == "-" and row[8] == "-"  # fabricated runs: no manifest, not judged


def test_seed_cells_key_the_seed_table_by_condition_and_split(tmp_path):
    sweep = make_sweep(tmp_path / "e2", e2_points())
    keyed = seed_cells(sweep)
    rows = cells(seed_table(sweep))
    assert sum(len(splits) - 1 for splits in keyed.values()) == len(rows)
    for row in rows:
        assert keyed[row[0]][row[1]] == row
    assert {tuple(splits["steps"]) for splits in keyed.values()} == {("300",)}


def test_seed_cells_give_each_condition_the_steps_of_its_superseding_runs(tmp_path):
    sweep = make_sweep(tmp_path / "e1", [{"num_rules": 100}, {"num_rules": 1000}], metrics=False)
    for seed in (0, 1):
        rerun = fake_summary(data_section(1000, seed), seed, steps=6000)
        record_run(tmp_path / "long.sqlite", f"long.num_rules=1000.seed={seed}", rerun, "long", "p")
    keyed = seed_cells(sweep, [tmp_path / "long.sqlite"])
    assert {label: splits["steps"] for label, splits in keyed.items()} == {
        "I = 100": ["300"],
        "I = 1000": ["6,000"],
    }


def test_patterns_are_the_fewest_over_seeds_and_convergence_is_counted(tmp_path):
    db = tmp_path / "results.sqlite"
    for seed, patterns, converged in ((0, 995, True), (1, 990, False)):
        summary = fake_summary(data_section(1000, seed), seed)
        summary["train"]["convergence"] = {"loss_drop": 0.001, "acc_delta": 0.01, "converged": converged}
        manifest = {"disjointness": {"train_patterns": patterns}}
        record_run(db, f"num_rules=1000.seed={seed}", summary, "s", "p", manifest)
    runs, scale = load_runs(load_results(db))
    (seen, unseen) = seed_rows(runs, scale)
    assert unseen[0] == "all runs" and unseen[7] == "990 (0.990)" and unseen[8] == "1 of 2"


def test_no_op_runs_get_applied_and_no_op_lines(tmp_path):
    sweep = make_sweep(tmp_path / "e2", e2_points(), seeds=(0, 1))
    rows = {(r[0], r[1]): r for r in cells(seed_table(sweep))}
    assert ("I = 100, no-op 30%", "test_unseen (no-op)") in rows
    assert ("I = 100, no-op 30%", "test_unseen (applied)") in rows
    assert ("I = 100, no-op 0%", "test_unseen (no-op)") not in rows  # no no-op examples to score
    assert rows[("I = 100, no-op 30%", "test_unseen (no-op)")][3] == "97.0 / 97.0"
    assert not any("copy" in split or "copies" in split for _, split in rows)  # no-op = 0 copies: said once


def test_mixed_pattern_counts_get_a_line_per_count(tmp_path):
    """E5: a split whose inputs hold the pattern 1-3 times is read per count too; one count gets no lines."""
    db = tmp_path / "results.sqlite"
    per_count = {"1": (0.0, 40), "2": (0.5, 30), "3": (1.0, 30)}
    for seed in (0, 1):
        summary = fake_summary(data_section(1000, seed, occurrences=3), seed)
        by_count = {k: {"n": n, "accuracy": a} for k, (a, n) in per_count.items()}
        summary["breakdown"]["test_unseen"]["occurrences"] = by_count
        record_run(db, f"num_rules=1000.seed={seed}", summary, "s", "p", None)
    rows = {r[1]: r for r in cells(seed_table(db))}
    assert [r for r in rows if r.startswith("test_unseen")] == [
        "test_unseen", "test_unseen (1 copy)", "test_unseen (2 copies)", "test_unseen (3 copies)"
    ]  # fmt: skip
    assert rows["test_unseen (2 copies)"][3] == "50.0 / 50.0" and rows["test_unseen (3 copies)"][4] == "100.0"
    assert "test_seen (1 copy)" not in rows  # the seen split holds one count only


def test_rules_of_mixed_lengths_get_a_line_per_length(tmp_path):
    """E4: unconstrained test rules of lengths 6-9 beside training rules of 6 and 9 are read per length."""
    db = tmp_path / "results.sqlite"
    for seed, (six, seven) in enumerate(((0.25, 0.0), (0.35, 0.0))):
        summary = fake_summary(data_section(1000, seed), seed)
        by_len = {"6": {"n": 50, "accuracy": six}, "7": {"n": 50, "accuracy": seven}}
        summary["breakdown"]["test_unseen"]["pattern_len"] = by_len
        summary["breakdown"]["test_seen"]["pattern_len"] = {"6": {"n": 100, "accuracy": 0.9}}
        record_run(db, f"num_rules=1000.seed={seed}", summary, "s", "p", None)
    rows = {r[1]: r for r in cells(seed_table(db))}
    assert [r for r in rows if r.startswith("test_unseen")] == [
        "test_unseen", "test_unseen (pattern length 6)", "test_unseen (pattern length 7)"
    ]  # fmt: skip
    assert rows["test_unseen (pattern length 6)"][3] == "25.0 / 35.0"
    assert rows["test_unseen (pattern length 6)"][4] == "30.0"
    assert rows["test_unseen (pattern length 7)"][4] == "0.0"
    assert "test_seen (pattern length 6)" not in rows  # one length: no extra line


def test_cli_prints_or_writes_the_table_and_bad_input_is_one_line(tmp_path, capsys):
    sweep = make_sweep(tmp_path / "e1", e1_points(), seeds=(0, 1))
    assert main(["results", str(sweep), "--format", "seeds"]) == 0
    printed = capsys.readouterr().out
    assert printed == seed_table(sweep) and printed.startswith("| condition | split | seeds |")
    out = tmp_path / "seeds.md"
    assert main(["results", str(sweep), "--format", "seeds", "--out", str(out)]) == 0
    assert out.read_text() == printed
    assert main(["results", str(tmp_path / "missing"), "--format", "seeds"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file or directory" in err


@pytest.mark.parametrize("seeds", [(0,), (0, 1)])
def test_one_seed_has_no_across_seed_interval(tmp_path, seeds):
    sweep = make_sweep(tmp_path / "s", e1_points(), seeds=seeds)
    intervals = {r[5] for r in cells(seed_table(sweep))}
    assert (intervals == {"-"}) == (len(seeds) == 1)
