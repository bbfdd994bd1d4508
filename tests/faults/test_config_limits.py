"""Configs past any sensible size are refused in one line, at once (issue 38, cases 12-14): nesting 1,000
levels deep, include chains of 1,200 files, alias bombs, values quoted in full in a message, thread
counts and seeds past what torch and the results database hold, and models that cannot fit."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import resource
import signal
import subprocess
import sys
import time
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import rewritelab
import rewritelab.model
from rewritelab.cli import main
from rewritelab.data import DatasetSpec, IntRange, memory
from rewritelab.model import ModelConfig
from rewritelab.run import TrainConfig
from support import TINY, save_tiny

SRC = Path(rewritelab.__file__).resolve().parents[1]  # where the child processes import rewritelab from
QUICK = ["--set", "train.max_steps=2", "--set", "train.eval_every=0", "--set", "train.progress=none"]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("rewritelab: error: ") and "\n" not in err and "Traceback" not in err, err[:2000]
    return err


def cli(args: list[str], timeout: float, memory_gb: int | None = None) -> subprocess.CompletedProcess:
    """`rewritelab ARGS` in a child process, so that a crash or a runaway cannot take pytest with it
    (`memory_gb` caps its address space)."""

    def cap() -> None:
        if memory_gb is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory_gb * 2**30, memory_gb * 2**30))

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "rewritelab", *args],
        capture_output=True, text=True, timeout=timeout, env=env, preexec_fn=cap,
    )  # fmt: skip


def assert_one_line(proc: subprocess.CompletedProcess, needle: str) -> None:
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, err[-2000:])
    assert err.startswith("rewritelab: error: ") and "\n" not in err and needle in err, err[-2000:]


@contextlib.contextmanager
def deadline(seconds: int, what: str) -> Iterator[None]:
    """Fail, rather than hang, when `what` takes longer than `seconds` (a refusal is immediate)."""

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"{what}: still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def train(tmp_path: Path, *overrides: str) -> int:
    sets = [arg for item in overrides for arg in ("--set", item)]
    return main(["train", str(TINY), "--out", str(tmp_path / "run"), *QUICK, *sets])


# ---------------------------------------------------------------------------------------------------------
# Case 12: depth


DEEP = "[" * 1000 + "]" * 1000


def test_a_config_nested_a_thousand_levels_deep_is_one_line(tmp_path, capsys):
    config = tmp_path / "deep.yaml"
    config.write_text(f"data:\n  num_rules: {DEEP}\n", encoding="utf-8")
    assert main(["train", str(config), "--out", str(tmp_path / "run")]) == 2
    assert f"{config} (line 2, column 44): nested more than 32 levels deep" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_set_nested_a_thousand_levels_deep_is_one_line(tmp_path, capsys):
    assert train(tmp_path, f"data.num_rules={DEEP}") == 2
    err = one_line_error(capsys)
    assert "(line 1, column 31): nested more than 30 levels deep" in err and len(err) < 300


def test_a_set_path_a_thousand_keys_long_is_one_line(tmp_path, capsys, sweep_file):
    path = ".".join(["data"] + ["a"] * 999)
    assert (
        main(["sweep", str(sweep_file), "--out", str(tmp_path / "s"), "--dry-run", "--set", f"{path}=1"]) == 2
    )
    err = one_line_error(capsys)
    assert "a path of 1,000 keys; no setting is more than 32 deep" in err and len(err) < 300


def test_an_include_chain_of_1200_files_is_one_line(tmp_path, capsys, sweep_file):
    for i in range(1200):
        body = f"include: f{i + 1}.yaml\n" if i < 1199 else sweep_file.read_text(encoding="utf-8")
        (tmp_path / f"f{i}.yaml").write_text(body, encoding="utf-8")
    start = time.perf_counter()
    assert main(["sweep", str(tmp_path / "f0.yaml"), "--out", str(tmp_path / "s"), "--dry-run"]) == 2
    assert time.perf_counter() - start < 5
    err = one_line_error(capsys)
    assert "include: a chain of more than 16 files" in err and f"-> ... -> {tmp_path / 'f16.yaml'}" in err


# ---------------------------------------------------------------------------------------------------------
# Case 13: aliases, and values quoted in messages


def laughs(levels: int) -> str:
    """A flow-style alias bomb: `levels` lists, each of nine aliases of the one before."""
    lists = ["&a0 [x, x, x, x, x, x, x, x, x]"]
    lists += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return f"[{', '.join(lists)}]"


def test_the_billion_laughs_file_is_refused_at_once(tmp_path):
    """The 1 KB file of nine levels of nine aliases (9^9 values): minutes and an out-of-memory before."""
    config = tmp_path / "laughs.yaml"
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    config.write_text("\n".join([*lines, "data:", "  num_rules: *a8", ""]), encoding="utf-8")
    assert len(config.read_bytes()) < 1024
    start = time.perf_counter()
    try:
        proc = cli(["train", str(config), "--out", str(tmp_path / "run")], timeout=60, memory_gb=8)
    except subprocess.TimeoutExpired:
        pytest.fail("the alias bomb was expanded")
    assert_one_line(proc, f"{config} (line 6, column 10): more than 100,000 values once its aliases are")
    assert time.perf_counter() - start < 30 and not (tmp_path / "run").exists()


@pytest.mark.parametrize("value", [laughs(7), "&a [*a]"], ids=["bomb", "loop"])
def test_an_alias_bomb_or_loop_in_set_is_one_short_line(tmp_path, capsys, value):
    assert train(tmp_path, f"data.num_rules={value}") == 2
    err = one_line_error(capsys)
    assert "more than 100,000 values" in err or "an alias inside the collection it names" in err
    assert len(err) < 400


@pytest.mark.parametrize(
    "value, needle",
    [("1" * 5000, "an integer of more than 100 characters"), ("2001-13-45", "a value YAML cannot read")],
    ids=["5000-digits", "no-such-date"],
)
def test_a_scalar_yaml_cannot_construct_is_one_line(tmp_path, capsys, value, needle):
    assert train(tmp_path, f"data.num_rules={value}") == 2
    assert needle in one_line_error(capsys)


LONG = "q" * 10**5


@pytest.mark.parametrize(
    "args",
    [
        ["--set", f"data.num_rules={LONG}"],  # a field of another type
        ["--set", f"data.input_len={LONG}"],  # a length range
        ["--set", f"data.family={LONG}"],  # a name looked up
        ["--set", f"model={LONG}"],  # a model preset
        ["--set", f"data.occurrences=[{', '.join(['1'] * 5000)}]"],  # a list checked
        ["--set", LONG],  # not an override at all
        ["--seeds", LONG],  # not seeds
        [],  # no such preset
    ],
    ids=["type", "range", "family", "preset", "counts", "override", "seeds", "preset-name"],
)
def test_a_message_never_quotes_a_long_value_in_full(tmp_path, capsys, sweep_file, args):
    command = ["train", str(TINY)] if "--set" in args else ["sweep", str(sweep_file) if args else LONG[:200]]
    assert main([*command, *args, "--out", str(tmp_path / "out")]) == 2
    err = one_line_error(capsys)
    assert "q" * 100 not in err and ", ".join(["1"] * 20) not in err and len(err) < 1000


# ---------------------------------------------------------------------------------------------------------
# Case 14: threads, seeds, sizes


@pytest.mark.parametrize("threads", ["100000", "1000000000"])
def test_a_hundred_thousand_threads_is_one_line_not_a_crash(tmp_path, threads):
    proc = cli(["train", str(TINY), "--out", str(tmp_path / "run"), "--set", f"train.threads={threads}"], 120)
    assert_one_line(proc, f"train.threads: {int(threads):,} threads for ")
    assert "per core) here, or 0 for torch's default" in proc.stderr and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "override, needle",
    [
        ("train.seed=100000000000000000000000", "train.seed: 100000000000000000000000 is out of range"),
        ("train.seed=18446744073709551615", "train.seed: 18446744073709551615 is out of range"),
        ("train.threads=100000000000000000000", "train.threads: 100000000000000000000 is out of range"),
        ("data.seed=9223372036854775808", "data.seed: 9223372036854775808 is out of range"),
        ("train.eval_log_points=1000000000000", "train.eval_log_points: at most 1,000, got 1000000000000"),
    ],
)
def test_seeds_and_counts_past_what_torch_and_numpy_hold_are_one_line(tmp_path, capsys, override, needle):
    assert train(tmp_path, override) == 2
    assert needle in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_a_billion_layers_is_refused_at_once_with_the_numbers(tmp_path):
    start = time.perf_counter()
    try:
        args = ["train", str(TINY), "--out", str(tmp_path / "run"), "--set", "model.n_layer=1000000000"]
        proc = cli(args, timeout=60, memory_gb=8)
    except subprocess.TimeoutExpired:
        pytest.fail("a billion layers were being built")
    assert_one_line(
        proc, "model: 1,000,000,000 layers of width 32 hold at least 12,704,000,000,000 parameters"
    )
    assert ", 203264.0 GB to train, more than the " in proc.stderr
    assert time.perf_counter() - start < 30 and not (tmp_path / "run").exists()


@pytest.fixture
def half_a_gb(monkeypatch):
    """A machine with 0.5 GB free, whatever this one has."""
    monkeypatch.setattr(memory, "available_memory", lambda: 5 * 10**8)
    monkeypatch.setattr(rewritelab.model, "available_memory", lambda: 5 * 10**8)


BIG_MODEL = ["model.n_layer=4", "model.d_model=1024"]  # 50.4M parameters in its blocks: 0.8 GB with AdamW


def test_a_model_that_cannot_train_in_the_memory_left_is_refused_before_anything_is_built(
    tmp_path, capsys, half_a_gb
):
    assert train(tmp_path, *BIG_MODEL) == 2
    err = one_line_error(capsys)
    assert "model: 4 layers of width 1,024 hold at least 50,384,896 parameters, 0.8 GB to train, more" in err
    assert not (tmp_path / "run").exists()


def test_a_sweep_refuses_a_model_that_cannot_fit_before_it_times_one(tmp_path, capsys, sweep_file, half_a_gb):
    sets = [arg for item in BIG_MODEL for arg in ("--set", item)]
    assert main(["sweep", str(sweep_file), "--out", str(tmp_path / "s"), "--dry-run", *sets]) == 2
    assert "run num_rules=2.seed=0: model: 4 layers of width 1,024 hold" in one_line_error(capsys)


def integer_fields() -> list[str]:
    """Every integer setting of a from-scratch run config (`section.field`), lengths included."""
    out = []
    for section, cls in (("data", DatasetSpec), ("model", ModelConfig), ("train", TrainConfig)):
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            if {int, IntRange} & {hints[field.name], *typing.get_args(hints[field.name])}:
                out.append(f"{section}.{field.name}")
    return out


@pytest.mark.parametrize("value", ["100000000000000000000000", "-100000000000000000000000", "-1"])
@pytest.mark.parametrize("command", ["train", "sweep", "generate"])
def test_every_integer_setting_refuses_huge_and_negative_values_in_one_line(
    tmp_path, capsys, sweep_file, command, value
):
    assert len(integer_fields()) == 25
    for field in integer_fields():
        if command == "generate" and not field.startswith("data."):
            continue
        args = {"train": ["train", str(TINY), *QUICK], "sweep": ["sweep", str(sweep_file), "--dry-run"]}
        argv = [*args.get(command, ["generate", str(TINY)]), "--set", f"{field}={value}"]
        with deadline(60, field):
            assert main([*argv, "--out", str(tmp_path / field)]) == 2, field
        one_line_error(capsys)
        assert not (tmp_path / field).exists()


@pytest.mark.parametrize(
    "override, needle",
    [
        ("lm.lora.rank=65", "lm.lora.rank: 65 exceeds the model's width, 64"),
        ("lm.lora.rank=100000000000000000000000", "lm.lora.rank: 100000000000000000000000 is out of range"),
        ("lm.task.cipher_seed=18446744073709551616", "lm.task.cipher_seed: 18446744073709551616 is out of"),
        ("lm.lora.alpha=.inf", "lm.lora.alpha: must be a positive number, got inf"),
    ],
)
def test_lm_settings_past_their_bounds_are_one_line(tmp_path, capsys, override, needle):
    pytest.importorskip("peft")
    config = yaml.safe_load(TINY.read_text(encoding="utf-8"))
    del config["model"]
    config["lm"] = {"model": str(save_tiny(tmp_path / "gpt2", "gpt2"))}
    capsys.readouterr()  # what saving the model printed
    path = tmp_path / "lm.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert main(["train", str(path), "--out", str(tmp_path / "run"), *QUICK, "--set", override]) == 2
    assert needle in one_line_error(capsys)
