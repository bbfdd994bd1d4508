"""The convergence judgement: the loss criterion, the accuracy criterion, and what it cannot judge."""

from __future__ import annotations

import json

import pytest

from rewritelab.convergence import convergence, run_convergence


def records(losses: list[float], evals: dict[int, float] | None = None, every: int = 100) -> list[dict]:
    """Train lines every `every` steps with these window losses, and eval lines at the given steps."""
    lines = [{"kind": "train", "step": every * (i + 1), "loss": loss} for i, loss in enumerate(losses)]
    for step, acc in (evals or {}).items():
        lines.append({"kind": "eval", "step": step, "accuracy": {"test_seen": 0.9, "test_unseen": acc}})
    return lines


def test_a_flat_loss_and_steady_accuracy_is_converged():
    # 1000 steps: the last 20 % are 900 (first half) and 1000 (second half)
    judged = convergence(records([2.0] * 8 + [0.105, 0.1], {900: 0.80, 1000: 0.81}))
    assert judged == {"loss_drop": pytest.approx(0.005), "acc_delta": pytest.approx(0.01), "converged": True}


def test_a_falling_loss_is_not_converged_however_steady_the_accuracy():
    judged = convergence(records([2.0] * 8 + [0.2, 0.1], {900: 0.8, 1000: 0.8}))
    assert judged["loss_drop"] == pytest.approx(0.1) and judged["converged"] is False


def test_a_moving_accuracy_is_not_converged_however_flat_the_loss():
    judged = convergence(records([2.0] * 8 + [0.1, 0.1], {900: 0.70, 1000: 0.75}))
    assert judged["acc_delta"] == pytest.approx(0.05) and judged["converged"] is False


def test_evaluations_before_the_last_20_percent_do_not_count():
    """An old evaluation far from the end says nothing about the end; the loss decides alone."""
    judged = convergence(records([2.0] * 8 + [0.1, 0.1], {500: 0.1, 1000: 0.9}))
    assert judged["acc_delta"] is None and judged["converged"] is True


def test_a_split_missing_from_an_evaluation_is_skipped():
    lines = records([1.0] * 10, {900: 0.5, 1000: 0.5})
    lines[-1]["accuracy"]["test_ood"] = 0.3  # only in the last evaluation
    lines[-2]["accuracy"]["test_seen"] = None
    assert convergence(lines)["acc_delta"] == 0.0


@pytest.mark.parametrize("lines", [[], records([1.0]), [{"kind": "eval", "step": 10, "accuracy": {}}]])
def test_too_little_to_judge_is_none(lines):
    assert convergence(lines) is None


def test_a_run_directory_is_judged_from_its_metrics_skipping_a_line_cut_short(tmp_path):
    text = "".join(json.dumps(r) + "\n" for r in records([2.0] * 8 + [0.105, 0.1], {900: 0.8, 1000: 0.8}))
    (tmp_path / "metrics.jsonl").write_text(text + '{"kind": "train", "st')
    assert run_convergence(tmp_path)["converged"] is True
    assert run_convergence(tmp_path / "absent") is None


def test_cli_judges_run_and_sweep_directories_in_natural_order(tmp_path, capsys):
    from rewritelab.cli import main

    lines = {"num_rules=100": [2.0] * 8 + [0.105, 0.1], "num_rules=30": [2.0] * 8 + [0.3, 0.1]}
    for name, losses in lines.items():
        run_dir = tmp_path / "sweep" / "runs" / name
        run_dir.mkdir(parents=True)
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records(losses)))
    short = tmp_path / "short"
    short.mkdir()
    (short / "metrics.jsonl").write_text(json.dumps(records([1.0])[0]) + "\n")
    assert main(["converged", str(tmp_path / "sweep"), str(short)]) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert rows == [
        "| num_rules=30 | 0.2000 | - | no |",
        "| num_rules=100 | 0.0050 | - | yes |",
        "| short | - | - | too short to judge |",
    ]
    assert main(["converged", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "neither a run directory" in err


def test_cli_help_states_the_modules_criterion():
    from rewritelab.cli.converged import CRITERION
    from rewritelab.convergence import ACC_DELTA_MAX, LOSS_DROP_MAX, TAIL

    assert f"last {TAIL:.0%} of steps" in CRITERION and f"< {LOSS_DROP_MAX} nats" in CRITERION
    assert f"(< {ACC_DELTA_MAX:.0%})" in CRITERION
