"""Sweeps: grid expansion (product, zip, seeds), run ids, bad input, and micro sweeps on both backends.

The micro sweeps train a 1-layer model for a few dozen steps; the kill test SIGKILLs a real
`python -m rewritelab sweep` process group mid-way and checks that a re-run completes the sweep with
exactly one database row per run and split.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rewritelab.cli import main
from rewritelab.errors import UserError
from rewritelab.io import read_json
from rewritelab.report import headline_of
from rewritelab.sweep import (
    Sweep,
    configured_threads,
    expand,
    load_sweep,
    parse_seeds_option,
    parse_sweep,
    plan_workers,
    prepare_sweep_dir,
    run_sweep,
    validate_runs,
)
from rewritelab.sweep.grid import value_slug
from rewritelab.sweep.runner import running_status
from support import MICRO_DATA, MICRO_MODEL

BASE = {
    "data": {"alphabet": "abc", "num_rules": 5, "budget": 100},
    "model": {"n_layer": 1, "n_head": 1, "d_model": 8},
    "train": {"max_steps": 5},
}


def sweep_of(grid, seeds=(0,), base=BASE, overrides=None) -> Sweep:
    raw = {"base": base, "grid": grid, "seeds": list(seeds)}
    return parse_sweep(raw, "t", "test", overrides)


# --- grid expansion -----------------------------------------------------------------------------------


def test_product_and_zip_axes_expand_to_every_combination_per_seed():
    sweep = sweep_of(
        [
            {"data.num_rules": [10, 100]},
            {"zip": {"data.rule_distribution": ["uniform", "powerlaw"], "data.alpha": [1.0, 0.1]}},
        ],
        seeds=[0, 7],
    )
    runs = expand(sweep)
    assert len(runs) == 2 * 2 * 2
    assert [r.run_id for r in runs[:4]] == [
        "num_rules=10.rule_distribution=uniform.alpha=1.0.seed=0",
        "num_rules=10.rule_distribution=powerlaw.alpha=0.1.seed=0",
        "num_rules=100.rule_distribution=uniform.alpha=1.0.seed=0",
        "num_rules=100.rule_distribution=powerlaw.alpha=0.1.seed=0",
    ]
    # zip keeps the pairs together: never (uniform, 0.1) or (powerlaw, 1.0)
    pairs = {(r.config["data"]["rule_distribution"], r.config["data"]["alpha"]) for r in runs}
    assert pairs == {("uniform", 1.0), ("powerlaw", 0.1)}
    last = runs[-1]
    assert last.seed == 7 and last.config["data"]["seed"] == 7 and last.config["train"]["seed"] == 7
    assert last.config["data"]["num_rules"] == 100 and last.params == {
        "data.num_rules": 100,
        "data.rule_distribution": "powerlaw",
        "data.alpha": 0.1,
    }
    # the base is not mutated and untouched fields are kept
    assert BASE["data"]["num_rules"] == 5 and last.config["data"]["budget"] == 100


def test_run_ids_are_stable_readable_and_file_safe():
    family = {"name": "mixed", "components": [{"name": "repeated", "k": [3, 4]}, {"name": "periodic"}]}
    grid = [
        {"data.family": [{"name": "repeated", "k": [3, 4]}, family, "random"]},
        {"data.occurrences": [1, [1, 5, 10]]},
        {"data.alphabet": ["ab/c", "a b"]},
    ]
    ids = [r.run_id for r in expand(sweep_of(grid))]
    assert ids == [r.run_id for r in expand(sweep_of(grid))]
    assert ids[0] == "family=repeated_k3-4.occurrences=1.alphabet=ab_c.seed=0"
    assert "family=mixed_repeated+periodic.occurrences=1-5-10.alphabet=a_b.seed=0" in ids
    assert all("/" not in i and " " not in i and not i.startswith(".") for i in ids)
    assert len(set(ids)) == len(ids)


def test_values_with_equal_slugs_get_distinct_ids():
    # "1" (a string) and 1 (an int) read the same, so do "a/b" and "a_b" once made file-safe;
    # long values are cut and hashed
    long_value = "x" * 100
    runs = expand(sweep_of([{"data.alphabet": ["1", 1, "a/b", "a_b", long_value]}]))
    ids = [r.run_id for r in runs]
    assert len(set(ids)) == 5 and all(len(i) < 80 for i in ids)
    assert ids == [
        r.run_id for r in expand(sweep_of([{"data.alphabet": ["1", 1, "a/b", "a_b", long_value]}]))
    ]


def test_a_float_value_slug_is_its_repr():
    assert value_slug(0.5) == "0.5"


def test_same_short_name_in_two_sections_uses_the_full_path():
    runs = expand(sweep_of([{"data.x": [1]}, {"train.x": [2]}]))
    assert runs[0].run_id == "data.x=1.train.x=2.seed=0"


def test_a_sweep_without_grid_is_one_run_per_seed():
    assert [r.run_id for r in expand(sweep_of(None, seeds=[3, 1]))] == ["seed=3", "seed=1"]


axis_values = st.lists(st.integers(0, 50), min_size=1, max_size=4, unique=True)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(axis_values, min_size=0, max_size=3),
    st.lists(st.integers(0, 9), min_size=1, max_size=3, unique=True),
)
def test_expansion_size_and_uniqueness(axes, seeds):
    grid = [{f"data.p{i}": values} for i, values in enumerate(axes)]
    runs = expand(sweep_of(grid, seeds=seeds))
    expected = len(seeds)
    for values in axes:
        expected *= len(values)
    assert len(runs) == expected
    assert len({r.run_id for r in runs}) == expected
    for run in runs:
        for param, value in run.params.items():
            assert run.config["data"][param.split(".")[1]] == value


def test_overrides_apply_to_base_and_seeds_replace():
    sweep = sweep_of(
        [{"data.num_rules": [1, 2]}], seeds=[0], overrides=["train.max_steps=9", "data.budget=50"]
    )
    assert sweep.base["train"]["max_steps"] == 9 and sweep.base["data"]["budget"] == 50
    sweep = parse_sweep({"base": BASE, "seeds": [0]}, "t", "test", None, seeds=[4, 5])
    assert sweep.seeds == (4, 5)
    assert parse_seeds_option("0, 1,2") == [0, 1, 2]


def test_plan_workers_splits_cores_between_runs():
    cores = len(os.sched_getaffinity(0))
    assert plan_workers(1, None, cuda=False) == (1, cores)
    assert plan_workers(100, None, cuda=False) == (cores, 1)
    assert plan_workers(100, None, cuda=True) == (1, cores)
    assert plan_workers(3, 8, cuda=False) == (3, max(1, cores // 3))  # bounded by the number of runs
    assert plan_workers(5, 2, cuda=False) == (2, max(1, cores // 2))
    with pytest.raises(UserError, match="at least 1"):
        plan_workers(5, 0, cuda=False)


def test_threads_set_in_the_runs_win_over_the_sweeps_split():
    """`--set train.threads=1` beside another job must not be overridden by cores // workers."""
    pinned = validate_runs(expand(sweep_of([{"data.num_rules": [3, 4]}], overrides=["train.threads=1"])))
    assert configured_threads(pinned) == 1
    assert plan_workers(2, 1, cuda=False, threads=configured_threads(pinned)) == (1, 1)
    assert configured_threads(validate_runs(expand(sweep_of([{"data.num_rules": [3, 4]}])))) == 0
    mixed = validate_runs(expand(sweep_of([{"train.threads": [1, 2]}])))
    assert configured_threads(mixed) == 0


