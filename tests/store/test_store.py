"""The results database: idempotent recording, concurrent writers, derived columns, exports and the CLI."""

from __future__ import annotations

import io
import json
import sqlite3
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewritelab.cli import main
from rewritelab.errors import UserError
from rewritelab.store import (
    COLUMNS,
    experiment_columns,
    export,
    family_label,
    load_results,
    occurrences_label,
    open_db,
    record_run,
)
from support import data_section, e1_points, e2_points, e3_points, fake_summary, make_sweep, markdown_lines


def summary(num_rules: int = 100, seed: int = 0, **data) -> dict:
    return fake_summary(data_section(num_rules, seed, **data), seed)


def rows(db_path: Path) -> list[tuple]:
    with open_db(db_path) as db:
        return db.execute("SELECT run_id, split, accuracy FROM results ORDER BY run_id, split").fetchall()


# --- recording ----------------------------------------------------------------------------------------


def test_recording_a_run_twice_keeps_one_row_per_split_with_the_latest_values(tmp_path):
    db = tmp_path / "results.sqlite"
    first = summary()
    record_run(db, "num_rules=100.seed=0", first, "s", "p")
    record_run(db, "num_rules=100.seed=0", first, "s", "p")
    assert [r[:2] for r in rows(db)] == [
        ("num_rules=100.seed=0", "test_seen"),
        ("num_rules=100.seed=0", "test_unseen"),
    ]
    again = json.loads(json.dumps(first))
    again["accuracy"]["test_unseen"] = 0.5
    record_run(db, "num_rules=100.seed=0", again, "s", "p")
    assert dict((split, acc) for _, split, acc in rows(db))["test_unseen"] == 0.5
    assert len(rows(db)) == 2


def test_a_split_missing_from_a_newer_summary_is_removed(tmp_path):
    db = tmp_path / "results.sqlite"
    full = summary()
    record_run(db, "r", full, "s", "p")
    partial = json.loads(json.dumps(full))
    for key in ("accuracy", "ci95", "n", "breakdown"):
        del partial[key]["test_seen"]
    record_run(db, "r", partial, "s", "p")
    assert [r[1] for r in rows(db)] == ["test_unseen"]


def test_rows_hold_the_summary_values(tmp_path):
    db = tmp_path / "results.sqlite"
    s = summary(num_rules=300, seed=1, noop_frac=0.3)
    record_run(db, "run", s, "sweep-a", "e2-cpu")
    frame = load_results(db)
    unseen = frame[frame["split"] == "test_unseen"].iloc[0]
    assert unseen["accuracy"] == s["accuracy"]["test_unseen"]
    assert [unseen["ci_low"], unseen["ci_high"]] == s["ci95"]["test_unseen"]
    assert unseen["n"] == s["n"]["test_unseen"]
    assert json.loads(unseen["breakdown_json"]) == s["breakdown"]["test_unseen"]
    assert json.loads(unseen["config_json"]) == s["config"]
    assert (unseen["sweep"], unseen["preset"], unseen["seed"], unseen["num_rules"]) == (
        "sweep-a",
        "e2-cpu",
        1,
        300,
    )
    assert (unseen["steps"], unseen["tokens"], unseen["seconds"]) == (300, 300 * 4096, 12.5)
    assert unseen["code_version"] == "0.1.0+git.abc1234" and unseen["noop_frac"] == 0.3
    assert unseen["finished_at"] == s["finished_at"]


