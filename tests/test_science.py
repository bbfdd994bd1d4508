"""The scientific claim itself, at demo scale (slow: 4-8 minutes on 2 cores; `pytest -m slow`).

Training on 20,000 examples of 100 rules must leave unseen rules unsolved while seen ones are mastered;
the same budget spread over 1,000 rules must generalize. A regression in data, model, training or
evaluation that kills the phenomenon fails here even when every unit test passes.
"""

from __future__ import annotations

import json

import pytest

from rewritelab.cli import main


@pytest.mark.slow
def test_demo_shows_generalization_only_with_many_rules(tmp_path):
    out = tmp_path / "demo"
    assert main(["sweep", "demo", "--out", str(out), "--workers", "2"]) == 0
    summaries = [json.loads(path.read_text()) for path in out.glob("runs/*/summary.json")]
    accuracy = {s["config"]["data"]["num_rules"]: s["accuracy"] for s in summaries}
    assert sorted(accuracy) == [100, 1000]
    assert accuracy[100]["test_seen"] >= 0.9 and accuracy[100]["test_unseen"] <= 0.05
    assert accuracy[1000]["test_unseen"] >= 0.5 and accuracy[1000]["test_seen"] >= 0.7
