"""A smoke run of every published preset: its first run trains two steps here, so a preset that cannot run
fails CI, not a user hours into a sweep (issue 39: e6-cpu's bf16 base once refused to start).

The run keeps what decides whether it can run — its model (or pretrained model, LoRA and template), its
optimizer and recipe, its dtype and device — and is cut everywhere else: two steps (a preset's 0 stays 0),
a batch of at most 4, a training set of one batch (or one example a rule), two held-out rules of two
examples of which one is scored, no learning curve. A run this machine lacks the hardware or the model
for (a CUDA preset, a pretrained model not installed) is skipped, with the reason.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rewritelab.cli import main
from rewritelab.errors import UserError
from rewritelab.kinds import build_run_config, train_any_run
from rewritelab.lm import LMRunConfig, model_source
from rewritelab.run import resolve_device
from rewritelab.sweep import expand, load_sweep, preset_names

ROOT = Path(__file__).resolve().parents[2]
# An AVX2-only CPU emulated on this one: every kernel library capped at AVX2 (docs/benchmarks.md)
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def smoke_config(name: str) -> dict:
    """The preset's first run, cut to a two-step smoke run (see the module docstring)."""
    config = copy.deepcopy(expand(load_sweep(name))[0].config)
    data, train = config["data"], config["train"]
    batch = min(train.get("batch_size", 64), 4)
    data.pop("examples_per_rule", None)
    data.update(budget=max(data["num_rules"], batch), test_rules=2, test_examples_per_rule=2)
    steps = train.get("max_steps")
    train.update(
        batch_size=batch, grad_accum=1, max_steps=2 if steps is None else min(steps, 2), eval_every=0,
        eval_log_points=0, test_examples=1, checkpoint_every=1000, threads=1, progress="none",
    )  # fmt: skip
    return config


def unavailable(cfg) -> str | None:
    """Why this machine cannot run `cfg` (its device or its pretrained model is missing), or None."""
    try:
        resolve_device(cfg.train.device)
        if isinstance(cfg, LMRunConfig):
            model_source(cfg.lm)
    except UserError as e:
        return str(e)
    return None


@pytest.mark.parametrize("name", preset_names())
def test_the_first_run_of_every_preset_trains_two_steps(name, tmp_path):
    config = smoke_config(name)
    cfg = build_run_config(config)
    if why := unavailable(cfg):
        pytest.skip(f"{name}: {why}")
    summary = train_any_run(cfg, tmp_path / "run")
    assert summary["train"]["steps"] == config["train"]["max_steps"]
    assert {"test_seen", "test_unseen"} <= set(summary["accuracy"])


def test_e6_cpu_with_dtype_auto_trains_two_steps_on_a_cpu_without_native_bf16(tmp_path):
    """On an AVX2-only CPU (emulated) a bf16 matmul measures slower than fp32, so `dtype: auto` runs the
    frozen base in fp32 (recorded in config.yaml), and the run trains."""
    config = smoke_config("e6-cpu")
    assert config["train"]["dtype"] == "auto"
    if why := unavailable(build_run_config(config)):
        pytest.skip(f"e6-cpu: {why}")
    path = tmp_path / "e6-cpu.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        **AVX2,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "rewritelab", "train", str(path), "--out", str(tmp_path / "run")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    recorded = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert recorded["train"]["dtype"] == "float32"


def test_e6_cpu_sweep_dry_run_succeeds(tmp_path, capsys):
    """`rewritelab sweep e6-cpu --out S --dry-run` plans all eight runs and writes nothing (it needs no
    model: LoRA runs are estimated from measured throughput)."""
    assert main(["sweep", "e6-cpu", "--out", str(tmp_path / "S"), "--dry-run"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "num_rules=2048.seed=1" in out
    assert not (tmp_path / "S").exists()
