"""Faults that used to end in a traceback end in one line and exit 2 (issue 25, cases 10-12 and 15): a
truncated summary.json, garbled bytes at the end of metrics.jsonl, memory or disk space running out
mid-training (and the run then resumes bit-identically), and an `include:` of a file that is not YAML."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
import torch
import yaml

from rewritelab.cli import main
from rewritelab.io import atomic_write_bytes
from rewritelab.run import checkpoint as run_checkpoint
from rewritelab.run import scratch as run_scratch
from support import TINY

RUN = ["--set", "train.max_steps=20", "--set", "train.checkpoint_every=5", "--set", "train.eval_every=0"]
RUN += ["--progress", "none"]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("rewritelab: error: ") and "\n" not in err and "Traceback" not in err
    return err


def train(out: Path) -> int:
    return main(["train", str(TINY), "--out", str(out), *RUN])


def losses(run: Path) -> list[str]:
    """metrics.jsonl without the wall-clock fields, which differ between sessions."""
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [repr({k: v for k, v in line.items() if k != "seconds"}) for line in lines]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "run"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert train(out) == 0
    finally:
        torch.set_num_threads(before)
    return out


def test_a_truncated_summary_in_a_sweep_without_its_database_is_one_line(tmp_path, capsys):
    sweep = tmp_path / "tiny.yaml"
    sweep.write_text(yaml.safe_dump({"base": yaml.safe_load(TINY.read_text()), "seeds": [0]}))
    run = tmp_path / "s" / "runs" / "seed=0"
    run.mkdir(parents=True)
    (run / "summary.json").write_text('{"accuracy": {"test_seen": 0.9')  # cut short; no results.sqlite
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "s")]) == 2
    assert "summary.json: damaged; delete it" in one_line_error(capsys)


def test_garbled_bytes_at_the_end_of_metrics_are_dropped_on_resume(uninterrupted, tmp_path, one_thread):
    run = tmp_path / "run"
    assert train(run) == 0
    (run / "summary.json").unlink()  # unfinished again: the next `train` resumes from the checkpoint
    with open(run / "metrics.jsonl", "ab") as f:
        f.write(b'{"kind": "train", "step": 3\xff\xfe\x80')  # a line cut inside a multi-byte write
    assert train(run) == 0
    assert losses(run) == losses(uninterrupted)


def fail_on_call(function, n: int, error: BaseException):
    """`function`, raising `error` on its n-th call instead."""
    calls = []

    def wrapper(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise error
        return function(*args, **kwargs)

    return wrapper


@pytest.mark.parametrize(
    ("module", "name", "call", "error", "says", "saved"),
    [
        (run_scratch, "train_step", 8, MemoryError(), "out of memory", 5),  # at step 8
        (
            run_checkpoint,
            "atomic_write_bytes",
            3,  # the checkpoint of step 15
            OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
            "no space left on the disk",
            10,
        ),
    ],
    ids=["out-of-memory", "disk-full"],
)
def test_running_out_mid_training_is_one_line_and_the_run_resumes_bit_identically(
    module, name, call, error, says, saved, uninterrupted, tmp_path, capsys, monkeypatch, one_thread
):
    run = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(module, name, fail_on_call(getattr(module, name), call, error))
        assert train(run) == 2
    assert one_line_error(capsys).startswith(f"rewritelab: error: {says}")
    assert not (run / "summary.json").exists()
    assert torch.load(run / "checkpoint.pt", weights_only=True)["state"]["step"] == saved
    assert train(run) == 0
    whole, resumed = (
        torch.load(r / "checkpoint.pt", weights_only=True)["model"] for r in [uninterrupted, run]
    )
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    assert losses(run) == losses(uninterrupted)


def test_a_full_disk_names_the_file_being_written_and_leaves_no_temp_file(tmp_path, monkeypatch):
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as caught:
        atomic_write_bytes(tmp_path / "checkpoint.pt", b"x" * 100)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(tmp_path / "checkpoint.pt")
    assert list(tmp_path.iterdir()) == []


SHADOW = "alice:$6$Zq1ySecretSalt$hUnTeR2hashedpasswordvalue:19000:0:99999:7:::\n"


def test_an_include_of_a_file_that_is_not_yaml_never_echoes_its_content(tmp_path, capsys):
    foreign = tmp_path / "shadow"
    foreign.write_text(SHADOW + "daemon:*:19000:0:99999:7:::\n")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"include: {foreign}\nseeds: [0]\n")
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "s"), "--dry-run"]) == 2
    err = one_line_error(capsys)
    assert "not a setting name" in err and str(foreign) in err
    assert not any(part in err for part in SHADOW.split(":") if len(part) > 2)
    assert main(["train", str(foreign), "--out", str(tmp_path / "r")]) == 2  # given as a run config
    err = one_line_error(capsys)
    assert not any(part in err for part in SHADOW.split(":") if len(part) > 2)
