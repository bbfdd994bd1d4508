"""The report's "How it ran" section lists the package versions the runs recorded, one row per sweep, and
says which packages differ between runs; runs recorded before versions were read as unknown."""

from __future__ import annotations

import json
from pathlib import Path

from rewritelab.report import build_report
from rewritelab.store import record_run
from support import Page, make_sweep

VERSIONS = {"rewritelab": "0.1.0+git.abc1234", "torch": "2.13.0+cpu", "transformers": "5.1.0",
            "peft": "0.22.0", "trl": None, "numpy": "2.4.6"}  # fmt: skip


def with_versions(sweep: Path, run_id: str, versions: dict) -> None:
    """Give a fabricated run's summary `versions` and record it again."""
    path = sweep / "runs" / run_id / "summary.json"
    summary = {**json.loads(path.read_text()), "versions": versions}
    path.write_text(json.dumps(summary))
    record_run(sweep / "results.sqlite", run_id, summary, sweep.name, "fake")


def test_the_report_shows_each_sweeps_versions_and_which_packages_differ(tmp_path):
    sweep = make_sweep(tmp_path / "s", [{"num_rules": 10}, {"num_rules": 100}], seeds=(0,))
    with_versions(sweep, "num_rules=10.seed=0", VERSIONS)
    with_versions(sweep, "num_rules=100.seed=0", {**VERSIONS, "peft": "0.21.2"})
    page = Page(build_report(sweep).read_text(encoding="utf-8"))
    header, row = (cells for _, cells in page.table("execution", 1))
    assert header == ["sweep", "rewritelab", "torch", "transformers", "peft", "trl", "numpy"]
    assert row == ["s", "0.1.0+git.abc1234", "2.13.0+cpu", "5.1.0", "0.21.2 (1 run), 0.22.0 (1 run)",
                   "not installed", "2.4.6"]  # fmt: skip
    assert "Runs of one sweep differ in peft." in page.text("execution")


def test_runs_recorded_before_versions_read_unknown(tmp_path):
    sweep = make_sweep(tmp_path / "old", [{"num_rules": 10}], seeds=(0,))
    page = Page(build_report(sweep).read_text(encoding="utf-8"))
    _, row = (cells for _, cells in page.table("execution", 1))
    assert row == ["old", "0.1.0+git.abc1234", *["unknown"] * 5]
    assert "differ in" not in page.text("execution")
