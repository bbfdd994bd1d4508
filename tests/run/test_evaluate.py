"""Evaluation: the teacher-forcing fast path equals greedy decoding on a partially trained model, the
predictions and breakdowns account for every example, bootstrap intervals behave, and the CLI re-scores a
run (deterministically) or refuses bad input in one line."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import rewritelab
from rewritelab.cli import main
from rewritelab.config import to_dict
from rewritelab.data import generate_dataset
from rewritelab.run import (
    BREAKDOWNS,
    bootstrap_ci,
    format_summary,
    frequency_bucket,
    load_run_config,
    load_trained_model,
    read_checkpoint,
    teacher_forced_correct,
    train_run,
    with_resolved_dtype,
)
from rewritelab.tokenizer import EOS_ID, Tokenizer
from support import TINY

# Stopped early (about half of test_seen right), with no-ops and 1-2 occurrences for the breakdowns.
PARTIAL = ["train.max_steps=300", "train.eval_every=0", "data.noop_frac=0.3", "data.occurrences=[1, 2]"]


@pytest.fixture(scope="module")
def partial(tmp_path_factory):
    torch.set_num_threads(1)
    cfg = load_run_config(TINY, PARTIAL)
    run_dir = tmp_path_factory.mktemp("partial") / "run"
    summary = train_run(cfg, run_dir, progress="none")
    return run_dir, summary, cfg, generate_dataset(cfg.data)


def test_fast_path_agrees_with_greedy_decoding(partial):
    run_dir, _, cfg, dataset = partial
    ckpt = read_checkpoint(run_dir / "checkpoint.pt")
    model = load_trained_model(cfg, ckpt, run_dir / "checkpoint.pt", torch.device("cpu"))
    tok = Tokenizer(cfg.data.alphabet)
    splits = {**dataset.splits, "train": dataset.splits["train"].subset(np.arange(0, 2000, 5))}
    rates = {}
    for name, split in splits.items():
        enc = tok.encode_split(split)
        fast = teacher_forced_correct(model, enc)
        everything = np.arange(len(enc))
        written = model.generate(enc.prompts(everything), max_new_tokens=model.block_size, eos_id=EOS_ID)
        decoded = np.array([w == a for w, a in zip(written, enc.answers(everything), strict=True)])
        assert np.array_equal(fast, decoded)
        rates[name] = fast.mean()
    # the comparison is only meaningful if the model gets many examples right and many wrong
    assert 0.1 < rates["test_seen"] < 0.9 and 0.1 < rates["train"] < 0.9


def test_predictions_hold_every_example_with_what_the_model_wrote(partial):
    run_dir, summary, _, dataset = partial
    for name in ("test_seen", "test_unseen"):
        split = dataset.splits[name]
        lines = (run_dir / "predictions" / f"{name}.jsonl").read_text().splitlines()
        rows = [json.loads(line) for line in lines]
        assert len(rows) == len(split) == summary["n"][name]
        for row, original in zip(rows, split.rows(), strict=True):
            assert {k: row[k] for k in original} == original
            assert row["correct"] == (row["prediction"] == row["output"])
        assert np.mean([r["correct"] for r in rows]) == pytest.approx(summary["accuracy"][name])
        assert any(not r["correct"] for r in rows)


def test_breakdowns_partition_each_split(partial):
    _, summary, _, _ = partial
    for name in ("test_seen", "test_unseen"):
        n, accuracy = summary["n"][name], summary["accuracy"][name]
        assert set(summary["breakdown"][name]) == set(BREAKDOWNS)
        for cells in summary["breakdown"][name].values():
            assert sum(c["n"] for c in cells.values()) == n
            assert sum(c["n"] * c["accuracy"] for c in cells.values()) == pytest.approx(n * accuracy)
            assert all(c["ci95"][0] <= c["accuracy"] <= c["ci95"][1] for c in cells.values())
        assert set(summary["breakdown"][name]["noop"]) == {"true", "false"}
    assert set(summary["breakdown"]["test_unseen"]["frequency"]) == {"0"}
    assert set(summary["breakdown"]["test_seen"]["frequency"]) == {">=1000"}
    assert set(summary["breakdown"]["test_seen"]["occurrences"]) == {"0", "1", "2"}


def test_summary_records_interval_training_config_version_and_machine(partial):
    from rewritelab.run.device import machine

    _, summary, cfg, _ = partial
    assert summary["machine"] == machine() and f"torch {torch.__version__}" in summary["machine"]
    for name in ("test_seen", "test_unseen"):
        lo, hi = summary["ci95"][name]
        assert 0 <= lo <= summary["accuracy"][name] <= hi <= 1
    assert summary["train"]["steps"] == 300 and summary["train"]["tokens"] > 0
    assert summary["config"] == json.loads(json.dumps(to_dict(with_resolved_dtype(cfg))))  # dtype as it ran
    assert summary["code_version"].startswith(rewritelab.__version__)


def test_summary_records_the_package_versions_beside_the_machine(partial):
    """torch, transformers, peft, trl and numpy as installed, rewritelab's own commit, in summary.json."""
    run_dir, summary, _, _ = partial
    assert json.loads((run_dir / "summary.json").read_text())["versions"] == summary["versions"]
    assert summary["versions"] == {
        "rewritelab": summary["code_version"],
        "torch": torch.__version__,
        "transformers": metadata.version("transformers"),
        "peft": metadata.version("peft"),
        "trl": metadata.version("trl"),
        "numpy": np.__version__,
    }


