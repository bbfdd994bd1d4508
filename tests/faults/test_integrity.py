"""Damaged files are refused on read, with one line, before they are trusted (issue 25, cases 6-8): a
checkpoint whose tensor bytes fail their zip CRC, a dataset manifest whose spec was edited, and a results
database damaged inside a page, which `results --rebuild` re-makes from the runs' summaries."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from rewritelab.cli import main
from rewritelab.data import load_dataset
from rewritelab.data.files import manifest_checksum
from rewritelab.errors import UserError
from rewritelab.store import load_results
from rewritelab.sweep.runner import recorded_run_ids
from support import TINY, e1_points, make_sweep

SHORT = ["--set", "train.max_steps=20", "--set", "train.eval_every=0", "--progress", "none"]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("rewritelab: error: ") and "\n" not in err and "Traceback" not in err
    return err


# --- checkpoint.pt ----------------------------------------------------------------------------------------


def flip_inside_largest_tensor(path: Path) -> None:
    """Flip one byte in the middle of the largest tensor's bytes: same size, valid zip, valid pickle."""
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    name_len, extra_len = (int.from_bytes(data[info.header_offset + o : info.header_offset + o + 2], "little")
                           for o in (26, 28))  # fmt: skip
    data[info.header_offset + 30 + name_len + extra_len + info.file_size // 2] ^= 0x5A
    path.write_bytes(bytes(data))


def test_a_checkpoint_damaged_inside_a_tensor_is_refused_by_evaluate_and_by_resume(
    tmp_path, capsys, one_thread
):
    run = tmp_path / "run"
    assert main(["train", str(TINY), "--out", str(run), *SHORT]) == 0
    summary = (run / "summary.json").read_bytes()
    flip_inside_largest_tensor(run / "checkpoint.pt")
    capsys.readouterr()

    assert main(["evaluate", str(run), "--progress", "none"]) == 2
    assert "checkpoint.pt: damaged (archive/data/" in one_line_error(capsys)
    assert (run / "summary.json").read_bytes() == summary  # not rewritten from a damaged model

    (run / "summary.json").unlink()  # an unfinished run: `train` resumes from the checkpoint
    assert main(["train", str(TINY), "--out", str(run), *SHORT]) == 2
    assert "fails its CRC-32 check" in one_line_error(capsys)


# --- manifest.json ----------------------------------------------------------------------------------------


def edited_copy(dataset: Path, target: Path, rechecksum: bool) -> Path:
    shutil.copytree(dataset, target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["spec"].update(num_rules=500, budget=9999)  # the file hashes stay intact
    if rechecksum:
        manifest["manifest_sha256"] = manifest_checksum(manifest)  # made again after the edit
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return target


def test_an_edited_manifest_spec_is_refused_by_its_checksum(dataset, tmp_path, capsys):
    data = edited_copy(dataset, tmp_path / "edited", rechecksum=False)
    assert main(["train", str(TINY), "--data", str(data), "--out", str(tmp_path / "run"), *SHORT]) == 2
    assert "manifest.json: edited after it was written" in one_line_error(capsys)
    assert not (tmp_path / "run" / "config.yaml").exists()  # no run records the invented spec


def test_an_edited_manifest_with_its_checksum_made_again_is_refused_by_its_counts(dataset, tmp_path):
    data = edited_copy(dataset, tmp_path / "old", rechecksum=True)
    with pytest.raises(UserError, match=r"\(num_rules\) gives 500 training rules but rules.jsonl holds 2"):
        load_dataset(data)


# --- results.sqlite ---------------------------------------------------------------------------------------


def damage_page(db: Path, page: int) -> None:
    """Overwrite the b-tree header of one page (4096 bytes each; page 1 holds the file header)."""
    data = bytearray(db.read_bytes())
    start = (page - 1) * 4096
    data[start : start + 16] = b"\xff" * 16
    db.write_bytes(bytes(data))


def test_a_database_damaged_inside_a_page_is_refused_and_rebuilt_from_the_runs(tmp_path, capsys):
    sweep = make_sweep(tmp_path / "s", e1_points())
    db = sweep / "results.sqlite"
    original = load_results(sweep)
    damage_page(db, 2)
    damaged = db.read_bytes()

    assert main(["results", str(sweep)]) == 2
    err = one_line_error(capsys)
    assert "not a usable results database" in err and "--rebuild" in err and "SELECT" not in err
    with pytest.raises(UserError, match="--rebuild"):  # the sweep asks before training or recording
        recorded_run_ids(db)

    assert main(["results", str(sweep), "--rebuild", "--format", "csv"]) == 0
    captured = capsys.readouterr()
    assert f"rebuilt {sweep}/results.sqlite from 10 finished runs" in captured.err
    pd.testing.assert_frame_equal(load_results(sweep), original)
    assert (sweep / "results.sqlite.before-rebuild").read_bytes() == damaged  # kept, not deleted


def test_a_damaged_row_is_one_line_that_points_to_the_rebuild(tmp_path, capsys):
    sweep = make_sweep(tmp_path / "s", e1_points()[:2], seeds=(0,))
    db = sweep / "results.sqlite"
    data = bytearray(db.read_bytes())
    at = data.index(b'{"noop"')  # inside a breakdown_json value: the pages stay well formed
    data[at + 10 : at + 20] = b"\xff" * 10
    db.write_bytes(bytes(data))
    assert main(["results", str(sweep)]) == 2
    assert "--rebuild" in one_line_error(capsys)
