"""Data-parallel training: `torchrun --nproc_per_node 2 -m rewritelab train` (gloo, CPU) computes the same
updates as one process with `grad_accum=2`, which computes those of whole-batch steps, because every
variant normalises the loss by the number of targets in the global batch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed

from rewritelab.run import load_run_config, load_trained_model, read_checkpoint, train_run
from support import TINY

# Inputs of 4-8 characters: micro-batches hold different numbers of answer tokens. 70 steps cross the
# epoch boundary (63 batches; the last one holds 16 examples, 8 per rank).
SETTINGS = [
    "data.input_len=[4, 8]",
    "train.max_steps=70",
    "train.eval_every=0",
    "train.checkpoint_every=1000",
    "train.threads=1",
]

pytestmark = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="needs torch.distributed with the gloo backend",
)


def test_two_processes_equal_one_process_accumulating_two_micro_batches(tmp_path):
    ddp_dir, single_dir = tmp_path / "ddp", tmp_path / "single"
    sets = [arg for s in SETTINGS for arg in ("--set", s)]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    train = ["-m", "rewritelab", "train", str(TINY), "--out", str(ddp_dir), "--progress", "none", *sets]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([*torchrun, *train], capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("test_unseen") == 1  # only rank 0 reports

    torch.set_num_threads(1)
    cfg = load_run_config(TINY, [*SETTINGS, "train.grad_accum=2"])
    single = train_run(cfg, single_dir, progress="none")
    ddp = json.loads((ddp_dir / "summary.json").read_text())
    assert ddp["train"]["steps"] == single["train"]["steps"] == 70
    assert ddp["train"]["tokens"] == single["train"]["tokens"]
    a, b = (torch.load(d / "checkpoint.pt", weights_only=True) for d in (ddp_dir, single_dir))
    assert a["model"].keys() == b["model"].keys()  # no `module.` prefix from the DDP wrapper
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], rtol=1e-4, atol=1e-5)
    assert len(a["rng"]) == 2  # each rank's RNG state, for dropout streams that resume exactly
    assert losses(ddp_dir) == pytest.approx(losses(single_dir), rel=1e-6)


def test_every_batching_computes_the_full_batch_function(tmp_path):
    """grad_accum=2 (hence DDP) equals whole-batch steps: same losses, same function after 70 steps.

    (Weights are compared through the function: a parameter with zero true gradient, like the key bias,
    carries pure rounding noise that Adam scales up to lr-sized steps in both runs.) A per-micro-batch
    mean instead of the global normalisation changes the losses by ~1e-4 and the logits by ~5e-2 here.
    """
    torch.set_num_threads(1)
    models = []
    for accum in (1, 2):
        run_dir = tmp_path / f"accum{accum}"
        cfg = load_run_config(TINY, [*SETTINGS, f"train.grad_accum={accum}"])
        train_run(cfg, run_dir, progress="none")
        ckpt = read_checkpoint(run_dir / "checkpoint.pt")
        models.append(load_trained_model(cfg, ckpt, run_dir / "checkpoint.pt", torch.device("cpu")))
    assert losses(tmp_path / "accum1") == pytest.approx(losses(tmp_path / "accum2"), rel=1e-6)
    x = torch.randint(4, models[0].vocab_size, (16, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(models[0](x)[0], models[1](x)[0], rtol=0, atol=1e-4)


def losses(run_dir: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
