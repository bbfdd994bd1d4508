"""Checkpoint and resume through the real command line: SIGKILL or SIGTERM a `python -m rewritelab train`
mid-run, re-run the same command, and the run ends bit-identical (weights, summary, metrics) to one that
was never stopped. Finished runs are not retrained; damaged, foreign or hostile checkpoints are refused."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rewritelab.cli import main
from rewritelab.run import TrainingInterrupted, load_run_config, train_run
from rewritelab.run import scratch as train_module
from rewritelab.versions import current_versions, version_changes
from support import TINY

# Long enough to stop mid-way; checkpoints every 100 steps, metrics lines every 50.
SETTINGS = ["train.max_steps=400", "train.threads=1"]
TIMEOUT = 120


def command(run_dir: Path, *extra: str) -> list[str]:
    sets = [arg for s in SETTINGS for arg in ("--set", s)]
    return [sys.executable, "-m", "rewritelab", "train", str(TINY), "--out", str(run_dir), *sets, *extra]


def env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1")


def train(run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(run_dir, "--progress", "none", *extra),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env(),
    )


def start(run_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        command(run_dir, "--progress", "none"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )


def wait_for(condition, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert proc.poll() is None, f"training ended before it could be stopped: {proc.communicate()}"
        assert time.monotonic() < deadline
        time.sleep(0.005)


def metrics_step(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return 0
    steps = [json.loads(line)["step"] for line in path.read_text().splitlines() if line.endswith("}")]
    return max(steps, default=0)


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]


def results(run_dir: Path) -> dict:
    summary = json.loads((run_dir / "summary.json").read_text())
    train = {k: v for k, v in summary["train"].items() if k != "seconds"}
    return {"accuracy": summary["accuracy"], "ci95": summary["ci95"], "n": summary["n"], "train": train}


def metrics_without_timing(run_dir: Path) -> list[dict]:
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in line.items() if k != "seconds"} for line in lines]


def assert_same_run(run_dir: Path, reference: Path) -> None:
    a, b = weights(run_dir), weights(reference)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert results(run_dir) == results(reference)
    assert metrics_without_timing(run_dir) == metrics_without_timing(reference)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    done = train(run_dir)
    assert done.returncode == 0, done.stderr
    return run_dir


def test_sigkill_then_rerun_ends_bit_identical(tmp_path, reference):
    run_dir = tmp_path / "run"
    proc = start(run_dir)
    # past a checkpoint (step 100) and a metrics line after it (step 150), so resume must cut metrics back
    wait_for(lambda: metrics_step(run_dir) >= 150, proc)
    proc.kill()
    proc.wait()
    assert not (run_dir / "summary.json").exists()
    resumed_from = torch.load(run_dir / "checkpoint.pt", weights_only=True)["state"]["step"]
    assert 100 <= resumed_from < 400
    done = train(run_dir)
    assert done.returncode == 0, done.stderr
    assert_same_run(run_dir, reference)


def test_sigterm_checkpoints_exits_and_resumes(tmp_path, reference):
    run_dir = tmp_path / "run"
    proc = start(run_dir)
    wait_for(lambda: (run_dir / "checkpoint.pt").exists(), proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 128 + signal.SIGTERM
    assert err.count("\n") == 1 and "SIGTERM at step" in err and "checkpoint saved" in err
    step = torch.load(run_dir / "checkpoint.pt", weights_only=True)["state"]["step"]
    assert f"at step {step}:" in err and 100 <= step < 400
    assert not (run_dir / "summary.json").exists()
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert ckpt["state"].pop("finished_at") == ""  # not finished; and without the key, as older ones were
    torch.save(ckpt, run_dir / "checkpoint.pt")
    done = train(run_dir)
    assert done.returncode == 0, done.stderr
    assert_same_run(run_dir, reference)
    stamp = torch.load(run_dir / "checkpoint.pt", weights_only=True)["state"]["finished_at"]
    assert json.loads((run_dir / "summary.json").read_text())["finished_at"] == stamp > "2025"


def test_finished_run_is_not_retrained(reference):
    checkpoint = reference / "checkpoint.pt"
    before = (checkpoint.stat().st_mtime_ns, checkpoint.read_bytes())
    summary = (reference / "summary.json").read_bytes()
    done = train(reference)
    assert done.returncode == 0, done.stderr
    assert "test_seen" in done.stdout
    assert (checkpoint.stat().st_mtime_ns, checkpoint.read_bytes()) == before
    assert (reference / "summary.json").read_bytes() == summary


def test_sigint_checkpoints_stops_and_restores_the_handlers(tmp_path, monkeypatch, one_thread):
    real_step, calls = train_module.train_step, []

    def step_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of step 5
        return real_step(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_step", step_then_interrupt)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as info:
        train_run(load_run_config(TINY, SETTINGS), tmp_path / "run", progress="none")
    assert info.value.signum == signal.SIGINT and info.value.step == 5
    assert "run the same command to resume" in str(info.value)
    assert signal.getsignal(signal.SIGINT) is before
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["state"]["step"] == 5


class Hostile:
    """Unpickling this runs a command: a checkpoint must never be loaded that way."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def hostile_checkpoint(marker: Path) -> bytes:
    buffer = io.BytesIO()
    torch.save({"format": 1, "model": Hostile(marker)}, buffer)
    return buffer.getvalue()


