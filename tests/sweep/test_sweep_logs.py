"""A sweep's logs and interruptions (issue 26, item 12): each run's log holds its progress as plain lines
and grows when the run resumes, library deprecation notices stay out of it, and Ctrl-C says how to
resume."""

from __future__ import annotations

import shlex
import subprocess
import sys

import yaml

import rewritelab.sweep
from rewritelab.cli import main
from rewritelab.sweep import load_sweep, run_sweep
from rewritelab.sweep.local import run_env
from support import MICRO_DATA, MICRO_MODEL

MICRO = {
    "base": {
        "data": MICRO_DATA,
        "model": MICRO_MODEL,
        "train": {"batch_size": 8, "max_steps": 40, "eval_every": 20, "device": "cpu", "threads": 1},
    },
    "grid": [{"data.num_rules": [4]}],
}


def test_a_runs_log_holds_plain_progress_lines_and_grows_when_the_run_resumes(tmp_path):
    path = tmp_path / "micro.yaml"
    path.write_text(yaml.safe_dump(MICRO))
    out = tmp_path / "sweep"
    run_sweep(load_sweep(str(path)), out, workers=1, progress=False)
    log = out / "logs" / "num_rules=4.seed=0.log"
    first = log.read_text()
    assert "\r" not in first and "step 40/40 (100%) loss" in first and "step 20: test_seen" in first
    (out / "runs" / "num_rules=4.seed=0" / "summary.json").unlink()  # as if killed before its summary
    run_sweep(load_sweep(str(path)), out, workers=1, progress=False)
    again = log.read_text()
    assert again.startswith(first) and again.count("rewritelab 0.1.0, torch") == 2


def test_runs_execute_with_library_deprecation_notices_off(tmp_path):
    code = "import warnings; warnings.warn('old', FutureWarning); warnings.warn('old', DeprecationWarning); "
    code += "warnings.warn('about the run', UserWarning)"
    result = subprocess.run([sys.executable, "-c", code], env=run_env(1), capture_output=True, text=True)
    assert "about the run" in result.stderr and "old" not in result.stderr


def test_ctrl_c_on_a_sweep_prints_the_command_that_resumes_it(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(rewritelab.sweep, "run_sweep", interrupted)
    path = tmp_path / "my sweep.yaml"
    path.write_text(yaml.safe_dump(MICRO))
    args = ["--out", str(tmp_path / "out"), "--seeds", "0,1", "--workers", "2", "--set", "train.lr=0.01"]
    assert main(["sweep", str(path), *args]) == 130
    err = capsys.readouterr().err
    resume = shlex.join(["rewritelab", "sweep", str(path), *args])
    assert err.count("\n") == 1 and err.strip().endswith(f"resume with `{resume}`")
    assert main(["reproduce", str(path), *args]) == 130
    assert (
        f"resume with `{shlex.join(['rewritelab', 'reproduce', str(path), *args])}`"
        in capsys.readouterr().err
    )
