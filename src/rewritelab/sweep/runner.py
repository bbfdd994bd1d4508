"""The sweep driver: validate every run, prepare the sweep directory, skip finished runs, train the others
on a backend and record each finished run once in `results.sqlite`.

A sweep is idempotent: finished runs (those with `summary.json`) are skipped, interrupted ones resume
from their checkpoints, and each finished run is recorded once.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from rewritelab import __version__
from rewritelab.config import describe_differences, differences, dump_yaml, load_yaml
from rewritelab.errors import UserError
from rewritelab.folders import RUN, SWEEP, Recognise, check_folder, hold_folder, mark_folder
from rewritelab.io import atomic_write_text, read_json
from rewritelab.kinds import kind_for
from rewritelab.layout import (
    DATA_MANIFEST,
    FOLDER_LOCK,
    METRICS,
    RESULTS_DB,
    RUN_CONFIG,
    RUNS_DIR,
    SUMMARY,
    SWEEP_FILE,
    sweep_run_dir,
)
from rewritelab.run import count_steps, read_summary, resolved_dtype
from rewritelab.store import read_database, record_run
from rewritelab.sweep.backends import Backend, BackendOptions, backend_named, wants_cuda
from rewritelab.sweep.grid import RunSpec, Sweep, expand, parse_sweep, validate_runs
from rewritelab.sweep.reuse import reuse_runs, run_roots
from rewritelab.textfmt import Progress

# ---------------------------------------------------------------------------------------------------------
# The sweep directory


def check_sweep_dir(sweep: Sweep, sweep_dir: Path) -> list[int]:
    """Refuse a directory that holds another sweep (or is a file); the seeds run there so far and now."""
    sweep_dir = Path(sweep_dir)
    if sweep_dir.exists() and not sweep_dir.is_dir():
        raise UserError(f"--out {sweep_dir}: exists and is not a directory; choose another sweep directory")
    path = sweep_dir / SWEEP_FILE
    if not path.exists():
        return list(sweep.seeds)
    raw = load_yaml(path)
    existing = parse_sweep(raw, str(raw.get("preset") or ""), str(path))
    if existing.identity() != sweep.identity():
        raise UserError(
            f"{sweep_dir}: holds a different sweep: {sweep_difference(existing, sweep)}; use another --out "
            "directory, or delete this one to start over"
        )
    return list(dict.fromkeys([*existing.seeds, *sweep.seeds]))  # every seed run here so far


def sweep_difference(existing: Sweep, sweep: Sweep) -> str:
    """What differs between the sweep a directory holds and this one: the preset name, a base setting
    (`--set` included) or the grid, for the message that refuses the directory."""
    return describe_differences(differences(existing.identity(), sweep.identity()), skip="base.")


def prepare_sweep_dir(sweep: Sweep, sweep_dir: Path, configs: dict[str, Any]) -> None:
    """Write `sweep.yaml` and each run's `config.yaml`; refuse a directory that holds another sweep.

    Each run directory is marked as a run: the sweep's runs are its own, those an earlier version
    prepared (a config.yaml alone) included, so `train` accepts them."""
    sweep_dir = Path(sweep_dir)
    seeds = check_sweep_dir(sweep, sweep_dir)
    path = sweep_dir / SWEEP_FILE
    recorded = {**sweep.to_config(), "seeds": seeds}
    atomic_write_text(path, yaml.safe_dump(recorded, sort_keys=False, default_flow_style=None))
    for run_id, cfg in configs.items():
        config_path = sweep_run_dir(sweep_dir, run_id) / RUN_CONFIG
        if not config_path.exists():
            atomic_write_text(config_path, dump_yaml(cfg))
        mark_folder(config_path.parent, RUN)


def holds_only_runs_of(runs: Sequence[RunSpec]) -> Recognise:
    """Whether an unmarked folder holds nothing but `runs/` with runs of this sweep (copied there, say):
    its run ids name this sweep as well as a sweep.yaml would."""
    ids = {run.run_id for run in runs}

    def recognise(path: Path) -> bool:
        names = {p.name for p in path.iterdir()} - {FOLDER_LOCK}
        root = path / RUNS_DIR
        return names == {RUNS_DIR} and root.is_dir() and {p.name for p in root.iterdir()} <= ids

    return recognise


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
    reused: dict[str, Path] = field(default_factory=dict)  # run id → the finished run it was copied from

    @property
    def db_path(self) -> Path:
        return self.sweep_dir / RESULTS_DB


def execution_line(configs: dict[str, Any], runner: Backend) -> str:
    """Version, backend, workers x threads, device and precision: what a sweep's log says it ran."""
    cuda = wants_cuda(configs)
    device = torch.device("cuda" if cuda else "cpu")
    dtypes = sorted(
        {resolved_dtype(cfg.train.dtype, device, kind_for(cfg).frozen_base) for cfg in configs.values()}
    )
    return (
        f"rewritelab {__version__}, torch {torch.__version__}, {runner.describe()}, "
        f"device {device.type}, precision {'/'.join(dtypes)}"
    )


