"""The sweep driver: validate every run, prepare the sweep directory, skip finished runs, train the others
on a backend and record each finished run once in `results.sqlite`.

A sweep is idempotent: finished runs (those with `summary.json`) are skipped, interrupted ones resume
from their checkpoints, and each finished run is recorded once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rewritelab.config import dump_yaml, load_yaml
from rewritelab.errors import UserError
from rewritelab.io import atomic_write_text, read_json
from rewritelab.store import open_db, record_run
from rewritelab.sweep.backends import (
    BACKENDS,
    LocalBackend,
    Outcome,
    RayBackend,
    check_reachable,
    import_ray,
    plan_workers,
    wants_cuda,
)
from rewritelab.sweep.grid import RunSpec, Sweep, expand, parse_sweep, run_dir, validate_runs

# ---------------------------------------------------------------------------------------------------------
# The sweep directory


def prepare_sweep_dir(sweep: Sweep, sweep_dir: Path, configs: dict[str, Any]) -> None:
    """Write `sweep.yaml` and each run's `config.yaml`; refuse a directory that holds another sweep."""
    sweep_dir = Path(sweep_dir)
    path = sweep_dir / "sweep.yaml"
    if path.exists():
        raw = load_yaml(path)
        existing = parse_sweep(raw, str(raw.get("preset") or ""), str(path))
        if existing.identity() != sweep.identity():
            raise UserError(
                f"{sweep_dir}: holds a different sweep (preset {existing.name!r}, other settings or "
                "overrides); use another --out directory, or delete this one to start over"
            )
        seeds = list(dict.fromkeys([*existing.seeds, *sweep.seeds]))  # every seed run here so far
    else:
        seeds = list(sweep.seeds)
    recorded = {**sweep.to_config(), "seeds": seeds}
    atomic_write_text(path, yaml.safe_dump(recorded, sort_keys=False, default_flow_style=None))
    for run_id, cfg in configs.items():
        config_path = run_dir(sweep_dir, run_id) / "config.yaml"
        if not config_path.exists():
            atomic_write_text(config_path, dump_yaml(cfg))


# ---------------------------------------------------------------------------------------------------------
# Running a sweep


@dataclass
class SweepResult:
    sweep: Sweep
    sweep_dir: Path
    runs: list[RunSpec]
    skipped: list[str]
    finished: list[str]
    failed: dict[str, str]  # run id → why

    @property
    def db_path(self) -> Path:
        return self.sweep_dir / "results.sqlite"


class _Progress:
    """Runs done / total with an ETA: a tqdm bar on a terminal, one plain line per run otherwise."""

    def __init__(self, total: int, done: int, enabled: bool):
        self.total, self.done, self.enabled = total, done, enabled
        self.start = time.monotonic()
        self.finished_here = 0
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit="run", desc="sweep", file=sys.stderr)

    def update(self, outcome: Outcome) -> None:
        self.done += 1
        self.finished_here += 1
        if outcome.error is not None:
            self.write(f"run {outcome.run.run_id} failed: {outcome.error}")
        if self.bar is not None:
            self.bar.update(1)
        elif self.enabled:
            elapsed = time.monotonic() - self.start
            eta = elapsed / self.finished_here * (self.total - self.done)
            status = "failed" if outcome.error else "done"
            self.write(
                f"[{self.done}/{self.total}] {outcome.run.run_id} {status} "
                f"(elapsed {_duration(elapsed)}, eta {_duration(eta)})"
            )

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return (
        f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
        if seconds >= 3600
        else f"{seconds // 60}m{seconds % 60:02d}s"
    )


def run_sweep(
    sweep: Sweep,
    sweep_dir: str | os.PathLike,
    *,
    backend: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    progress: bool = True,
) -> SweepResult:
    """Expand, validate, then train every unfinished run and record each finished run in results.sqlite."""
    if backend not in BACKENDS:
        raise UserError(f"--backend {backend!r}: must be one of {', '.join(BACKENDS)}")
    if ray_address and backend != "ray":
        raise UserError("--ray-address needs --backend ray")
    if workers is not None and workers < 1:
        raise UserError(f"--workers {workers}: must be at least 1")
    if backend == "ray":
        import_ray()
    if ray_address:
        check_reachable(ray_address)
    sweep_dir = Path(sweep_dir)
    runs = expand(sweep)
    configs = validate_runs(runs)
    prepare_sweep_dir(sweep, sweep_dir, configs)
    db_path = sweep_dir / "results.sqlite"
    recorded = recorded_run_ids(db_path)
    result = SweepResult(sweep, sweep_dir, runs, [], [], {})
    pending = []
    for run in runs:
        summary_path = run_dir(sweep_dir, run.run_id) / "summary.json"
        if summary_path.exists():
            if run.run_id not in recorded:
                record_run(db_path, run.run_id, read_json(summary_path), sweep_dir.name, sweep.name)
            result.skipped.append(run.run_id)
        else:
            pending.append(run)
    if not pending:
        return result
    if backend == "ray":
        runner: LocalBackend | RayBackend = RayBackend(workers, configs, ray_address)
    else:
        n_workers, threads = plan_workers(len(pending), workers, wants_cuda(configs))
        runner = LocalBackend(n_workers, threads, sweep_dir / "logs")
    bar = _Progress(len(runs), len(result.skipped), progress)
    try:
        with _sigterm_interrupts():
            for outcome in runner.run(pending, sweep_dir):
                if outcome.error is None:
                    record_run(db_path, outcome.run.run_id, outcome.summary, sweep_dir.name, sweep.name)
                    result.finished.append(outcome.run.run_id)
                else:
                    result.failed[outcome.run.run_id] = outcome.error
                bar.update(outcome)
    finally:
        bar.close()
    return result


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C, so `kill SWEEP_PID` also stops the runs (which checkpoint first)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def recorded_run_ids(db_path: Path) -> set[str]:
    """Run ids that already have rows (a run can finish and be killed before it is recorded)."""
    if not Path(db_path).exists():
        return set()
    with open_db(db_path) as db:
        return {row[0] for row in db.execute("SELECT DISTINCT run_id FROM results")}
