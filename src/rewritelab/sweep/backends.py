"""Backends: where a sweep's runs train. A backend runs a list of `RunSpec`s and yields an `Outcome`
(summary or error) as each run finishes; the sweep driver records the results.

One protocol (`Backend`), one registry (`BACKENDS`, filled by `register_backend`): `local` (`sweep.local`)
runs N worker processes, one per run, each with cores // N threads (many small runs are fastest as N
processes × 1 thread); `ray` (`sweep.ray_backend`) runs one task per run on a local instance or an
existing cluster. A new backend is a class with these four methods and one `register_backend` line; the
`sweep` and `reproduce` commands take it by name (`--backend NAME`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rewritelab.errors import UserError
from rewritelab.run import cpu_count
from rewritelab.sweep.grid import RunSpec


@dataclass(frozen=True)
class Outcome:
    run: RunSpec
    summary: dict[str, Any] | None
    error: str | None = None


@dataclass(frozen=True)
class BackendOptions:
    """What the sweep command says about where runs train."""

    workers: int | None = None  # --workers: runs at once (None: the backend's default)
    address: str | None = None  # --ray-address: a cluster to join (None: this machine)


class Backend(Protocol):
    """Where runs train. `check` runs before the sweep directory is touched, `start` once there are runs to
    train; `run` trains them (each run through `rewritelab.kinds`, e.g. `rewritelab train` in a worker
    process) and yields an `Outcome` as each one finishes."""

    @classmethod
    def check(cls, options: BackendOptions) -> None:
        """Refuse options this backend cannot honour (a missing package, an unreachable cluster)."""
        ...

    @classmethod
    def start(
        cls, options: BackendOptions, runs: list[RunSpec], configs: dict[str, Any], sweep_dir: Path
    ) -> Backend:
        """The backend for the pending `runs` of the sweep in `sweep_dir` (`configs`: every run's built
        config, by run id)."""
        ...

    def describe(self) -> str:
        """What the sweep's log says it runs on (e.g. `local backend, 2 worker processes x 1 threads`)."""
        ...

    def run(self, runs: list[RunSpec], sweep_dir: Path) -> Iterator[Outcome]:
        """Train `runs` in their directories under `sweep_dir`; yield each one's outcome as it finishes."""
        ...


BACKENDS: dict[str, type[Backend]] = {}  # name (`--backend NAME`) → backend class


def register_backend(name: str) -> Callable[[type[Backend]], type[Backend]]:
    """Class decorator: make the class the backend `--backend NAME` selects."""

    def register(cls: type[Backend]) -> type[Backend]:
        BACKENDS[name] = cls
        return cls

    return register


def backend_named(name: str) -> type[Backend]:
    if name not in BACKENDS:
        raise UserError(f"--backend {name!r}: must be one of {', '.join(BACKENDS)}")
    return BACKENDS[name]


# ---------------------------------------------------------------------------------------------------------
# Planning: how many runs at once, how many threads each


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
