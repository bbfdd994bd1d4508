"""The report: which figures each kind of sweep gets, what they plot, the self-contained HTML, determinism,
CSV sources, the CLI, and a headless-Chromium rendering check when Chromium is installed."""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewritelab.cli import main
from rewritelab.errors import UserError
from rewritelab.report import (
    Context,
    aggregate,
    build_report,
    cell_point,
    figure_alpha,
    figure_heldout,
    figure_noop,
    figure_rules,
    held_out_kinds,
    load_runs,
    occurrence_tables,
    read_curves,
    run_folders,
    t_quantile,
    varying,
    wilson,
)
from rewritelab.store import export, load_results
from support import (
    HELD_OUT,
    RULES,
    e1_points,
    e2_points,
    e3_points,
    e4_points,
    e5_points,
    make_sweep,
)

CURVES = ("learning_curves", "loss_curves")  # drawn whenever the runs' metrics.jsonl are at hand
CASES = {
    "e1": (e1_points(), {"e1_rules", *CURVES}),
    "e2": (e2_points(), {"e1_rules", "e2_noop", *CURVES}),
    "e3": (e3_points(), {"e1_rules", "e3_alpha", *CURVES}),
    "e4": (e4_points(), {"e1_rules", "e4_family", "e4_heldout", *CURVES}),
    "e5": (e5_points(), {"e1_rules", "e5_occurrences", *CURVES}),
}


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sweeps")
    return {
        name: make_sweep(root / name, points, seeds=(0, 1), name=name) for name, (points, _) in CASES.items()
    }


@pytest.fixture(scope="module")
def reports(sweeps) -> dict[str, Path]:
    return {name: build_report(path) for name, path in sweeps.items()}


def context(source: Path, with_curves: bool = False) -> Context:
    runs, scale_name = load_runs(load_results(source))
    return Context(
        runs, varying(runs), scale_name, read_curves(run_folders(source), runs) if with_curves else {}
    )


def figures_in(report_dir: Path) -> set[str]:
    pngs = {p.stem for p in report_dir.glob("*.png")}
    assert pngs == {p.stem for p in report_dir.glob("*.svg")}
    return pngs


