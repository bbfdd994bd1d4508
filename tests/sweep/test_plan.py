"""Cost before commitment (issue 26, item 8) and a dry run that refuses what the real command refuses
(item 10): `sweep --dry-run` and `reproduce --dry-run` print each run's status, steps and tokens and an
estimated wall time on this machine, and `rewritelab presets` each preset's estimated cost."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rewritelab.cli import main
from rewritelab.config import dump_yaml
from rewritelab.run import count_steps, resolved_dtype
from rewritelab.sweep import expand, load_sweep, prepare_sweep_dir, validate_runs
from rewritelab.sweep.cost import MEASURED_LM_S_PER_EXAMPLE, MEASURED_TOKENS_PER_S, Costs, wall_seconds
from support import MICRO_DATA, MICRO_MODEL

MICRO = {
    "description": "micro sweep for tests",
    "base": {
        "data": MICRO_DATA,
        "model": MICRO_MODEL,
        "train": {"batch_size": 8, "epochs": 100, "max_steps": 50, "eval_every": 0, "device": "cpu"},
    },
    "grid": [{"data.num_rules": [4, 8]}],
    "seeds": [0, 1],
}


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def micro(tmp_path) -> Path:
    path = tmp_path / "micro.yaml"
    path.write_text(yaml.safe_dump(MICRO))
    return path


def test_a_dry_run_prints_each_runs_status_steps_tokens_and_an_estimate_and_writes_nothing(
    micro, tmp_path, capsys
):
    sweep = load_sweep(str(micro))
    configs = validate_runs(expand(sweep))
    out = tmp_path / "sweep"
    prepare_sweep_dir(sweep, out, configs)
    (out / "runs" / "num_rules=4.seed=0" / "summary.json").write_text("{}")  # finished here
    source = (
        tmp_path / "other" / "runs" / "num_rules=8.seed=0"
    )  # finished in another sweep: --reuse copies it
    source.mkdir(parents=True)
    (source / "config.yaml").write_text(dump_yaml(configs["num_rules=8.seed=0"]))
    (source / "summary.json").write_text("{}")
    before = files(tmp_path)
    assert (
        main(["sweep", str(micro), "--out", str(out), "--dry-run", "--reuse", str(tmp_path / "other")]) == 0
    )
    text = capsys.readouterr().out
    assert files(tmp_path) == before
    table, summary = text.split("\n\n")
    rows = {line.split()[0]: line.split() for line in table.splitlines()[2:]}
    assert rows["num_rules=4.seed=0"][1] == "finished" and rows["num_rules=4.seed=0"][-1] == "-"
    assert rows["num_rules=8.seed=0"][1:4] == ["copy", "from", str(source)]
    steps = count_steps(400, validate_runs(expand(sweep))["num_rules=4.seed=1"].train)
    for run_id in ("num_rules=4.seed=1", "num_rules=8.seed=1"):
        assert rows[run_id][1:4] == ["train", f"{steps:,}", f"{steps * 8 * 18 / 1000:.3g}k"]  # 18 per example
        assert rows[run_id][4].endswith("s")  # a duration
    lines = summary.splitlines()
    assert lines[0] == "4 runs: 2 to train, 1 already finished, 1 to copy from --reuse (not trained)."
    assert lines[1] == f"To train: {2 * steps} steps, {2 * steps * 8 * 18 / 1000:.3g}k tokens."
    assert (
        lines[2].startswith("Estimated wall time on this machine: ")
        and "An estimate: seconds per step timed" in lines[2]
    )
    assert "worker process" in lines[2] and "device cpu, precision float32" in lines[2]


def test_a_dry_run_refuses_exactly_what_the_real_command_refuses(micro, tmp_path, capsys):
    sweep = load_sweep(str(micro))
    held = tmp_path / "held"
    prepare_sweep_dir(sweep, held, validate_runs(expand(sweep)))
    (tmp_path / "a-file").write_text("")
    cases = [
        ["--out", str(held), "--set", "train.lr=0.01"],  # the directory holds another sweep
        ["--out", str(tmp_path / "new"), "--reuse", str(tmp_path / "missing")],
        ["--out", str(tmp_path / "new"), "--ray-address", "127.0.0.1:1"],  # needs --backend ray
        ["--out", str(tmp_path / "a-file")],
    ]
    for case in cases:
        assert main(["sweep", str(micro), *case, "--dry-run"]) == 2
        dry = capsys.readouterr().err
        assert main(["sweep", str(micro), *case]) == 2
        assert capsys.readouterr().err == dry and dry.count("\n") == 1
    assert "holds a different sweep: the training settings changed (train.lr: absent there, 0.01 here)" in (
        main(["sweep", str(micro), *cases[0]]) and capsys.readouterr().err
    )
    assert not (tmp_path / "new").exists()


def test_reproduce_dry_run_plans_the_preset_without_running_it(micro, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["reproduce", str(micro), "--out", str(out), "--dry-run", "--seeds", "0"]) == 0
    text = capsys.readouterr().out
    assert "2 runs: 2 to train" in text and "Estimated wall time on this machine" in text
    assert not out.exists()


# --- the estimates ------------------------------------------------------------------------------------


def test_wall_time_lays_the_runs_longest_first_over_the_workers():
    assert wall_seconds([2, 3, 4, 3], workers=2) == 6  # 4 + 2 beside 3 + 3
    assert wall_seconds([5, 1], workers=4) == 5 and wall_seconds([1, 1, 1, 1], workers=1) == 4


def first_config(preset: str):
    return next(iter(validate_runs(expand(load_sweep(preset))).values()))


def test_measured_costs_scale_the_published_throughput_by_each_runs_tokens():
    costs = Costs("measured")
    cfg = first_config("e2-cpu")  # sequences of 24 tokens: 4 + 2 + 8 + 6 and four specials
    cost = costs.run(cfg)
    assert (cost.steps, cost.tokens) == (5000, 5000 * 64 * 24)
    train_s = cost.tokens / MEASURED_TOKENS_PER_S[("cpu-base", "adamw")]
    assert train_s < cost.seconds < 1.05 * train_s  # evaluations add a little
    muon = costs.run(first_config("e1-cpu"))  # the Muon recipe: its own measured rate, its 2,000 steps
    assert muon.steps == 2000 and muon.seconds > muon.tokens / MEASURED_TOKENS_PER_S[("cpu-base", "muon")]
    assert "14,900 tokens/s per run at 1 thread for model cpu-base with muon" in costs.notes
    lora = first_config("e6-cpu")
    cost = costs.run(lora)
    tests = 2 * lora.data.test_rules * lora.data.test_examples_per_rule
    per_example = MEASURED_LM_S_PER_EXAMPLE[("smollm2-135m-instruct", resolved_dtype("auto", "cpu", True))]
    assert cost.tokens is None and cost.seconds == pytest.approx((cost.steps * 8 + tests / 3) * per_example)
    assert costs.run(first_config("e1-paper")).seconds is None  # a GPU preset: nothing measured
    assert "no measured throughput for the model paper on auto" in costs.notes


def test_timed_costs_time_a_few_steps_of_each_model_once(micro, monkeypatch, one_thread):
    costs = Costs("timed")
    timings = []
    original = costs._time
    monkeypatch.setattr(costs, "_time", lambda cfg, enc: timings.append(cfg) or original(cfg, enc))
    configs = list(validate_runs(expand(load_sweep(str(micro)))).values())
    seconds = [costs.run(cfg).seconds for cfg in configs]
    assert len(timings) == 1 and 0 < seconds[0] < 60  # 4 runs of one model: timed once
    assert len(set(seconds)) == 1  # the same sequence lengths at every I: the same estimate
