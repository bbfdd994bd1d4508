"""The four extension points of docs/architecture.md, each exercised by adding one inside the test and
following it from a sweep's config through data, training, the results store and the export: a new
instruction family, a new knob, a new run kind, a new sweep backend. Each addition is the one place the
docs name; nothing else in the library is touched."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from rewritelab.cli import main
from rewritelab.config import from_dict
from rewritelab.data import (
    FAMILIES,
    DatasetSpec,
    Family,
    PatternBatch,
    RandomFamily,
    generate_dataset,
    register,
)
from rewritelab.errors import UserError
from rewritelab.kinds import KINDS, register_kind, train_any_run
from rewritelab.layout import sweep_run_dir
from rewritelab.model import ModelConfig
from rewritelab.run import RunConfig, ScratchKind, TrainConfig
from rewritelab.store import export
from rewritelab.sweep import (
    BACKENDS,
    BackendOptions,
    Outcome,
    RunSpec,
    parse_sweep,
    register_backend,
    run_sweep,
)

BASE = {
    "data": {"alphabet": "abcd", "input_len": 5, "pattern_len": 3, "replacement_len": 2, "num_rules": 3,
             "budget": 60, "test_rules": 2, "test_examples_per_rule": 4, "validation_rules": 8},
    "model": {"n_layer": 1, "n_head": 1, "d_model": 8},
    "train": {"batch_size": 16, "max_steps": 3, "warmup_steps": 1, "eval_every": 0, "device": "cpu",
              "threads": 1, "progress": "none"},
}  # fmt: skip


# --- a new backend: a class with check / start / describe / run, and one register_backend line ----------


class InlineBackend:
    """Trains each run in this process, one after the other (so what a test registered is there)."""

    trained: ClassVar[list[str]] = []

    @classmethod
    def check(cls, options: BackendOptions) -> None:
        if options.address:
            raise UserError("--ray-address: the inline backend joins no cluster")

    @classmethod
    def start(cls, options: BackendOptions, runs: list[RunSpec], configs: dict, sweep_dir: Path):
        return cls(configs)

    def __init__(self, configs: dict[str, Any]):
        self.configs = configs

    def describe(self) -> str:
        return "inline backend"

    def run(self, runs: list[RunSpec], sweep_dir: Path) -> Iterator[Outcome]:
        for run in runs:
            directory = sweep_run_dir(sweep_dir, run.run_id)
            InlineBackend.trained.append(run.run_id)
            yield Outcome(run, train_any_run(self.configs[run.run_id], directory, progress="none"))


@pytest.fixture
def inline():
    register_backend("inline")(InlineBackend)
    InlineBackend.trained.clear()
    yield "inline"
    BACKENDS.pop("inline")


def sweep_results(tmp_path: Path, base: dict, grid: list, backend: str) -> pd.DataFrame:
    """Run the sweep of `base` × `grid` (seed 0) and read back its CSV export."""
    sweep = parse_sweep({"base": base, "grid": grid, "seeds": [0]}, "ext", "test")
    result = run_sweep(sweep, tmp_path / "sweep", backend=backend, progress=False)
    assert not result.failed, result.failed
    return pd.read_csv(io.StringIO(export(tmp_path / "sweep", "csv")))


def test_a_new_backend_trains_a_sweep_from_the_command_line(tmp_path, inline, capsys, one_thread):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": BASE, "grid": [{"data.num_rules": [3, 4]}], "seeds": [0]}))
    assert main(["sweep", str(path), "--out", str(tmp_path / "s"), "--backend", "inline"]) == 0
    assert "inline backend" in capsys.readouterr().err
    assert InlineBackend.trained == ["num_rules=3.seed=0", "num_rules=4.seed=0"]  # here, not in workers
    assert main(["results", str(tmp_path / "s"), "--format", "csv"]) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert frame["num_rules"].tolist() == [3, 3, 4, 4]


# --- a new instruction family: one class decorated with @register --------------------------------------


@dataclass(frozen=True)
class Anchored(Family):
    """Uniform patterns that begin with the alphabet's first letter."""

    name: ClassVar[str] = "anchored"

    def sample(self, n: int, rng: np.random.Generator, ctx) -> PatternBatch:
        batch = RandomFamily().sample(n, rng, ctx)
        batch.codes[:, 0] = 0
        return PatternBatch(batch.codes, batch.lengths, batch.k, [self.name] * n)

    def capacity(self, ctx) -> int:
        return sum(ctx.alphabet_size ** (length - 1) for length in ctx.pattern_len.values())

    def length_range(self, ctx):
        return ctx.pattern_len


