"""textfmt: durations, fixed-width tables and progress lines (log mode, with a fake clock)."""

from __future__ import annotations

from rewritelab.textfmt import Progress, format_duration, format_table, plural, progress_mode


def test_format_duration_rounds_and_switches_to_hours():
    assert format_duration(0) == "0m00s"
    assert format_duration(59.6) == "1m00s"
    assert format_duration(3725) == "1h02m"
    assert format_duration(-3) == "0m00s"


def test_format_table_aligns_columns_and_rules_the_header():
    table = format_table(["run", "acc"], [["a", "0.5"], ["long-run", "1.0"]], left=[0])
    assert table.splitlines() == ["run       acc", "--------  ---", "a         0.5", "long-run  1.0"]
    assert format_table(["x", "y"], [["1", "22"]], rule=False).splitlines() == ["x  y", "1  22"]


def test_progress_mode_resolves_requests():
    assert progress_mode(None, "log") == "log"
    assert progress_mode(True, "none") == "auto" and progress_mode(False, "bar") == "none"


def test_log_lines_come_at_the_interval_with_an_eta(capsys):
    now = [0.0]
    bar = Progress(10, desc="step", mode="log", every_s=10.0, clock=lambda: now[0])
    for _ in range(4):
        now[0] += 5.0
        bar.update(1, "loss 1.0")
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "step 2/10 (20%) loss 1.0 elapsed 0m10s eta 0m40s",
        "step 4/10 (40%) loss 1.0 elapsed 0m20s eta 0m30s",
    ]
    bar.extend(5)  # more work turned up: the total grows
    now[0] += 1.0
    bar.tick("running", force=True, partial=0.5)
    bar.close()  # nothing new since the last line: no closing line
    assert capsys.readouterr().err.splitlines() == ["step 4/15 (27%) running elapsed 0m21s eta 0m49s"]


def test_none_mode_prints_nothing(capsys):
    bar = Progress(3, desc="x", mode="none")
    bar.update(3, "done")
    bar.message("hello")
    bar.close()
    assert capsys.readouterr().err == ""


def test_counts_read_in_the_singular_for_one():
    assert [plural(n, "run") for n in (0, 1, 2)] == ["0 runs", "1 run", "2 runs"]
    assert (
        plural(1, "worker process") == "1 worker process"
        and plural(4, "worker process") == "4 worker processes"
    )
