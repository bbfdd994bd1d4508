"""The `ray` backend: one Ray task per run, on a fresh local instance or an existing cluster (the sweep
directory must then be on a filesystem every node sees at the same path)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rewritelab.config import apply_overrides
from rewritelab.errors import UserError
from rewritelab.kinds import build_run_config, train_any_run
from rewritelab.layout import sweep_run_dir
from rewritelab.sweep.backends import (
    BackendOptions,
    Outcome,
    configured_threads,
    cpu_count,
    cuda_request,
    plan_workers,
    register_backend,
    wants_cuda,
)
from rewritelab.sweep.grid import RunSpec

RAY_CONNECT_TIMEOUT_S = 5.0
RAY_JOIN_TIMEOUT_S = 30.0


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


@register_backend("ray")
class RayBackend:
    """One Ray task per run, on a fresh local instance or an existing cluster (`--ray-address`).

    On a local instance runs are planned like the local backend (cores // workers threads each); on a
    cluster each task takes one CPU (and one GPU when the runs use CUDA) and Ray places them.
    """

    def __init__(self, workers: int | None, configs: dict[str, Any], address: str | None):
        self.requested_workers = workers
        self.configs = configs
        self.address = address

    @classmethod
    def check(cls, options: BackendOptions) -> None:
        import_ray()
        if options.address:
            check_reachable(options.address)

    @classmethod
    def start(
        cls, options: BackendOptions, runs: list[RunSpec], configs: dict[str, Any], sweep_dir: Path
    ) -> RayBackend:
        return cls(options.workers, configs, options.address)

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
