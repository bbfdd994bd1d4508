"""A report that reads on its own: the resolved configuration, the loss curves, the headline with its
uncertainty and cautions, what "converged" means, the breakdowns, example errors and how the runs
executed, a figure against any varied config field, and legible colours (issue 26, items 1-7). Every
check reads report.html back (`support.Page`) or the figure a report would embed."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from rewritelab.report import Context, build_report, load_runs, read_curves, run_folders, varying
from rewritelab.report.curves import figure_learning_curves, figure_loss_curves
from rewritelab.report.factors import figure_factors, varied_factors
from rewritelab.report.headline import headline
from rewritelab.report.runs import CONDITIONS, Run, aggregate
from rewritelab.report.sections import why_not_converged
from rewritelab.report.style import MIN_CONTRAST, contrast
from rewritelab.store import load_results, record_run
from rewritelab.textfmt import format_duration
from support import (
    RULES,
    Page,
    data_section,
    e1_points,
    e2_points,
    e3_points,
    e4_points,
    fake_summary,
    make_sweep,
)


def page_of(report: Path) -> Page:
    return Page(report.read_text(encoding="utf-8"))


def context(source: Path) -> Context:
    runs, scale_name = load_runs(load_results(source))
    return Context(
        runs,
        varying(runs),
        scale_name,
        read_curves(run_folders(source), runs),
        read_curves(run_folders(source), runs, kind="train"),
    )


def knob_sweep(root: Path, path: tuple[str, str], values, seeds=(0, 1), rules=(100,)) -> Path:
    """A sweep over one config field no experiment figure knows (e.g. train.weight_decay): accuracy
    falls with the value's rank, so the figure's lines can be checked."""
    root.mkdir(parents=True)
    (root / "sweep.yaml").write_text("preset: knob\ndescription: a researcher's own knob\n")
    for seed in seeds:
        for rank, x in enumerate(values):
            for num_rules in rules:
                summary = fake_summary(data_section(num_rules, seed), seed)
                summary["config"][path[0]][path[1]] = x
                summary["accuracy"]["test_unseen"] = 0.9 - 0.2 * rank + 0.01 * seed
                run_id = f"{path[1]}={x}.num_rules={num_rules}.seed={seed}"
                run_dir = root / "runs" / run_id
                run_dir.mkdir(parents=True)
                (run_dir / "summary.json").write_text(json.dumps(summary))
                lines = [{"kind": "train", "step": s, "loss": 2.0 / s} for s in (10, 20, 40)]
                (run_dir / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
                record_run(root / "results.sqlite", run_id, summary, root.name, "knob")
    return root


@pytest.fixture(scope="module")
def e1(tmp_path_factory) -> Path:
    return make_sweep(tmp_path_factory.mktemp("e1") / "e1", e1_points(), seeds=(0, 1), name="e1")


@pytest.fixture(scope="module")
def e1_page(e1) -> Page:
    return page_of(build_report(e1))


# --- 1. the resolved configuration --------------------------------------------------------------------


def test_the_config_tables_show_every_section_and_mark_what_differs_between_runs(e1_page):
    data, model, train = (e1_page.table("trained", i) for i in range(3))
    assert [row[1][0] for row in (data[0], model[0], train[0])] == ["data", "model", "train"]
    cells = {row[1][0]: (row[0], row[1][1]) for table in (data, model, train) for row in table[1:]}
    assert cells["num_rules ◆"] == ("varied", "varies between runs: 10, 30, 100, 300, 1000")
    assert cells["seed"] == ("", "the run's seed: 0, 1")  # the replicate, not a factor
    assert cells["budget"] == ("", "20000") and cells["alphabet"] == ("", "abcdef")
    assert cells["n_layer"] == ("", "2") and cells["lr"] == ("", "0.001")
    assert [name for name, (cls, _) in cells.items() if cls == "varied"] == ["num_rules ◆"]
    assert "string-rewrite rules" in e1_page.text("trained") and "test_unseen" in e1_page.text("trained")


def test_the_description_of_a_published_csv_comes_from_the_sweep_yaml_beside_it(e1, tmp_path):
    from rewritelab.store import export

    published = tmp_path / "published"
    export(e1, "csv", published / "results.csv")
    (published / "runs").mkdir()
    (published / "sweep.yaml").write_bytes((e1 / "sweep.yaml").read_bytes())
    assert "fabricated sweep e1" in page_of(build_report(published / "results.csv")).text("")


# --- 2. training loss ---------------------------------------------------------------------------------


def test_the_loss_figure_plots_the_seed_mean_of_the_logged_training_loss(e1, e1_page):
    ctx = context(e1)
    fig, caption = figure_loss_curves(ctx)
    (ax,) = [a for a in fig.axes if a.get_ylabel()]
    assert ax.get_yscale() == "log" and len(ax.lines) == len(RULES)
    members = [r for r in ctx.runs if r.cond["num_rules"] == 10]
    expected = [
        sum(e["loss"] for e in lines) / 2
        for lines in zip(*(ctx.losses[r.run_id] for r in members), strict=True)
    ]
    assert list(ax.lines[0].get_ydata()) == pytest.approx(expected)
    assert "mean over seeds" in caption
    assert e1_page.sections["loss_curves"]["images"] == ["Training loss"]


# --- 3. the headline ----------------------------------------------------------------------------------


def run(num_rules: int, seed: int, unseen: float, ci: float = 0.01, converged: bool | None = True) -> Run:
    cond = dict.fromkeys(CONDITIONS) | {"num_rules": num_rules}
    r = Run(f"num_rules={num_rules}.seed={seed}", seed, cond, converged=converged)
    r.accuracy = {
        "test_unseen": (unseen, max(0.0, unseen - ci), min(1.0, unseen + ci)),
        "test_seen": (1, 1, 1),
    }
    return r


def ctx_of(runs: list[Run]) -> Context:
    return Context(runs, varying(runs), "S", {})


def test_the_headline_states_the_contrast_with_intervals_across_seeds():
    runs = [run(i, s, a + 0.02 * s) for i, a in ((10, 0.1), (100, 0.5), (1000, 0.9)) for s in (0, 1, 2)]
    sentences = headline(ctx_of(runs))
    few = aggregate([r.accuracy["test_unseen"] for r in runs if r.cond["num_rules"] == 10])
    many = aggregate([r.accuracy["test_unseen"] for r in runs if r.cond["num_rules"] == 1000])
    shown = [f"{100 * x:.1f}" for x in (*few, *many)]
    assert sentences[0] == (
        f"Unseen-rule accuracy rises from {shown[0]}% [{shown[1]}, {shown[2]}] at I = 10 to "
        f"{shown[3]}% [{shown[4]}, {shown[5]}] at I = 1000."
    )
    assert "mean over 3 seeds" in sentences[1] and "Student t" in sentences[1] and len(sentences) == 2


def test_the_headline_cautions_on_overlap_a_better_middle_and_unconverged_runs():
    # the case: 100 steps, 0.1 % -> 0.7 % with overlapping intervals, I = 1000 above both
    runs = [run(100, 0, 0.001, ci=0.01, converged=False), run(1000, 0, 0.03, ci=0.01, converged=False),
            run(10000, 0, 0.007, ci=0.01, converged=False)]  # fmt: skip
    text = " ".join(headline(ctx_of(runs)))
    assert "rises from 0.1% [0.0, 1.1] at I = 100 to 0.7% [0.0, 1.7] at I = 10000." in text
    assert "highest in between, at I = 1000: 3.0% [2.0, 4.0]." in text
    assert "The intervals at I = 100 and I = 10000 overlap" in text
    assert "3 of 3 runs did not converge" in text
    assert "One seed per condition: brackets are the run's 95% bootstrap interval" in text


def test_the_headline_of_a_categorical_factor_names_the_best_and_the_worst(tmp_path):
    families = [p for p in e4_points() if p["num_rules"] == 1000]
    ctx = context(make_sweep(tmp_path / "e4", families, seeds=(0, 1)))
    best = max(ctx.runs, key=lambda r: r.accuracy["test_unseen"][0]).cond["family"]
    sentences = headline(ctx)
    assert sentences[0].startswith(f"Unseen-rule accuracy is highest with {best}: ")
    assert ", and lowest with " in sentences[0] and best.startswith("mixed")


def test_the_report_opens_with_the_headline(e1_page):
    found = e1_page.sections["found"]["paragraphs"]
    assert (
        found[0].startswith("Unseen-rule accuracy rises from")
        and "at I = 1000, at the same budget" in found[0]
    )
    assert any("Convergence was not judged for 10 of 10 runs" in p for p in found)


# --- 4. convergence -----------------------------------------------------------------------------------


def test_each_unconverged_run_says_which_measure_failed_and_by_how_much(tmp_path):
    sweep = make_sweep(tmp_path / "c", [{"num_rules": 10}, {"num_rules": 100}], seeds=(0,))
    verdicts = {
        "num_rules=10.seed=0": {"loss_drop": 0.034, "acc_delta": 0.031, "converged": False},
        "num_rules=100.seed=0": {"loss_drop": 0.001, "acc_delta": 0.0, "converged": True},
    }
    for run_id, verdict in verdicts.items():
        summary = json.loads((sweep / "runs" / run_id / "summary.json").read_text())
        summary["train"]["convergence"] = verdict
        record_run(sweep / "results.sqlite", run_id, summary, "c", "fake")
    page = page_of(build_report(sweep))
    text = page.text("convergence")
    assert (
        "last 20% of steps" in text and "0.01 nats per answer token" in text and "2 percentage points" in text
    )
    assert "1 of 2 runs converged" in text
    (header, row) = page.table("convergence")
    assert header[1] == ["run", "steps", "why not converged"]
    assert row[1] == [
        "num_rules=10.seed=0",
        "300",
        "the loss still fell by 0.034 nats per token over the last 20% of steps (limit 0.01); "
        "an accuracy moved 3.1 points between the last two evaluations (limit 2)",
    ]
    unjudged = run(10, 0, 0.5, converged=None)
    assert why_not_converged(unjudged).startswith("not judged")


# --- 5. breakdowns, example errors, how it ran ---------------------------------------------------------


def test_breakdowns_already_computed_become_tables(tmp_path):
    page = page_of(build_report(make_sweep(tmp_path / "e2", e2_points(), seeds=(0, 1))))
    assert page.sections["breakdowns"]["tables"]
    header, *rows = page.table("breakdowns")
    assert header[1] == ["condition", "split", "applied", "no-op"]
    noop = next(cells for _, cells in rows if cells[:2] == ["I = 10, no-op 30%", "test_unseen"])
    assert noop[3] == "97.0% (120)" and noop[2].endswith("% (280)")


def test_a_sweep_without_breakdown_cells_says_so(e1_page):
    assert "nothing to break down" in e1_page.text("breakdowns")


def test_example_errors_come_from_the_predictions_of_each_conditions_first_seed(tmp_path):
    sweep = make_sweep(tmp_path / "x", [{"num_rules": 10}, {"num_rules": 100}], seeds=(0, 1))
    for run_dir in (sweep / "runs").iterdir():
        rows = [
            {"pattern": "ab", "replacement": "c", "input": f"xab{i}", "output": f"xc{i}",
             "prediction": f"{run_dir.name}/{i}", "correct": i % 2 == 1}
            for i in range(6)
        ]  # fmt: skip
        (run_dir / "predictions").mkdir()
        (run_dir / "predictions" / "test_unseen.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows)
        )
    page = page_of(build_report(sweep))
    header, *rows = page.table("errors")
    assert header[1] == ["condition", "pattern", "replacement", "input", "output", "prediction"]
    assert [r[1][5] for r in rows] == [
        "num_rules=10.seed=0/0", "num_rules=10.seed=0/2", "num_rules=100.seed=0/0", "num_rules=100.seed=0/2"
    ]  # fmt: skip
    assert rows[0][1][:4] == ["I = 10", "ab", "c", "xab0"]


def test_how_it_ran_gives_machine_precision_threads_and_run_times(tmp_path):
    sweep = make_sweep(tmp_path / "m", [{"num_rules": 10}, {"num_rules": 100}], seeds=(0,))
    path = sweep / "runs" / "num_rules=10.seed=0" / "summary.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "machine": "Test CPU, 2 cores, torch 9"}))
    rows = dict(cells for _, cells in page_of(build_report(sweep)).table("execution"))
    assert (
        rows["machine (as recorded by the runs)"]
        == "Test CPU, 2 cores, torch 9 (not recorded for 1 of 2 runs)"
    )
    assert rows["training time of all runs together"] == format_duration(2 * 12.5)
    assert rows["training steps per run"] == "300" and rows["code versions"] == "0.1.0+git.abc1234"
    assert rows["throughput per run (tokens / s)"] == f"{300 * 4096 / 12.5:,.0f}"
    assert {"device (train.device)", "precision (train.dtype)"} <= set(rows)


# --- 6. a figure against any varied factor --------------------------------------------------------------


def test_a_sweep_over_a_researchers_own_knob_gets_its_figure(tmp_path):
    sweep = knob_sweep(tmp_path / "wd", ("train", "weight_decay"), [0.0, 0.01, 0.1])
    ctx = context(sweep)
    assert varied_factors(ctx.runs) == ["train.weight_decay"]
    fig, caption = figure_factors(ctx)
    unseen = fig.axes[0]
    assert [t.get_text() for t in unseen.get_xticklabels()] == ["0", "0.01", "0.1"]  # even steps: 0 is there
    assert unseen.get_xlabel() == "train.weight_decay"
    (line,) = unseen.lines
    assert list(line.get_ydata()) == pytest.approx([0.905, 0.705, 0.505])  # seed means, in value order
    assert "train.weight_decay" in caption
    page = page_of(build_report(sweep))
    assert page.sections["factors"]["images"] == ["Other settings this sweep varies"]
    assert "train.weight_decay" in page.table("found")[-1][1][1]  # the header's "varied" row


def test_factors_are_read_from_the_configs_and_those_that_advance_together_share_a_row(tmp_path):
    sweep = knob_sweep(tmp_path / "lr", ("train", "lr"), [1e-4, 1e-3, 1e-2], seeds=(0,), rules=(10, 100))
    for run_dir in (sweep / "runs").iterdir():  # warmup zipped with lr: one row of panels, not two
        summary = json.loads((run_dir / "summary.json").read_text())
        summary["config"]["train"]["warmup_steps"] = int(summary["config"]["train"]["lr"] * 1e5)
        record_run(sweep / "results.sqlite", run_dir.name, summary, "lr", "knob")
    ctx = context(sweep)
    assert varied_factors(ctx.runs) == ["data.num_rules", "train.lr", "train.warmup_steps"]
    fig, _ = figure_factors(ctx)
    axes = [a for a in fig.axes if a.get_xlabel()]
    assert [a.get_xlabel() for a in axes] == ["train.lr (with train.warmup_steps)"] * 2
    assert axes[0].get_xscale() == "log"  # positive values over two decades
    assert [line.get_label() for line in axes[0].lines] == ["I = 10", "I = 100"]


def test_experiment_sweeps_get_no_extra_factor_figure(e1):
    assert figure_factors(context(e1)) is None


# --- 7. legends and legible colours -------------------------------------------------------------------


def test_few_values_of_i_get_a_legend_and_many_a_colour_bar(e1, tmp_path):
    fig, _ = figure_learning_curves(context(e1))
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [f"I = {i}" for i in RULES]
    assert len(fig.axes) == 2  # no colour bar
    many = make_sweep(tmp_path / "many", [{"num_rules": 2**k} for k in range(1, 11)], seeds=(0,))
    fig, _ = figure_learning_curves(context(many))
    assert len(fig.axes) == 3 and not fig.legends


@pytest.mark.parametrize(
    "points", [e1_points(), e2_points(), e3_points(), e4_points()], ids=["e1", "e2", "e3", "e4"]
)
def test_every_line_and_bar_stands_out_on_white(points, tmp_path):
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    from rewritelab.report.html import FIGURES

    ctx = context(make_sweep(tmp_path / "s", points, seeds=(0, 1)))
    checked = 0
    for _, _, draw in FIGURES:
        drawn = draw(ctx)
        if drawn is None:
            continue
        fig = drawn[0]
        legends = [
            h for lg in [*fig.legends, *(a.get_legend() for a in fig.axes)] if lg for h in lg.get_lines()
        ]
        marks = [ln for a in fig.axes for ln in a.lines] + legends
        bars = [p for a in fig.axes for p in a.patches if isinstance(p, Rectangle)]
        for mark in marks:
            assert isinstance(mark, Line2D) and contrast(mark.get_color()) >= MIN_CONTRAST, mark.get_color()
            assert mark.get_alpha() is None or mark.get_alpha() >= 0.9
        for bar in bars:
            assert contrast(bar.get_facecolor()) >= MIN_CONTRAST
        checked += len(marks) + len(bars)
    assert checked > 10


# --- in a browser -------------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PROBE = """<script>window.addEventListener("load", () => {
  const shown = (el) => el !== null && el.getBoundingClientRect().height > 0;
  const image = (alt) => { const i = document.querySelector(`img[alt="${alt}"]`);
    return shown(i) && i.complete && i.naturalWidth > 0; };
  const configs = [...document.querySelectorAll("table.config")].filter(shown);
  document.body.dataset.probe = JSON.stringify({
    config: configs.map((t) => t.rows[0].textContent),
    varied: [...document.querySelectorAll("table.config tr.varied")].filter(shown)
      .map((r) => r.cells[0].textContent),
    loss: image("Training loss"), factors: image("Other settings this sweep varies"),
    broken: [...document.images].filter((i) => !(i.complete && i.naturalWidth > 0)).length });
});</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
def test_chromium_renders_the_config_tables_the_loss_figure_and_the_varied_factor_figure(tmp_path):
    report = build_report(knob_sweep(tmp_path / "wd", ("train", "weight_decay"), [0.0, 0.01, 0.1]))
    probed = tmp_path / "probed.html"  # the report itself has no script; a copy carries the probe
    probed.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"))
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2000", "--dump-dom", probed.as_uri()],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    probe = json.loads(html.unescape(re.search(r'data-probe="([^"]*)"', dom).group(1)))
    assert probe == {
        "config": ["data", "model", "train"],
        "varied": ["weight_decay ◆"],
        "loss": True,
        "factors": True,
        "broken": 0,
    }
