"""A report of a sweep and the later sweep that re-ran some of its conditions (`report --supersede`)."""

from __future__ import annotations

import json
from pathlib import Path

from rewritelab.cli import main
from rewritelab.report import load_runs, read_curves, run_folders
from rewritelab.store import load_results, record_run
from support import data_section, e1_points, fake_summary, make_sweep, metrics_lines


def longer(root: Path, base: Path, num_rules: int) -> Path:
    """What a `-long` preset leaves: condition I = `num_rules` re-run, both seeds, under the base's run ids at
    twice the steps, each run folder with its own curves."""
    for seed in (0, 1):
        run_id = f"num_rules={num_rules}.budget=20000.seed={seed}"
        assert (base / "runs" / run_id).is_dir()
        summary = fake_summary(data_section(num_rules, seed, budget=20000), seed, steps=600)
        (root / "runs" / run_id).mkdir(parents=True)
        (root / "runs" / run_id / "summary.json").write_text(json.dumps(summary))
        lines = "".join(json.dumps(line) + "\n" for line in metrics_lines(summary))
        (root / "runs" / run_id / "metrics.jsonl").write_text(lines)
        record_run(root / "results.sqlite", run_id, summary, "long", "long")
    return root


def test_curves_of_a_re_run_condition_come_from_the_later_sweep(tmp_path):
    base = make_sweep(tmp_path / "base", e1_points(), seeds=(0, 1))
    later = longer(tmp_path / "later", base, 100)
    folders = run_folders(base, [later])
    assert {
        run_id: folder.parent.parent for run_id, folder in folders.items() if "num_rules=100." in run_id
    } == {
        "num_rules=100.budget=20000.seed=0": later,
        "num_rules=100.budget=20000.seed=1": later,
    }
    assert {f.parent.parent for run_id, f in folders.items() if "num_rules=100." not in run_id} == {base}
    curves = read_curves(folders, load_runs(load_results(base, [later]))[0])
    last = {run_id: lines[-1]["step"] for run_id, lines in curves.items()}
    assert {s for run_id, s in last.items() if "num_rules=100." in run_id} == {600}
    assert {s for run_id, s in last.items() if "num_rules=100." not in run_id} == {300}


def test_report_supersede_draws_the_composed_set_from_the_cli(tmp_path, capsys):
    base = make_sweep(tmp_path / "base", e1_points(), seeds=(0, 1))
    later = longer(tmp_path / "later", base, 1000)
    out = tmp_path / "final"
    assert main(["report", str(base), "--supersede", str(later), "--out", str(out)]) == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<title>rewritelab report: base, long</title>" in page
    assert (out / "learning_curves.png").is_file()
    assert not (out / "factors.png").exists()  # the steps differ per condition only: no arm, no figure
