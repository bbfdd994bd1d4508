"""Training: config validation, the schedule, batching and sharding, gradient accumulation, and a tiny
model that learns two rules through `train_run` (plus the run directory it leaves behind)."""

from __future__ import annotations

import contextlib
import json
import math
import re
import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rewritelab.cli import main
from rewritelab.config import dump_yaml
from rewritelab.data import generate_dataset, write_dataset
from rewritelab.errors import UserError
from rewritelab.model import GPT
from rewritelab.run import (
    Dist,
    TrainConfig,
    TrainingLoss,
    check_data_manifest,
    count_steps,
    epoch_batches,
    eval_steps,
    learning_rate,
    load_run_config,
    make_optimizer,
    shard,
    target_count,
    train_run,
    train_step,
    with_resolved_dtype,
)
from rewritelab.tokenizer import Tokenizer
from support import TINY

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(*overrides: str):
    return load_run_config(TINY, list(overrides))


# --- configuration ------------------------------------------------------------------------------------


def test_tiny_config_loads_and_round_trips(tmp_path):
    cfg = tiny()
    assert cfg.train.batch_size == 32 and cfg.model.n_layer == 2 and cfg.data.num_rules == 2
    path = tmp_path / "config.yaml"
    path.write_text(dump_yaml(cfg))
    assert load_run_config(path) == cfg


def test_typo_names_the_field_and_suggests_the_right_one():
    with pytest.raises(UserError, match=r"train: unknown key 'lrr' \(did you mean 'lr'\?\)"):
        tiny("train.lrr=1")
    with pytest.raises(UserError, match=r"trian: unknown section \(did you mean 'train'\?\)"):
        load_run_config({"trian": {}})


@pytest.mark.parametrize(
    "override, field",
    [
        ("train.batch_size=0", "train.batch_size"),
        ("train.grad_accum=64", "train.grad_accum"),
        ("train.schedule=step", "train.schedule"),
        ("train.epochs=0", "train.epochs"),
        ("train.max_steps=-1", "train.max_steps"),
        ("train.beta2=1.0", "train.beta2"),
        ("train.min_lr_frac=2", "train.min_lr_frac"),
        ("train.device=tpu", "train.device"),
        ("train.lr=-1", "train.lr"),
    ],
)
def test_invalid_values_name_their_field(override, field):
    with pytest.raises(UserError, match=f"^{field}: "):
        tiny(override)


def test_eval_steps_are_a_linear_grid_plus_log_spaced_points():
    def steps(total, **fields):
        return sorted(eval_steps(total, tiny(*(f"train.{k}={v}" for k, v in fields.items())).train))

    assert steps(1000, eval_every=300) == [300, 600, 900, 1000]
    assert steps(1000, eval_every=0) == [] and steps(0, eval_every=300) == []
    assert steps(1000, eval_every=300, eval_examples=0, eval_log_points=5) == []
    assert steps(1000, eval_every=0, eval_log_points=5) == [10, 32, 100, 316, 1000]
    assert steps(1000, eval_every=500, eval_log_points=3) == [10, 100, 500, 1000]
    assert steps(4, eval_every=0, eval_log_points=3) == [4]  # fewer steps than points: no duplicates


def test_total_steps_follow_epochs_and_cap():
    assert count_steps(100, TrainConfig(batch_size=32, epochs=2.5)) == math.ceil(250 / 32)
    assert count_steps(100, TrainConfig(batch_size=32, epochs=2.5, max_steps=3)) == 3
    assert count_steps(100, TrainConfig(batch_size=32, epochs=0.1)) == 1


@settings(max_examples=60, deadline=None)
@given(
    total=st.integers(1, 400),
    warmup=st.integers(0, 50),
    schedule=st.sampled_from(["linear", "cosine", "constant", "wsd"]),
    floor=st.floats(0.0, 1.0),
)
def test_schedule_warms_up_then_decays_within_bounds(total, warmup, schedule, floor):
    cfg = TrainConfig(lr=1e-3, warmup_steps=warmup, schedule=schedule, min_lr_frac=floor)
    lrs = [learning_rate(s, total, cfg) for s in range(total)]
    assert all(0 < lr <= cfg.lr * (1 + 1e-12) for lr in lrs)
    ramp, rest = lrs[: min(warmup, total)], lrs[min(warmup, total) :]
    assert all(a < b for a, b in zip(ramp, ramp[1:], strict=False))
    assert all(a >= b - 1e-15 for a, b in zip(rest, rest[1:], strict=False))
    assert all(lr >= cfg.lr * floor * (1 - 1e-12) for lr in rest)
    if schedule == "constant":
        assert all(lr == cfg.lr for lr in rest)


