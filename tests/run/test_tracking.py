"""Experiment tracking: metrics.jsonl records mirrored to TensorBoard (event file read back), W&B offline
and trackio; the config option and the CLI flag."""

from __future__ import annotations

import json
import uuid

import pytest

from rewritelab.cli import main
from rewritelab.errors import UserError
from rewritelab.run import load_run_config, scalars, train_run
from support import TINY

SHORT = ["train.epochs=2", "train.eval_every=50", "train.progress=none"]  # 125 steps: 3 train, 3 eval lines


def records(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_scalars_flatten_a_record_at_its_step():
    record = {"kind": "eval", "step": 7, "tokens": 3, "accuracy": {"test_seen": 0.5, "test_unseen": None}}
    assert scalars(record) == {"eval/tokens": 3.0, "eval/accuracy/test_seen": 0.5}
    assert scalars({"kind": "train", "step": 1, "loss": 2.0, "diverged": True}) == {"train/loss": 2.0}


def test_tensorboard_event_file_holds_every_metrics_record(tmp_path, one_thread):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    run_dir = tmp_path / "run"
    summary = train_run(load_run_config(TINY, [*SHORT, "train.track=[tensorboard]"]), run_dir)
    events = event_accumulator.EventAccumulator(str(run_dir / "tracking" / "tensorboard"))
    events.Reload()
    logged = records(run_dir)
    train = [r for r in logged if r["kind"] == "train"]
    evals = [r for r in logged if r["kind"] == "eval"]
    assert len(train) == 3 and len(evals) == 3
    loss = events.Scalars("train/loss")
    assert [(e.step, e.value) for e in loss] == [(r["step"], pytest.approx(r["loss"])) for r in train]
    unseen = events.Scalars("eval/accuracy/test_unseen")
    assert [(e.step, e.value) for e in unseen] == [(r["step"], r["accuracy"]["test_unseen"]) for r in evals]
    final = events.Scalars("final/accuracy/test_seen")
    assert [(e.step, e.value) for e in final] == [(125, summary["accuracy"]["test_seen"])]
    assert "config/text_summary" in events.Tags()["tensors"]


def test_wandb_runs_offline_into_the_run_directory(tmp_path, one_thread, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_dir = tmp_path / "run"
    train_run(load_run_config(TINY, [*SHORT, "train.track=[wandb]"]), run_dir)
    (log,) = (run_dir / "tracking" / "wandb").glob("offline-run-*/run-*.wandb")
    data = log.read_bytes()  # W&B's record log: the metric names and config keys appear verbatim
    for name in (b"train/loss", b"eval/accuracy/test_unseen", b"final/accuracy/test_unseen", b"num_rules"):
        assert name in data
    assert records(run_dir)[-1]["kind"] == "eval"  # metrics.jsonl is written as without tracking


def test_trackio_logs_to_its_local_database(tmp_path, one_thread, monkeypatch):
    monkeypatch.setenv("TRACKIO_DIR", str(tmp_path / "trackio"))  # read at trackio's first import
    # A project of its own: when trackio was imported earlier, its storage (and earlier sessions') is shared.
    project = f"rewritelab-test-{uuid.uuid4().hex}"
    monkeypatch.setenv("TRACKIO_PROJECT", project)
    trackio = pytest.importorskip("trackio")
    from trackio.sqlite_storage import SQLiteStorage

    run_dir = tmp_path / "run"
    train_run(load_run_config(TINY, [*SHORT, "train.track=[trackio]"]), run_dir)
    logs = SQLiteStorage.get_logs(project, "run")
    losses = [(row["step"], row["train/loss"]) for row in logs if "train/loss" in row]
    assert losses == [(r["step"], pytest.approx(r["loss"])) for r in records(run_dir) if r["kind"] == "train"]
    assert trackio is not None


def test_track_is_validated_and_set_by_the_cli_flag(tmp_path, capsys):
    with pytest.raises(UserError, match="train.track: trackers from tensorboard, wandb, trackio"):
        load_run_config(TINY, ["train.track=[mlflow]"])
    bad = main(["train", str(TINY), "--out", str(tmp_path / "r"), "--track", "tensorboard,nope"])
    assert bad == 2 and "train.track" in capsys.readouterr().err
    assert load_run_config(TINY, ["train.track=[wandb, trackio]"]).train.track == ["wandb", "trackio"]
