"""The text sections of a report, so that it reads on its own: the resolved configuration with what
differs between runs marked, what "converged" means and why a run is not, and how the runs executed
(machine, precision, threads, run times, package versions)."""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

from rewritelab.convergence import ACC_DELTA_MAX, LOSS_DROP_MAX, TAIL
from rewritelab.io import read_json
from rewritelab.layout import SUMMARY
from rewritelab.report.factors import SEEDS, show, sort_key, varied_factors
from rewritelab.report.runs import Context, Run
from rewritelab.report.tables import escape, html_table
from rewritelab.store import varied_versions, versions_table
from rewritelab.textfmt import format_duration

# ---------------------------------------------------------------------------------------------------------
# The task and the configuration


def task_text(ctx: Context) -> str:
    """What the runs learn and what the test splits measure, for a reader who never saw the README."""
    models = sorted({show(json.loads(r.config["lm.model"])) for r in ctx.runs if "lm.model" in r.config})
    who = (
        f"fine-tunes the pretrained model {', '.join(models)} with LoRA"
        if models
        else "trains a small transformer from scratch"
    )
    if ctx.symbol == "P":
        return (
            f"Each run {who} to execute Markov programs: given a program (an ordered list of rewrite rules, "
            "applied repeatedly until a terminating rule fires or none applies) and an input string, it "
            "writes the final string. P is the number of distinct training programs. Accuracy is exact "
            "match of the whole answer. test_seen: programs seen in training, on new inputs; test_unseen: "
            "programs never seen in training; test_unseen_strict: programs built from unseen patterns; "
            "test_ood_steps / test_ood_length: longer executions / inputs than in training."
        )
    return (
        f"Each run {who} to apply string-rewrite rules given as instructions: from a pattern, a "
        "replacement and an input string it must write the input with the first occurrence of the pattern "
        "replaced (or the input unchanged when the pattern does not occur: a no-op). I is the number of "
        "distinct rules in the training data and S the training examples per rule. Accuracy is exact match "
        "of the whole answer. test_seen: rules seen in training, on new inputs; test_unseen: rules never "
        "seen in training, the measure of following new instructions."
    )


def config_rows(runs: Sequence[Run]) -> list[tuple[str, str, bool]]:
    """(setting, value, varies) for every field of the resolved configs, in config order: a field that
    differs between runs lists its values; the seed fields list the seeds."""
    varied = set(varied_factors(runs))
    rows = []
    for path in dict.fromkeys(p for r in runs for p in r.config):
        values = sorted({r.config.get(path, "null") for r in runs}, key=lambda v: sort_key(json.loads(v)))
        shown = ", ".join(show(json.loads(v)) for v in values)
        if path in SEEDS and len(values) > 1:
            rows.append((path, f"the run's seed: {shown}", False))
        elif path in varied:
            rows.append((path, f"varies between runs: {shown}", True))
        else:
            rows.append((path, shown if len(values) == 1 else f"{shown} (execution only)", False))
    return rows


def config_html(runs: Sequence[Run]) -> str:
    """The configuration as one table per section (data, model or lm, train), side by side; the rows of
    the fields this sweep varies are highlighted."""
    sections: dict[str, list[str]] = {}
    for path, value, varies in config_rows(runs):
        head, _, name = path.partition(".")
        cls, mark = (' class="varied"', " ◆") if varies else ("", "")
        sections.setdefault(head, []).append(
            f'<tr{cls}><td class="text">{escape(name)}{mark}</td>'
            f'<td class="text wrap">{escape(value)}</td></tr>'
        )
    tables = [
        f'<table class="config"><thead><tr><th colspan="2" class="text">{escape(head)}</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
        for head, rows in sections.items()
    ]
    return f'<div class="configs">{"".join(tables)}</div>' if tables else ""


# ---------------------------------------------------------------------------------------------------------
# Convergence


CONVERGED_MEANING = (
    f"A run counts as converged when, over its last {100 * TAIL:.0f}% of steps, the mean training loss of "
    f"the second half lies less than {LOSS_DROP_MAX:g} nats per answer token below that of the first half "
    f"(the loss has stopped falling), and no learning-curve accuracy moved by {100 * ACC_DELTA_MAX:.0f} "
    "percentage points or more between the last two evaluations (when both fall in that stretch). It is "
    "judged from the run's metrics.jsonl alone, never from its test scores."
)


