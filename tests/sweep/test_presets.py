"""Packaged presets: each loads, expands, and every expanded run config is a valid run config (a
`RunConfig`, or an `LMRunConfig` for the E6 presets, whose model need not be present).

No training here: a preset with a typo in a grid value must fail in this test, not hours into a sweep.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from rewritelab.cli import main
from rewritelab.config import dump_yaml, load_yaml
from rewritelab.kinds import build_run_config
from rewritelab.lm import LMRunConfig
from rewritelab.sweep import (
    available_presets,
    expand,
    load_sweep,
    preset_names,
    preset_text,
    sweep_estimate,
)
from rewritelab.textfmt import format_duration

NAMES = preset_names()
DOCS = Path(__file__).resolve().parents[2] / "docs"
EXPERIMENTS = ["e1", "e2", "e3", "e4", "e5"]


def test_demo_and_every_experiment_exist_at_both_scales():
    expected = {"demo"} | {f"{e}-{scale}" for e in [*EXPERIMENTS, "markov"] for scale in ("cpu", "paper")}
    assert expected <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_preset_expands_into_valid_run_configs(name, tmp_path):
    sweep = load_sweep(name)
    assert sweep.description and "\n" not in sweep.description
    runs = expand(sweep)
    assert runs and len({r.run_id for r in runs}) == len(runs)
    for run in runs:
        path = tmp_path / f"{run.run_id}.yaml"
        path.write_text(yaml.safe_dump(run.config))
        cfg = build_run_config(load_yaml(path))
        assert cfg.data.seed == cfg.train.seed == run.seed
        # the resolved config round-trips: what a run directory records loads back the same
        path.write_text(dump_yaml(cfg))
        assert build_run_config(load_yaml(path)) == cfg


def test_e1_cpu_spans_three_decades_of_rules_with_three_seeds():
    runs = expand(load_sweep("e1-cpu"))
    values = [r.params["data.num_rules"] for r in runs if r.seed == 0]
    assert len(set(values)) >= 5
    assert math.log10(max(values) / min(values)) >= 3
    assert {r.seed for r in runs} == {0, 1, 2}


@pytest.mark.parametrize("name", ["demo", "e1-cpu", "e2-cpu", "e3-cpu", "e5-cpu"])
def test_cpu_rule_space_gives_every_rule_its_own_pattern(name):
    """At least 20x as many possible patterns as the largest I, so I counts distinct instructions."""
    for run in expand(load_sweep(name)):
        data = run.config["data"]
        assert data["family"] == "random"
        assert len(data["alphabet"]) ** data["pattern_len"] >= 20 * data["num_rules"], run.run_id


def test_paper_presets_use_the_papers_setting():
    for experiment in EXPERIMENTS:
        sweep = load_sweep(f"{experiment}-paper")
        data, train = sweep.base["data"], sweep.base["train"]
        assert data["alphabet"] == "abcdefghijklmnopqrstuvwxyz"
        assert data["budget"] == 10**6 and data["replacement_len"] == [1, 20]
        assert sweep.base["model"] == {"preset": "paper"}
        assert float(train["lr"]) == 1e-3 and train["schedule"] == "linear" and train["epochs"] == 50
        assert train["device"] == "auto" and len(sweep.seeds) == 3
    e1 = [r.params["data.num_rules"] for r in expand(load_sweep("e1-paper")) if r.seed == 0]
    assert e1 == [10, 20, 50, 100, 200, 300, 400, 500, 600, 1000, 2000, 2500, 5000, 10000, 100000, 1000000]
    e3 = expand(load_sweep("e3-paper"))
    powerlaw = {r.params["data.alpha"] for r in e3 if r.params["data.rule_distribution"] == "powerlaw"}
    assert powerlaw == {2, 1, 0.5, 0.2, 0.1, 0.07, 0.03}
    assert any(r.params["data.rule_distribution"] == "uniform" for r in e3)


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_e5_inputs_can_hold_the_most_occurrences():
    for name in ("e5-cpu", "e5-paper"):
        for run in expand(load_sweep(name)):
            data = run.config["data"]
            most = max(as_list(data["test_occurrences"]) + as_list(data["occurrences"]))
            assert most * max(as_list(data["pattern_len"])) <= min(as_list(data["input_len"]))


def test_demo_is_a_few_runs_over_the_number_of_rules():
    runs = expand(load_sweep("demo"))
    rules = sorted(r.params["data.num_rules"] for r in runs)
    assert 2 <= len(runs) <= 4 and len(set(rules)) == len(runs)
    assert rules[0] <= 100 and rules[-1] >= 1000  # the contrast it must show: few vs many rules


def test_e6_presets_fine_tune_with_lora_on_encrypted_rewriting_with_40_percent_noops():
    for name in ("e6-cpu", "e6-paper"):
        runs = expand(load_sweep(name))
        rules = [r.params["data.num_rules"] for r in runs]
        assert len(set(rules)) >= 4 and math.log10(max(rules) / min(rules)) >= 2.5, name
        for run in runs:
            cfg = build_run_config(run.config)
            assert isinstance(cfg, LMRunConfig) and cfg.lm.task.kind == "encrypted"
            assert cfg.data.noop_frac == 0.4 and cfg.data.budget == runs[0].config["data"]["budget"]
    cpu = build_run_config(expand(load_sweep("e6-cpu"))[0].config)
    assert cpu.lm.model == "smollm2-135m-instruct" and cpu.train.device == "cpu"
    assert {r.seed for r in expand(load_sweep("e6-cpu"))} == {0, 1} and cpu.train.dtype == "auto"
    paper = build_run_config(expand(load_sweep("e6-paper"))[-1].config)
    assert (paper.lm.lora.rank, paper.lm.lora.alpha, paper.train.lr) == (512, 1024, 1e-5)
    assert (paper.train.batch_size, paper.train.max_steps) == (64, 2000)
    assert paper.data.budget == 40000 and paper.data.num_rules == 9000
    assert paper.data.test_rules * paper.data.test_examples_per_rule == 5000


@pytest.mark.parametrize(("name", "full"), [("e6-cpu-longtail", "e6-cpu"), ("e6-paper-longtail", "e6-paper")])
def test_e6_longtail_arms_halve_the_budget_uniformly_or_by_a_power_law(name, full):
    trained = {(r.params["data.num_rules"], r.seed): r.config for r in expand(load_sweep(full))}
    arms: dict[int, set] = {}
    for run in expand(load_sweep(name)):
        data = run.config["data"]
        reference = trained[(data["num_rules"], run.seed)]["data"]
        arms.setdefault(data["num_rules"], set()).add((data["budget"], data["rule_distribution"]))
        if data["budget"] == reference["budget"]:
            full_run = trained[(data["num_rules"], run.seed)]  # the full arm is the main sweep's run: --reuse
            assert build_run_config(run.config) == build_run_config(full_run)
    budget = max(b for arm in arms.values() for b, _ in arm)
    assert max(arms) == max(n for n, _ in trained) and len(arms) == 2  # the largest I and one more
    for arm in arms.values():
        assert sorted(arm) == sorted(
            [(budget, "uniform"), (budget // 2, "uniform"), (budget // 2, "powerlaw")]
        )


def test_e6_zero_shot_scores_the_base_model_on_e6_cpus_data():
    trained = {r.params["data.num_rules"]: r.config for r in expand(load_sweep("e6-cpu")) if r.seed == 0}
    for run in expand(load_sweep("e6-cpu-zero-shot")):  # seed 0's test sets (the base model is not seeded)
        cfg = build_run_config(run.config)
        assert cfg.train.max_steps == 0
        assert run.config["data"] == trained[cfg.data.num_rules]["data"]  # the same test sets
        assert cfg.lm == build_run_config(trained[cfg.data.num_rules]).lm or cfg.lm.task.kind == "rewrite"


def test_e6_paper_validates_without_its_model(tmp_path, capsys):
    assert main(["sweep", "e6-paper", "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    assert "num_rules=9000.seed=0" in capsys.readouterr().out and not (tmp_path / "o").exists()


def markov_points(name: str) -> dict[tuple[str, int, int], set[int]]:
    """(answer, P, k) → seeds of a Markov-program preset."""
    points: dict[tuple[str, int, int], set[int]] = {}
    for run in expand(load_sweep(name)):
        family = run.config["data"]["family"]
        key = (family["answer"], run.config["data"]["num_rules"], family["k"])
        points.setdefault(key, set()).add(run.seed)
    return points


@pytest.mark.parametrize(
    ("name", "decades", "trace_points", "seeds"), [("markov-cpu", 2.5, 2, 2), ("markov-paper", 4, 4, 3)]
)
def test_markov_presets_are_the_e1_analog_with_k_and_both_answer_formats(name, decades, trace_points, seeds):
    """Final answers: P over decades at k = 2 and a k axis; trace answers at both ends of the P axis at
    least (markov-cpu keeps to an hour on 2 cores); every point with >= `seeds` seeds."""
    points = markov_points(name)
    final = sorted(p for a, p, k in points if a == "final" and k == 2)
    assert len(final) >= 4 and math.log10(final[-1] / final[0]) >= decades
    assert len({k for a, _, k in points if a == "final"}) >= 3
    trace = sorted(p for a, p, k in points if a == "trace" and k == 2)
    assert len(trace) >= trace_points and math.log10(trace[-1] / trace[0]) >= 2
    assert {a for a, _, _ in points} == {"final", "trace"}
    assert all(len(s) >= seeds for s in points.values())
    for run in expand(load_sweep(name)):
        data = run.config["data"]
        family = data["family"]
        assert family["name"] == "program" and family["strict"] > 0
        assert family["test_steps"] and family["test_input_len"]
        assert data["budget"] == load_sweep(name).base["data"]["budget"]  # P at a fixed budget


def test_markov_cpu_uses_fixed_lengths_and_e1s_recipe_and_paper_uses_the_papers_model():
    """The calibrated markov-cpu: length-preserving rules on fixed-length inputs (variable lengths did
    not learn at this scale), the v2 E1 model, and at most 16 runs of 1500 steps (an hour on 2 cores)."""
    cpu = load_sweep("markov-cpu")
    assert len(expand(cpu)) <= 16 and cpu.base["train"]["max_steps"] <= 1500
    data = cpu.base["data"]
    assert data["pattern_len"] == data["replacement_len"] and isinstance(data["input_len"], int)
    assert cpu.base["model"] == {"preset": "cpu-base"} and cpu.base["train"]["device"] == "cpu"
    paper = load_sweep("markov-paper")
    assert paper.base["model"] == {"preset": "paper"} and paper.base["data"]["budget"] == 10**6
    assert paper.base["train"]["device"] == "auto" and paper.base["train"]["epochs"] == 50


def test_cli_lists_and_prints_presets(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name, description in available_presets().items():
        assert f"{name}" in out and description in out
    table, note = out.split("\n\n")
    assert table.splitlines()[0].split() == ["preset", "runs", "steps", "est.", "time*", "description"]
    rows = {line.split()[0]: line.split()[1:4] for line in table.splitlines()[2:]}
    runs, steps, wall, _ = sweep_estimate(load_sweep("e1-cpu"))
    assert rows["e1-cpu"] == ["18", "36,000", f"~{format_duration(wall)}"] and runs == 18 and steps == 36_000
    assert rows["e1-paper"][2] == "-"  # nothing measured for the GPU model
    assert note.startswith("* Estimated for this machine") and "12,900 tokens/s per run" in note
    assert main(["presets", "demo"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == yaml.safe_load(preset_text("demo"))
    assert main(["presets", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "available:" in err


def test_a_printed_preset_keeps_only_the_comments_that_hold_for_it():
    demo = preset_text("demo")
    comments = [line for line in demo.splitlines() if line.startswith("#")]
    assert not any("5000 steps" in line or "1000 examples" in line for line in comments)  # _base-cpu's notes
    assert "2000 steps instead of 5000" in demo and "max_steps: 2000" in demo and "eval_examples: 256" in demo
    assert comments[-1] == (
        "# Built on _base-cpu, whose notes no longer hold: this changes train.max_steps, train.eval_every, "
        "train.eval_examples."
    )
    e2 = preset_text("e2-cpu")  # changes only the grid and the seeds: the base's notes still hold
    assert "5000 steps of 64" in e2 and "Built on" not in e2
    e1 = preset_text("e1-cpu")  # through _base-cpu-muon, which changes the steps: _base-cpu's notes go
    assert "5000 steps of 64" not in e1 and "2,000 steps instead of AdamW's 5,000" in e1
    assert "# Built on _base-cpu, whose notes no longer hold: this changes train.max_steps" in e1


# --- include: ------------------------------------------------------------------------------------------


def test_bases_are_not_listed_nor_runnable_by_name_but_can_be_included(tmp_path, capsys):
    assert not [name for name in NAMES if name.startswith("_")]
    assert main(["sweep", "_base-cpu", "--out", str(tmp_path / "o"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "shared base for `include: _base-cpu`" in err
    path = tmp_path / "mine.yaml"
    path.write_text("include: _base-cpu\ngrid:\n  - data.num_rules: [10, 20]\n")
    sweep = load_sweep(str(path))
    assert sweep.base == load_sweep("e2-cpu").base and [r.run_id for r in expand(sweep)] == [
        "num_rules=10.seed=0",
        "num_rules=20.seed=0",
    ]


@pytest.mark.parametrize("name", NAMES)
def test_printed_preset_is_resolved_and_loads_back_as_the_same_sweep(name, tmp_path):
    text = preset_text(name)
    assert text.startswith("description: ") and "\n# " in text and "include" not in yaml.safe_load(text)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    mine, packaged = load_sweep(str(path)), load_sweep(name)
    assert (mine.base, mine.grid, mine.seeds, mine.description) == (
        packaged.base,
        packaged.grid,
        packaged.seeds,
        packaged.description,
    )


def test_include_merges_mappings_key_by_key_and_replaces_everything_else(tmp_path):
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "base.yaml").write_text(
        "description: base\n"
        "base:\n"
        "  data: {alphabet: abc, num_rules: 5, budget: 100, replacement_len: [1, 2]}\n"
        "  model: {n_layer: 1, n_head: 1, d_model: 8}\n"
        "  train: {max_steps: 5}\n"
        "grid:\n  - data.num_rules: [1, 2, 3]\n"
        "seeds: [0, 1]\n"
    )
    (tmp_path / "middle.yaml").write_text(
        "include: parts/base.yaml\nbase:\n  data: {replacement_len: [3], budget: 200}\n  train: {lr: 0.5}\n"
    )
    (tmp_path / "top.yaml").write_text(
        "include: middle.yaml\ndescription: top\n"
        "base:\n  data: {noop_frac: 0.1}\ngrid:\n  - data.budget: [7]\n"
    )
    sweep = load_sweep(str(tmp_path / "top.yaml"))
    assert sweep.name == "top" and sweep.description == "top" and sweep.seeds == (0, 1)
    assert sweep.base == {
        "data": {"alphabet": "abc", "num_rules": 5, "budget": 200, "replacement_len": [3], "noop_frac": 0.1},
        "model": {"n_layer": 1, "n_head": 1, "d_model": 8},
        "train": {"max_steps": 5, "lr": 0.5},
    }
    assert [r.run_id for r in expand(sweep)] == ["budget=7.seed=0", "budget=7.seed=1"]


def one_line_error(capsys, tmp_path, path) -> str:
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rewritelab: error: ") and not (tmp_path / "o").exists()
    return err


def test_include_cycle_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text("include: b.yaml\n")
    (tmp_path / "b.yaml").write_text("include: ./a.yaml\n")
    err = one_line_error(capsys, tmp_path, tmp_path / "a.yaml")
    assert f"include: cycle {tmp_path / 'a.yaml'} -> {tmp_path / 'b.yaml'} -> {tmp_path / 'a.yaml'}" in err
    (tmp_path / "self.yaml").write_text("include: self.yaml\n")
    assert "cannot include itself" in one_line_error(capsys, tmp_path, tmp_path / "self.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("include: nowhere.yaml\n", "include: 'nowhere.yaml': no such file"),
        ("include: e1-cpx\n", "include: unknown preset 'e1-cpx'; did you mean 'e1-cpu'?"),
        ("include: list.yaml\n", "the top level must be a mapping"),
        ("include: broken.yaml\n", "malformed YAML"),
        ("include: [a.yaml, b.yaml]\n", "include: expected a preset name or a YAML file path"),
    ],
)
def test_bad_include_is_one_clear_error(tmp_path, capsys, text, message):
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    (tmp_path / "broken.yaml").write_text("base: [1\n")
    (tmp_path / "sweep.yaml").write_text(text)
    err = one_line_error(capsys, tmp_path, tmp_path / "sweep.yaml")
    assert message in err and err.startswith(f"rewritelab: error: {tmp_path / 'sweep.yaml'}: include:")
