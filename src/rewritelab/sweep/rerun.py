"""The convergence rule as a sweep file: every condition of a finished sweep with a run that missed
`rewritelab converged`'s criterion, all its seeds, trained for twice as long.

Written by hand three times for E4 and E6 before it was a command: the re-run keeps each condition's grid
values (so its runs keep their ids) and doubles `epochs`, `max_steps` and `eval_every` together, which
doubles the steps whichever of the two lengths binds, at the same number of evaluations. Its results then
replace the originals with `rewritelab results SWEEP --supersede RERUN` (and `report --supersede`).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewritelab.config import dump_yaml
from rewritelab.convergence import run_convergence
from rewritelab.errors import UserError
from rewritelab.kinds import build_run_config
from rewritelab.layout import SUMMARY, SWEEP_FILE, sweep_run_dir
from rewritelab.sweep.grid import RunSpec, expand
from rewritelab.sweep.presets import load_sweep


@dataclass(frozen=True)
class Missed:
    """A finished run that missed the criterion, and by how much."""

    run_id: str
    loss_drop: float | None
    acc_delta: float | None


def rerun_sweep(sweep_dir: str | Path) -> tuple[str, list[Missed]] | None:
    """The text of a sweep file re-running, for twice the training, every condition of the sweep in
    `sweep_dir` with an unconverged finished run, and those runs; None when every judged run converged."""
    sweep_dir = Path(sweep_dir)
    if not (sweep_dir / SWEEP_FILE).is_file():
        raise UserError(f"{sweep_dir}: not a sweep directory (no {SWEEP_FILE})")
    sweep = load_sweep(str(sweep_dir / SWEEP_FILE))
    runs = expand(sweep)
    missed = []
    for run in runs:
        folder = sweep_run_dir(sweep_dir, run.run_id)
        judged = run_convergence(folder) if (folder / SUMMARY).is_file() else None
        if judged is not None and not judged["converged"]:
            missed.append(Missed(run.run_id, judged["loss_drop"], judged["acc_delta"]))
    if not missed:
        return None
    ids = {m.run_id for m in missed}
    conditions = list({_key(r): r for r in runs if r.run_id in ids}.values())
    lengths = [_doubled(r) for r in conditions]
    base = copy.deepcopy(sweep.base)
    columns = {p: [r.params[p] for r in conditions] for p in conditions[0].params}
    if all(length == lengths[0] for length in lengths):
        base.setdefault("train", {}).update(lengths[0])
    else:  # conditions trained for different lengths: each gets twice its own
        for name in lengths[0]:
            columns[f"train.{name}"] = [length[name] for length in lengths]
    raw = {
        "preset": f"{sweep.name}-long",
        "description": f"{sweep.name}: the {len(conditions)} condition(s) with a run that missed the "
        "convergence criterion, re-run with every seed for twice the training",
        "base": base,
        "grid": [{"zip": columns}] if len(columns) > 1 else [columns],
        "seeds": list(sweep.seeds),
    }
    header = [
        f"# Written by `rewritelab converged {sweep_dir.name} --rerun`: the convergence rule applied to "
        f"{sweep.name} (twice the epochs, max_steps and eval_every; all seeds). Runs that missed it:",
        *(
            f"#   {m.run_id}: loss drop {_shown(m.loss_drop)} nats, accuracy move {_points(m.acc_delta)}"
            for m in missed
        ),
        "# Then: rewritelab results SWEEP --supersede RERUN (and rewritelab report SWEEP --supersede RERUN).",
    ]
    return "\n".join(header) + "\n" + dump_yaml(raw), missed


def _key(run: RunSpec) -> str:
    return json.dumps(run.params, sort_keys=True, default=str)


def _doubled(run: RunSpec) -> dict[str, Any]:
    """Twice a run's training length, in the fields that set it (resolved: defaults included)."""
    train = build_run_config(run.config).train
    epochs = 2 * train.epochs
    doubled: dict[str, Any] = {"epochs": int(epochs) if float(epochs).is_integer() else epochs}
    if getattr(train, "max_steps", None) is not None:
        doubled["max_steps"] = 2 * train.max_steps
    if getattr(train, "eval_every", 0):
        doubled["eval_every"] = 2 * train.eval_every
    return doubled


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _points(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} points"
