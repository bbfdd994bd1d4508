"""Final evaluation of a run directory, for every run kind: score its checkpoint on the test splits,
write `predictions/SPLIT.jsonl`, then `summary.json` (written last, it marks the run finished). The
validation split is the learning curves' (`run.train`): it is scored here only when asked for by name.

The kind scores a split (`RunKind.score_split`); breakdowns and bootstrap intervals are `run.scoring`'s,
so both kinds report identical numbers for identical predictions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewritelab.config import to_dict
from rewritelab.convergence import run_convergence
from rewritelab.errors import UserError
from rewritelab.io import atomic_write_json, atomic_write_text, dumps_json, read_json
from rewritelab.layout import CHECKPOINT, RUN_CONFIG, SUMMARY, VALIDATION, predictions_file
from rewritelab.run.checkpoint import check_checkpoint, read_checkpoint
from rewritelab.run.device import autocast_for, machine, resolve_device
from rewritelab.run.kind import Built, RunKind
from rewritelab.run.rundir import as_recorded, check_data_manifest, load_data, read_run_config
from rewritelab.run.schedule import check_progress
from rewritelab.run.scoring import device_of, eval_subset, split_report
from rewritelab.textfmt import Progress, format_table, progress_mode
from rewritelab.versions import code_version, current_versions


def write_predictions(path: Path, split: Any, predictions: list, correct: np.ndarray) -> None:
    """One JSON line per example: its row, what the model wrote, and whether that is the answer (a trace
    prediction is written as `prediction_trace`, its last string as `prediction`)."""
    lines = [
        dumps_json(
            {**row, "prediction": pred, "correct": bool(ok)}
            if isinstance(pred, str)
            else {**row, "prediction": pred[-1], "prediction_trace": pred, "correct": bool(ok)}
        )
        for row, pred, ok in zip(split.rows(), predictions, correct, strict=True)
    ]
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def evaluate_trained(
    kind: RunKind,
    run_dir: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    splits: Sequence[str] | None = None,
    built: Built | None = None,
    progress: str | bool | None = None,
    max_examples: int | None = None,
) -> dict[str, Any]:
    """Score a finished run's checkpoint on `splits` (default: every test split of the dataset, not the
    validation split); write `predictions/SPLIT.jsonl` and then `summary.json` (merged with an existing
    summary's other splits).

    `kind` is the run's kind; `built` lets the training loop pass the model and data it holds in memory
    instead of reloading them. `progress` is a mode as for training (default: the run's
    `train.progress`). `max_examples` (default: the run's `train.test_examples`) scores a fixed random
    subset of at most that many examples of each split, for a quick check of a large test set; the
    summary records it.
    """
    run_dir = Path(run_dir)
    cfg = kind.config_from_dict(read_run_config(run_dir))
    ckpt_path = run_dir / CHECKPOINT
    ckpt = read_checkpoint(ckpt_path)
    check_checkpoint(ckpt, cfg, ckpt_path, kind.same_run)
    state = ckpt["state"]
    if state["step"] < ckpt["total_steps"]:
        raise UserError(
            f"{run_dir}: training stopped at step {state['step']} of {ckpt['total_steps']}; finish it first "
            f"(re-run `rewritelab train {run_dir / RUN_CONFIG} --out {run_dir}`)"
        )
    if built is None:
        _, dataset = load_data(cfg, data_dir)
        built = kind.load(cfg, as_recorded(run_dir, dataset), ckpt, ckpt_path, resolve_device("auto"))
    check_checkpoint(ckpt, cfg, ckpt_path, kind.same_run, built.vocab_size)
    check_data_manifest(run_dir, built.dataset.manifest)
    train = built.encoded.get("train")  # encoded when training just ran, or when the kind encodes all
    lengths = None if train is None else train.lengths
    check_progress(ckpt, ckpt_path, len(built.dataset.splits["train"]), cfg.train, lengths)
    tests = [name for name in built.dataset.splits if name not in ("train", VALIDATION)]
    names = list(splits) if splits else tests
    unknown = [name for name in names if name not in built.dataset.splits]
    if unknown:
        raise UserError(f"--split {unknown[0]}: no such split; choose from {', '.join(built.dataset.splits)}")
    amp = autocast_for(device_of(built.model), cfg.train.dtype, kind.frozen_base)

    limit = cfg.train.test_examples if max_examples is None else max_examples
    if limit is not None and limit < 1:
        raise UserError(f"--max-test-examples: must be at least 1, got {limit}")
    mode = progress_mode(progress, cfg.train.progress)
    programs = cfg.data.programs
    trace = programs is not None and programs.answer == "trace"
    reports = {}
    for name in names:
        split = built.dataset.splits[name]
        if limit is not None and limit < len(split):
            split = split.subset(eval_subset(len(split), limit))
        bar = Progress(len(split), desc=f"evaluate {name}", unit="ex", mode=mode)
        try:
            correct, predictions = kind.score_split(built, split, amp, bar)
        finally:
            bar.close()
        report = split_report(split, correct, predictions, trace=trace)
        write_predictions(predictions_file(run_dir, name), split, predictions, report.pop("correct"))
        reports[name] = report

    return write_summary(run_dir, reports, state, to_dict(cfg), limit, merge=bool(splits))


def write_summary(
    run_dir: Path,
    reports: dict[str, dict[str, Any]],
    state: dict[str, Any],
    config: dict[str, Any],
    limit: int | None,
    merge: bool,
) -> dict[str, Any]:
    """Write summary.json from the split reports (`split_report`), the final `TrainState` (as a dict)
    and the resolved config; with `merge`, an existing summary's other splits are kept. Shared by every
    run kind, so the results store and reports read them alike."""
    keys = ["accuracy", "ci95", "n", "breakdown"]
    if any("trace_accuracy" in report for report in reports.values()):
        keys += ["trace_accuracy", "step_accuracy"]  # exact match of the whole trace, and of its strings
    summary: dict[str, Any] = {key: {} for key in keys}
    previous = run_dir / SUMMARY
    if merge and previous.is_file():  # re-scoring some splits keeps the others' results
        old = read_json(previous)
        for key in keys:
            summary[key].update({k: v for k, v in old.get(key, {}).items() if k not in reports})
    for name, report in reports.items():
        for key in keys:
            summary[key][name] = report[key]
    final_loss = float(state["loss"])
    summary["train"] = {
        "steps": int(state["step"]),
        "tokens": int(state["tokens"]),
        "seconds": round(float(state["seconds"]), 3),
        "final_loss": final_loss if np.isfinite(final_loss) else None,
        "convergence": run_convergence(run_dir),
    }
    if limit is not None:
        summary["max_test_examples"] = limit
    summary["config"] = config
    summary["code_version"] = code_version()
    summary["machine"] = machine()
    summary["versions"] = current_versions()  # what ran, beside where: torch, transformers, peft, trl, numpy
    if state.get("finished_at"):  # checkpoints older than the stamp lack it: the store stamps the record
        summary["finished_at"] = state["finished_at"]
    atomic_write_json(previous, summary)
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """A table for a person: split, accuracy and its 95 % interval in percent, number of examples."""
    rows = []
    for name, acc in summary.get("accuracy", {}).items():
        ci = summary["ci95"].get(name)
        interval = f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else "-"
        rows.append([name, "-" if acc is None else f"{100 * acc:.1f}%", interval, str(summary["n"][name])])
    return format_table(["split", "accuracy", "95% CI", "n"], rows, left=(0, 2))


def format_breakdowns(summary: dict[str, Any]) -> str:
    """Accuracy per cell of each breakdown with more than one cell (applied / no-op, rule frequency,
    occurrences, …), one line per split and breakdown: `applied: 12.0% (700)`, examples in parentheses."""
    rows = []
    for split, breakdowns in summary.get("breakdown", {}).items():
        for factor, cells in breakdowns.items():
            shown = [(k, c) for k, c in cells.items() if isinstance(c, dict) and c.get("n")]
            if len(shown) < 2:
                continue
            names = {"false": "applied", "true": "no-op"} if factor == "noop" else {}
            text = ", ".join(f"{names.get(k, k)}: {100 * c['accuracy']:.1f}% ({c['n']})" for k, c in shown)
            rows.append([split, factor, text])
    if not rows:
        return "breakdowns: every example of a split falls in the same cell of each breakdown"
    return format_table(["split", "breakdown", "accuracy per cell (examples)"], rows)
