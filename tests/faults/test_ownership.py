"""Data loss: every command writes only into a folder that is absent, empty or of its own kind, replaces
only its own files there, and leaves anything else byte for byte as it was (issue 25, cases 1-4, 13)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rewritelab.cli import main
from rewritelab.data import load_dataset
from rewritelab.folders import check_folder, folder_kind
from support import TINY, e1_points, make_sweep

DOCS = Path(__file__).resolve().parents[2] / "docs"
COMMITTED_SWEEP = DOCS / "results" / "e4-cpu-v2"
COMMITTED_RUN = COMMITTED_SWEEP / "runs" / "family=repeated_k2-3_block_len3.num_rules=1000.seed=0"
COMMITTED_REPORT = DOCS / "figures" / "e1-cpu-v2"
TRAIN = ["--set", "train.max_steps=2", "--set", "train.eval_every=0", "--progress", "none"]


def refused(argv: list[str], capsys, needle: str) -> str:
    """Run the CLI; it must end with exit 2 and one line on stderr that contains `needle`."""
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rewritelab: error: ") and needle in err, err
    return err


@pytest.fixture
def sweep(tmp_path) -> Path:
    return make_sweep(tmp_path / "sweep", e1_points(), seeds=(0,))


# --- a user's folder is never written ---------------------------------------------------------------------


def test_report_into_a_folder_holding_someone_elses_report_html_is_refused(
    sweep, user_folder, files_of, capsys
):
    before = files_of(user_folder)
    refused(["report", sweep, "--out", user_folder], capsys, "not a report directory")
    assert files_of(user_folder) == before


def test_generate_into_a_folder_holding_someone_elses_manifest_json_is_refused(user_folder, files_of, capsys):
    before = files_of(user_folder)
    refused(["generate", TINY, "--out", user_folder], capsys, "not a rewritelab dataset")
    assert files_of(user_folder) == before


def test_train_into_an_unrelated_folder_is_refused(user_folder, files_of, capsys):
    before = files_of(user_folder)
    refused(["train", TINY, "--out", user_folder, *TRAIN], capsys, "not a run directory")
    assert files_of(user_folder) == before


def test_sweep_into_an_unrelated_folder_is_refused(sweep_file, user_folder, files_of, capsys):
    before = files_of(user_folder)
    refused(["sweep", sweep_file, "--out", user_folder], capsys, "not a sweep directory")
    assert files_of(user_folder) == before  # results.sqlite untouched: no results table, no WAL files


def _dataset(tmp_path: Path) -> Path:
    assert main(["generate", str(TINY), "--out", str(tmp_path / "data")]) == 0
    return tmp_path / "data"


def _run(tmp_path: Path) -> Path:
    return Path(shutil.copytree(COMMITTED_RUN, tmp_path / "run"))  # written by an earlier version


def _sweep(tmp_path: Path) -> Path:
    (tmp_path / "sweep").mkdir()
    shutil.copy(COMMITTED_SWEEP / "sweep.yaml", tmp_path / "sweep")
    return tmp_path / "sweep"


@pytest.mark.parametrize(
    "command, make, holds",
    [
        ("train", _dataset, "a rewritelab dataset"),
        ("train", _sweep, "a rewritelab sweep"),
        ("sweep", _run, "a rewritelab run"),
        ("sweep", _dataset, "a rewritelab dataset"),
    ],
)
def test_a_folder_of_another_kind_is_refused(command, make, holds, sweep_file, tmp_path, files_of, capsys):
    folder = make(tmp_path)
    before = files_of(folder)
    argv = (
        ["train", TINY, "--out", folder, *TRAIN]
        if command == "train"
        else ["sweep", sweep_file, "--out", folder]
    )
    refused(argv, capsys, f"(it holds {holds})")
    assert files_of(folder) == before


# --- replacing one's own output replaces only one's own files -----------------------------------------------


def test_regenerating_a_dataset_keeps_the_users_files_beside_it(tmp_path, files_of, capsys):
    out = _dataset(tmp_path)
    (out / "README.md").write_text("# my dataset\n", encoding="utf-8")
    (out / "extra").mkdir()
    (out / "extra" / "split.py").write_text("print('mine')\n", encoding="utf-8")
    (out / "hf").mkdir()  # an earlier `--format hf` export, stale once the data changes
    (out / "hf" / "dataset_dict.json").write_text("{}", encoding="utf-8")
    mine = {k: v for k, v in files_of(out).items() if k.startswith(("README", "extra"))}
    assert main(["generate", str(TINY), "--out", str(out), "--set", "data.seed=3"]) == 0
    assert load_dataset(out).spec.seed == 3
    assert not (out / "hf").exists()
    assert {k: v for k, v in files_of(out).items() if k.startswith(("README", "extra"))} == mine


def test_a_report_of_an_earlier_version_is_replaced_and_the_users_files_stay(sweep, tmp_path, files_of):
    out = Path(shutil.copytree(COMMITTED_REPORT, tmp_path / "figures"))
    (out / "notes.txt").write_text("what I saw", encoding="utf-8")
    (out / "drafts").mkdir()
    (out / "drafts" / "fig.svg").write_text("<svg/>", encoding="utf-8")
    (out / "e2_noop.png").write_bytes(b"a figure this report no longer draws")
    mine = {k: v for k, v in files_of(out).items() if k.startswith(("notes", "drafts"))}
    old_html = (out / "report.html").read_bytes()
    assert main(["report", str(sweep), "--out", str(out)]) == 0
    assert {k: v for k, v in files_of(out).items() if k.startswith(("notes", "drafts"))} == mine
    assert not (out / "e2_noop.png").exists()
    assert (out / "report.html").read_bytes() != old_html and folder_kind(out) == "report"


# --- results --out ------------------------------------------------------------------------------------------


def test_results_never_overwrite_the_database_or_a_users_file(sweep, tmp_path, capsys):
    db = sweep / "results.sqlite"
    before = db.read_bytes()
    refused(["results", sweep, "--format", "csv", "--out", db], capsys, "not a results export")
    assert db.read_bytes() == before
    notes = tmp_path / "notes.md"
    notes.write_text("# my notes\n", encoding="utf-8")
    refused(["results", sweep, "--out", notes], capsys, "not a results export")
    assert notes.read_text(encoding="utf-8") == "# my notes\n"
    export = tmp_path / "results.csv"
    for fmt in ("csv", "markdown", "seeds"):  # an earlier export of any format is replaced
        assert main(["results", str(sweep), "--format", fmt, "--out", str(export)]) == 0


def test_results_out_an_existing_directory_is_one_line(sweep, tmp_path, capsys):
    refused(["results", sweep, "--format", "csv", "--out", tmp_path], capsys, "is a directory")


# --- folders written by earlier versions keep their kind ----------------------------------------------


@pytest.mark.parametrize(
    "folder, kind",
    [(COMMITTED_SWEEP, "sweep"), (COMMITTED_RUN, "run"), (COMMITTED_REPORT, "report")],
    ids=["sweep", "run", "report"],
)
def test_committed_exports_are_recognised_as_their_kind(folder, kind):
    assert folder_kind(folder) == kind
    check_folder(folder, kind)  # resume, re-score, --reuse and re-drawing accept them