def foreign_checkpoint(tmp_path: Path) -> bytes:
    """A checkpoint of another model size (d_model 16 instead of 32)."""
    cfg = load_run_config(TINY, [*SETTINGS, "model.d_model=16", "train.max_steps=2", "train.eval_every=0"])
    train_run(cfg, tmp_path / "other", progress="none")
    return (tmp_path / "other" / "checkpoint.pt").read_bytes()


@pytest.mark.parametrize("kind", ["text", "truncated", "hostile", "foreign"])
def test_bad_checkpoint_is_refused_in_one_line(tmp_path, reference, kind, capsys, one_thread):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(reference / "config.yaml", run_dir / "config.yaml")
    marker = tmp_path / "pwned"
    content = {
        "text": lambda: b"this is not a checkpoint\n",
        "truncated": lambda: (reference / "checkpoint.pt").read_bytes()[:5000],
        "hostile": lambda: hostile_checkpoint(marker),
        "foreign": lambda: foreign_checkpoint(tmp_path),
    }[kind]()
    (run_dir / "checkpoint.pt").write_bytes(content)
    capsys.readouterr()
    sets = [arg for s in SETTINGS for arg in ("--set", s)]
    for argv in (["train", str(TINY), "--out", str(run_dir), *sets], ["evaluate", str(run_dir)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("rewritelab: error: ") and "checkpoint.pt" in err
    assert not marker.exists()
    assert not (run_dir / "summary.json").exists()
    assert (run_dir / "checkpoint.pt").read_bytes() == content


def test_muon_and_wsd_resume_bit_identical(tmp_path, monkeypatch, one_thread):
    """The optimizer pair's two states travel in the checkpoint: an interrupted Muon run resumes exactly."""
    settings = [*SETTINGS, "train.max_steps=120", "train.optimizer=muon", "train.schedule=wsd"]
    whole = train_run(load_run_config(TINY, settings), tmp_path / "whole", progress="none")
    real_step, calls = train_module.train_step, []

    def step_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 70:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_step(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_step", step_then_interrupt)
    with pytest.raises(TrainingInterrupted):
        train_run(load_run_config(TINY, settings), tmp_path / "cut", progress="none")
    monkeypatch.setattr(train_module, "train_step", real_step)
    resumed = train_run(load_run_config(TINY, settings), tmp_path / "cut", progress="none")
    assert_same_run(tmp_path / "cut", tmp_path / "whole")
    assert resumed["accuracy"] == whole["accuracy"]


def test_a_resume_under_other_package_versions_says_so_in_one_line_and_goes_on(
    tmp_path, monkeypatch, capsys, one_thread
):
    """The checkpoint records the versions that wrote it; resuming under others is a one-line notice."""
    settings = [*SETTINGS, "train.max_steps=20", "train.checkpoint_every=10", "train.eval_every=0"]
    real_step, calls = train_module.train_step, []

    def step_then_interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_step(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_step", step_then_interrupt)
    with pytest.raises(TrainingInterrupted):
        train_run(load_run_config(TINY, settings), tmp_path / "run", progress="none")
    monkeypatch.setattr(train_module, "train_step", real_step)
    path = tmp_path / "run" / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["versions"] == current_versions()
    ckpt["versions"].update(torch="2.0.0", numpy="1.0.0")
    torch.save(ckpt, path)
    capsys.readouterr()
    summary = train_run(load_run_config(TINY, settings), tmp_path / "run", progress="none")
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(
        f"rewritelab: note: {tmp_path / 'run'}: resuming at step 5, its checkpoint ran with "
    )
    assert f"torch 2.0.0 (now {torch.__version__}), numpy 1.0.0 (now {np.__version__}); continuing" in err
    assert summary["train"]["steps"] == 20 and summary["versions"] == current_versions()


@pytest.mark.parametrize(
    "recorded",
    [None, "damaged", {}, {"torch": None}, {"torch": torch.__version__}, {"torch": 2}, {"other": "1.0"}],
)
def test_versions_that_are_unknown_or_equal_are_no_change(recorded):
    """Checkpoints and summaries from before versions were recorded, or a package absent on either side."""
    assert version_changes(recorded, current_versions()) == []


def test_only_the_packages_recorded_and_installed_at_other_versions_are_named():
    assert version_changes({"torch": "1.0"}, {"torch": None}) == []  # not installed now: nothing to compare
    changed = version_changes(
        {"torch": "1.0", "peft": "0.1"}, {"rewritelab": "0.1.0", "torch": "2.0", "peft": "0.1"}
    )
    assert changed == ["torch 1.0 (now 2.0)"]
