"""Sizes that cannot fit are refused up front with the numbers (issue 25, cases 12 and 14): a dataset
larger than the memory available, and a grid of millions of runs, instead of minutes at several GB."""

from __future__ import annotations

import time

import pytest
import yaml

from rewritelab.cli import main
from rewritelab.data import DatasetSpec, memory
from support import TINY

GB = 10**9
PAPER_DATA = {
    "alphabet": "abcdefghijklmnopqrstuvwxyz", "input_len": 50, "pattern_len": 20,
    "replacement_len": [1, 20], "test_rules": 1000, "test_examples_per_rule": 100,
}  # fmt: skip


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("rewritelab: error: ") and "\n" not in err and "Traceback" not in err
    return err


@pytest.fixture
def four_gb(monkeypatch):
    """A machine with 4 GB free, whatever this one has."""
    monkeypatch.setattr(memory, "available_memory", lambda: 4 * GB)


def test_ten_million_rules_and_examples_are_refused_at_once_with_the_numbers(tmp_path, capsys, four_gb):
    config = tmp_path / "huge.yaml"
    config.write_text(yaml.safe_dump({"data": {**PAPER_DATA, "num_rules": 10**7, "budget": 10**7}}))
    start = time.perf_counter()
    assert main(["generate", str(config), "--out", str(tmp_path / "d")]) == 2
    err = one_line_error(capsys)
    assert time.perf_counter() - start < 5
    assert "10,001,000 rules and 10,200,000 examples need at least 5.3 GB" in err
    assert "more than the 4.0 GB available" in err and not (tmp_path / "d").exists()


def test_a_billion_example_budget_is_refused_before_training(tmp_path, capsys, four_gb):
    assert main(["train", str(TINY), "--out", str(tmp_path / "r"), "--set", "data.budget=1000000000"]) == 2
    err = one_line_error(capsys)
    assert "4 rules and 1,000,000,200 examples need at least 162.0 GB of memory" in err
    assert not (tmp_path / "r").exists()


def test_the_paper_dataset_fits_in_a_gb_so_it_is_never_refused_on_a_laptop():
    assert memory.estimate_bytes(DatasetSpec(num_rules=1000, budget=10**6)) < GB


def test_a_grid_of_ten_million_runs_is_refused_before_it_is_expanded(tmp_path, capsys):
    sweep = tmp_path / "grid.yaml"
    axes = [{f"train.{name}": list(range(1, 11))} for name in ("batch_size", "epochs", "warmup_steps")]
    axes += [{f"data.{name}": list(range(1, 11))} for name in ("num_rules", "test_rules")]
    axes += [{"model.n_layer": list(range(1, 11))}, {"model.n_head": list(range(1, 11))}]
    sweep.write_text(yaml.safe_dump({"base": yaml.safe_load(TINY.read_text()), "grid": axes, "seeds": [0]}))
    start = time.perf_counter()
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "s"), "--dry-run"]) == 2
    assert time.perf_counter() - start < 5
    err = one_line_error(capsys)
    assert "10 x 10 x 10 x 10 x 10 x 10 x 10 x 1 (axes x seeds) = 10,000,000 runs, more than the" in err
