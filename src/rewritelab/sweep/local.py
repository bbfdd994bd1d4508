"""The `local` backend: each run in its own `python -m rewritelab train` process, up to N at once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from rewritelab.errors import UserError
from rewritelab.io import open_append, read_json
from rewritelab.layout import LOGS_DIR, RUN_CONFIG, SUMMARY, sweep_run_dir
from rewritelab.sweep.backends import (
    BackendOptions,
    Outcome,
    configured_threads,
    plan_workers,
    register_backend,
    wants_cuda,
)
from rewritelab.sweep.grid import RunSpec
from rewritelab.textfmt import plural

STOP_GRACE_S = 30.0  # how long an interrupted sweep waits for its runs to checkpoint


@register_backend("local")
class LocalBackend:
    """Each run in its own `python -m rewritelab train` process; up to `workers` at once."""

    def __init__(self, workers: int, threads: int, log_dir: Path):
        self.workers = workers
        self.threads = threads
        self.log_dir = Path(log_dir)
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._stopping = False

    @classmethod
    def check(cls, options: BackendOptions) -> None:
        if options.address:
            raise UserError("--ray-address needs --backend ray")

    @classmethod
    def start(
        cls, options: BackendOptions, runs: list[RunSpec], configs: dict[str, Any], sweep_dir: Path
    ) -> LocalBackend:
        cuda, threads = wants_cuda(configs), configured_threads(configs)
        workers, threads = plan_workers(len(runs), options.workers, cuda, threads)
        return cls(workers, threads, sweep_dir / LOGS_DIR)

    def describe(self) -> str:
        return f"local backend, {plural(self.workers, 'worker process')} x {plural(self.threads, 'thread')}"

    def run(self, runs: list[RunSpec], sweep_dir: Path) -> Iterator[Outcome]:
        pool = ThreadPoolExecutor(self.workers)
        try:
            futures = [pool.submit(self._train, run, sweep_run_dir(sweep_dir, run.run_id)) for run in runs]
            for future in as_completed(futures):
                yield future.result()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            self._kill_all()
            pool.shutdown(wait=True)

    def _train(self, run: RunSpec, directory: Path) -> Outcome:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{run.run_id}.log"
        cmd = [
            sys.executable,
            "-m",
            "rewritelab",
            "train",
            str(directory / RUN_CONFIG),
            "--out",
            str(directory),
            "--progress",
            "log",  # plain lines every few seconds: the log shows how far the run is
            "--set",
            f"train.threads={self.threads}",
        ]
        with open_append(log_path) as log:  # a resumed run appends: the log keeps the whole story
            with self._lock:  # started under the lock, so a stopping sweep never misses a process
                if self._stopping:
                    return Outcome(run, None, "not started: the sweep was stopped")
                proc = subprocess.Popen(
                    cmd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=run_env(self.threads),
                )
                self._procs.add(proc)
            rc = proc.wait()
            with self._lock:
                self._procs.discard(proc)
        summary_path = directory / SUMMARY
        if rc != 0 or not summary_path.is_file():
            why = _last_line(log_path) or f"exit status {rc} without a summary.json"
            return Outcome(run, None, f"{why} (log: {log_path})")
        return Outcome(run, read_json(summary_path))

    def _kill_all(self) -> None:
        """Stop runs still training: SIGTERM makes `train` write a checkpoint first, SIGKILL if it hangs."""
        with self._lock:
            self._stopping = True
            procs = list(self._procs)
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()


# Deprecation notices of the libraries (transformers, torch) say nothing about a run's results; repeated in
# every run's log they hide its progress lines.
QUIET_WARNINGS = ("ignore::DeprecationWarning", "ignore::FutureWarning")


def run_env(threads: int) -> dict[str, str]:
    """The environment of a run's process: its thread count, and third-party deprecation warnings off."""
    warnings = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS", ""), *QUIET_WARNINGS]))
    return dict(
        os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONWARNINGS=warnings
    )


def _last_line(path: Path) -> str:
    lines = [
        ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()
    ]
    return lines[-1] if lines else ""
