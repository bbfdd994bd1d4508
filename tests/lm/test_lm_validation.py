"""LoRA runs draw the validation curve like from-scratch runs: on the `eval_every` schedule, the whole
validation split scored in batches (teacher-forced greedy exact match), under the key `validation`."""

from __future__ import annotations

import json

from rewritelab.cli import main
from rewritelab.lm import lm_run_config_from_dict, train_lm_run
from support import lm_config


def test_an_lm_run_scores_the_validation_split_on_the_curve_schedule(tiny_gpt2, tmp_path, capsys):
    run_dir = tmp_path / "run"
    summary = train_lm_run(lm_run_config_from_dict(lm_config(tiny_gpt2, max_steps=6, eval_every=3)), run_dir)
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    points = [line for line in lines if line["kind"] == "eval"]
    assert [p["step"] for p in points] == [3, 6]
    assert all(list(p["accuracy"]) == ["validation", "test_seen", "test_unseen"] for p in points)
    assert set(summary["accuracy"]) == {"test_seen", "test_unseen"}
    assert main(["evaluate", str(run_dir), "--split", "validation", "--progress", "none"]) == 0
    assert json.loads((run_dir / "summary.json").read_text())["n"]["validation"] == 4 * 8  # the whole split
    capsys.readouterr()
