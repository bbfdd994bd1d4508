"""The learning curves score the validation split (whole) beside the test subsets; the final evaluation
scores the test splits only; run folders made before validation splits existed keep training and
evaluating on the data they started with, without a validation curve."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from rewritelab.cli import main
from rewritelab.config import load_yaml
from rewritelab.data import generate_dataset, manifest_without_validation
from rewritelab.errors import UserError
from rewritelab.kinds import build_run_config
from rewritelab.run import TrainingInterrupted, check_data_manifest, load_run_config, train_run
from rewritelab.run import train as train_loop
from rewritelab.run.rundir import as_recorded
from rewritelab.run.schedule import curve_sets
from support import TINY, stop_after

pytestmark = pytest.mark.usefixtures("one_thread")
RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"
SHORT = ("train.max_steps=40", "train.eval_every=20", "train.checkpoint_every=10")


def tiny(*overrides: str):
    return load_run_config(TINY, [*SHORT, *overrides])


def evals(run_dir: Path) -> list[dict]:
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [line for line in lines if line["kind"] == "eval"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.mktemp("curves") / "run"
    return run_dir, train_run(tiny(), run_dir, progress="none")


def test_every_curve_point_scores_the_validation_split_under_its_own_key(run):
    run_dir, summary = run
    points = evals(run_dir)
    assert [p["step"] for p in points] == [20, 40]
    assert all(list(p["accuracy"]) == ["validation", "test_seen", "test_unseen"] for p in points)
    assert set(summary["accuracy"]) == {"test_seen", "test_unseen"}  # scored once, at the end: the tests
    assert not (run_dir / "predictions" / "validation.jsonl").exists()


def test_the_validation_split_changes_nothing_a_run_learns(run, tmp_path):
    """Same weights, test curves and scores as the run without one: scoring it draws no random number
    and it leaves the data order and the model's sizes alone."""
    run_dir, summary = run
    alone = train_run(tiny("data.validation_rules=0"), tmp_path / "alone", progress="none")
    assert alone["accuracy"] == summary["accuracy"] and alone["train"]["tokens"] == summary["train"]["tokens"]
    a, b = (torch.load(d / "checkpoint.pt", weights_only=True) for d in (run_dir, tmp_path / "alone"))
    assert a["block_size"] == b["block_size"] and all(
        torch.equal(a["model"][k], b["model"][k]) for k in a["model"]
    )
    with_it = [{k: v for k, v in p["accuracy"].items() if k != "validation"} for p in evals(run_dir)]
    assert with_it == [p["accuracy"] for p in evals(tmp_path / "alone")]


def test_the_curve_scores_the_whole_validation_split_and_test_subsets():
    """All 1,000 validation examples (the data's sizes decide), `eval_examples` of each test split."""
    encoded = {
        name: np.zeros(n) for name, n in (("validation", 1000), ("test_seen", 100), ("test_unseen", 30))
    }
    sets = curve_sets(encoded, 64)
    assert list(sets) == ["validation", "test_seen", "test_unseen"]
    assert sets["validation"].tolist() == list(range(1000))
    assert len(sets["test_seen"]) == 64 and len(sets["test_unseen"]) == 30
    assert list(curve_sets({"test_seen": np.zeros(9), "test_unseen": np.zeros(9)}, 64)) == [
        "test_seen",
        "test_unseen",
    ]


def test_the_validation_split_is_scored_at_the_end_only_when_asked_by_name(run, capsys):
    run_dir, _ = run
    assert main(["evaluate", str(run_dir), "--split", "validation", "--progress", "none"]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["n"]["validation"] == 1000 and "validation" in capsys.readouterr().out


def age(run_dir: Path) -> None:
    """Make `run_dir` what the code before validation splits left: no validation entry in its data
    manifest or config, no validation point in its curves."""
    manifest = json.loads((run_dir / "data_manifest.json").read_text())
    (run_dir / "data_manifest.json").write_text(json.dumps(manifest_without_validation(manifest)))
    config = load_yaml(run_dir / "config.yaml")
    config["data"] = {k: v for k, v in config["data"].items() if not k.startswith("validation_")}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        line.get("accuracy", {}).pop("validation", None)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_a_run_started_before_validation_splits_resumes_and_evaluates_without_one(
    run, tmp_path, monkeypatch, capsys
):
    """Stopped at step 25 by the old code (one curve point drawn), it resumes on the same data (its data
    manifest is accepted), ends with the weights of a run never stopped, draws no validation curve, and
    re-evaluates."""
    run_dir = tmp_path / "old"
    with monkeypatch.context() as m:
        m.setattr(train_loop, "stop_requests", lambda: stop_after(25))
        with pytest.raises(TrainingInterrupted):
            train_run(tiny(), run_dir, progress="none")
    age(run_dir)
    recorded = (run_dir / "data_manifest.json").read_bytes()
    summary = train_run(tiny(), run_dir, progress="none")
    whole_dir, whole = run
    assert summary["accuracy"] == whole["accuracy"]
    a, b = (torch.load(d / "checkpoint.pt", weights_only=True)["model"] for d in (run_dir, whole_dir))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [list(p["accuracy"]) for p in evals(run_dir)] == [["test_seen", "test_unseen"]] * 2
    assert json.loads((run_dir / "data_manifest.json").read_bytes()) == json.loads(recorded)
    assert main(["evaluate", str(run_dir), "--progress", "none"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--split", "validation"]) == 2
    assert "--split validation: no such split" in capsys.readouterr().err


@pytest.mark.parametrize(
    "run_id", ["e1-cpu-v3/runs/num_rules=10.seed=0", "markov-cpu/runs/answer=final.num_rules=10.k=2.seed=0"]
)
def test_committed_runs_still_match_their_data(run_id):
    """Runs exported before validation splits: their data, generated again, is what they recorded once
    the validation split is set aside (so `evaluate` and a resume accept them), and not before."""
    run_dir = RESULTS / run_id
    dataset = generate_dataset(build_run_config(load_yaml(run_dir / "config.yaml")).data)
    assert "validation" in dataset.splits
    with pytest.raises(UserError, match="made with other data"):
        check_data_manifest(run_dir, json.loads(json.dumps(dataset.manifest)))
    recorded = as_recorded(run_dir, dataset)
    assert "validation" not in recorded.splits and "validation" not in recorded.rules.split
    check_data_manifest(run_dir, json.loads(json.dumps(recorded.manifest)))
