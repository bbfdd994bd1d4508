"""The results store with Markov-program runs: their extra splits, k, answer format, trace and step
accuracy in the rows and the exports, and databases and CSVs written before those columns existed."""

from __future__ import annotations

import json
import sqlite3

import pytest

from rewritelab.cli import main
from rewritelab.errors import UserError
from rewritelab.store import (
    ADDED_COLUMNS,
    COLUMNS,
    export,
    family_label,
    load_results,
    open_db,
    record_run,
)
from rewritelab.store.integrity import CHECKSUM, seal_run
from support import data_section, fake_summary, make_sweep, markdown_lines, program_family, program_points

PROGRAM_SPLITS = {"test_seen", "test_unseen", "test_unseen_strict", "test_ood_steps", "test_ood_length"}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return make_sweep(tmp_path_factory.mktemp("programs") / "sweep", program_points(), metrics=False)


def test_program_rows_carry_every_split_k_answer_and_trace_metrics(sweep):
    frame = load_results(sweep)
    assert set(frame["split"]) == PROGRAM_SPLITS
    assert set(frame["family"]) == {"program(random)"}
    assert set(frame["program_k"]) == {"1", "2", "3"} and set(frame["answer"]) == {"final", "trace"}
    trace = frame[frame["answer"] == "trace"]
    final = frame[frame["answer"] == "final"]
    assert trace["trace_accuracy"].notna().all() and trace["step_accuracy"].notna().all()
    assert final["trace_accuracy"].isna().all() and final["step_accuracy"].isna().all()
    row = trace[trace["split"] == "test_ood_steps"].iloc[0]
    summary = json.loads((sweep / "runs" / row["run_id"] / "summary.json").read_text())
    assert row["trace_accuracy"] == summary["trace_accuracy"]["test_ood_steps"]
    assert set(json.loads(row["breakdown_json"])["steps"]) == {"5", "6", "7", "8"}


@pytest.mark.parametrize(
    ("broken", "message"),
    [({"trace_accuracy": [0.5]}, "trace_accuracy: missing or not a mapping"),
     ({"step_accuracy": {"test_seen": "high"}}, "step_accuracy.test_seen: expected a number")],
)  # fmt: skip
def test_damaged_trace_metrics_are_a_user_error(tmp_path, broken, message):
    summary = fake_summary(data_section(100, 0, family=program_family(answer="trace")), 0)
    with pytest.raises(UserError, match=message):
        record_run(tmp_path / "r.sqlite", "r", {**summary, **broken}, "s", "p")


def test_program_family_labels_leave_k_to_its_own_column():
    assert family_label({"name": "program", "k": [2, 3]}) == "program(random)"
    repeated = {"name": "program", "patterns": {"name": "repeated", "k": 2}}
    assert family_label(repeated) == "program(repeated[k=2])"


def test_markdown_shows_program_columns_only_for_program_runs(sweep, tmp_path):
    lines = markdown_lines(export(sweep, "markdown"))
    assert all(name in lines[0] for name in ("| k ", "| answer ", "trace acc", "step acc"))
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    rules = make_sweep(tmp_path / "rules", [{"num_rules": 100}], seeds=(0,), metrics=False)
    assert "trace acc" not in markdown_lines(export(rules, "markdown"))[0]


def test_csv_round_trips_the_program_columns(sweep, tmp_path):
    path = tmp_path / "results.csv"
    export(sweep, "csv", path)
    assert load_results(path).equals(load_results(sweep))


def test_a_database_and_a_csv_from_before_the_program_columns_still_load(tmp_path):
    old = tmp_path / "old"
    make_sweep(old, [{"num_rules": 100}], seeds=(0,), metrics=False)
    db_path = old / "results.sqlite"
    kept = [c for c in COLUMNS if c not in ADDED_COLUMNS]
    with sqlite3.connect(db_path) as db:  # rebuild the table as the first schema had it
        db.execute(f"CREATE TABLE old AS SELECT {', '.join(kept)}, {CHECKSUM} FROM results")
        db.execute("DROP TABLE results")
        db.execute("ALTER TABLE old RENAME TO results")
        for (run_id,) in db.execute("SELECT DISTINCT run_id FROM results").fetchall():
            seal_run(db, run_id)  # its rows' checksums, as that schema's version recorded them
    db.close()
    frame = load_results(old)  # missing columns read as empty
    assert list(frame.columns) == list(COLUMNS) and frame["answer"].isna().all()
    with open_db(db_path) as db:  # opening for a write adds them, empty: the rows' checksums still hold
        assert {row[1] for row in db.execute("PRAGMA table_info(results)")} == {*COLUMNS, CHECKSUM}
    assert load_results(old).equals(frame)
    csv = tmp_path / "old.csv"
    frame[kept].to_csv(csv, index=False)
    assert load_results(csv).equals(frame)


def test_cli_results_prints_program_runs(sweep, capsys):
    assert main(["results", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "test_unseen_strict" in out and "test_ood_length" in out and "| trace " in out
