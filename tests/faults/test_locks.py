"""Concurrency: a run or sweep folder that another process is writing is refused with "in use by PID N",
by `train`, `evaluate`, `sweep` and the sweep backends' workers alike; the lock goes with its process,
however that process ends (issue 25, case 9)."""

from __future__ import annotations

import os

import pytest

from rewritelab.cli import main
from rewritelab.config import load_yaml
from rewritelab.errors import UserError
from rewritelab.folders import RUN, SWEEP, hold_folder
from rewritelab.sweep import load_sweep, prepare_sweep_dir
from rewritelab.sweep.ray_backend import _train_in_ray_worker
from support import TINY

TRAIN = ["--set", "train.max_steps=2", "--set", "train.eval_every=0", "--progress", "none"]
RUN_ID = "num_rules=2.seed=0"  # the run of the `sweep_file` fixture


def in_use(argv: list[str], capsys, pid: int) -> None:
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"in use by PID {pid}" in err, err


def test_train_and_evaluate_refuse_a_run_another_process_writes(tmp_path, lock_holders, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = lock_holders.hold(run_dir, RUN)
    in_use(["train", TINY, "--out", run_dir, *TRAIN], capsys, holder.pid)
    assert sorted(p.name for p in run_dir.iterdir()) == [".rewritelab.lock"]  # nothing trained or written
    lock_holders.kill(holder)  # killed: its lock is gone with it
    assert main(["train", str(TINY), "--out", str(run_dir), *TRAIN]) == 0
    holder = lock_holders.hold(run_dir, RUN)
    summary = (run_dir / "summary.json").read_bytes()
    in_use(["evaluate", run_dir, "--progress", "none"], capsys, holder.pid)
    assert (run_dir / "summary.json").read_bytes() == summary


def test_a_second_sweep_into_a_folder_in_use_is_refused_and_changes_nothing(
    sweep_file, tmp_path, lock_holders, files_of, capsys
):
    out = tmp_path / "sweep"
    prepare_sweep_dir(load_sweep(str(sweep_file), [], None), out, {})  # as the running sweep wrote it
    holder = lock_holders.hold(out, SWEEP)
    before = files_of(out)
    in_use(["sweep", sweep_file, "--out", out, "--seeds", "5"], capsys, holder.pid)
    assert files_of(out) == before  # its seed list [0] kept, no run of seed 5


def test_a_local_sweep_worker_does_not_train_a_run_another_process_holds(sweep_file, tmp_path, lock_holders):
    out = tmp_path / "sweep"
    (out / "runs" / RUN_ID).mkdir(parents=True)
    holder = lock_holders.hold(out / "runs" / RUN_ID, RUN)
    assert main(["sweep", str(sweep_file), "--out", str(out), "--workers", "1"]) == 1
    log = (out / "logs" / f"{RUN_ID}.log").read_text(encoding="utf-8")
    assert f"in use by PID {holder.pid}" in log
    assert not (out / "runs" / RUN_ID / "checkpoint.pt").exists()


def test_a_ray_worker_does_not_train_a_run_another_process_holds(tmp_path, lock_holders):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = lock_holders.hold(run_dir, RUN)
    config = load_yaml(TINY)
    config["train"].update(max_steps=2, eval_every=0)
    with pytest.raises(UserError, match=f"in use by PID {holder.pid}"):
        _train_in_ray_worker(config, str(run_dir), 1)  # the body of each Ray task
    assert not (run_dir / "checkpoint.pt").exists()


def test_the_lock_is_exclusive_and_released_when_its_holder_dies(tmp_path, lock_holders):
    folder = tmp_path / "run"
    folder.mkdir()
    holder = lock_holders.hold(folder, RUN)
    with pytest.raises(UserError, match=f"in use by PID {holder.pid}"), hold_folder(folder, RUN):
        pass
    lock_holders.kill(holder)
    with hold_folder(folder, RUN):
        assert (folder / ".rewritelab.lock").read_text(encoding="ascii").strip() == str(os.getpid())