def test_a_summary_without_finished_at_is_stamped_when_recorded(tmp_path):
    s = summary()
    del s["finished_at"]
    record_run(tmp_path / "r.sqlite", "r", s, "s", "p")
    stamp = load_results(tmp_path / "r.sqlite")["finished_at"].iloc[0]
    assert stamp.endswith("+00:00") and stamp[:2] == "20"


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"accuracy": None}, "accuracy"),
        ({"accuracy": {}}, "no evaluated split"),
        ({"config": None}, "config"),
        ({"config": {"model": {}}}, "config.data"),
        ({"ci95": {"test_seen": [0.1], "test_unseen": [0.0, 0.1]}}, "ci95.test_seen"),
    ],
)
def test_a_damaged_summary_is_a_user_error_and_writes_nothing(tmp_path, broken, message):
    s = {**summary(), **broken}
    with pytest.raises(UserError, match=message):
        record_run(tmp_path / "r.sqlite", "run-x", s, "s", "p")
    assert not (tmp_path / "r.sqlite").exists() or rows(tmp_path / "r.sqlite") == []


RECORDS_PER_WORKER = 60  # ~1.5 ms each: long enough for the two writers to overlap


def _record_many(args: tuple[str, int]) -> int:
    db, worker = args
    for i in range(RECORDS_PER_WORKER):
        record_run(db, f"w{worker}.num_rules={i + 10}.seed=0", summary(num_rules=i + 10), "s", "p")
    return worker


def test_two_processes_writing_at_once_lose_nothing_and_keep_the_database_sound(tmp_path):
    db = str(tmp_path / "results.sqlite")
    with ProcessPoolExecutor(max_workers=2) as pool:
        assert sorted(pool.map(_record_many, [(db, 0), (db, 1)])) == [0, 1]
    with open_db(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT COUNT(*) FROM results").fetchone() == (2 * RECORDS_PER_WORKER * 2,)
        assert conn.execute("SELECT COUNT(DISTINCT run_id) FROM results").fetchone() == (
            2 * RECORDS_PER_WORKER,
        )


def test_open_db_as_a_context_manager_commits_and_closes(tmp_path):
    with open_db(tmp_path / "x.sqlite") as db:
        db.execute("SELECT 1")
    with pytest.raises(sqlite3.ProgrammingError):
        db.execute("SELECT 1")


def test_a_file_that_is_not_a_database_is_a_user_error(tmp_path):
    path = tmp_path / "results.sqlite"
    path.write_text("not sqlite at all, just some text that is long enough to be a header" * 10)
    with pytest.raises(UserError, match="not a usable results database"):
        load_results(path)


# --- derived columns ----------------------------------------------------------------------------------


def test_examples_per_rule_is_derived_from_the_budget_and_the_budget_from_s():
    from_budget = experiment_columns({"data": data_section(300, 0, budget=20000)})
    assert from_budget["examples_per_rule"] == pytest.approx(20000 / 300) and from_budget["budget"] == 20000
    from_s = experiment_columns({"data": data_section(300, 0, examples_per_rule=50)})
    assert (from_s["examples_per_rule"], from_s["budget"]) == (50.0, 15000)


def test_alpha_is_kept_only_for_power_law_frequencies():
    uniform = experiment_columns({"data": data_section(10, 0, alpha=0.1)})
    skewed = experiment_columns({"data": data_section(10, 0, rule_distribution="powerlaw", alpha=0.1)})
    assert uniform["alpha"] is None and uniform["rule_distribution"] == "uniform"
    assert skewed["alpha"] == 0.1 and skewed["rule_distribution"] == "powerlaw"


@pytest.mark.parametrize(
    ("family", "expected"),
    [
        ("random", "random"),
        ({"name": "random"}, "random"),
        ({"name": "repeated", "k": [3, 4], "block_len": [2, 4]}, "repeated[k=3-4]"),
        ({"name": "periodic", "k": 2}, "periodic[k=2]"),
        ({"name": "mirrored", "k": [5, 5]}, "mirrored[k=5]"),
        (
            {
                "name": "mixed",
                "components": [{"name": n, "weight": 1} for n in ("repeated", "periodic", "mirrored")],
            },
            "mixed(repeated,periodic,mirrored)",
        ),
        (
            {"name": "mixed", "components": [{"name": n, "k": [3, 60]} for n in ("repeated", "periodic")]},
            "mixed(repeated,periodic)[k=3-60]",
        ),
        (
            {
                "name": "mixed",
                "components": [{"name": "repeated", "k": [3, 4]}, {"name": "periodic", "k": 2}],
            },
            "mixed(repeated[k=3-4],periodic[k=2])",
        ),
    ],
)
def test_family_labels_are_short_and_distinguish_k_ranges(family, expected):
    assert family_label(family) == expected


@pytest.mark.parametrize(
    ("occurrences", "expected"),
    [
        (1, "1"),
        ([1, 5, 10, 15, 20], "1,5,10,15,20"),
        ({"counts": [1, 5], "weights": [1, 1]}, "1,5"),
        ({"counts": [1, 10], "weights": [3, 1]}, "1,10 (weights 3:1)"),
    ],
)
def test_occurrence_labels(occurrences, expected):
    assert occurrences_label(occurrences) == expected


# --- loading and exports ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    return make_sweep(tmp_path_factory.mktemp("store") / "e3", e3_points(), seeds=(0, 1), metrics=False)


def test_load_results_accepts_the_directory_the_database_and_a_csv_export(sweep, tmp_path):
    from_dir = load_results(sweep)
    export(sweep, "csv", tmp_path / "r.csv")
    pd.testing.assert_frame_equal(from_dir, load_results(sweep / "results.sqlite"))
    pd.testing.assert_frame_equal(from_dir, load_results(tmp_path / "r.csv"))
    assert list(from_dir.columns) == list(COLUMNS)
    assert len(from_dir) == 12 * 2 * 2


def test_the_csv_export_holds_exactly_the_database_rows(sweep, tmp_path):
    text = export(sweep, "csv")
    csv = pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""])
    with sqlite3.connect(sweep / "results.sqlite") as db:
        raw = db.execute(f"SELECT {', '.join(COLUMNS)} FROM results ORDER BY run_id, split").fetchall()
    exported = sorted(csv.itertuples(index=False, name=None), key=lambda r: (r[0], r[12]))
    assert len(exported) == len(raw)
    for got, want in zip(exported, raw, strict=True):
        for name, g, w in zip(COLUMNS, got, want, strict=True):
            if w is None:
                assert pd.isna(g), name
            elif isinstance(w, float):
                assert float(g) == w, name
            else:
                assert str(g) == str(w), name


