"""`lm:` runs are runs like any other: `evaluate` re-scores them, `sweep` validates and trains them, and
`results` / `report` read their rows, all on a tiny random Llama built in the test."""

from __future__ import annotations

import json
import sqlite3
from importlib import metadata
from pathlib import Path

import yaml

from rewritelab.cli import main
from rewritelab.lm import lm_run_config_from_dict, train_lm_run
from support import lm_config


def short_config(model: Path) -> dict:
    raw = lm_config(model, max_steps=3)
    raw["data"].update(budget=64, test_examples_per_rule=4)
    return raw


def test_evaluate_rescores_an_lm_run_directory(tiny_llama, tmp_path, capsys):
    run_dir = tmp_path / "run"
    trained = train_lm_run(lm_run_config_from_dict(short_config(tiny_llama)), run_dir)
    (run_dir / "summary.json").unlink()
    (run_dir / "predictions" / "test_seen.jsonl").unlink()
    assert main(["evaluate", str(run_dir), "--progress", "none"]) == 0
    assert "test_seen" in capsys.readouterr().out
    again = json.loads((run_dir / "summary.json").read_text())
    assert again["accuracy"] == trained["accuracy"] and again["n"] == trained["n"]
    assert (run_dir / "predictions" / "test_seen.jsonl").is_file()
    assert main(["evaluate", str(run_dir), "--split", "test_unseen", "--max-test-examples", "3"]) == 0
    assert json.loads((run_dir / "summary.json").read_text())["n"]["test_unseen"] == 3


def test_an_lm_run_records_the_package_versions_beside_the_machine(tiny_llama, tmp_path):
    """A LoRA run's summary.json carries the versions of what fine-tuned it (transformers, peft above all)."""
    run_dir = tmp_path / "run"
    summary = train_lm_run(lm_run_config_from_dict(short_config(tiny_llama)), run_dir)
    recorded = json.loads((run_dir / "summary.json").read_text())
    assert recorded["versions"] == summary["versions"] and recorded["machine"] == summary["machine"]
    assert recorded["versions"]["rewritelab"] == recorded["code_version"]
    for name in ("torch", "transformers", "peft", "trl", "numpy"):
        assert recorded["versions"][name] == metadata.version(name)


def test_evaluate_an_unfinished_lm_run_is_one_line_exit_2(tiny_llama, tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nothing")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_sweep_of_lm_runs_trains_them_and_results_and_report_read_them(tiny_llama, tmp_path, capsys):
    spec = {"base": short_config(tiny_llama), "grid": [{"data.num_rules": [2, 4]}], "seeds": [0]}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "sweep"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "1"]) == 0, capsys.readouterr().err
    with sqlite3.connect(out / "results.sqlite") as db:
        rows = db.execute("SELECT run_id, split, num_rules, n FROM results ORDER BY run_id, split").fetchall()
    ids = ["num_rules=2.seed=0", "num_rules=4.seed=0"]
    assert [(r[0], r[1]) for r in rows] == [(i, s) for i in ids for s in ("test_seen", "test_unseen")]
    assert [r[2] for r in rows] == [2, 2, 4, 4]
    capsys.readouterr()
    assert main(["results", str(out), "--format", "csv"]) == 0
    assert capsys.readouterr().out.count("num_rules=4.seed=0") == 2
    assert main(["report", str(out)]) == 0
    assert (out / "report" / "report.html").is_file()


def test_sweep_validates_lm_configs_before_anything_runs(tiny_llama, tmp_path, capsys):
    spec = {"base": short_config(tiny_llama), "grid": [{"lm.lora.rank": [4, 0]}]}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rank=0" in err and "rank" in err
    assert not (tmp_path / "o").exists()
