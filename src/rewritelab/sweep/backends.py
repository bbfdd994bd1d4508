"""Backends: each runs a list of `RunSpec`s and yields an `Outcome` (summary or error) as each run finishes.

`local` runs N worker processes, one per run, each with cores // N threads (many small runs are fastest
as N processes × 1 thread); `ray` runs one task per run on a local instance or an existing cluster (the
sweep directory must then be on a filesystem every node sees at the same path).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewritelab.config import apply_overrides
from rewritelab.errors import UserError
from rewritelab.io import read_json
from rewritelab.kinds import build_run_config, train_any_run
from rewritelab.layout import RUN_CONFIG, SUMMARY, sweep_run_dir
from rewritelab.sweep.grid import RunSpec

BACKENDS = ("local", "ray")
RAY_CONNECT_TIMEOUT_S = 5.0
RAY_JOIN_TIMEOUT_S = 30.0
STOP_GRACE_S = 30.0  # how long an interrupted sweep waits for its runs to checkpoint


# ---------------------------------------------------------------------------------------------------------
# Backends: each yields (run, summary, error) as runs finish; the driver records the results.


@dataclass(frozen=True)
class Outcome:
    run: RunSpec
    summary: dict[str, Any] | None
    error: str | None = None


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cuda_request(configs: dict[str, Any]) -> bool | None:
    """True when a run asks for CUDA, None when one says `auto` (CUDA where the run executes has it)."""
    devices = {str(cfg.train.device) for cfg in configs.values()}
    if "cuda" in devices:
        return True
    return None if "auto" in devices else False


def wants_cuda(configs: dict[str, Any]) -> bool:
    """True when runs will train on CUDA on this machine (asked for, or `auto` with a GPU present)."""
    request = cuda_request(configs)
    if request is not None:
        return request
    import torch

    return torch.cuda.is_available()


def configured_threads(configs: dict[str, Any]) -> int:
    """The `train.threads` every run sets (e.g. `--set train.threads=1`), or 0 when they leave it to the
    sweep or disagree."""
    threads = {int(cfg.train.threads) for cfg in configs.values()}
    return threads.pop() if len(threads) == 1 else 0


def plan_workers(n_runs: int, workers: int | None, cuda: bool, threads: int = 0) -> tuple[int, int]:
    """(concurrent runs, threads per run): default one run per core on CPU, one run at a time on CUDA,
    cores // runs threads each unless the runs set `threads` themselves."""
    cores = cpu_count()
    if workers is None:
        workers = 1 if cuda else cores
    if workers < 1:
        raise UserError(f"--workers {workers}: must be at least 1")
    workers = max(1, min(workers, n_runs))
    return workers, threads if threads > 0 else max(1, cores // workers)


class LocalBackend:
    """Each run in its own `python -m rewritelab train` process; up to `workers` at once."""

    def __init__(self, workers: int, threads: int, log_dir: Path):
        self.workers = workers
        self.threads = threads
        self.log_dir = Path(log_dir)
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._stopping = False

    def describe(self) -> str:
        return f"local backend, {self.workers} worker processes x {self.threads} threads"

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
            "none",
            "--set",
            f"train.threads={self.threads}",
        ]
        env = dict(os.environ, OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
        with open(log_path, "wb") as log:
            with self._lock:  # started under the lock, so a stopping sweep never misses a process
                if self._stopping:
                    return Outcome(run, None, "not started: the sweep was stopped")
                proc = subprocess.Popen(
                    cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
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


def _last_line(path: Path) -> str:
    lines = [
        ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()
    ]
    return lines[-1] if lines else ""


def _train_in_ray_worker(config: dict[str, Any], directory: str, threads: int) -> dict[str, Any]:
    """The Ray task body: train one run in the worker process and return its summary."""
    import torch

    torch.set_num_threads(threads)
    cfg = build_run_config(apply_overrides(config, [f"train.threads={threads}"]))
    return train_any_run(cfg, Path(directory), progress="none")


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError(
            "--backend ray needs Ray: pip install 'rewritelab[ray]' (or use --backend local)"
        ) from None
    return ray


class RayBackend:
    """One Ray task per run, on a fresh local instance or an existing cluster (`--ray-address`).

    On a local instance runs are planned like the local backend (cores // workers threads each); on a
    cluster each task takes one CPU (and one GPU when the runs use CUDA) and Ray places them.
    """

    def __init__(self, workers: int | None, configs: dict[str, Any], address: str | None):
        self.requested_workers = workers
        self.configs = configs
        self.address = address

    def describe(self) -> str:
        where = f"cluster {self.address}" if self.address else "a local instance"
        return f"ray backend on {where}"

    def run(self, runs: list[RunSpec], sweep_dir: Path) -> Iterator[Outcome]:
        ray = import_ray()
        connect_ray(ray, self.address)
        try:
            if self.address:
                request = cuda_request(self.configs)
                cuda = request if request is not None else ray.cluster_resources().get("GPU", 0) >= 1
                workers, threads = self.requested_workers or len(runs), 1
            else:
                cuda = wants_cuda(self.configs)
                workers, threads = plan_workers(
                    len(runs), self.requested_workers, cuda, configured_threads(self.configs)
                )
            options = {"num_cpus": threads, "num_gpus": 1 if cuda else 0, "max_retries": 0}
            task = ray.remote(_train_in_ray_worker).options(**options)
            queue = iter(runs)
            in_flight: dict[Any, RunSpec] = {}

            def submit_next() -> None:
                run = next(queue, None)
                if run is not None:
                    ref = task.remote(
                        run.config, str(sweep_run_dir(sweep_dir, run.run_id).resolve()), threads
                    )
                    in_flight[ref] = run

            for _ in range(workers):
                submit_next()
            while in_flight:
                (ref,), _ = ray.wait(list(in_flight), num_returns=1)
                run = in_flight.pop(ref)
                try:
                    yield Outcome(run, ray.get(ref))
                except ray.exceptions.RayError as e:
                    yield Outcome(run, None, _ray_error_line(e))
                submit_next()
        finally:
            ray.shutdown()


def connect_ray(ray, address: str | None) -> None:
    """Start a local Ray instance, or join the cluster at `address` (probed by `check_reachable`)."""
    import logging

    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    else:
        ray.init(
            address="local",
            num_cpus=cpu_count(),
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )


def check_reachable(address: str) -> None:
    """Fail fast on a Ray address nobody answers at, before the sweep directory is touched.

    `ray.init` waits forever on a port that is open but is not a Ray head, so the join is tried in a
    child process under a timeout; a TCP probe first makes the common case (nothing listening) instant.
    """
    if address != "auto":
        _probe_tcp(address)
    code = "import sys, ray; ray.init(address=sys.argv[1], logging_level='ERROR'); ray.shutdown()"
    try:
        probe = subprocess.run(
            [sys.executable, "-c", code, address], capture_output=True, text=True, timeout=RAY_JOIN_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise UserError(
            f"--ray-address {address}: no Ray cluster answered within {RAY_JOIN_TIMEOUT_S:.0f} s; "
            "check the address (`ray status` on the head prints it)"
        ) from None
    if probe.returncode != 0:
        errors = (
            [ln for ln in probe.stderr.splitlines() if "Error" in ln] or probe.stderr.splitlines() or ["?"]
        )
        raise UserError(f"--ray-address {address}: cannot join the Ray cluster ({errors[-1].strip()})")


def _probe_tcp(address: str) -> None:
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise UserError(
            f"--ray-address {address!r}: expected HOST:PORT (e.g. 10.0.0.5:6379), ray://HOST:PORT or auto"
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=RAY_CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        raise UserError(
            f"--ray-address {address}: unreachable ({e.strerror or e}); start the head with "
            "`ray start --head` or omit --ray-address for a local instance"
        ) from None


def _ray_error_line(error: Exception) -> str:
    cause = getattr(error, "cause", None)
    if cause is not None:
        return f"{type(cause).__name__}: {_first_line(cause)}"
    return f"{type(error).__name__}: {_first_line(error)}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