def test_parquet_loads_back_with_pandas(sweep, tmp_path):
    out = tmp_path / "r.parquet"
    export(sweep, "parquet", out)
    back = pd.read_parquet(out)
    frame = load_results(sweep)
    assert list(back.columns) == list(frame.columns)
    pd.testing.assert_frame_equal(back.astype(object), frame.astype(object), check_dtype=False)


def test_parquet_without_pyarrow_names_the_extra(sweep, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` fail
    with pytest.raises(UserError, match=r"rewritelab\[parquet\]"):
        export(sweep, "parquet", tmp_path / "r.parquet")
    assert not (tmp_path / "r.parquet").exists()


def test_exports_sort_run_ids_with_numbers_in_numeric_order(tmp_path):
    db = make_sweep(tmp_path / "e1", e1_points(), seeds=(0,), metrics=False)
    order = list(dict.fromkeys(load_results(db)["run_id"]))
    assert [r.split(".")[0] for r in order] == [f"num_rules={i}" for i in (10, 30, 100, 300, 1000)]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.permutations(range(6)))
def test_exports_do_not_depend_on_the_order_runs_were_recorded(tmp_path, permutation):
    runs = [
        (f"num_rules={10 * (i + 1)}.seed={i % 2}", summary(num_rules=10 * (i + 1), seed=i % 2))
        for i in range(6)
    ]
    reference = tmp_path / "ref.sqlite"
    if not reference.exists():
        for run_id, s in runs:
            record_run(reference, run_id, s, "s", "p")
    shuffled = tmp_path / f"{'-'.join(map(str, permutation))}.sqlite"
    shuffled.unlink(missing_ok=True)
    for i in permutation:
        record_run(shuffled, runs[i][0], runs[i][1], "s", "p")
    for fmt in ("csv", "markdown", "parquet"):
        assert export(shuffled, fmt) == export(reference, fmt)


def test_markdown_export_is_a_readable_table(sweep):
    text = export(sweep, "markdown")
    lines = markdown_lines(text)
    assert lines[0].startswith("| run ") and "accuracy % [95% CI]" in lines[0]
    assert set(lines[1]) <= {"|", "-"}
    assert len(lines) == 2 + 12 * 2 * 2
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    frame = load_results(sweep)
    first = frame.iloc[0]
    pct = [f"{100 * first[c]:.1f}" for c in ("accuracy", "ci_low", "ci_high")]
    assert f"{pct[0]} [{pct[1]}, {pct[2]}]" in lines[2]  # percent for a person; the CSV keeps fractions
    assert "uniform" in text and "| 0.03 " in text


def test_markdown_headers_are_unique_and_s_has_one_precision(tmp_path):
    noops = make_sweep(
        tmp_path / "e2", [{"noop_frac": 0.3, "num_rules": i} for i in (3, 30, 300)], seeds=(0,)
    )
    lines = markdown_lines(export(noops, "markdown"))
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert len(set(header)) == len(header) and {"no-op share %", "no-op acc %", "applied acc %"} <= set(
        header
    )
    column = header.index("S")
    assert [line.strip("|").split("|")[column].strip() for line in lines[2::2]] == ["6666.7", "666.7", "66.7"]
    assert "| 30 " in lines[2]  # the no-op share in percent


def test_markdown_splits_accuracy_into_applied_and_noop_only_when_runs_have_noops(sweep, tmp_path):
    assert "applied" not in markdown_lines(export(sweep, "markdown"))[0]  # E1: no no-op examples
    noops = make_sweep(tmp_path / "e2", e2_points())
    lines = markdown_lines(export(noops, "markdown"))
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[-2:] == ["applied acc %", "no-op acc %"]
    frame = load_results(noops)
    for line, row in zip(lines[2:], frame.itertuples(index=False), strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        noop = json.loads(row.breakdown_json)["noop"]
        assert cells[-2] == f"{100 * noop['false']['accuracy']:.1f}"
        assert cells[-1] == (f"{100 * noop['true']['accuracy']:.1f}" if "true" in noop else "-")


def test_the_convergence_judgement_is_a_column_and_a_table_cell(tmp_path):
    """Recorded from the summary's `train.convergence`; a run recorded before it was judged reads `-`."""
    db = tmp_path / "results.sqlite"
    judged = summary(num_rules=10)
    judged["train"]["convergence"] = {"loss_drop": 0.004, "acc_delta": 0.01, "converged": True}
    falling = summary(num_rules=100)
    falling["train"]["convergence"] = {"loss_drop": 0.02, "acc_delta": None, "converged": False}
    for run_id, s in (("a", judged), ("b", falling), ("c", summary(num_rules=1000))):
        record_run(db, run_id, s, "s", "p")
    frame = load_results(db).drop_duplicates("run_id").set_index("run_id")
    assert frame.loc["a", ["loss_drop", "acc_delta", "converged"]].tolist() == [0.004, 0.01, 1]
    assert frame.loc["b", "converged"] == 0 and pd.isna(frame.loc["b", "acc_delta"])
    assert frame.loc["c", ["loss_drop", "acc_delta", "converged"]].isna().all()
    lines = markdown_lines(export(db, "markdown"))
    column = [c.strip() for c in lines[0].strip("|").split("|")].index("converged")
    cells = {line.split("|")[1].strip(): line.strip("|").split("|")[column].strip() for line in lines[2:]}
    assert cells == {"a": "yes", "b": "no", "c": "-"}


def test_the_distinct_pattern_count_comes_from_the_data_manifest(tmp_path):
    """A column and a table cell; a run recorded without a manifest reads `-`; a damaged count is refused."""
    db = tmp_path / "results.sqlite"
    manifest = {"disjointness": {"train_patterns": 97, "train_rules": 100}}
    record_run(db, "a", summary(num_rules=100), "s", "p", manifest)
    record_run(db, "b", summary(num_rules=300), "s", "p")
    frame = load_results(db).drop_duplicates("run_id").set_index("run_id")
    assert frame.loc["a", "train_patterns"] == 97 and pd.isna(frame.loc["b", "train_patterns"])
    lines = markdown_lines(export(db, "markdown"))
    column = [c.strip() for c in lines[0].strip("|").split("|")].index("patterns")
    cells = {line.split("|")[1].strip(): line.strip("|").split("|")[column].strip() for line in lines[2:]}
    assert cells == {"a": "97", "b": "-"}
    with pytest.raises(UserError, match="train_patterns: expected an integer"):
        record_run(db, "c", summary(), "s", "p", {"disjointness": {"train_patterns": "many"}})


# --- CLI ----------------------------------------------------------------------------------------------


def test_cli_prints_markdown_and_csv_and_writes_parquet(sweep, tmp_path, capsys):
    assert main(["results", str(sweep)]) == 0
    assert capsys.readouterr().out == export(sweep, "markdown")
    assert main(["results", str(sweep), "--format", "csv"]) == 0
    assert capsys.readouterr().out == export(sweep, "csv")
    out = tmp_path / "x.parquet"
    assert main(["results", str(sweep), "--format", "parquet", "--out", str(out)]) == 0
    assert len(pd.read_parquet(out)) == len(load_results(sweep))


def _one_line_error(capsys, argv: list[str], expected: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rewritelab: error:") and expected in err[0], err


def test_cli_bad_input_is_one_line_and_exit_2(sweep, tmp_path, capsys):
    _one_line_error(capsys, ["results", str(tmp_path / "missing")], "no such file or directory")
    (tmp_path / "empty").mkdir()
    _one_line_error(capsys, ["results", str(tmp_path / "empty")], "no results.sqlite")
    open_db(tmp_path / "empty" / "results.sqlite").close()
    _one_line_error(capsys, ["results", str(tmp_path / "empty")], "is empty")
    _one_line_error(capsys, ["results", str(sweep), "--format", "parquet"], "--out")
    with pytest.raises(SystemExit) as exit_info:
        main(["results", str(sweep), "--format", "xlsx"])
    assert exit_info.value.code == 2
    assert not list(tmp_path.glob("*.parquet"))


def test_reading_results_never_writes_the_file(tmp_path, capsys):
    """`results` / `report` on a file that is not a database leave it as it was (read-only open)."""
    text = tmp_path / "notes.txt"
    text.write_text("x")
    for command in (["results", str(text)], ["report", str(text), "--out", str(tmp_path / "r")]):
        assert main(command) == 2
        assert "not a" in capsys.readouterr().err
        assert text.read_text() == "x"
    assert not (tmp_path / "r").exists()


def test_a_knob_the_store_has_never_seen_gets_its_own_column_in_every_export(tmp_path, capsys):
    """A sweep over `train.weight_decay` (no column of the schema names it): its values come from the runs'
    configs as a column named by the path, after the experimental columns, in every format alike."""
    db = tmp_path / "wd" / "results.sqlite"
    for decay in (0.1, 0.0):
        for seed in (0, 1):
            s = summary(num_rules=100, seed=seed)
            s["config"]["train"]["weight_decay"] = decay
            record_run(db, f"weight_decay={decay}.seed={seed}", s, "wd", "p")
    frame = load_results(db)
    names = list(COLUMNS)
    at = names.index("answer") + 1
    assert list(frame.columns) == [*names[:at], "train.weight_decay", *names[at:]]
    assert frame["train.weight_decay"].tolist() == [0.0] * 4 + [0.1] * 4
    export(db, "csv", tmp_path / "r.csv")
    pd.testing.assert_frame_equal(load_results(tmp_path / "r.csv"), frame)
    export(db, "parquet", tmp_path / "r.parquet")
    assert pd.read_parquet(tmp_path / "r.parquet")["train.weight_decay"].tolist() == [0.0] * 4 + [0.1] * 4
    header, _, first, *_ = (" ".join(line.split()) for line in markdown_lines(export(db, "markdown")))
    assert "| occurrences | train.weight_decay | seed |" in header and "| 1 | 0 | 0 |" in first
    assert main(["results", str(db), "--format", "seeds"]) == 0
    seeds = capsys.readouterr().out
    assert "| train.weight_decay=0.1 | test_unseen | 0, 1 |" in seeds  # never averaged with 0.0


# --- superseding: a sweep and its longer re-runs read as one ------------------------------------------------


def longer_reruns(root: Path, num_rules: int) -> Path:
    """A second sweep that re-ran the condition I = `num_rules` (both seeds) for twice the steps, under
    run ids of its own (another preset names its runs otherwise)."""
    root.mkdir(parents=True)
    for seed in (0, 1):
        rerun = fake_summary(data_section(num_rules, seed), seed, steps=600)
        rerun["accuracy"]["test_unseen"] = 0.5
        record_run(root / "results.sqlite", f"long.num_rules={num_rules}.seed={seed}", rerun, "long", "fake")
    return root


def test_supersede_replaces_the_re_run_conditions_and_keeps_the_rest(tmp_path):
    base = make_sweep(tmp_path / "base", e1_points(), seeds=(0, 1), metrics=False)
    later = longer_reruns(tmp_path / "later", 100)
    record_run(later / "results.sqlite", "long.num_rules=7.seed=0", summary(num_rules=7), "long", "fake")
    frame = load_results(base, supersede=[later])
    unseen = frame[frame["split"] == "test_unseen"]
    assert len(unseen) == len(load_results(base)) // 2  # one row per condition and seed, as before
    replaced = unseen[unseen["num_rules"] == 100]
    assert sorted(replaced["run_id"]) == ["long.num_rules=100.seed=0", "long.num_rules=100.seed=1"]
    assert list(replaced["accuracy"]) == [0.5, 0.5] and list(replaced["steps"]) == [600, 600]
    assert set(unseen[unseen["num_rules"] != 100]["steps"]) == {300}
    assert 7 not in set(unseen["num_rules"])  # a condition the base never ran is not among its results
    assert "train.max_steps" in frame.columns  # each row says which budget it had


def test_supersede_through_the_cli_and_a_csv_gives_the_same_rows(tmp_path, capsys):
    base = make_sweep(tmp_path / "base", e1_points(), seeds=(0, 1), metrics=False)
    later = longer_reruns(tmp_path / "later", 1000)
    export(later, "csv", tmp_path / "later.csv")
    out = tmp_path / "final.csv"
    assert main(["results", str(base), "--supersede", str(tmp_path / "later.csv"), "--format", "csv",
                 "--out", str(out)]) == 0  # fmt: skip
    pd.testing.assert_frame_equal(load_results(out), load_results(base, supersede=[later]))


def test_one_run_id_naming_two_conditions_is_refused(tmp_path):
    base = make_sweep(tmp_path / "base", e1_points(), seeds=(0, 1), metrics=False)
    (tmp_path / "later").mkdir()
    run_id = "num_rules=10.budget=20000.seed=0"
    assert (base / "runs" / run_id).is_dir()
    rerun = fake_summary(data_section(30, 0, budget=20000), 0)  # I = 30 re-run under I = 10's run id
    record_run(tmp_path / "later" / "results.sqlite", run_id, rerun, "later", "fake")
    with pytest.raises(UserError, match=f"{run_id} is in .* with another condition"):
        load_results(base, supersede=[tmp_path / "later"])
