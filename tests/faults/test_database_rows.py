"""A results database whose rows were changed while every page stays well formed (issue 38, case 6):
SQLite's structure check passes, so each row's checksum is what refuses it, on read by `results` and
`report` and by `sweep` before it trains; the runs' summaries rebuild the rows."""

from __future__ import annotations

import shutil
import sqlite3
import struct
from pathlib import Path

import pytest

from rewritelab.cli import main
from rewritelab.store import COLUMNS
from support import e1_points, make_sweep


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("rewritelab: error: ") and "\n" not in err and "Traceback" not in err
    return err


def results_of(sweep: Path, capsys) -> str:
    assert main(["results", str(sweep)]) == 0
    return capsys.readouterr().out


def sql(db: Path, statement: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(statement)
    conn.close()


def quick_check(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        result = conn.execute("PRAGMA quick_check").fetchone()[0]
    conn.close()
    return result


# --- `results` and `report` --------------------------------------------------------------------------------


def edit_accuracy_bytes(db: Path) -> None:
    """Overwrite one row's stored accuracy (an 8-byte float in the file) with 0.9375."""
    with sqlite3.connect(db) as conn:
        accuracy = conn.execute(
            "SELECT accuracy FROM results WHERE accuracy BETWEEN 0.01 AND 0.99"
        ).fetchone()[0]
    conn.close()
    data = db.read_bytes()
    stored = struct.pack(">d", accuracy)
    assert data.count(stored) == 1
    db.write_bytes(data.replace(stored, struct.pack(">d", 0.9375)))


EDITS = {
    "accuracy bytes in the file": edit_accuracy_bytes,
    "accuracy updated with SQL": lambda db: sql(db, "UPDATE results SET accuracy = 0.9375 WHERE rowid = 1"),
    "checksum removed with SQL": lambda db: sql(db, "UPDATE results SET row_sha256 = NULL WHERE rowid = 1"),
}


@pytest.mark.parametrize("edit", EDITS.values(), ids=EDITS.keys())
def test_a_changed_row_is_refused_on_read_and_rebuilt_from_the_summaries(edit, tmp_path, capsys):
    sweep = make_sweep(tmp_path / "s", e1_points()[:2], seeds=(0,))
    original = results_of(sweep, capsys)
    edit(sweep / "results.sqlite")
    assert quick_check(sweep / "results.sqlite") == "ok"  # every page well formed: only the rows tell

    assert main(["results", str(sweep)]) == 2
    err = one_line_error(capsys)
    assert "checksum" in err and f"`rewritelab results {sweep} --rebuild`" in err
    assert main(["report", str(sweep)]) == 2
    assert "checksum" in one_line_error(capsys) and not (sweep / "report").exists()

    assert main(["results", str(sweep), "--rebuild"]) == 0
    assert capsys.readouterr().out == original


def test_a_database_from_before_row_checksums_is_refused_with_the_rebuild(tmp_path, capsys):
    sweep = make_sweep(tmp_path / "s", e1_points()[:2], seeds=(0,))
    original = results_of(sweep, capsys)
    columns = ", ".join(COLUMNS)
    with sqlite3.connect(sweep / "results.sqlite") as db:  # the table as versions before the checksum had it
        db.execute(f"CREATE TABLE old AS SELECT {columns} FROM results")
        db.execute("DROP TABLE results")
        db.execute("ALTER TABLE old RENAME TO results")
    db.close()

    assert main(["results", str(sweep)]) == 2
    err = one_line_error(capsys)
    assert "no checksums" in err and f"`rewritelab results {sweep} --rebuild`" in err
    assert main(["results", str(sweep), "--rebuild"]) == 0
    assert capsys.readouterr().out == original


# --- `sweep` ----------------------------------------------------------------------------------------------


def fill_a_value_with_ff(db: Path) -> None:
    """64 bytes of 0xFF inside a row's config_json: the page's structure is untouched."""
    data = bytearray(db.read_bytes())
    at = data.index(b'"alphabet"')
    data[at : at + 64] = b"\xff" * 64
    db.write_bytes(bytes(data))


DAMAGE = {
    "64 x 0xFF in a data page": fill_a_value_with_ff,
    "accuracy updated with SQL": lambda db: sql(db, "UPDATE results SET accuracy = 0.9375 WHERE rowid = 1"),
}


def test_a_sweep_refuses_a_changed_database_before_it_trains(sweep_file, tmp_path, capsys):
    trained = tmp_path / "trained"
    assert main(["sweep", str(sweep_file), "--out", str(trained)]) == 0  # one tiny run, seed 0
    for name, damage in DAMAGE.items():
        sweep = tmp_path / name
        shutil.copytree(trained, sweep)
        damage(sweep / "results.sqlite")
        assert quick_check(sweep / "results.sqlite") == "ok", name
        damaged = (sweep / "results.sqlite").read_bytes()
        capsys.readouterr()

        for extra in (["--dry-run"], []):
            assert main(["sweep", str(sweep_file), "--out", str(sweep), "--seeds", "0,1", *extra]) == 2, name
            assert f"`rewritelab results {sweep} --rebuild`" in one_line_error(capsys)
        assert [p.name for p in (sweep / "runs").iterdir()] == ["num_rules=2.seed=0"], name  # none trained
        assert (sweep / "results.sqlite").read_bytes() == damaged, name  # nor recorded