HEARTBEAT_S = 30.0  # seconds between sweep progress lines while runs train (log mode)


def running_status(sweep_dir: Path, runs: list[RunSpec], configs: dict[str, Any]) -> tuple[str, float]:
    """The running runs' last logged step and loss, read from their metrics.jsonl, and the sum of their
    done fractions (for the ETA); a run counts as running once it has logged and until it has a summary."""
    parts, partial = [], 0.0
    for run in runs:
        directory = sweep_run_dir(sweep_dir, run.run_id)
        last = _last_train_record(directory / METRICS)
        if last is None or (directory / SUMMARY).exists():
            continue
        cfg = configs[run.run_id]
        total = count_steps(cfg.data.train_examples, cfg.train)
        step = int(last.get("step", 0))
        parts.append(f"{run.run_id} step {step}/{total} loss {float(last.get('loss', float('nan'))):.4f}")
        partial += min(step / total, 1.0) if total else 0.0
    return ("running: " + ", ".join(parts)) if parts else "", partial


def _last_train_record(path: Path) -> dict[str, Any] | None:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written
        if isinstance(record, dict) and record.get("kind") == "train":
            return record
    return None


@contextlib.contextmanager
def heartbeat(
    bar: Progress, sweep_dir: Path, runs: list[RunSpec], configs: dict[str, Any], every_s: float
) -> Iterator[None]:
    """While the block runs, report the running runs every `every_s` seconds (a sweep is otherwise
    silent for the whole length of its first runs when stderr is a log file)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_s):
            status, partial = running_status(sweep_dir, runs, configs)
            bar.tick(status, force=True, partial=partial)

    thread = threading.Thread(target=beat, name="sweep-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def check_sweep(
    sweep: Sweep,
    sweep_dir: Path,
    backend: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    reuse: Sequence[str | os.PathLike] = (),
) -> tuple[list[RunSpec], dict[str, Any]]:
    """Every check `run_sweep` makes before it writes anything, as the runs and their built configs:
    `sweep --dry-run` makes the same ones, so it refuses exactly what the real command refuses."""
    if workers is not None and workers < 1:
        raise UserError(f"--workers {workers}: must be at least 1")
    backend_named(backend).check(BackendOptions(workers, ray_address))  # before the directory is touched
    runs = expand(sweep)
    configs = validate_runs(runs)
    check_folder(sweep_dir, SWEEP, holds_only_runs_of(runs))
    check_sweep_dir(sweep, sweep_dir)
    recorded_run_ids(sweep_dir / RESULTS_DB)  # read as `results` reads it: no run goes into a damaged one
    run_roots(reuse)
    if not (backend == "ray" and ray_address):  # the runs train on this machine: each must fit here
        for run in runs:
            if not (sweep_run_dir(sweep_dir, run.run_id) / SUMMARY).exists():
                try:
                    kind_for(configs[run.run_id]).check_fits(configs[run.run_id])
                except UserError as e:
                    raise UserError(f"run {run.run_id}: {e}") from None
    return runs, configs


def run_sweep(
    sweep: Sweep,
    sweep_dir: str | os.PathLike,
    *,
    backend: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    reuse: Sequence[str | os.PathLike] = (),
    progress: bool = True,
    heartbeat_s: float = HEARTBEAT_S,
) -> SweepResult:
    """Expand, validate, then train every unfinished run and record each finished run in results.sqlite;
    a pending run that a finished run of a `reuse` sweep directory already computed is copied, not trained."""
    sweep_dir = Path(sweep_dir)
    runs, configs = check_sweep(sweep, sweep_dir, backend, workers, ray_address, reuse)
    backend_class, options = backend_named(backend), BackendOptions(workers, ray_address)
    with hold_folder(sweep_dir, SWEEP, holds_only_runs_of(runs)):  # one sweep process at a time
        prepare_sweep_dir(sweep, sweep_dir, configs)
        return _run_in(sweep, sweep_dir, runs, configs, backend_class, options, reuse, progress, heartbeat_s)


def _run_in(
    sweep: Sweep,
    sweep_dir: Path,
    runs: list[RunSpec],
    configs: dict[str, Any],
    backend_class: type[Backend],
    options: BackendOptions,
    reuse: Sequence[str | os.PathLike],
    progress: bool,
    heartbeat_s: float,
) -> SweepResult:
    """The body of `run_sweep`, in a prepared sweep directory whose lock this process holds."""
    db_path = sweep_dir / RESULTS_DB
    recorded = recorded_run_ids(db_path)
    result = SweepResult(sweep, sweep_dir, runs, [], [], {})
    unfinished = [r for r in runs if not (sweep_run_dir(sweep_dir, r.run_id) / SUMMARY).exists()]
    result.reused = reuse_runs(unfinished, configs, sweep_dir, reuse) if reuse else {}
    pending = []
    for run in runs:
        summary_path = sweep_run_dir(sweep_dir, run.run_id) / SUMMARY
        if summary_path.exists():
            if run.run_id not in recorded:
                summary = read_summary(summary_path)
                record_run(db_path, run.run_id, summary, sweep_dir.name, sweep.name, _manifest(summary_path))
            result.skipped.append(run.run_id)
        else:
            pending.append(run)
    if not pending:
        return result
    runner = backend_class.start(options, pending, configs, sweep_dir)
    mode = "auto" if progress else "none"
    bar = Progress(len(runs), desc="sweep", unit="run", initial=len(result.skipped), mode=mode)
    bar.message(
        f"{sweep_dir}: {len(pending)} of {len(runs)} runs to train; {execution_line(configs, runner)}"
    )
    try:
        with _sigterm_interrupts(), heartbeat(bar, sweep_dir, pending, configs, heartbeat_s):
            for outcome in runner.run(pending, sweep_dir):
                if outcome.error is None:
                    manifest = _manifest(sweep_run_dir(sweep_dir, outcome.run.run_id) / SUMMARY)
                    record_run(
                        db_path, outcome.run.run_id, outcome.summary, sweep_dir.name, sweep.name, manifest
                    )
                    result.finished.append(outcome.run.run_id)
                    bar.update(1, f"{outcome.run.run_id} done", force=True)
                else:
                    result.failed[outcome.run.run_id] = outcome.error
                    bar.message(f"run {outcome.run.run_id} failed: {outcome.error}")
                    bar.update(1, f"{outcome.run.run_id} failed", force=True)
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


def _manifest(summary_path: Path) -> dict[str, Any] | None:
    """The data manifest beside a run's summary (its distinct-pattern count), if the run dir has one."""
    path = summary_path.with_name(DATA_MANIFEST)
    return read_json(path) if path.is_file() else None


def recorded_run_ids(db_path: Path) -> set[str]:
    """Run ids that already have rows (a run can finish and be killed before it is recorded), from every
    row checked against its checksum: a damaged or edited database is refused (UserError), never
    recorded into."""
    if not Path(db_path).exists():
        return set()
    names, rows = read_database(Path(db_path))
    if not rows:
        return set()
    column = names.index("run_id")
    return {row[column] for row in rows}