@settings(max_examples=100, deadline=None)
@given(size=st.integers(1, 40), world=st.integers(1, 4), accum=st.integers(1, 4))
def test_shards_cover_the_global_batch_once_in_order(size, world, accum):
    batch = np.arange(100, 100 + size)
    pieces = [shard(batch, Dist(rank=r, world_size=world), accum) for r in range(world)]
    assert all(len(p) == accum for p in pieces)
    real = [idx for rank in pieces for idx, w in rank if w == 1.0]
    assert np.array_equal(np.concatenate(real), batch)
    assert all(w == 0.0 and len(idx) == 1 for rank in pieces for idx, w in rank if w != 1.0)


def test_epochs_visit_every_example_once_in_a_reproducible_order():
    lengths = np.random.default_rng(1).integers(5, 20, size=203)
    cfg = TrainConfig(batch_size=16, seed=3)
    first = epoch_batches(lengths, cfg, 0)
    assert np.array_equal(np.sort(np.concatenate(first)), np.arange(203))
    assert len(first) == math.ceil(203 / 16)
    again = epoch_batches(lengths, cfg, 0)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    second = epoch_batches(lengths, cfg, 1)
    assert not all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


# --- one step -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoded_train():
    cfg = tiny("data.input_len=[4, 8]")  # answers of different lengths
    split = generate_dataset(cfg.data).splits["train"]
    tok = Tokenizer(cfg.data.alphabet)
    return cfg, tok, tok.encode_split(split)


@pytest.mark.parametrize("loss_on", ["answer", "all"])
def test_target_count_is_the_mask_total(encoded_train, loss_on):
    _, _, enc = encoded_train
    batch = np.arange(0, 40, 3)
    _, _, mask = enc.batch(batch, loss_on)
    assert target_count(enc, batch, loss_on) == int(mask.sum())


def grads_after_step(cfg, tok, enc, batch, grad_accum):
    torch.manual_seed(0)
    model = GPT(cfg.model, tok.vocab_size, int(enc.lengths.max()))
    tc = TrainConfig(grad_accum=grad_accum)
    amp = torch.autocast("cpu", enabled=False)
    loss = train_step(TrainingLoss(model), enc, batch, tc, Dist(), torch.device("cpu"), amp)
    return float(loss), [p.grad.clone() for p in model.parameters()], model