# --- which figures ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_sweep_gets_the_figures_of_what_it_varies(reports, name):
    report = reports[name]
    assert report.name == "report.html" and report.parent.name == "report"
    assert figures_in(report.parent) == CASES[name][1]
    for stem in CASES[name][1]:
        assert (report.parent / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (report.parent / f"{stem}.svg").read_text().lstrip().startswith("<?xml")


def test_a_sweep_that_varies_nothing_gets_learning_curves_and_the_table(tmp_path):
    sweep = make_sweep(tmp_path / "one", [{"num_rules": 100}], seeds=(0,))
    report = build_report(sweep)
    assert figures_in(report.parent) == set(CURVES)
    assert "num_rules=100.seed=0" in report.read_text()


# --- what the figures plot ----------------------------------------------------------------------------


def test_e1_plots_the_seed_mean_of_unseen_and_seen_accuracy_at_each_number_of_rules(sweeps):
    ctx = context(sweeps["e1"])
    fig, _ = figure_rules(ctx)
    unseen_ax, seen_ax = fig.axes[:2]
    assert unseen_ax.get_xscale() == "log"
    frame = load_results(sweeps["e1"])
    for ax, split in ((unseen_ax, "test_unseen"), (seen_ax, "test_seen")):
        (line,) = ax.get_lines()
        means = frame[frame["split"] == split].groupby("num_rules")["accuracy"].mean()
        assert list(line.get_xdata()) == RULES
        np.testing.assert_allclose(line.get_ydata(), means.loc[RULES].to_numpy())


def test_e1_draws_one_line_per_examples_per_rule_when_s_is_swept(tmp_path):
    points = [{"num_rules": i, "examples_per_rule": s} for s in (10, 100) for i in (10, 100, 1000)]
    ctx = context(make_sweep(tmp_path / "s", points, seeds=(0,), metrics=False))
    assert ctx.scale_name == "S" and "scale" in ctx.varying
    fig, _ = figure_rules(ctx)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["S = 10", "S = 100"]
    assert all(len(line.get_xdata()) == 3 for line in fig.axes[0].get_lines())


def test_a_fixed_budget_sweep_is_labelled_by_its_budget_not_by_s(sweeps):
    ctx = context(sweeps["e1"])
    assert ctx.scale_name == "budget" and "scale" not in ctx.varying


def test_single_seed_bands_are_the_runs_bootstrap_ci(tmp_path):
    ctx = context(make_sweep(tmp_path / "s", e1_points(), seeds=(3,), metrics=False))
    fig, caption = figure_rules(ctx)
    band = fig.axes[0].collections[0].get_paths()[0].vertices
    frame = load_results(tmp_path / "s")
    lows = frame[frame["split"] == "test_unseen"].sort_values("num_rules")["ci_low"].to_numpy()
    assert any(np.isclose(band[:, 1], low).any() for low in lows)
    assert "bootstrap" in caption


def test_e3_puts_uniform_to_the_right_of_every_alpha_with_one_line_per_number_of_rules(sweeps):
    ctx = context(sweeps["e3"])
    fig, _ = figure_alpha(ctx)
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines() if line.get_label() in ("I = 300", "I = 3000")]
    assert [line.get_label() for line in lines] == ["I = 300", "I = 3000"]
    alphas = list(lines[0].get_xdata())
    assert alphas == [0.03, 0.1, 0.2, 0.5, 1.0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[-1] == "uniform" and ax.get_xticks()[-1] > max(alphas)
    # the fabricated law: heavy skew (alpha < 0.2) hurts 300 rules, not 3000
    few = dict(zip(alphas, lines[0].get_ydata(), strict=True))
    assert few[0.03] < few[1.0] - 0.2


def test_e2_plots_no_op_and_applied_cells_per_no_op_share(sweeps):
    ctx = context(sweeps["e2"])
    fig, _ = figure_noop(ctx)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["training no-op 0%", "training no-op 30%"]
    with_noops = fig.axes[1]
    by_label = {line.get_label(): line for line in with_noops.get_lines()}
    noop = by_label["no-op inputs"]
    assert noop.get_linestyle() == "--"
    np.testing.assert_allclose(noop.get_ydata(), 0.97)  # the fabricated no-op cell
    frame = load_results(sweeps["e2"])
    rows = frame[
        (frame["split"] == "test_unseen") & (frame["noop_frac"] == 0.3) & (frame["num_rules"] == 1000)
    ]
    applied = [json.loads(b)["noop"]["false"]["accuracy"] for b in rows["breakdown_json"]]
    assert by_label["applied (pattern present)"].get_ydata()[-1] == pytest.approx(np.mean(applied))


def test_e4_reads_each_held_out_kind_apart_with_a_line_per_training_family(sweeps):
    ctx = context(sweeps["e4"])
    assert held_out_kinds(ctx.runs) == ["random", "repeated", "periodic", "mirrored"]
    fig, _ = figure_heldout(ctx)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    titles = [ax.get_title() for ax in panels]
    assert titles == ["unconstrained rules (k = 1)", *(f"{k} rules (k = 2)" for k in HELD_OUT[1:])]
    frame = load_results(sweeps["e4"])
    unseen = frame[(frame["split"] == "test_unseen") & (frame["num_rules"] == 1000)]
    for panel, kind in zip(panels, HELD_OUT, strict=True):
        lines = {line.get_label(): line for line in panel.get_lines()}
        assert len(lines) == 4  # the three families and their mixture
        for name, line in lines.items():
            rows = unseen[unseen["family"].str.startswith(name.split("[")[0].split("(")[0])]
            cells = [json.loads(b)["family"][kind]["accuracy"] for b in rows["breakdown_json"]]
            assert line.get_ydata()[-1] == pytest.approx(np.mean(cells))
    by_family = {line.get_label().split("[")[0]: line.get_ydata()[-1] for line in panels[1].get_lines()}
    assert by_family["repeated"] > by_family["periodic"]  # the fabricated law: a family reaches its own kind


def test_e4_without_held_out_breakdowns_draws_no_held_out_figure(tmp_path):
    points = [{k: v for k, v in p.items() if k != "test_family"} for p in e4_points()]
    assert figure_heldout(context(make_sweep(tmp_path / "e4", points))) is None


def test_e5_table_has_training_occurrences_by_number_of_rules(sweeps, reports):
    ctx = context(sweeps["e5"])
    ((_, row_keys, col_keys, values),) = occurrence_tables(ctx)
    assert row_keys == ["1", "2", "4", "1,2,3,4"] and col_keys == [30, 100, 300, 1000]
    frame = load_results(sweeps["e5"])
    mixed = frame[
        (frame["occurrences"] == "1,2,3,4") & (frame["num_rules"] == 1000) & (frame["split"] == "test_unseen")
    ]
    assert values[3][3] == pytest.approx(mixed["accuracy"].mean())
    page = reports["e5"].read_text()
    assert "training occurrences \\ I" in page and f"<td>{values[3][3]:.2f}</td>" in page


def test_learning_curves_come_from_metrics_eval_lines_and_skip_damaged_lines(tmp_path):
    sweep = make_sweep(tmp_path / "lc", e1_points(), seeds=(0,))
    path = next((sweep / "runs").iterdir()) / "metrics.jsonl"
    path.write_text(path.read_text() + '{"kind": "eval", "step": 9')  # a run killed mid-write
    curves = read_curves(run_folders(sweep), load_runs(load_results(sweep))[0])
    assert len(curves) == len(RULES)
    assert all(len(lines) == 5 and lines[-1]["step"] == 300 for lines in curves.values())


def test_learning_curves_average_the_seeds_of_a_condition_at_the_steps_they_share(tmp_path):
    from rewritelab.report.curves import figure_learning_curves, seed_curve

    sweep = make_sweep(tmp_path / "lc", e1_points(), seeds=(0, 1, 2))
    ctx = context(sweep, with_curves=True)
    members = [r for r in ctx.runs if r.cond["num_rules"] == 300]
    extra = next(r for r in members if r.seed == 2)
    ctx.curves[extra.run_id] = ctx.curves[extra.run_id][1:]  # this seed missed the first evaluation
    xs, means, lows, highs = seed_curve(members, ctx.curves, "test_unseen")
    assert xs == [e["step"] for e in ctx.curves[extra.run_id]]
    for step, mean, low, high in zip(xs, means, lows, highs, strict=True):
        values = [
            next(e for e in ctx.curves[r.run_id] if e["step"] == step)["accuracy"]["test_unseen"]
            for r in members
        ]
        assert mean == pytest.approx(sum(values) / 3) and low <= mean <= high
    fig, caption = figure_learning_curves(ctx)
    assert "mean over seeds (up to 3)" in caption
    assert len(fig.axes[1].lines) == len(RULES)  # one line per I, not per run


def test_runs_that_differ_only_outside_the_known_conditions_stay_apart(tmp_path):
    sweep = make_sweep(tmp_path / "v", e1_points(), seeds=(0,), metrics=False)
    other = make_sweep(tmp_path / "w", e1_points(), seeds=(0,), metrics=False)
    from rewritelab.store import record_run

    for run_dir in (other / "runs").iterdir():
        summary = json.loads((run_dir / "summary.json").read_text())
        summary["config"]["train"]["lr"] = 0.01
        summary["accuracy"]["test_unseen"] = 0.0
        record_run(sweep / "results.sqlite", "lr=0.01." + run_dir.name, summary, "v", "fake")
    ctx = context(sweep)
    assert ctx.varying == ["num_rules", "variant"]
    fig, _ = figure_rules(ctx)
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["train.lr=0.001", "train.lr=0.01"]
    assert list(lines[1].get_ydata()) == [0.0] * len(RULES)


def test_a_training_length_set_per_condition_splits_no_line(tmp_path):
    """Results composed from a sweep and its re-runs at twice the steps (the convergence rule): one I
    trained longer is still a point of the one line, and no run is labelled as a variant."""
    sweep = make_sweep(tmp_path / "v", e1_points(), seeds=(0, 1), metrics=False)
    from rewritelab.store import record_run

    longer = [d for d in (sweep / "runs").iterdir() if f"num_rules={RULES[-1]}." in d.name]
    assert len(longer) == 2
    for run_dir in longer:
        summary = json.loads((run_dir / "summary.json").read_text())
        summary["config"]["train"]["max_steps"] *= 2
        record_run(sweep / "results.sqlite", run_dir.name, summary, "v", "fake")
    ctx = context(sweep)
    assert ctx.varying == ["num_rules"]
    assert {r.cond["variant"] for r in ctx.runs} == {None}
    lines = figure_rules(ctx)[0].axes[0].get_lines()
    assert len(lines) == 1 and list(lines[0].get_xdata()) == RULES


# --- statistics ---------------------------------------------------------------------------------------


def test_t_quantiles():
    assert t_quantile(1) == 12.706 and t_quantile(30) == 2.042
    assert t_quantile(31) == pytest.approx(2.0395, abs=1e-3)
    assert t_quantile(120) == pytest.approx(1.9799, abs=1e-3)


def test_aggregate_uses_student_t_across_seeds_and_the_run_ci_for_one_seed():
    mean, low, high = aggregate([(0.4, 0.0, 1.0), (0.6, 0.0, 1.0)])
    half = 12.706 * math.sqrt(0.02) / math.sqrt(2)
    assert mean == pytest.approx(0.5) and (low, high) == (0.0, 1.0) and half > 0.5
    mean, low, high = aggregate([(0.50, 0, 1), (0.52, 0, 1), (0.54, 0, 1)])
    assert (low, high) == pytest.approx(
        (0.52 - 4.303 * 0.02 / math.sqrt(3), 0.52 + 4.303 * 0.02 / math.sqrt(3))
    )
    assert aggregate([(0.3, 0.25, 0.36)]) == (0.3, 0.25, 0.36)


@given(st.lists(st.floats(0, 1), min_size=1, max_size=8))
def test_aggregate_band_contains_the_mean_and_stays_in_0_1(values):
    mean, low, high = aggregate([(v, max(0.0, v - 0.05), min(1.0, v + 0.05)) for v in values])
    assert 0.0 <= low <= mean + 1e-12 and mean - 1e-12 <= high <= 1.0
    assert min(values) - 1e-12 <= mean <= max(values) + 1e-12


def test_a_breakdown_cell_uses_its_own_ci_and_falls_back_to_wilson():
    assert cell_point({"n": 40, "accuracy": 0.5, "ci95": [0.35, 0.65]}) == (0.5, 0.35, 0.65)
    accuracy, low, high = cell_point({"n": 40, "accuracy": 0.5})
    assert accuracy == 0.5 and (low, high) == pytest.approx((0.352, 0.648), abs=1e-3)


@given(st.integers(1, 10_000), st.floats(0, 1))
def test_wilson_interval_contains_the_proportion(n, p):
    low, high = wilson(p, n)
    assert 0.0 <= low <= p + 1e-9 and p - 1e-9 <= high <= 1.0


# --- the HTML page ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_html_is_self_contained_with_every_figure_and_the_results_table(reports, sweeps, name):
    report = reports[name]
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    text = re.sub(r'src="data:image/png;base64,[^"]*"', "", page)  # base64 may spell "http" by chance
    assert "http" not in text.lower()  # no external URL of any kind
    assert "<script" not in page and "<link" not in page
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    embedded = {base64.b64decode(s.split(",", 1)[1]) for s in sources}
    assert embedded == {(report.parent / f"{stem}.png").read_bytes() for stem in CASES[name][1]}
    for run_id in set(load_results(sweeps[name])["run_id"]):
        assert f'<td class="text">{run_id}</td>' in page
    assert "<style>" in page and "0.1.0+git.abc1234" in page and f"fabricated sweep {name}" in page


def test_the_same_results_give_the_same_bytes(sweeps, reports, tmp_path):
    again = build_report(sweeps["e3"], tmp_path / "again")
    first = reports["e3"].parent
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in again.parent.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (again.parent / name).read_bytes(), name


def test_a_csv_export_gives_the_same_figures_without_learning_curves(sweeps, reports, tmp_path):
    csv = tmp_path / "e4.csv"
    export(sweeps["e4"], "csv", csv)
    report = build_report(csv)
    assert report.parent == tmp_path / "e4-report"
    assert figures_in(report.parent) == CASES["e4"][1] - set(CURVES)
    for stem in ("e1_rules", "e4_family", "e4_heldout"):
        assert (report.parent / f"{stem}.svg").read_bytes() == (
            reports["e4"].parent / f"{stem}.svg"
        ).read_bytes()


def test_a_csv_published_with_its_runs_metrics_regenerates_every_figure(sweeps, reports, tmp_path):
    published = tmp_path / "published"
    export(sweeps["e4"], "csv", published / "results.csv")
    for metrics in (sweeps["e4"] / "runs").glob("*/metrics.jsonl"):
        target = published / "runs" / metrics.parent.name / "metrics.jsonl"
        target.parent.mkdir(parents=True)
        target.write_bytes(metrics.read_bytes())
    report = build_report(published / "results.csv", tmp_path / "figures")
    assert figures_in(report.parent) == CASES["e4"][1]
    curves = "learning_curves.svg"
    assert (report.parent / curves).read_bytes() == (reports["e4"].parent / curves).read_bytes()


def test_a_failed_build_leaves_the_previous_report_untouched(sweeps, reports, monkeypatch):
    import rewritelab.report.html as report_module

    before = {p.name: p.read_bytes() for p in reports["e1"].parent.iterdir()}

    def broken(ctx):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(report_module, "FIGURES", (("e1_rules", "E1", broken),))
    with pytest.raises(RuntimeError):
        build_report(sweeps["e1"])
    assert {p.name: p.read_bytes() for p in reports["e1"].parent.iterdir()} == before
    assert not [p for p in sweeps["e1"].iterdir() if p.name.startswith(".report")]


def test_refuses_to_replace_a_directory_that_is_not_a_report(sweeps, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="not a report directory"):
        build_report(sweeps["e1"], tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "mine"


# --- CLI ----------------------------------------------------------------------------------------------


def test_cli_prints_the_report_path(sweeps, tmp_path, capsys):
    assert main(["report", str(sweeps["e1"]), "--out", str(tmp_path / "r")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "r" / "report.html")
    assert (tmp_path / "r" / "e1_rules.png").exists()


def test_cli_without_results_is_one_line_and_exit_2(tmp_path, capsys):
    from rewritelab.store import open_db

    (tmp_path / "sweep").mkdir()
    open_db(tmp_path / "sweep" / "results.sqlite").close()
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    for source, expected in (
        (tmp_path / "sweep", "no results yet"),
        (tmp_path / "missing", "no such file"),
        (tmp_path / "bad.csv", "not a results CSV"),
    ):
        assert main(["report", str(source)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "sweep" / "report").exists() and not (tmp_path / "bad-report").exists()


# --- rendering in a browser ---------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
def test_report_renders_in_headless_chromium(reports, tmp_path):
    from matplotlib.image import imread

    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,2000",
            reports["e5"].resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1200)
    non_white = (pixels < 0.95).any(axis=-1).mean()
    colours = len(np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0))
    assert non_white > 0.05 and colours > 50, (non_white, colours)