@pytest.fixture
def anchored():
    register(Anchored)
    yield
    FAMILIES.pop("anchored")


def test_a_new_family_is_a_condition_of_the_results(tmp_path, anchored, inline, one_thread):
    frame = sweep_results(tmp_path, BASE, [{"data.family": ["random", "anchored"]}], inline)
    assert sorted(set(frame["family"])) == ["anchored", "random"]
    run = tmp_path / "sweep" / "runs" / "family=anchored.seed=0"
    rows = [json.loads(line) for line in (run / "predictions" / "test_unseen.jsonl").read_text().splitlines()]
    assert rows and all(r["pattern"].startswith("a") and r["family"] == "anchored" for r in rows)


# --- a new knob: a field of a config section; the preset that varies it is all a sweep needs -----------


def test_a_new_knob_gets_its_own_column(tmp_path, inline, one_thread):
    frame = sweep_results(tmp_path, BASE, [{"train.weight_decay": [0.0, 0.5]}], inline)
    assert frame["train.weight_decay"].tolist() == [0.0, 0.0, 0.5, 0.5]
    ckpt = torch.load(tmp_path / "sweep/runs/weight_decay=0.5.seed=0/checkpoint.pt", weights_only=True)
    assert ckpt["optimizer"]["param_groups"][0]["weight_decay"] == 0.5  # it reached the optimizer


# --- a new run kind: a RunKind subclass and one register_kind line -------------------------------------


@dataclass
class FixedPositionsConfig:
    """The run config of the new kind: its model section is `fixed:`."""

    data: DatasetSpec
    fixed: ModelConfig
    train: TrainConfig


class FixedPositionsKind(ScratchKind):
    """A GPT whose positional table keeps its initial values (a kind that differs in model building)."""

    section, config_type, distributed = "fixed", FixedPositionsConfig, False

    def config_from_dict(self, raw: dict[str, Any]) -> FixedPositionsConfig:
        sections = {"data": DatasetSpec, "fixed": ModelConfig, "train": TrainConfig}
        return FixedPositionsConfig(
            **{name: from_dict(cls, raw.get(name), name) for name, cls in sections.items()}
        )

    def build(self, cfg: FixedPositionsConfig, dataset, device):
        built = super().build(RunConfig(cfg.data, cfg.fixed, cfg.train), dataset, device)
        built.model.wpe.requires_grad_(False)
        built.cfg = cfg
        return built

    def check_fits(self, cfg: FixedPositionsConfig, data: bool = True) -> None:
        super().check_fits(RunConfig(cfg.data, cfg.fixed, cfg.train), data)

    def load(self, cfg: FixedPositionsConfig, dataset, ckpt, path, device):
        return super().load(RunConfig(cfg.data, cfg.fixed, cfg.train), dataset, ckpt, path, device)


@pytest.fixture
def fixed_kind():
    kind = register_kind(FixedPositionsKind())
    yield kind
    KINDS.pop("fixed")


def test_a_new_run_kind_trains_is_stored_and_re_scored(tmp_path, fixed_kind, inline, capsys, one_thread):
    base = {"data": BASE["data"], "fixed": BASE["model"], "train": {**BASE["train"], "max_steps": 5}}
    frame = sweep_results(tmp_path, base, [{"data.num_rules": [3, 4]}], inline)
    assert frame["num_rules"].tolist() == [3, 3, 4, 4]
    assert all("fixed" in json.loads(c) for c in frame["config_json"])
    run = tmp_path / "sweep" / "runs" / "num_rules=3.seed=0"
    cfg = fixed_kind.config_from_dict(yaml.safe_load((run / "config.yaml").read_text()))
    fresh = fixed_kind.build(cfg, generate_dataset(cfg.data), torch.device("cpu")).model.state_dict()
    trained = torch.load(run / "checkpoint.pt", weights_only=True)["model"]
    assert torch.equal(trained["wpe.weight"], fresh["wpe.weight"])  # the kind's own model building
    assert not torch.equal(trained["wte.weight"], fresh["wte.weight"])  # and the shared loop trained it
    (run / "summary.json").unlink()
    assert main(["evaluate", str(run), "--progress", "none"]) == 0  # `evaluate` finds the kind by its section
    assert json.loads((run / "summary.json").read_text())["config"]["fixed"] == cfg.fixed.__dict__
