"""LoRA runs on tiny random GPT-2 / Llama models: they learn, resume exactly, score like the from-scratch
path, and bad input ends with one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from rewritelab.cli import main
from rewritelab.data import generate_dataset
from rewritelab.lm import LM, lm_run_config_from_dict, train_lm_run
from rewritelab.run import TrainingInterrupted, split_report
from rewritelab.run import train as train_loop
from support import lm_config, save_tiny, stop_after

ALL_LLAMA = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def learning_config(model: Path, **train) -> dict:
    raw = lm_config(model, **{"epochs": 32, "lr": 3e-3, **train})
    raw["data"].update(input_len=3, pattern_len=1)
    raw["lm"]["lora"]["target_modules"] = ALL_LLAMA
    return raw


def losses(run_dir: Path) -> list[float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines if json.loads(line)["kind"] == "train"]


def test_lora_run_learns_a_two_rule_task(tiny_llama, tmp_path):
    """The base model (max_steps 0: the zero-shot baseline) solves none of the seen-rule tests; the adapter
    fitted to the two rules solves most of them by exact match after greedy decoding."""
    base = train_lm_run(lm_run_config_from_dict(learning_config(tiny_llama, max_steps=0)), tmp_path / "base")
    assert base["train"]["steps"] == 0 and base["accuracy"]["test_seen"] <= 0.1
    summary = train_lm_run(lm_run_config_from_dict(learning_config(tiny_llama)), tmp_path / "run")
    # untrained: ~ln(97) = 4.6 nats per answer token; a 2-rule task is fitted far below that
    assert summary["train"]["final_loss"] < 0.5
    assert losses(tmp_path / "run")[-1] < 0.1 * 4.6
    assert summary["accuracy"]["test_seen"] >= 0.6
    for name in ("config.yaml", "data_manifest.json", "checkpoint.pt", "summary.json", "adapter"):
        assert (tmp_path / "run" / name).exists()
    assert set(summary["accuracy"]) == {"test_seen", "test_unseen"}


def adapter(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoint.pt", weights_only=True)["model"]


def test_resume_after_a_kill_gives_the_same_adapter(tiny_gpt2, tmp_path, monkeypatch):
    raw = lm_config(tiny_gpt2, max_steps=12, checkpoint_every=5)
    raw["lm"]["lora"]["dropout"] = 0.1  # the dropout RNG stream must resume too
    cfg = lm_run_config_from_dict(raw)
    whole = train_lm_run(cfg, tmp_path / "whole")
    with monkeypatch.context() as m:
        m.setattr(train_loop, "stop_requests", lambda: stop_after(7))
        with pytest.raises(TrainingInterrupted):
            train_lm_run(cfg, tmp_path / "cut")
    assert torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)["state"]["step"] == 7
    resumed = train_lm_run(cfg, tmp_path / "cut")
    a, b = adapter(tmp_path / "whole"), adapter(tmp_path / "cut")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["accuracy"] == whole["accuracy"]
    assert losses(tmp_path / "whole") == losses(tmp_path / "cut")


@pytest.mark.parametrize("letters", ["joined", "spaced"])
def test_scoring_matches_the_from_scratch_scorer(tiny_gpt2, tmp_path, letters):
    raw = lm_config(tiny_gpt2, max_steps=3)
    raw["lm"]["letters"] = letters  # spaced: predictions are scored with the spaces taken out
    summary = train_lm_run(lm_run_config_from_dict(raw), tmp_path / "run")
    from rewritelab.data import load_dataset

    ds_dir = tmp_path / "data"
    from rewritelab.data import generate_dataset, write_dataset
    from rewritelab.lm import lm_run_config_from_dict as parse

    write_dataset(generate_dataset(parse(lm_config(tiny_gpt2)).data), ds_dir)
    for name in ("test_seen", "test_unseen"):
        rows = [
            json.loads(x)
            for x in (tmp_path / "run" / "predictions" / f"{name}.jsonl").read_text().splitlines()
        ]
        split = load_dataset(ds_dir).splits[name]
        assert [r["output"] for r in rows] == split.output
        correct = np.array([r["prediction"] == r["output"] for r in rows])
        assert correct.tolist() == [r["correct"] for r in rows]
        report = split_report(split, correct, [r["prediction"] for r in rows])
        for key in ("accuracy", "ci95", "n", "breakdown"):
            assert summary[key][name] == json.loads(json.dumps(report[key]))


def run_cli(tmp_path: Path, raw: dict, capsys) -> tuple[int, str]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    code = main(["train", str(path), "--out", str(tmp_path / "run")])
    return code, capsys.readouterr().err


def test_missing_model_path_is_one_line_exit_2(tmp_path, capsys):
    code, err = run_cli(tmp_path, lm_config(tmp_path / "no" / "such" / "model"), capsys)
    assert code == 2 and err.count("\n") == 1 and "no such directory" in err


def test_incompatible_target_module_is_one_line_exit_2(tiny_gpt2, tmp_path, capsys):
    raw = lm_config(tiny_gpt2)
    raw["lm"]["lora"]["target_modules"] = ["ln_1"]
    code, err = run_cli(tmp_path, raw, capsys)
    assert code == 2 and err.count("\n") == 1 and "'ln_1' is not a linear layer" in err and "c_attn" in err


def test_model_without_a_tokenizer_is_one_line_exit_2(tmp_path, capsys):
    model = save_tiny(tmp_path / "bare", "gpt2", with_tokenizer=False)
    code, err = run_cli(tmp_path, lm_config(model), capsys)
    assert code == 2 and err.count("\n") == 1 and "tokenizer" in err


def test_lm_config_rejects_a_model_section(tiny_gpt2):
    raw = {**lm_config(tiny_gpt2), "model": {"n_layer": 2}}
    with pytest.raises(Exception, match="no model: section"):
        lm_run_config_from_dict(raw)


def test_bf16_base_trains_an_fp32_adapter_and_records_the_precision(tiny_llama, tmp_path):
    """dtype bfloat16 on an lm: run: the frozen base runs in bf16 (no fp32 copy), the adapter and its
    optimizer stay fp32, the run learns, and config.yaml records the precision that ran."""
    cfg = lm_run_config_from_dict(learning_config(tiny_llama, dtype="bfloat16", epochs=16))
    built = LM.build(cfg, generate_dataset(cfg.data), torch.device("cpu"))
    frozen = {p.dtype for p in built.model.parameters() if not p.requires_grad}
    trainable = {p.dtype for p in built.model.parameters() if p.requires_grad}
    assert frozen == {torch.bfloat16} and trainable == {torch.float32}
    summary = train_lm_run(cfg, tmp_path / "run")
    assert summary["train"]["final_loss"] < 0.5
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["train"]["dtype"] == "bfloat16"
    assert all(t.dtype == torch.float32 for t in adapter(tmp_path / "run").values())


@pytest.mark.parametrize("speedup, expected", [(2.2, "bfloat16"), (0.05, "float32")])
def test_auto_dtype_takes_bf16_for_a_frozen_base_only_where_it_measures_faster(
    tiny_gpt2, tmp_path, monkeypatch, speedup, expected
):
    from rewritelab.run import device as device_module
    from rewritelab.run import load_run_config
    from rewritelab.run.config import run_identity
    from support import TINY

    monkeypatch.setattr(device_module, "cpu_bf16_speedup", lambda: speedup)
    raw = lm_config(tiny_gpt2, dtype="auto", max_steps=2)
    assert LM.identity(lm_run_config_from_dict(raw))["train"]["dtype"] == expected
    train_lm_run(lm_run_config_from_dict(raw), tmp_path / "run")
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["train"]["dtype"] == expected
    # the from-scratch CPU models measured slower under bf16 autocast: auto stays fp32 for them
    scratch = load_run_config(TINY, ["train.dtype=auto", "train.device=cpu"])
    assert run_identity(scratch)["train"]["dtype"] == "float32"