def test_accumulation_computes_the_global_mean_loss_and_gradient(encoded_train):
    cfg, tok, enc = encoded_train
    batch = np.arange(5, 28)  # 23 examples: micro-batches of unequal size
    loss1, grads1, model = grads_after_step(cfg, tok, enc, batch, 1)
    loss3, grads3, _ = grads_after_step(cfg, tok, enc, batch, 3)
    x, y, mask = enc.batch(batch, "answer")
    with torch.no_grad():
        _, reference = model(x, y, mask)
    assert loss1 == pytest.approx(float(reference), rel=1e-5)
    assert loss3 == pytest.approx(loss1, rel=1e-5)
    for a, b in zip(grads1, grads3, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_no_weight_decay_on_embeddings_layernorms_and_biases(encoded_train):
    cfg, tok, _ = encoded_train
    model = GPT(cfg.model, tok.vocab_size, 32)
    decay, rest = make_optimizer(model, TrainConfig(weight_decay=0.1)).param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay["weight_decay"] == 0.1 and rest["weight_decay"] == 0.0
    assert all(p.dim() == 2 and not names[id(p)].startswith(("wte", "wpe")) for p in decay["params"])
    rest_names = {names[id(p)] for p in rest["params"]}
    assert {"wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias", "blocks.0.attn.c_attn.bias"} <= rest_names
    assert len(decay["params"]) + len(rest["params"]) == len(list(model.parameters()))


def test_wsd_holds_the_peak_then_decays_over_its_last_fraction():
    cfg = TrainConfig(lr=1e-3, warmup_steps=10, schedule="wsd", decay_frac=0.25)
    lrs = [learning_rate(s, 210, cfg) for s in range(210)]
    assert lrs[9] == cfg.lr and all(lr == cfg.lr for lr in lrs[10:160])  # 200 post-warmup steps, 150 flat
    assert all(a > b for a, b in zip(lrs[160:], lrs[161:], strict=False))
    assert lrs[185] == pytest.approx(cfg.lr / 2)
    assert learning_rate(210, 210, cfg) == 0.0


def test_muon_takes_the_hidden_matrices_and_adamw_the_rest(encoded_train):
    cfg, tok, enc = encoded_train
    model = GPT(cfg.model, tok.vocab_size, int(enc.lengths.max()))
    reference = make_optimizer(model, TrainConfig(weight_decay=0.1))
    pair = make_optimizer(model, TrainConfig(weight_decay=0.1, optimizer="muon"))
    muon, adamw = pair.optimizers
    assert isinstance(muon, torch.optim.Muon) and isinstance(adamw, torch.optim.AdamW)
    assert muon.param_groups[0]["params"] == reference.param_groups[0]["params"]  # the decayed matrices
    assert adamw.param_groups[0]["params"] == reference.param_groups[1]["params"]
    assert muon.param_groups[0]["weight_decay"] == 0.1 and adamw.param_groups[0]["weight_decay"] == 0.0
    before = [p.detach().clone() for p in model.parameters()]
    train_step(TrainingLoss(model), enc, np.arange(16), TrainConfig(), Dist(), torch.device("cpu"),
               contextlib.nullcontext())  # fmt: skip
    pair.step()
    assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
    state = pair.state_dict()
    assert [len(s["state"]) for s in state["pair"]] == [len(muon.param_groups[0]["params"]),
                                                        len(adamw.param_groups[0]["params"])]  # fmt: skip


# --- a whole run ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("learned")
    start = time.perf_counter()
    summary = train_run(tiny(), run_dir, progress="none")
    return run_dir, summary, time.perf_counter() - start


def test_tiny_model_learns_its_rules(learned):
    _, summary, seconds = learned
    assert summary["accuracy"]["test_seen"] >= 0.95
    assert seconds < 40
    assert summary["train"]["steps"] == 625 and summary["train"]["final_loss"] < 0.1
    assert set(summary["train"]["convergence"]) == {"loss_drop", "acc_delta", "converged"}


def test_run_directory_holds_config_manifest_metrics_checkpoint_summary(learned):
    run_dir, summary, _ = learned
    recorded = load_run_config(run_dir / "config.yaml")
    assert recorded == with_resolved_dtype(tiny()) and recorded.train.dtype == "float32"  # auto, as it ran
    assert json.loads((run_dir / "data_manifest.json").read_text()) == json.loads(
        json.dumps(generate_dataset(tiny().data).manifest)
    )
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_lines = [r for r in lines if r["kind"] == "train"]
    evals = [r for r in lines if r["kind"] == "eval"]
    assert [r["step"] for r in train_lines] == [*range(50, 625, 50), 625]
    assert set(train_lines[0]) == {"kind", "step", "epoch", "tokens", "seconds", "lr", "loss"}
    assert train_lines[-1]["loss"] < train_lines[0]["loss"]
    assert [r["step"] for r in evals] == [*range(100, 625, 100), 625]
    assert set(evals[-1]["accuracy"]) == {"validation", "test_seen", "test_unseen"}
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in ckpt["model"])
    assert ckpt["state"]["step"] == 625 and ckpt["state"]["tokens"] == summary["train"]["tokens"]
    assert set(summary) == {
        "accuracy",
        "ci95",
        "n",
        "breakdown",
        "train",
        "config",
        "code_version",
        "machine",
        "versions",
        "finished_at",
    }
    assert (run_dir / "predictions" / "test_unseen.jsonl").is_file()


def test_finished_run_is_returned_not_retrained(learned):
    run_dir, summary, _ = learned
    before = (run_dir / "checkpoint.pt").stat().st_mtime_ns
    start = time.perf_counter()
    again = train_run(tiny("train.threads=2", "train.progress=log"), run_dir)  # execution-only changes
    assert time.perf_counter() - start < 1.0
    assert again == summary
    assert (run_dir / "checkpoint.pt").stat().st_mtime_ns == before