def test_a_package_that_is_not_installed_is_recorded_as_null(monkeypatch):
    from rewritelab import versions

    real = versions.package_version
    monkeypatch.setattr(versions, "package_version", lambda name: None if name == "trl" else real(name))
    recorded = versions.current_versions()
    assert recorded["trl"] is None and recorded["torch"] == torch.__version__
    assert versions.package_version("no-such-package-rewritelab") is None


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 5000), data=st.data())
def test_bootstrap_interval_contains_the_estimate(n, data):
    hits = data.draw(st.integers(0, n))
    lo, hi = bootstrap_ci(hits, n)
    assert 0.0 <= lo <= hits / n <= hi <= 1.0
    assert np.array_equal(bootstrap_ci(hits, n), [lo, hi])  # seeded


def test_bootstrap_matches_resampling_examples():
    n, hits = 300, 190
    outcomes = np.zeros(n, dtype=bool)
    outcomes[:hits] = True
    resampled = outcomes[np.random.default_rng(5).integers(0, n, size=(4000, n))].mean(axis=1)
    expected = np.quantile(resampled, [0.025, 0.975])
    assert np.allclose(bootstrap_ci(hits, n), expected, atol=0.012)
    cells = bootstrap_ci(np.array([0, hits, n]), np.array([n, n, n]))
    assert cells.shape == (3, 2) and np.array_equal(cells[0], [0, 0]) and np.array_equal(cells[2], [1, 1])


def test_frequency_buckets():
    counts = np.array([0, 1, 9, 10, 99, 100, 999, 1000, 123456])
    expected = ["0", "1-9", "1-9", "10-99", "10-99", "100-999", "100-999", ">=1000", ">=1000"]
    assert frequency_bucket(counts).tolist() == expected


# --- the command line ---------------------------------------------------------------------------------


