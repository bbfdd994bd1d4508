"""A dataset's manifest.json is verified on read (issue 38, case 7): a manifest without its own checksum
is refused, so an edited spec cannot slip past it and be recorded by a run; a manifest that is not what
`generate` writes (a non-finite number, a file table that is not a mapping) is one line, never a
traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rewritelab.cli import main
from rewritelab.data.files import manifest_checksum
from support import TINY

TRAIN = ["--set", "train.max_steps=2", "--set", "train.eval_every=0", "--progress", "none"]


def copy_with(dataset: Path, target: Path, text: str) -> Path:
    """A copy of `dataset` whose manifest.json is `text`; the data files stay intact."""
    shutil.copytree(dataset, target)
    (target / "manifest.json").write_text(text, encoding="utf-8")
    return target


def train_refused(data: Path, run: Path, capsys) -> str:
    """`train --data` must exit 2 with one line on stderr, and record nothing in the run folder."""
    capsys.readouterr()
    assert main(["train", str(TINY), "--data", str(data), "--out", str(run), *TRAIN]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rewritelab: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (run / "config.yaml").exists() and not (run / "data_manifest.json").exists()
    return err


def test_a_manifest_whose_checksum_was_removed_is_refused(dataset, tmp_path, capsys):
    manifest = json.loads((dataset / "manifest.json").read_text(encoding="utf-8"))
    del manifest["manifest_sha256"]
    manifest["spec"]["seed"] = 5  # the counts the files hold stay as they are: only the checksum tells
    data = copy_with(dataset, tmp_path / "d", json.dumps(manifest, indent=2, sort_keys=True))
    err = train_refused(data, tmp_path / "run", capsys)
    assert "manifest.json: no manifest_sha256" in err and "regenerate the dataset" in err


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_a_non_finite_number_in_the_manifest_is_one_line(dataset, tmp_path, capsys, number):
    text = (dataset / "manifest.json").read_text(encoding="utf-8")
    assert '"alpha": 1.0' in text
    data = copy_with(dataset, tmp_path / "d", text.replace('"alpha": 1.0', f'"alpha": {number}'))
    assert "manifest.json: damaged" in train_refused(data, tmp_path / "run", capsys)


@pytest.mark.parametrize("files", ["a list", "a string"])
def test_a_file_table_that_is_not_a_mapping_is_one_line(dataset, tmp_path, capsys, files):
    manifest = json.loads((dataset / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"] = sorted(manifest["files"]) if files == "a list" else "train.jsonl"
    manifest["manifest_sha256"] = manifest_checksum(manifest)  # consistent: only the shape is wrong
    data = copy_with(dataset, tmp_path / "d", json.dumps(manifest))
    assert "manifest.json: damaged" in train_refused(data, tmp_path / "run", capsys)
