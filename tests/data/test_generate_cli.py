"""`rewritelab generate`: files, formats, overrides, and one-line exit-2 errors that write nothing."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rewritelab.cli import main
from rewritelab.config import from_dict, load_yaml
from rewritelab.data import DATA_FILES, DatasetSpec, load_dataset

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "configs"

SMALL = {
    "alphabet": "abcdef",
    "input_len": [8, 12],
    "pattern_len": [2, 4],
    "replacement_len": [1, 4],
    "num_rules": 40,
    "budget": 400,
    "test_rules": 10,
    "test_examples_per_rule": 3,
}


def write_config(tmp_path: Path, data: dict | None = None, **sections) -> Path:
    path = tmp_path / "config.yaml"
    config = {"data": SMALL if data is None else data, **sections}
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def generate(*args: str) -> int:
    return main(["generate", *map(str, args)])


def test_generate_writes_the_dataset_and_prints_stats(tmp_path, capsys):
    config = write_config(tmp_path, model={"n_layer": 2}, train={"epochs": 1})  # a run config works too
    assert generate(config, "--out", tmp_path / "out", "--set", "data.num_rules=20") == 0
    out = capsys.readouterr().out
    assert "test_unseen" in out and f"wrote {tmp_path / 'out'}" in out
    ds = load_dataset(tmp_path / "out")
    assert ds.spec.num_rules == 20 and len(ds.splits["train"]) == 400
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted([*DATA_FILES, "manifest.json"])


def test_same_config_gives_identical_files_and_a_new_seed_does_not(tmp_path):
    config = write_config(tmp_path)
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        assert generate(config, "--out", tmp_path / name, "--set", f"data.seed={seed}") == 0

    def digests(name: str) -> dict[str, str]:
        return {f: hashlib.sha256((tmp_path / name / f).read_bytes()).hexdigest() for f in DATA_FILES}

    assert digests("a") == digests("b")
    assert all(digests("a")[f] != digests("c")[f] for f in DATA_FILES)
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert {f: manifest["files"][f]["sha256"] for f in DATA_FILES} == digests("a")


def test_format_hf_loads_with_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    assert generate(write_config(tmp_path), "--out", tmp_path / "out", "--format", "hf") == 0
    hf = datasets.load_from_disk(str(tmp_path / "out" / "hf"))
    assert hf["train"].num_rows == 400 and hf["test_unseen"].num_rows == 30
    assert hf["test_seen"].column_names == list(load_dataset(tmp_path / "out").splits["test_seen"].columns)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_are_valid(path):
    spec = from_dict(DatasetSpec, load_yaml(path)["data"], "data")
    spec.validate()


def test_small_example_configs_generate(tmp_path):
    for name in ("cpu-small", "powerlaw", "families-mixed", "noops-occurrences"):
        out = tmp_path / name
        assert generate(EXAMPLES / f"{name}.yaml", "--out", out, "--set", "data.budget=2000") == 0
        assert load_dataset(out).manifest["disjointness"]["heldout_patterns_in_train"] == 0


# ---------------------------------------------------------------------------------------------------------
# Bad input: exit 2, exactly one stderr line naming the field, no output directory

BAD_DATA = [
    (
        {
            "num_rules": 10,
            "alphabet": "ab",
            "pattern_len": 1,
            "replacement_len": 1,
            "budget": 10,
            "test_rules": 1,
        },
        "data.num_rules",
    ),
    ({"test_rules": 5, "alphabet": "ab", "pattern_len": 1, "replacement_len": 1}, "data.test_rules"),
    ({"pattern_len": 13}, "data.pattern_len"),
    ({"family": {"name": "repeated", "k": 4, "block_len": 4}}, "data.family"),
    ({"test_family": {"name": "periodic", "k": 5, "block_len": 3}}, "data.test_family"),
    ({"occurrences": 4, "pattern_len": [2, 3]}, "data.occurrences"),
    ({"test_occurrences": [1, 5], "pattern_len": 2}, "data.test_occurrences"),
    ({"alpha": 0}, "data.alpha"),
    ({"alpha": -1, "rule_distribution": "powerlaw"}, "data.alpha"),
    ({"noop_frac": 1.0}, "data.noop_frac"),
    ({"noop_frac": -0.1}, "data.noop_frac"),
    ({"examples_per_rule": 10}, "data.examples_per_rule"),
    ({"budget": 39}, "data.budget"),
    ({"input_len": [12, 8]}, "data.input_len"),
    ({"replacement_len": [3, 1]}, "data.replacement_len"),
    ({"num_rules": 0}, "data.num_rules"),
    ({"num_rules": -5}, "data.num_rules"),
    ({"test_rules": 0}, "data.test_rules"),
    ({"test_examples_per_rule": 0}, "data.test_examples_per_rule"),
    ({"input_len": 0}, "data.input_len"),
    ({"pattern_len": [0, 2]}, "data.pattern_len"),
    ({"budget": None, "examples_per_rule": 0}, "data.examples_per_rule"),
    ({"alphabet": "abca"}, "data.alphabet"),
    ({"alphabet": "ab c"}, "data.alphabet"),
    ({"alphabet": "ab\tc"}, "data.alphabet"),
    ({"alphabet": "ab\x01"}, "data.alphabet"),
    ({"alphabet": "ab\u200b"}, "data.alphabet"),
    ({"alphabet": "a"}, "data.alphabet"),
    ({"num_rulez": 3}, "data: unknown key 'num_rulez'"),
    ({"rule_distribution": "zipf"}, "data.rule_distribution"),
    ({"occurrences": {"counts": [1, 2], "weights": [1]}}, "data.occurrences.weights"),
    ({"occurrences": [0, 1]}, "data.occurrences"),
    ({"family": "spiral"}, "data.family"),
    ({"family": {"name": "mirrored", "block_len": 1}}, "data.family.block_len"),
    ({"seed": -1}, "data.seed"),
    ({"validation_rules": -1}, "data.validation_rules"),
    ({"validation_examples_per_rule": 0}, "data.validation_examples_per_rule"),
    (
        {"alphabet": "ab", "pattern_len": 2, "replacement_len": 1, "num_rules": 4, "test_rules": 2},
        "data.validation_rules",
    ),
    # Possible in principle but not with these lengths: 'aa' 4 times in 8 characters (it would be 7 times).
    (
        {
            "alphabet": "ab",
            "input_len": 8,
            "pattern_len": 2,
            "occurrences": 4,
            "num_rules": 8,
            "test_rules": 1,
            "validation_rules": 0,
        },
        "data.occurrences",
    ),
]


@pytest.mark.parametrize("change, field", BAD_DATA, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD_DATA)])
def test_bad_data_exits_2_with_one_line_and_no_output(tmp_path, capsys, change, field):
    config = write_config(tmp_path, {**SMALL, **change})
    out = tmp_path / "out"
    assert generate(config, "--out", out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"rewritelab: error: {field}"), err
    assert not out.exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ("num_rules=5", "unknown top-level key 'num_rules'"),
        ("data.num_rules=[1", "the value is not valid YAML"),
    ],
)
def test_bad_overrides_exit_2(tmp_path, capsys, override, message):
    out = tmp_path / "out"
    assert generate(write_config(tmp_path), "--out", out, "--set", override) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not out.exists()


def test_bad_format_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        generate(write_config(tmp_path), "--out", tmp_path / "out", "--format", "csv")
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice: 'csv'" in err
    assert not (tmp_path / "out").exists()


def test_config_file_problems_exit_2(tmp_path, capsys):
    out = tmp_path / "out"
    (tmp_path / "sweep.yaml").write_text("description: x\nbase: {}\n")
    (tmp_path / "model.yaml").write_text("model: {n_layer: 2}\n")
    cases = [
        (tmp_path / "missing.yaml", "config file not found"),
        (tmp_path / "sweep.yaml", "unknown top-level key 'description'"),
        (tmp_path / "model.yaml", "no data: section"),
    ]
    for config, message in cases:
        assert generate(config, "--out", out) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err
        assert not out.exists()


def test_missing_hf_package_is_a_user_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` now raises ImportError
    out = tmp_path / "out"
    assert generate(write_config(tmp_path), "--out", out, "--format", "hf") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'rewritelab[hf]'" in err
    assert not out.exists()


def test_a_foreign_output_directory_is_left_alone(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    assert generate(write_config(tmp_path), "--out", out) == 2
    assert "not a rewritelab dataset" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]


def test_module_entry_point(tmp_path):
    config = write_config(tmp_path, {**SMALL, "alpha": 0})
    proc = subprocess.run(
        [sys.executable, "-m", "rewritelab", "generate", str(config), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "data.alpha" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_examples_per_rule_alone_sets_s_and_both_explicit_is_an_error(tmp_path, capsys):
    """S set directly (the paper's own parametrisation) needs no `budget: null`; both set is refused."""
    data = {k: v for k, v in SMALL.items() if k != "budget"} | {"num_rules": 4, "examples_per_rule": 150}
    out = tmp_path / "out"
    assert generate(write_config(tmp_path, data), "--out", out) == 0
    assert len((out / "train.jsonl").read_text(encoding="utf-8").splitlines()) == 600
    spec = from_dict(DatasetSpec, {k: v for k, v in SMALL.items() if k != "budget"}, "data")
    assert spec.budget == 1_000_000 and spec.examples_per_rule is None  # neither given: the default
    both = dict(data, budget=600)
    assert generate(write_config(tmp_path, both), "--out", tmp_path / "both") == 2
    assert "not both" in capsys.readouterr().err
    assert not (tmp_path / "both").exists()
