"""An `lm:` run's metrics.jsonl reaches the trackers through the same sink as a from-scratch run's."""

from __future__ import annotations

import json

import pytest

from rewritelab.lm import lm_run_config_from_dict, train_lm_run
from support import lm_config


def test_lm_run_mirrors_its_metrics_to_tensorboard(tmp_path, tiny_gpt2, one_thread):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    raw = lm_config(tiny_gpt2, epochs=1, eval_every=8, eval_examples=8, track=["tensorboard"])
    summary = train_lm_run(lm_run_config_from_dict(raw), tmp_path / "run")
    events = event_accumulator.EventAccumulator(str(tmp_path / "run" / "tracking" / "tensorboard"))
    events.Reload()
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in logged if r["kind"] == "eval"]
    assert len(evals) == 2 and [r["kind"] for r in logged].count("train") == 1
    seen = events.Scalars("eval/accuracy/test_seen")
    assert [(e.step, e.value) for e in seen] == [(r["step"], r["accuracy"]["test_seen"]) for r in evals]
    assert [e.value for e in events.Scalars("final/accuracy/test_unseen")] == [
        summary["accuracy"]["test_unseen"]
    ]
    assert [e.step for e in events.Scalars("train/loss")] == [16]