def why_not_converged(run: Run) -> str:
    """The measure(s) that failed, with their values and limits; or why the run could not be judged."""
    if run.converged is None:
        return "not judged: too few logged training steps in its last stretch (or recorded before judging)"
    reasons = []
    if run.loss_drop is not None and run.loss_drop >= LOSS_DROP_MAX:
        reasons.append(
            f"the loss still fell by {run.loss_drop:.3g} nats per token over the last {100 * TAIL:.0f}% of "
            f"steps (limit {LOSS_DROP_MAX:g})"
        )
    if run.acc_delta is not None and run.acc_delta >= ACC_DELTA_MAX:
        reasons.append(
            f"an accuracy moved {100 * run.acc_delta:.1f} points between the last two evaluations "
            f"(limit {100 * ACC_DELTA_MAX:.0f})"
        )
    return "; ".join(reasons) or "not converged"


def convergence_html(runs: Sequence[Run]) -> str:
    """What converged means, how many runs did, and a row per run that did not with the reason."""
    bad = [r for r in runs if r.converged is not True]
    judged = sum(r.converged is not None for r in runs)
    if not bad:
        verdict = f"All {len(runs)} runs converged."
    else:
        verdict = f"{len(runs) - len(bad)} of {len(runs)} runs converged ({judged} judged); the others:"
    parts = [f"<p>{escape(CONVERGED_MEANING)}</p>", f"<p>{escape(verdict)}</p>"]
    if bad:
        rows = [[r.run_id, _steps(r), why_not_converged(r)] for r in bad]
        parts.append(html_table(["run", "steps", "why not converged"], rows, text_columns={0, 2}))
    return "".join(parts)


def _steps(run: Run) -> str:
    return "-" if run.steps is None else str(run.steps)


# ---------------------------------------------------------------------------------------------------------
# How the runs executed


def read_machines(folders: Mapping[str, Path], runs: Sequence[Run]) -> dict[str, str]:
    """Run id → the machine its summary.json records (runs finished before it was recorded have none)."""
    machines = {}
    for run in runs:
        folder = folders.get(run.run_id)
        if folder is None:
            continue
        path = folder / SUMMARY
        try:
            recorded = read_json(path).get("machine") if path.is_file() else None
        except (ValueError, OSError, AttributeError):
            recorded = None
        if isinstance(recorded, str):
            machines[run.run_id] = recorded
    return machines


def compute_rows(
    runs: Sequence[Run], machines: dict[str, str], versions: Sequence[str]
) -> list[tuple[str, str]]:
    """(what, value) rows: machine, device, precision, threads, steps, time per run and in all."""

    def setting(path: str) -> str:
        values = sorted({show(json.loads(r.config[path])) for r in runs if path in r.config})
        return ", ".join(values) or "-"

    seconds = [r.seconds for r in runs if r.seconds is not None]
    rates = [r.tokens / r.seconds for r in runs if r.tokens and r.seconds]
    missing = len(runs) - len(machines)
    recorded = sorted(set(machines.values()))
    machine = "; ".join(recorded) or "not recorded"
    if recorded and missing:
        machine += f" (not recorded for {missing} of {len(runs)} runs)"
    rows = [
        ("machine (as recorded by the runs)", machine),
        ("device (train.device)", setting("train.device")),
        ("precision (train.dtype)", setting("train.dtype")),
        ("threads per run (train.threads; 0 = torch's default)", setting("train.threads")),
        ("training steps per run", _spread([r.steps for r in runs if r.steps is not None], _count)),
    ]
    if seconds:
        rows += [
            ("training time per run (evaluations included)", _spread(seconds, format_duration)),
            ("training time of all runs together", format_duration(sum(seconds))),
        ]
    if rates:
        rows.append(("throughput per run (tokens / s)", _spread(rates, _count)))
    rows.append(("code versions", ", ".join(versions) or "-"))
    return rows


def _count(x: float) -> str:
    return f"{x:,.0f}"


def _spread(values: Sequence[float], fmt) -> str:
    """`median (min - max)`, or the one value when they all agree."""
    if not values:
        return "-"
    low, mid, high = min(values), statistics.median(values), max(values)
    return fmt(mid) if fmt(low) == fmt(high) else f"{fmt(mid)} median ({fmt(low)} - {fmt(high)})"


def versions_html(frame) -> str:
    """The package versions the runs recorded, one row per sweep (`store.versions_table`), with a caption
    that names the packages whose versions differ between runs of one sweep."""
    header, rows = versions_table(frame)
    differ = varied_versions(frame)
    note = f"Runs of one sweep differ in {', '.join(differ)}. " if differ else ""
    caption = (
        "Package versions the runs recorded (rewritelab: its version and commit). "
        f"{note}unknown: runs recorded before versions were; not installed: absent when the run ran."
    )
    table = html_table(header, rows, text_columns=set(range(len(header))))
    return f'<p class="caption">{escape(caption)}</p>{table}'


def meta_html(rows: Sequence[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="meta">{body}</table>'
