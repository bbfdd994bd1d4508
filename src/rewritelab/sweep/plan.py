"""`sweep --dry-run` (and `reproduce --dry-run`): what a sweep would do and what it would cost, after
every check the real command makes (`check_sweep`) and without writing anything: each run's status
(to train, finished, or copied by `--reuse`), its steps and tokens, and the estimated wall time of the
runs to train on this machine with the workers the sweep would start (`cost`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rewritelab.layout import SUMMARY, sweep_run_dir
from rewritelab.sweep.backends import (
    BackendOptions,
    backend_named,
    configured_threads,
    plan_workers,
    wants_cuda,
)
from rewritelab.sweep.cost import Costs, RunCost, wall_seconds
from rewritelab.sweep.grid import Sweep, expand, validate_runs
from rewritelab.sweep.reuse import reusable_runs
from rewritelab.sweep.runner import check_sweep, execution_line
from rewritelab.textfmt import format_duration, format_table, plural


@dataclass
class Plan:
    run_ids: list[str]
    status: dict[str, str]  # run id → "train", "finished" or "copy from DIR"
    costs: dict[str, RunCost]
    workers: int
    execution: str  # version, backend, workers x threads, device, precision
    notes: list[str]  # how the times were estimated, or why some could not be

    @property
    def to_train(self) -> list[str]:
        return [r for r in self.run_ids if self.status[r] == "train"]

    def wall_seconds(self) -> float | None:
        seconds = [self.costs[r].seconds for r in self.to_train]
        return None if None in seconds else wall_seconds(seconds, self.workers)  # type: ignore[arg-type]


def plan_sweep(
    sweep: Sweep,
    sweep_dir: str | os.PathLike,
    backend: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    reuse: Sequence[str | os.PathLike] = (),
    source: str = "timed",
) -> Plan:
    """The plan of `run_sweep` with the same arguments; `source` says how times are estimated (`cost`)."""
    sweep_dir = Path(sweep_dir)
    runs, configs = check_sweep(sweep, sweep_dir, backend, workers, ray_address, reuse)
    finished = {r.run_id for r in runs if (sweep_run_dir(sweep_dir, r.run_id) / SUMMARY).exists()}
    unfinished = [r for r in runs if r.run_id not in finished]
    copies = reusable_runs(unfinished, configs, sweep_dir, reuse) if reuse else {}
    status = {r.run_id: "finished" if r.run_id in finished else "train" for r in runs}
    status.update({run_id: f"copy from {path}" for run_id, path in copies.items()})
    pending = sum(s == "train" for s in status.values())
    if backend == "ray" and ray_address:  # a cluster places the runs: one CPU each, as many as it has
        n_workers, threads = workers or max(pending, 1), 1
    else:
        cuda = wants_cuda(configs)
        n_workers, threads = plan_workers(max(pending, 1), workers, cuda, configured_threads(configs))
    to_train = [r for r in runs if status[r.run_id] == "train"] or runs  # what the backend would start with
    runner = backend_named(backend).start(BackendOptions(workers, ray_address), to_train, configs, sweep_dir)
    costs = Costs(source, threads)
    estimates = {r.run_id: costs.run(configs[r.run_id]) for r in runs}
    return Plan([r.run_id for r in runs], status, estimates, n_workers, execution_line(configs, runner),
                sorted(costs.notes))  # fmt: skip


def sweep_estimate(sweep: Sweep, source: str = "measured") -> tuple[int, int, float | None, list[str]]:
    """(runs, steps, estimated wall seconds on this machine, notes) of a whole sweep, run the way a
    plain `rewritelab sweep` would run it here (`rewritelab presets` lists them)."""
    runs = expand(sweep)
    configs = validate_runs(runs)
    n_workers, threads = plan_workers(len(runs), None, wants_cuda(configs), configured_threads(configs))
    costs = Costs(source, threads)
    estimates = [costs.run(cfg) for cfg in configs.values()]
    seconds = [c.seconds for c in estimates]
    wall = None if None in seconds else wall_seconds(seconds, n_workers)  # type: ignore[arg-type]
    return len(runs), sum(c.steps for c in estimates), wall, sorted(costs.notes)


def format_plan(plan: Plan) -> str:
    """A table of the runs, then the counts and the estimate, stated as one."""
    rows = [
        [run_id, plan.status[run_id], f"{plan.costs[run_id].steps:,}", _tokens(plan.costs[run_id].tokens),
         _time(plan.costs[run_id].seconds) if plan.status[run_id] == "train" else "-"]
        for run_id in plan.run_ids
    ]  # fmt: skip
    table = format_table(["run", "status", "steps", "tokens", "est. time"], rows, left=(0, 1))
    train = plan.to_train
    copies = sum(s.startswith("copy") for s in plan.status.values())
    finished = sum(s == "finished" for s in plan.status.values())
    steps = sum(plan.costs[r].steps for r in train)
    tokens = [plan.costs[r].tokens for r in train]
    lines = [
        table,
        "",
        f"{plural(len(plan.run_ids), 'run')}: {len(train)} to train, {finished} already finished, "
        f"{copies} to copy from --reuse (not trained).",
        f"To train: {steps:,} steps"
        + ("" if None in tokens else f", {_tokens(sum(tokens))} tokens")  # type: ignore[arg-type]
        + ".",
    ]
    wall = plan.wall_seconds()
    if not train:
        lines.append("Nothing to train.")
    elif wall is None:
        lines.append(f"No time estimate for some runs ({'; '.join(plan.notes)}).")
    else:
        lines.append(
            f"Estimated wall time on this machine: {format_duration(wall)} ({plan.execution}). An estimate: "
            f"{'; '.join(plan.notes)}; evaluations included; other load on the machine changes it."
        )
    return "\n".join(lines)


def _tokens(n: int | None) -> str:
    """`7.7M` tokens: three significant figures are all an estimate has."""
    if n is None:
        return "-"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)


def _time(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)