def test_a_package_upgrade_does_not_orphan_the_run(learned):
    run_dir, _, _ = learned
    manifest = json.loads((run_dir / "data_manifest.json").read_text())
    check_data_manifest(run_dir, {**manifest, "rewritelab_version": "9.9.9"})  # same data: accepted
    with pytest.raises(UserError):
        check_data_manifest(run_dir, {**manifest, "counts": {}})


def test_a_directory_of_another_run_is_refused_naming_what_changed(learned):
    run_dir, _, _ = learned
    why = "holds a different run: the training settings changed (train.lr: 0.005 there, 0.002 here); pick"
    with pytest.raises(UserError, match=re.escape(why)):
        train_run(tiny("train.lr=0.002"), run_dir)
    why = "the data and the training settings changed (data.num_rules: 2 there, 3 here; train.lr: 0.005"
    with pytest.raises(UserError, match=re.escape(why)):
        train_run(tiny("data.num_rules=3", "train.lr=0.002"), run_dir)


def test_more_steps_for_a_finished_run_explain_why_it_is_another_run(learned, capsys):
    run_dir, _, _ = learned
    args = ["train", str(TINY), "--out", str(run_dir), "--set", "train.max_steps=700"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "(train.max_steps: null there, 700 here); a run is not extended" in err
    assert "decays over its own number of steps, so a longer run is another run, trained from the" in err
    assert "pick a new --out directory" in err


def test_zero_steps_evaluates_the_untrained_model_as_a_baseline(learned, tmp_path):
    """max_steps 0: no optimizer step, a checkpoint of the initial weights, the usual summary — the
    untrained model's accuracy, far below the trained run's."""
    summary = train_run(tiny("train.max_steps=0"), tmp_path / "run", progress="none")
    assert summary["train"]["steps"] == 0 and summary["train"]["final_loss"] is None
    assert summary["train"]["convergence"] is None  # nothing trained, nothing to judge
    assert summary["accuracy"]["test_seen"] < 0.1 < learned[1]["accuracy"]["test_seen"]
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["state"]["step"] == 0
    metrics = tmp_path / "run" / "metrics.jsonl"
    assert not metrics.exists() or not metrics.read_text()  # no step, no training record


def test_log_progress_prints_plain_lines(tmp_path, capsys):
    train_run(tiny("train.max_steps=3", "train.eval_every=0"), tmp_path / "run", progress="log")
    err = capsys.readouterr().err
    assert "step 3/3 (100%) loss" in err and "tok/s" in err


def test_training_on_a_written_dataset_records_its_spec(tmp_path):
    cfg = tiny("train.max_steps=3", "train.eval_every=0", "data.seed=5")
    dataset = generate_dataset(cfg.data)
    write_dataset(dataset, tmp_path / "data")
    other = tiny("train.max_steps=3", "train.eval_every=0")  # its data section is replaced by the dataset's
    summary = train_run(other, tmp_path / "run", data_dir=tmp_path / "data", progress="none")
    assert load_run_config(tmp_path / "run" / "config.yaml").data == cfg.data
    assert summary["n"]["test_seen"] == len(dataset.splits["test_seen"])
    again = train_run(other, tmp_path / "run", data_dir=tmp_path / "data", progress="none")
    assert again == summary


# --- the command line ---------------------------------------------------------------------------------


def test_cli_trains_and_prints_the_accuracies(tmp_path, capsys):
    args = [
        "train",
        str(TINY),
        "--out",
        str(tmp_path / "run"),
        "--set",
        "train.max_steps=4",
        "--progress",
        "none",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "test_seen" in out and "test_unseen" in out and "95% CI" in out


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--set", "train.lrr=1"], "train: unknown key 'lrr'"),
        (["--data", "/nonexistent/data"], "--data /nonexistent/data: no such directory"),
        (["--set", "model.d_model=33"], "model.d_model"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys, extra, needle):
    assert main(["train", str(TINY), "--out", str(tmp_path / "run"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rewritelab: error: ") and needle in err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_cli_missing_config_file(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "run")]) == 2
    assert "config file not found" in capsys.readouterr().err
