"""Replacing one's own output replaces only one's own names, in subfolders too (issue 38, cases 3-4):
`sweep --reuse` over a partial run, and `generate` over a dataset with exports (hf/, sft/, verl/,
lm_eval/), leave a user's files inside those folders byte for byte as they were."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rewritelab.cli import main
from rewritelab.data import load_dataset
from support import TINY

RUN_ID = "num_rules=2.seed=0"  # the run of the `sweep_file` fixture
EXPORTS = [("hf", "hf", "datasets"), ("instruction", "sft", None), ("verl", "verl", "pyarrow"),
           ("lm-eval", "lm_eval", None)]  # fmt: skip


def mine(folder: Path, files_of) -> dict[str, bytes | None]:
    """The user's files under `folder` (every name holding 'mine'), with their bytes."""
    return {name: data for name, data in files_of(folder).items() if "mine" in name}


def run_files(run: Path, files_of) -> dict[str, bytes | None]:
    """A run's own files with their bytes (not the user's, nor the folder's marker and lock)."""
    files = files_of(run).items()
    return {name: data for name, data in files if "mine" not in name and not name.startswith(".rewritelab")}


# --- generate: the export folders ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt, folder, needs", EXPORTS, ids=[fmt for fmt, _, _ in EXPORTS])
def test_regenerating_keeps_the_users_files_inside_the_export_folder(tmp_path, files_of, fmt, folder, needs):
    if needs is not None:
        pytest.importorskip(needs)
    out = tmp_path / "data"
    assert main(["generate", str(TINY), "--out", str(out), "--format", fmt]) == 0
    ours = set(files_of(out / folder))
    (out / folder / "mine.txt").write_text("my notes on this export\n", encoding="utf-8")
    (out / folder / "mine").mkdir()
    (out / folder / "mine" / "eval.py").write_text("print('mine')\n", encoding="utf-8")
    if folder == "hf":
        (out / "hf" / "train" / "mine.md").write_text("# the train split\n", encoding="utf-8")
    before = mine(out, files_of)

    assert main(["generate", str(TINY), "--out", str(out), "--format", fmt, "--set", "data.seed=3"]) == 0
    assert load_dataset(out).spec.seed == 3
    assert mine(out, files_of) == before
    assert {name for name in files_of(out / folder) if "mine" not in name} == ours  # ours, regenerated

    assert main(["generate", str(TINY), "--out", str(out)]) == 0  # JSONL only: the stale export goes
    assert mine(out, files_of) == before
    assert {name for name in files_of(out / folder) if "mine" not in name} <= {"train"}  # hf/train/ kept


def test_regenerating_without_exports_removes_an_emptied_export_folder(tmp_path):
    out = tmp_path / "data"
    assert main(["generate", str(TINY), "--out", str(out), "--format", "instruction"]) == 0
    assert main(["generate", str(TINY), "--out", str(out)]) == 0
    assert not (out / "sft").exists()


@pytest.mark.parametrize("fmt", ["jsonl", "hf"])
def test_an_export_folder_that_is_a_symlink_is_never_entered(tmp_path, files_of, fmt):
    if fmt == "hf":
        pytest.importorskip("datasets")
    out = tmp_path / "data"
    assert main(["generate", str(TINY), "--out", str(out)]) == 0
    elsewhere = tmp_path / "elsewhere"  # a folder of the user's, holding names an export writes
    (elsewhere / "train").mkdir(parents=True)
    (elsewhere / "dataset_dict.json").write_text('{"splits": ["mine"]}', encoding="utf-8")
    (elsewhere / "train" / "state.json").write_text("{}", encoding="utf-8")
    (out / "hf").symlink_to(elsewhere)
    before = files_of(elsewhere)
    # Writing an hf export there would go through the link: refused in one line (io.check_target); a
    # jsonl-only dataset writes nothing there and leaves the link alone.
    code = main(["generate", str(TINY), "--out", str(out), "--format", fmt, "--set", "data.seed=3"])
    assert code == (2 if fmt == "hf" else 0)
    assert files_of(elsewhere) == before


# --- sweep --reuse over a partial run -----------------------------------------------------------------------


def test_reuse_over_a_partial_run_keeps_the_users_files_in_it(sweep_file, tmp_path, files_of, capsys):
    first = tmp_path / "first"
    assert main(["sweep", str(sweep_file), "--out", str(first)]) == 0
    source = first / "runs" / RUN_ID
    (source / "mine.txt").write_text("someone else's notes, not part of the run\n", encoding="utf-8")

    out = tmp_path / "second"
    partial = out / "runs" / RUN_ID
    shutil.copytree(source, partial, ignore=shutil.ignore_patterns("summary.json", "predictions", "mine*"))
    (partial / "checkpoint.pt").write_bytes(b"an interrupted attempt")
    (partial / "tracking").mkdir()  # the interrupted attempt's own, superseded by the finished twin
    (partial / "mine.txt").write_text("my notes on this run\n", encoding="utf-8")
    (partial / "predictions").mkdir()
    (partial / "predictions" / "mine.ipynb").write_text("{}\n", encoding="utf-8")
    before = mine(partial, files_of)

    capsys.readouterr()
    assert main(["sweep", str(sweep_file), "--out", str(out), "--reuse", str(first)]) == 0
    assert "reused 1 finished run" in capsys.readouterr().err
    assert mine(partial, files_of) == before  # not deleted, and not overwritten by the source's mine.txt
    assert run_files(partial, files_of) == run_files(source, files_of)  # the finished twin, stale ones gone
    assert not list((out / "runs").glob(".*"))  # no staging folder left behind
