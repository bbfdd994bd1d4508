"""A diverging run (issue 25, case 5): a non-finite loss or gradient norm stops both training loops with
one line naming the step and the likely cause; nothing is recorded as finished; and no JSON file that
rewritelab writes holds NaN or Infinity."""

from __future__ import annotations

import json
import math
import sqlite3
import string
from pathlib import Path

import pytest
import torch
import yaml

from rewritelab.cli import main
from rewritelab.convergence import convergence
from rewritelab.io import atomic_write_json
from support import TINY

DIVERGING = ["--set", "train.lr=1e6", "--set", "train.max_steps=30", "--progress", "none"]


def strict_json(text: str) -> object:
    """Parse as standard JSON: Python's parser would otherwise accept NaN and Infinity."""

    def refuse(token: str) -> None:
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_a_diverging_run_stops_at_the_step_with_one_line_and_is_not_finished(tmp_path, capsys, one_thread):
    out = tmp_path / "run"
    assert main(["train", str(TINY), "--out", str(out), *DIVERGING]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert "training diverged at step 2 " in err and "learning rate is likely too high" in err
    assert not (out / "summary.json").exists()
    assert not (out / "checkpoint.pt").exists()  # nothing after the last finite step is saved
    assert not (out / "metrics.jsonl").exists()  # nor logged (the first line would be at step 30)


def test_a_diverging_run_counts_as_failed_in_a_sweep_and_stores_no_row(tmp_path, capsys):
    sweep = tmp_path / "diverging.yaml"
    base = yaml.safe_load(TINY.read_text())
    base["train"].update(lr=1e6, max_steps=30)
    sweep.write_text(yaml.safe_dump({"base": base, "seeds": [0]}))
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "s"), "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert "0/1 runs finished (0 already done), 1 failed" in err and "training diverged at step" in err
    assert not list((tmp_path / "s" / "runs").glob("*/summary.json"))
    db = tmp_path / "s" / "results.sqlite"
    if db.exists():
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT COUNT(*) FROM results").fetchone() == (0,)


def tiny_gpt2(path: Path) -> Path:
    """A randomly initialised 2-layer GPT-2 with a one-token-per-character tokenizer (nothing downloaded)."""
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("peft")
    from tokenizers import Tokenizer, decoders, models

    chars = string.ascii_letters + string.digits + string.punctuation + " \n"
    backend = Tokenizer(models.BPE(vocab={"<eos>": 0, **{c: i + 1 for i, c in enumerate(chars)}}, merges=[]))
    backend.decoder = decoders.Fuse()
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>", pad_token="<eos>")
    config = transformers.GPT2Config(
        vocab_size=len(tok), n_positions=256, n_embd=32, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0
    )
    torch.manual_seed(0)
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_a_diverging_lora_run_stops_the_same_way(tmp_path, capsys, one_thread):
    model = tiny_gpt2(tmp_path / "gpt2")
    config = tmp_path / "lm.yaml"
    config.write_text(
        json.dumps(
            {
                "data": {
                    "alphabet": "abcd",
                    "input_len": 4,
                    "pattern_len": 2,
                    "replacement_len": 1,
                    "num_rules": 2,
                    "budget": 64,
                    "test_rules": 2,
                    "test_examples_per_rule": 4,
                    "validation_rules": 4,  # what 16 patterns leave room for
                },
                "lm": {"model": str(model), "template": "plain"},
                "train": {
                    "batch_size": 8,
                    "lr": 1e12,
                    "warmup_steps": 0,
                    "max_steps": 8,
                    "eval_every": 0,
                    "device": "cpu",
                    "threads": 1,
                    "progress": "none",
                },
            }
        )  # fmt: skip
    )
    out = tmp_path / "run"
    capsys.readouterr()  # what saving the model printed
    assert main(["train", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "training diverged at step " in err
    assert not (out / "summary.json").exists() and not (out / "adapter").exists()


def test_json_writers_refuse_nan_and_infinity(tmp_path):
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            atomic_write_json(tmp_path / "x.json", {"loss": value})
    assert not (tmp_path / "x.json").exists()


def test_a_log_with_nan_losses_is_judged_not_converged_with_null_not_nan():
    """metrics.jsonl of a run diverged before this check: its summary must still be valid JSON."""
    records = [{"kind": "train", "step": s, "loss": math.nan} for s in range(10, 110, 10)]
    judged = convergence(records)
    assert judged == {"loss_drop": None, "acc_delta": None, "converged": False}
    strict_json(json.dumps(judged))