# --- bad sweep definitions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"base": BASE, "grid": [{"data.num_rules": []}]}, "empty list of values"),
        ({"base": BASE, "grid": [{"zip": {"data.num_rules": [1, 2], "data.budget": [1]}}]}, "equal lengths"),
        ({"base": BASE, "grid": [{"data.num_rules": [1], "data.budget": [2]}]}, "an axis is one mapping"),
        ({"base": BASE, "grid": [{"data.num_rules": 5}]}, "expected a list"),
        ({"base": BASE, "grid": [{"num_rules": [5]}]}, "not a parameter path"),
        ({"base": BASE, "grid": [{"data.seed": [1, 2]}]}, "set by seeds"),
        ({"base": BASE, "grid": [{"data.a": [1]}, {"zip": {"data.a": [2]}}]}, "two axes"),
        ({"base": BASE, "seeds": []}, "non-empty list"),
        ({"base": BASE, "seeds": [1, 1]}, "repeats a seed"),
        ({"base": BASE, "grids": []}, "did you mean 'grid'"),
        ({"grid": []}, "base:"),
    ],
)
def test_bad_sweep_definitions_name_the_problem(raw, message):
    with pytest.raises(UserError, match=message):
        parse_sweep(raw, "t", "test")


def test_override_of_a_grid_parameter_is_refused():
    with pytest.raises(UserError, match="grid varies data.num_rules"):
        sweep_of([{"data.num_rules": [1, 2]}], overrides=["data.num_rules=3"])
    with pytest.raises(UserError, match="--seeds"):
        sweep_of(None, overrides=["train.seed=3"])


