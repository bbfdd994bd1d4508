"""The report of a Markov-program sweep: accuracy against P like E1 (with the strict split), against the
number of execution steps (in and beyond the trained range) and against k, from fabricated runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rewritelab.report import Context, build_report, figure_k, figure_rules, figure_steps, load_runs, varying
from rewritelab.store import load_results
from support import e1_points, make_sweep, program_family, program_points


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    return make_sweep(tmp_path_factory.mktemp("markov") / "sweep", program_points(), seeds=(0, 1))


def context(source: Path) -> Context:
    runs, scale_name = load_runs(load_results(source))
    return Context(runs, varying(runs), scale_name, {})


def cell_means(sweep: Path, split: str, breakdown: str, **where) -> dict[int, float]:
    """Seed mean of each breakdown cell over the runs matching `where` (columns of the results frame)."""
    frame = load_results(sweep)
    frame = frame[frame["split"] == split]
    for column, value in where.items():
        frame = frame[frame[column] == value]
    cells: dict[int, list[float]] = {}
    for text in frame["breakdown_json"]:
        for key, cell in json.loads(text)[breakdown].items():
            cells.setdefault(int(key), []).append(cell["accuracy"])
    return {k: float(np.mean(v)) for k, v in sorted(cells.items())}


def test_a_program_sweep_gets_the_e1_steps_and_k_figures(sweep):
    report = build_report(sweep)
    stems = {p.stem for p in report.parent.glob("*.png")}
    assert stems == {"e1_rules", "program_steps", "program_k", "learning_curves", "loss_curves"}
    assert "P = 5000" in (report.parent / "learning_curves.svg").read_text()  # a legend entry per P
    page = report.read_text(encoding="utf-8")
    assert "Programs: rules per program" in page and "data.family.answer" in page and "trace acc" in page
    assert "Unseen-program accuracy (k = 2, final answers) rises from" in page and "execute Markov" in page


def test_a_rule_sweep_gets_no_program_figure(tmp_path):
    ctx = context(make_sweep(tmp_path / "e1", e1_points(), seeds=(0,), metrics=False))
    assert ctx.symbol == "I" and figure_steps(ctx) is None and figure_k(ctx) is None


def test_accuracy_vs_p_has_the_strict_split_and_says_programs(sweep):
    ctx = context(sweep)
    assert ctx.symbol == "P" and {"num_rules", "k", "answer"} <= set(ctx.varying)
    fig, caption = figure_rules(ctx)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [
        "unseen programs (test_unseen)",
        "unseen patterns (test_unseen_strict)",
        "seen programs (test_seen)",
    ]
    assert fig.axes[0].get_xlabel() == "number of training programs P" and "programs P" in caption
    line = next(ln for ln in fig.axes[0].get_lines() if ln.get_label() == "k = 2, trace answers")
    frame = load_results(sweep)
    trace = frame[(frame["answer"] == "trace") & (frame["program_k"] == "2")]
    unseen = trace[trace["split"] == "test_unseen"]
    means = unseen.groupby("num_rules")["accuracy"].mean()
    assert list(line.get_xdata()) == [10, 100, 1000, 5000]
    np.testing.assert_allclose(line.get_ydata(), means.to_numpy())


def test_accuracy_vs_steps_joins_the_trained_range_and_the_longer_executions(sweep):
    fig, caption = figure_steps(context(sweep))
    assert [ax.get_title() for ax in fig.axes] == ["final answers", "trace answers"]
    ax = fig.axes[1]
    lines = [ln for ln in ax.get_lines() if ln.get_linestyle() in ("-", "--")]
    solid = next(ln for ln in lines if ln.get_label() == "P = 1000, k = 3")
    where = {"answer": "trace", "num_rules": 1000, "program_k": "3"}
    inside = cell_means(sweep, "test_unseen", "steps", **where)
    assert list(solid.get_xdata()) == [1, 2, 3, 4]
    np.testing.assert_allclose(solid.get_ydata(), list(inside.values()))
    dashed = [ln for ln in lines if ln.get_linestyle() == "--" and ln.get_color() == solid.get_color()]
    beyond = cell_means(sweep, "test_ood_steps", "steps", **where)
    assert len(dashed) == 1 and list(dashed[0].get_xdata()) == [5, 6, 7, 8]
    np.testing.assert_allclose(dashed[0].get_ydata(), list(beyond.values()))
    assert any(list(ln.get_xdata()) == [4.5, 4.5] for ln in ax.get_lines())  # the trained range ends
    assert "test_ood_steps" in caption


def test_accuracy_vs_k_draws_only_the_lines_that_vary_k(sweep):
    fig, _ = figure_k(context(sweep))
    assert [ax.get_title() for ax in fig.axes] == [
        "unseen programs (test_unseen)",
        "unseen patterns (test_unseen_strict)",
    ]
    lines = {ln.get_label(): ln for ln in fig.axes[0].get_lines()}
    assert set(lines) == {"P = 1000, final answers", "P = 1000, trace answers"}
    for answer in ("final", "trace"):
        line = lines[f"P = 1000, {answer} answers"]
        expected = cell_means(sweep, "test_unseen", "k", answer=answer, num_rules=1000)
        assert list(line.get_xdata()) == [1, 2, 3]
        np.testing.assert_allclose(line.get_ydata(), list(expected.values()))


def test_program_runs_differing_in_another_family_field_are_variants_not_seeds(tmp_path):
    points = [
        {"num_rules": p, "family": {**program_family(), "steps": s}}
        for s in ([1, 4], [1, 6])
        for p in (10, 100)
    ]
    ctx = context(make_sweep(tmp_path / "steps", points, seeds=(0,), metrics=False))
    assert "variant" in ctx.varying and "answer" not in ctx.varying
    assert {r.cond["variant"] for r in ctx.runs} == {"data.family.steps=[1, 4]", "data.family.steps=[1, 6]"}