def test_cli_reevaluation_rewrites_the_same_bytes(partial, capsys):
    run_dir, _, _, _ = partial
    files = [run_dir / "summary.json", *sorted((run_dir / "predictions").iterdir())]
    before = [f.read_bytes() for f in files]
    for f in files:
        f.unlink()
    assert main(["evaluate", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "test_seen" in out and "test_unseen" in out
    assert [f.read_bytes() for f in files] == before


def test_cli_prints_percent_breakdowns_and_where_the_files_went(partial, capsys):
    run_dir, _, _, _ = partial
    assert main(["evaluate", str(run_dir), "--progress", "none"]) == 0
    out = capsys.readouterr().out
    summary = json.loads((run_dir / "summary.json").read_text())
    accuracy, (low, high) = summary["accuracy"]["test_unseen"], summary["ci95"]["test_unseen"]
    line = next(line for line in out.splitlines() if line.startswith("test_unseen "))
    assert line.split() == [
        "test_unseen",
        f"{100 * accuracy:.1f}%",
        f"[{100 * low:.1f},",
        f"{100 * high:.1f}]",
        "100",
    ]
    noop = summary["breakdown"]["test_unseen"]["noop"]
    cells = f"applied: {100 * noop['false']['accuracy']:.1f}% ({noop['false']['n']}), "
    cells += f"no-op: {100 * noop['true']['accuracy']:.1f}% ({noop['true']['n']})"
    assert any(
        line.split()[:2] == ["test_unseen", "noop"] and line.endswith(cells) for line in out.splitlines()
    )
    assert (
        f"predictions: {run_dir}/predictions/test_seen.jsonl, {run_dir}/predictions/test_unseen.jsonl" in out
    )
    assert f": {run_dir}/summary.json" in out


def test_the_summary_table_aligns_long_split_names():
    ci = {"test_seen": [0.5, 0.7], "test_unseen_strict": [0.01, 0.03]}
    table = format_summary({"accuracy": {"test_seen": 0.6, "test_unseen_strict": 0.02}, "ci95": ci,
                            "n": {"test_seen": 100, "test_unseen_strict": 1000}})  # fmt: skip
    header, rule, *rows = table.splitlines()
    assert rows == [
        "test_seen              60.0%  [50.0, 70.0]   100",
        "test_unseen_strict      2.0%  [1.0, 3.0]    1000",
    ]
    assert len({len(line) for line in (header, rule, *rows)}) == 1


def test_cli_one_split_keeps_the_others(partial, capsys):
    run_dir, summary, _, _ = partial
    unseen = run_dir / "predictions" / "test_unseen.jsonl"
    stamp = unseen.stat().st_mtime_ns
    assert main(["evaluate", str(run_dir), "--split", "test_seen"]) == 0
    assert json.loads((run_dir / "summary.json").read_text()) == summary
    assert unseen.stat().st_mtime_ns == stamp
    capsys.readouterr()


def unfinished(tmp_path: Path, run_dir: Path) -> Path:
    """A copy of the run whose checkpoint says training is not done."""
    target = tmp_path / "unfinished"
    target.mkdir()
    (target / "config.yaml").write_bytes((run_dir / "config.yaml").read_bytes())
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    ckpt["total_steps"] = 10**6
    torch.save(ckpt, target / "checkpoint.pt")
    return target


@pytest.mark.parametrize(
    "case, needle",
    [
        ("missing", "no such run directory"),
        ("empty", "not a run directory"),
        ("no_checkpoint", "no checkpoint"),
        ("unknown_split", "--split test_sen: no such split"),
        ("unfinished", "training stopped at step 300 of 1000000"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(partial, tmp_path, capsys, case, needle):
    run_dir = partial[0]
    if case == "missing":
        argv = ["evaluate", str(tmp_path / "nope")]
    elif case == "empty":
        argv = ["evaluate", str(tmp_path)]
    elif case == "no_checkpoint":
        (tmp_path / "config.yaml").write_bytes((run_dir / "config.yaml").read_bytes())
        argv = ["evaluate", str(tmp_path)]
    elif case == "unknown_split":
        argv = ["evaluate", str(run_dir), "--split", "test_sen"]
    else:
        argv = ["evaluate", str(unfinished(tmp_path, run_dir))]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rewritelab: error: ") and needle in err


def test_final_evaluation_shows_progress_and_can_be_limited(tmp_path, capsys):
    """A quick check stays quick: `--max-test-examples` scores a fixed subset, and the log says so."""
    run_dir = tmp_path / "run"
    args = ["train", str(TINY), "--out", str(run_dir), "--set", "train.max_steps=20", "--progress", "log"]
    assert main([*args, "--max-test-examples", "7"]) == 0
    err = capsys.readouterr().err
    assert f"rewritelab {rewritelab.__version__}" in err and "precision float32" in err
    assert "evaluate test_seen 14/14 (100%)" in err or "evaluate test_seen 7/7 (100%)" in err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["n"] == {"test_seen": 7, "test_unseen": 7} and summary["max_test_examples"] == 7
    assert len((run_dir / "predictions" / "test_unseen.jsonl").read_text().splitlines()) == 7
    assert main(["evaluate", str(run_dir), "--max-test-examples", "3", "--progress", "none"]) == 0
    assert json.loads((run_dir / "summary.json").read_text())["n"]["test_seen"] == 3