def test_unknown_preset_lists_the_available_ones():
    with pytest.raises(UserError, match=r"did you mean 'e1-cpu' or 'e1-paper'\?.*available: demo"):
        load_sweep("e1")


def test_duplicate_grid_values_are_refused():
    with pytest.raises(UserError, match="share the id"):
        expand(sweep_of([{"data.num_rules": [3, 3]}]))


# --- CLI bad input: one line on stderr, exit 2 --------------------------------------------------------


def write_sweep(tmp_path: Path, raw: dict, name: str = "micro.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return path


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "grid",
    [
        [{"data.num_rules": []}],
        [{"zip": {"data.num_rules": [1, 2], "data.budget": [100]}}],
    ],
)
def test_cli_bad_grid_exits_2_with_one_line(tmp_path, capsys, grid):
    path = write_sweep(tmp_path, {"base": BASE, "grid": grid})
    code, _, err = run_cli(["sweep", str(path), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("rewritelab: error:")
    assert not (tmp_path / "out").exists()


def test_cli_unknown_preset_exits_2(tmp_path, capsys):
    code, _, err = run_cli(["sweep", "nope", "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "available: demo" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["reproduce", "nope", "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_cli_bad_seeds_and_workers_exit_2(tmp_path, capsys):
    path = write_sweep(tmp_path, {"base": BASE})
    code, _, err = run_cli(["sweep", str(path), "--out", str(tmp_path / "o"), "--seeds", "a,b"], capsys)
    assert code == 2 and "--seeds" in err


def test_cli_unreachable_ray_address_exits_2_quickly(tmp_path, capsys):
    pytest.importorskip("ray")
    path = write_sweep(tmp_path, {"base": BASE})
    start = time.monotonic()
    code, _, err = run_cli(
        [
            "sweep",
            str(path),
            "--out",
            str(tmp_path / "o"),
            "--backend",
            "ray",
            "--ray-address",
            "127.0.0.1:1",
        ],
        capsys,
    )
    assert (
        code == 2 and "--ray-address 127.0.0.1:1: unreachable" in err and len(err.strip().splitlines()) == 1
    )
    assert time.monotonic() - start < 10 and not (tmp_path / "o").exists()


def test_an_unknown_backend_names_the_registered_ones_and_start_up_skips_torch(tmp_path, capsys):
    path = write_sweep(tmp_path, {"base": BASE})
    code, _, err = run_cli(["sweep", str(path), "--out", str(tmp_path / "o"), "--backend", "slurm"], capsys)
    assert code == 2 and err.count("\n") == 1 and "must be one of local, ray" in err
    assert not (tmp_path / "o").exists()
    code = "import sys; import rewritelab.cli as c; c.build_parser(); print('torch' in sys.modules)"
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert probe.stdout.strip() == "False", probe.stderr


def test_missing_ray_names_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    path = write_sweep(tmp_path, {"base": BASE})
    code, _, err = run_cli(["sweep", str(path), "--out", str(tmp_path / "o"), "--backend", "ray"], capsys)
    assert code == 2 and "rewritelab[ray]" in err and len(err.strip().splitlines()) == 1


# --- micro sweeps: real training, tiny model --------------------------------------------------------------

MICRO = {
    "description": "micro sweep for tests",
    "base": {
        "data": {**MICRO_DATA, "replacement_len": [1, 2]},
        "model": MICRO_MODEL,
        "train": {
            "batch_size": 8,
            "epochs": 100,
            "max_steps": 50,
            "warmup_steps": 5,
            "checkpoint_every": 10,
            "eval_every": 0,
            "device": "cpu",
            "threads": 1,
        },
    },
    "grid": [{"data.num_rules": [4, 8]}],
    "seeds": [0],
}
MICRO_IDS = {"num_rules=4.seed=0", "num_rules=8.seed=0"}


def rewritelab(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rewritelab", *args], capture_output=True, text=True, timeout=300, **kwargs
    )


def result_rows(sweep_dir: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(sweep_dir / "results.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return sorted(db.execute("SELECT run_id, split FROM results").fetchall())


def recorded_patterns(sweep_dir: Path) -> dict[str, tuple[int, int]]:
    """run id → (distinct training patterns in the database, the same count in the run's data manifest)."""
    with sqlite3.connect(sweep_dir / "results.sqlite") as db:
        stored = dict(db.execute("SELECT run_id, train_patterns FROM results").fetchall())
    manifest = {r: read_json(sweep_dir / "runs" / r / "data_manifest.json") for r in stored}
    return {r: (count, manifest[r]["disjointness"]["train_patterns"]) for r, count in stored.items()}


def expected_rows(ids=MICRO_IDS) -> list[tuple[str, str]]:
    return sorted((i, s) for i in ids for s in ("test_seen", "test_unseen"))


def test_killed_sweep_resumes_to_one_row_per_run_and_split(tmp_path, capsys):
    path = write_sweep(tmp_path, MICRO)
    out = tmp_path / "sweep"
    with open(tmp_path / "first.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rewritelab", "sweep", str(path), "--out", str(out), "--workers", "1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 120
    while not list(out.glob("runs/*/checkpoint.pt")) + list(out.glob("runs/*/summary.json")):
        assert proc.poll() is None, (tmp_path / "first.log").read_text()
        assert time.monotonic() < deadline, "no checkpoint after 120 s"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(list(out.glob("runs/*/summary.json"))) < 2  # killed mid-way

    code, _, err = run_cli(["sweep", str(path), "--out", str(out)], capsys)
    assert code == 0, err
    assert result_rows(out) == expected_rows()
    patterns = recorded_patterns(out)
    assert len(patterns) == 2 and all(db == manifest > 0 for db, manifest in patterns.values())
    summaries = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/summary.json")}
    assert len(summaries) == 2

    # a run that finished but was never recorded (killed in between) is recorded on the next call
    (out / "results.sqlite").unlink()
    code, _, err = run_cli(["sweep", str(path), "--out", str(out)], capsys)
    assert code == 0 and "2 already done" in err
    assert result_rows(out) == expected_rows() and recorded_patterns(out) == patterns
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/summary.json")} == summaries  # not retrained

    # the same directory with other settings is refused before anything changes
    code, _, err = run_cli(["sweep", str(path), "--out", str(out), "--set", "train.lr=0.01"], capsys)
    assert code == 2 and "holds a different sweep" in err and len(err.strip().splitlines()) == 1

    # reproduce reuses the finished runs: table, the report's headline, report
    code, out_text, err = run_cli(["reproduce", str(path), "--out", str(out)], capsys)
    assert code == 0, err
    lines = out_text.strip().splitlines()
    assert lines[2].startswith("num_rules=4.seed=0  4  100") and lines[3].startswith(
        "num_rules=8.seed=0  8  50"
    )
    pattern = r"Unseen-rule accuracy .* at I = 4 .* at I = 8, at the same budget of 400 training examples\.$"
    assert re.match(pattern, lines[4])
    assert lines[4:-1] == headline_of(out) and any("bootstrap interval" in line for line in lines)
    assert (
        lines[-1] == f"report: {out / 'report' / 'report.html'}" and (out / "report" / "report.html").exists()
    )


def test_more_seeds_extend_a_sweep_directory_other_settings_do_not(tmp_path):
    out = tmp_path / "sweep"
    prepare_sweep_dir(sweep_of([{"data.num_rules": [4, 8]}], seeds=[0]), out, {})
    prepare_sweep_dir(sweep_of([{"data.num_rules": [4, 8]}], seeds=[1, 2]), out, {})
    assert yaml.safe_load((out / "sweep.yaml").read_text())["seeds"] == [0, 1, 2]
    with pytest.raises(UserError, match="holds a different sweep"):
        prepare_sweep_dir(sweep_of([{"data.num_rules": [4, 9]}], seeds=[0]), out, {})
    execution = ["train.track=[tensorboard]", "train.threads=1"]
    tracked = sweep_of([{"data.num_rules": [4, 8]}], overrides=execution)
    prepare_sweep_dir(tracked, out, {})  # execution settings (trackers, threads) do not make another sweep
    assert yaml.safe_load((out / "sweep.yaml").read_text())["base"]["train"]["track"] == ["tensorboard"]


def test_a_failing_run_is_reported_and_the_others_finish(tmp_path):
    path = write_sweep(tmp_path, MICRO)
    out = tmp_path / "sweep"
    broken = out / "runs" / "num_rules=4.seed=0"
    broken.mkdir(parents=True)
    (broken / "checkpoint.pt").write_bytes(b"not a checkpoint")
    done = rewritelab("sweep", str(path), "--out", str(out), "--workers", "2")
    assert done.returncode == 1
    assert "run num_rules=4.seed=0 failed:" in done.stderr
    assert result_rows(out) == expected_rows({"num_rules=8.seed=0"})


def test_reuse_copies_identical_finished_runs_and_trains_only_the_rest(tmp_path, capsys):
    first = tmp_path / "e1"
    code, _, err = run_cli(["sweep", str(write_sweep(tmp_path, MICRO)), "--out", str(first)], capsys)
    assert code == 0, err
    grid = [{"data.noop_frac": [0.0, 0.5]}, {"data.num_rules": [4]}]
    path = write_sweep(tmp_path, {**MICRO, "grid": grid}, "e2.yaml")
    out = tmp_path / "e2"
    partial = out / "runs" / "noop_frac=0.0.num_rules=4.seed=0"
    partial.mkdir(parents=True)
    (partial / "checkpoint.pt").write_bytes(b"an interrupted attempt")  # superseded by the finished twin
    code, _, err = run_cli(["sweep", str(path), "--out", str(out), "--reuse", str(first)], capsys)
    assert code == 0, err
    assert f"reused 1 finished run (copied from {first / 'runs'})" in err
    twin = first / "runs" / "num_rules=4.seed=0"
    assert (partial / "summary.json").read_bytes() == (twin / "summary.json").read_bytes()
    assert (partial / "checkpoint.pt").read_bytes() == (twin / "checkpoint.pt").read_bytes()
    assert (out / "runs" / "noop_frac=0.5.num_rules=4.seed=0" / "summary.json").exists()  # trained
    assert result_rows(out) == expected_rows(
        {"noop_frac=0.0.num_rules=4.seed=0", "noop_frac=0.5.num_rules=4.seed=0"}
    )
    assert not list((out / "runs").glob(".*"))  # no temporary directory left behind
    stamps = {
        row[0]
        for row in sqlite3.connect(out / "results.sqlite").execute(
            "SELECT finished_at FROM results WHERE run_id = 'noop_frac=0.0.num_rules=4.seed=0'"
        )
    }
    assert stamps == {read_json(twin / "summary.json")["finished_at"]}  # when scored, not when copied
    code, _, err = run_cli(["sweep", str(path), "--out", str(out), "--reuse", str(tmp_path / "nope")], capsys)
    assert code == 2 and err.count("\n") == 1 and "--reuse" in err


@pytest.mark.parametrize("grid", [[{"data.num_rulez": [1, 2]}], [{"model.depth": [1]}]])
def test_unknown_parameter_path_is_caught_before_anything_runs(tmp_path, capsys, grid):
    path = write_sweep(tmp_path, {**MICRO, "grid": grid})
    code, _, err = run_cli(["sweep", str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "run " in err
    assert not (tmp_path / "o").exists()


def test_ray_backend_runs_the_micro_sweep(tmp_path, capsys):
    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed (pip install 'rewritelab[ray]')")
    path = write_sweep(tmp_path, MICRO)
    out = tmp_path / "sweep"
    code, _, err = run_cli(
        ["sweep", str(path), "--out", str(out), "--backend", "ray", "--workers", "2"], capsys
    )
    assert code == 0, err
    assert result_rows(out) == expected_rows()


def test_dry_run_lists_validated_run_ids_and_writes_nothing(tmp_path, capsys):
    path = write_sweep(tmp_path, MICRO)
    code, out, _ = run_cli(
        ["sweep", str(path), "--out", str(tmp_path / "o"), "--dry-run", "--seeds", "0,1"], capsys
    )
    listed = {line.split()[0] for line in out.split("\n\n")[0].splitlines()[2:]}
    assert code == 0 and listed == MICRO_IDS | {i.replace("seed=0", "seed=1") for i in MICRO_IDS}
    assert not (tmp_path / "o").exists()


def test_running_status_reads_the_running_runs_last_step_and_loss(tmp_path):
    sweep = sweep_of([{"data.num_rules": [4, 8]}], base=MICRO["base"])
    runs = expand(sweep)
    configs = validate_runs(runs)
    running, finished = (tmp_path / "runs" / r.run_id for r in runs)
    running.mkdir(parents=True)
    lines = [{"kind": "train", "step": 20, "loss": 1.5}, {"kind": "eval", "step": 20}]
    (running / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"kind": "tr')
    finished.mkdir(parents=True)
    (finished / "metrics.jsonl").write_text(json.dumps({"kind": "train", "step": 50, "loss": 0.1}) + "\n")
    (finished / "summary.json").write_text("{}")
    status, partial = running_status(tmp_path, runs, configs)
    assert status == f"running: {runs[0].run_id} step 20/50 loss 1.5000"
    assert partial == pytest.approx(20 / 50)


def test_sweep_logs_progress_lines_while_runs_train(tmp_path, capsys):
    """With stderr not a terminal, the sweep says what its running runs do at a steady interval."""
    base = {**MICRO["base"], "train": {**MICRO["base"]["train"], "max_steps": 400}}
    run_sweep(sweep_of([{"data.num_rules": [4]}], base=base), tmp_path / "s", workers=1, heartbeat_s=0.5)
    err = capsys.readouterr().err
    assert "rewritelab " in err and "local backend, 1 worker process x " in err and "precision float32" in err
    beats = [line for line in err.splitlines() if line.startswith("sweep 0/1") and "running:" in line]
    assert beats and re.search(r"num_rules=4\.seed=0 step \d+/400 loss \d", beats[-1])
    assert any(line.startswith("sweep 1/1 (100%)") for line in err.splitlines())


@pytest.mark.parametrize("command", ["sweep", "reproduce"])
def test_out_that_is_a_file_is_one_line_and_exit_2(tmp_path, capsys, command):
    out = tmp_path / "a-file"
    out.write_text("not a sweep directory")
    code, _, err = run_cli([command, str(write_sweep(tmp_path, MICRO)), "--out", str(out)], capsys)
    assert code == 2 and err.count("\n") == 1 and "exists and is not a directory" in err
    assert out.read_text() == "not a sweep directory"
