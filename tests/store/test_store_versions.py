"""The package versions each run recorded: database columns, the CSV and markdown exports, and results
recorded before versions were (committed exports under docs/results/) reading as unknown."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rewritelab.store import COLUMNS, export, load_results, record_run
from support import data_section, fake_summary, markdown_lines

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"
VERSIONS = {"rewritelab": "0.1.0+git.abc1234", "torch": "2.13.0+cpu", "transformers": "5.1.0",
            "peft": None, "trl": None, "numpy": "2.4.6"}  # fmt: skip


def summary(num_rules: int, versions: dict | None) -> dict:
    recorded = fake_summary(data_section(num_rules, 0), 0)
    if versions is not None:
        recorded["versions"] = versions
    return recorded


def versions_section(text: str) -> list[list[str]]:
    """The cells of the markdown export's second table (after the results table and a blank line)."""
    lines = text.split("\n\n")[1].splitlines()
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[:1] + lines[2:]]


def test_each_package_version_is_a_column_and_absent_ones_read_not_installed(tmp_path):
    db = tmp_path / "results.sqlite"
    record_run(db, "a", summary(10, VERSIONS), "s", "p")
    record_run(db, "b", summary(100, None), "s", "p")  # recorded before versions were
    frame = load_results(db).drop_duplicates("run_id").set_index("run_id")
    names = ["torch_version", "transformers_version", "peft_version", "trl_version", "numpy_version"]
    assert set(names) <= set(COLUMNS)
    absent = "not installed"
    assert frame.loc["a", names].tolist() == ["2.13.0+cpu", "5.1.0", absent, absent, "2.4.6"]
    assert frame.loc["b", names].isna().all()
    export(db, "csv", tmp_path / "r.csv")
    pd.testing.assert_frame_equal(load_results(tmp_path / "r.csv"), load_results(db))
    assert "2.13.0+cpu" in (tmp_path / "r.csv").read_text().splitlines()[1]


def test_markdown_lists_the_versions_per_sweep_and_notes_runs_that_differ(tmp_path):
    db = tmp_path / "results.sqlite"
    record_run(db, "a", summary(10, VERSIONS), "old", "p")
    record_run(db, "b", summary(100, {**VERSIONS, "torch": "2.14.1"}), "old", "p")
    record_run(db, "c", summary(1000, VERSIONS), "new", "p")
    text = export(db, "markdown")
    assert markdown_lines(text)[0].startswith("| run ")  # the results table comes first, unchanged
    header, *rows = versions_section(text)
    assert header == ["sweep", "rewritelab", "torch", "transformers", "peft", "trl", "numpy"]
    assert rows == [
        ["new", "0.1.0+git.abc1234", "2.13.0+cpu", "5.1.0", "not installed", "not installed", "2.4.6"],
        ["old", "0.1.0+git.abc1234", "2.13.0+cpu (1 run), 2.14.1 (1 run)", "5.1.0", "not installed",
         "not installed", "2.4.6"],
    ]  # fmt: skip


def test_a_committed_export_from_before_versions_still_loads_and_reads_unknown():
    csv = RESULTS / "e6-cpu" / "results.csv"
    assert "torch_version" not in csv.read_text().splitlines()[0]
    frame = load_results(csv)
    assert list(frame.columns[: len(COLUMNS)]) == list(COLUMNS) and frame["torch_version"].isna().all()
    header, *rows = versions_section(export(csv, "markdown"))
    assert rows == [["e6-cpu", *sorted(set(frame["code_version"])), *["unknown"] * 5]]
