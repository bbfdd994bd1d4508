"""Sweeps: a preset (base run config × grid × seeds) → run directories → one results database.

A sweep is declarative: `base` is a full run config, `grid` lists axes whose values combine as a
Cartesian product (a `zip` axis advances several parameters together), `seeds` repeats every grid point.
Expansion is pure and deterministic, so the same preset always gives the same run ids; that is what makes
a sweep idempotent: finished runs (those with `summary.json`) are skipped, interrupted ones resume from
their checkpoints, and each finished run is recorded once in `results.sqlite`.

Every run config is validated before anything is written or started, so a typo in a grid fails in a
second instead of after hours of training. Runs execute on a backend: `local` (N worker processes, one
per run, each with cores // N threads — many small runs are fastest as N processes × 1 thread) or `ray`
(one task per run on a local instance or an existing cluster; the sweep directory must then be on a
filesystem every node sees at the same path).
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import hashlib
import itertools
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from rewritelab.config import apply_overrides, dump_yaml, load_yaml, set_path
from rewritelab.errors import UserError
from rewritelab.io import atomic_write_text, read_json

SWEEP_KEYS = ("preset", "description", "base", "grid", "seeds")
SEED_PATHS = ("data.seed", "train.seed")
BACKENDS = ("local", "ray")
RAY_CONNECT_TIMEOUT_S = 5.0
RAY_JOIN_TIMEOUT_S = 30.0
STOP_GRACE_S = 30.0  # how long an interrupted sweep waits for its runs to checkpoint
MAX_VALUE_SLUG = 40
RUN_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._,+=-]")


# ---------------------------------------------------------------------------------------------------------
# Sweep definitions


@dataclass(frozen=True)
class Axis:
    """One grid axis: the parameters that advance together (a single one for a plain axis)."""

    params: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]  # one tuple (a value per parameter) per position on the axis
    zipped: bool = False

    def to_config(self) -> dict[str, Any]:
        if self.zipped:
            return {"zip": {p: [v[i] for v in self.values] for i, p in enumerate(self.params)}}
        return {self.params[0]: [v[0] for v in self.values]}


@dataclass(frozen=True)
class Sweep:
    """A resolved sweep: `--set` overrides are already applied to `base`, `--seeds` to `seeds`."""

    name: str
    description: str
    base: dict[str, Any]
    grid: tuple[Axis, ...]
    seeds: tuple[int, ...]

    def to_config(self) -> dict[str, Any]:
        """The form written to `sweep.yaml`; it loads back as the same sweep."""
        out: dict[str, Any] = {"preset": self.name, "description": self.description, "base": self.base}
        out["grid"] = [axis.to_config() for axis in self.grid]
        out["seeds"] = list(self.seeds)
        return out

    def identity(self) -> dict[str, Any]:
        """What makes two sweeps the same experiment: not the description, nor the seeds (each seed is its
        own set of runs, so `--seeds 0` today and `--seeds 0,1,2` tomorrow extend one sweep)."""
        cfg = self.to_config()
        return {k: cfg[k] for k in ("preset", "base", "grid")}

    @property
    def params(self) -> list[str]:
        return [p for axis in self.grid for p in axis.params]


def _preset_root():
    return resources.files("rewritelab") / "presets"


def preset_names() -> list[str]:
    return sorted(p.name[: -len(".yaml")] for p in _preset_root().iterdir() if p.name.endswith(".yaml"))


def available_presets() -> dict[str, str]:
    """Preset name → one-line description, for `rewritelab presets`."""
    return {name: load_sweep(name).description for name in preset_names()}


def preset_text(name: str) -> str:
    """The YAML source of a packaged preset."""
    _check_preset_name(name)
    return (_preset_root() / f"{name}.yaml").read_text(encoding="utf-8")


def _check_preset_name(name: str) -> None:
    names = preset_names()
    if name not in names:
        close = [n for n in names if n.startswith(f"{name}-")] or difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
        raise UserError(
            f"unknown preset {name!r}; {hint}available: {', '.join(names)} (or give a sweep YAML file path)"
        )


def _looks_like_path(source: str) -> bool:
    return source.endswith((".yaml", ".yml")) or os.sep in source or Path(source).exists()


def load_sweep(
    source: str, overrides: Sequence[str] | None = None, seeds: Sequence[int] | None = None
) -> Sweep:
    """Load a packaged preset by name or a sweep YAML file by path, applying `--set` and `--seeds`."""
    if _looks_like_path(source):
        where = str(source)
        raw = load_yaml(source)
        name = str(raw.get("preset") or Path(source).stem)
    else:
        _check_preset_name(source)
        where = f"preset {source}"
        name = source
        raw = yaml.safe_load(preset_text(source))
    return parse_sweep(raw, name, where, overrides, seeds)


def parse_sweep(
    raw: Any,
    name: str,
    where: str,
    overrides: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
) -> Sweep:
    """Check the structure of a sweep mapping and resolve it; run configs are validated later."""
    if not isinstance(raw, dict):
        raise UserError(f"{where}: a sweep is a mapping with base:, grid: and seeds:")
    for key in raw:
        if key not in SWEEP_KEYS:
            close = difflib.get_close_matches(str(key), SWEEP_KEYS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(SWEEP_KEYS)}"
            raise UserError(f"{where}: unknown key {key!r} ({hint})")
    base = raw.get("base")
    if not isinstance(base, dict):
        raise UserError(f"{where}: base: must be a full run config (a mapping with data:, model:, train:)")
    description = raw.get("description") or ""
    if not isinstance(description, str):
        raise UserError(f"{where}: description: must be a string")
    grid = _parse_grid(raw.get("grid"), where)
    seed_list = _parse_seeds(raw.get("seeds", [0]) if seeds is None else seeds, where)
    _check_overrides(overrides or [], grid)
    return Sweep(name, description, apply_overrides(base, list(overrides or [])), grid, seed_list)


def _parse_grid(raw: Any, where: str) -> tuple[Axis, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise UserError(
            f"{where}: grid: must be a list of axes (`- data.num_rules: [10, 100]` or `- zip: ...`)"
        )
    axes = tuple(_parse_axis(item, f"{where}: grid[{i}]") for i, item in enumerate(raw))
    seen: set[str] = set()
    for axis in axes:
        for param in axis.params:
            if param in seen:
                raise UserError(
                    f"{where}: grid: {param} appears in two axes; put it on one axis (or zip them)"
                )
            seen.add(param)
    return axes


def _parse_axis(item: Any, where: str) -> Axis:
    if not isinstance(item, dict) or len(item) != 1:
        raise UserError(
            f"{where}: an axis is one mapping, `param.path: [values]` or `zip: {{p1: [...], p2: [...]}}`; "
            "list separate axes as separate items"
        )
    ((key, value),) = item.items()
    if key != "zip":
        _check_param(key, where)
        return Axis((key,), tuple((v,) for v in _value_list(value, f"{where} {key}")))
    if not isinstance(value, dict) or not value:
        raise UserError(f"{where}: zip: must map parameter paths to equally long lists of values")
    lists = {}
    for param, values in value.items():
        _check_param(param, where)
        lists[param] = _value_list(values, f"{where} zip {param}")
    lengths = {len(v) for v in lists.values()}
    if len(lengths) > 1:
        counts = ", ".join(f"{p} has {len(v)}" for p, v in lists.items())
        raise UserError(f"{where}: zip lists must have equal lengths ({counts}); they advance together")
    return Axis(tuple(lists), tuple(zip(*lists.values(), strict=True)), zipped=True)


def _check_param(param: Any, where: str) -> None:
    if not isinstance(param, str) or "." not in param or any(not p for p in param.split(".")):
        raise UserError(f"{where}: {param!r} is not a parameter path; write SECTION.KEY, e.g. data.num_rules")
    if param in SEED_PATHS:
        raise UserError(f"{where}: {param} is set by seeds:; list the seeds there (or use --seeds)")


def _value_list(values: Any, where: str) -> list[Any]:
    if not isinstance(values, list):
        raise UserError(f"{where}: expected a list of values, got {values!r}")
    if not values:
        raise UserError(f"{where}: empty list of values; give at least one value or remove the axis")
    return values


def _parse_seeds(raw: Any, where: str) -> tuple[int, ...]:
    if not isinstance(raw, (list, tuple)) or not raw:
        raise UserError(f"{where}: seeds: must be a non-empty list of integers, e.g. [0, 1, 2]")
    for seed in raw:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise UserError(f"{where}: seeds: {seed!r} is not a non-negative integer")
    if len(set(raw)) != len(raw):
        raise UserError(f"{where}: seeds: {list(raw)} repeats a seed; each seed must appear once")
    return tuple(raw)


def _check_overrides(overrides: Sequence[str], grid: tuple[Axis, ...]) -> None:
    """Reject a `--set` the grid would silently overwrite, and seeds set outside `--seeds`."""
    params = [p for axis in grid for p in axis.params]
    for item in overrides:
        key = item.partition("=")[0]
        if key in SEED_PATHS:
            raise UserError(f"--set {item!r}: seeds are set per run; use --seeds instead")
        for param in params:
            if key == param or key.startswith(param + ".") or param.startswith(key + "."):
                raise UserError(f"--set {item!r}: the grid varies {param}; remove the override or the axis")


def parse_seeds_option(text: str) -> list[int]:
    """`--seeds 0,1,2` → [0, 1, 2]."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds {text!r}: expected comma-separated integers, e.g. --seeds 0,1,2") from None
    if not seeds:
        raise UserError("--seeds: give at least one seed, e.g. --seeds 0,1,2")
    return seeds


# ---------------------------------------------------------------------------------------------------------
# Expansion into runs


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: its id, the grid values that define it, its seed and its raw run config."""

    run_id: str
    params: dict[str, Any]
    seed: int
    config: dict[str, Any]


def expand(sweep: Sweep) -> list[RunSpec]:
    """Grid × seeds → runs, seed-major (all grid points of the first seed come first).

    Ids are built from the grid parameters' short names and values (`num_rules=100.seed=0`), so they are
    stable across runs of the program and readable in a file browser.
    """
    keys = _param_keys(sweep.params)
    slugs = [
        [_value_slugs([pos[i] for pos in axis.values]) for i in range(len(axis.params))]
        for axis in sweep.grid
    ]
    runs: list[RunSpec] = []
    for seed in sweep.seeds:
        for point in itertools.product(*(range(len(axis.values)) for axis in sweep.grid)):
            params: dict[str, Any] = {}
            parts: list[str] = []
            for axis, axis_slugs, index in zip(sweep.grid, slugs, point, strict=True):
                for i, param in enumerate(axis.params):
                    params[param] = axis.values[index][i]
                    parts.append(f"{keys[param]}={axis_slugs[i][index]}")
            parts.append(f"seed={seed}")
            runs.append(
                RunSpec(_sanitize(".".join(parts)), params, seed, _run_config(sweep.base, params, seed))
            )
    _check_unique(runs)
    return runs


def _run_config(base: dict[str, Any], params: dict[str, Any], seed: int) -> dict[str, Any]:
    config = copy.deepcopy(base)
    for param, value in params.items():
        set_path(config, param, copy.deepcopy(value), f"grid: {param}")
    for param in SEED_PATHS:
        set_path(config, param, seed, f"grid: {param}")
    return config


def _param_keys(params: list[str]) -> dict[str, str]:
    """Short names for run ids: the last path component, or the whole path where that is ambiguous."""
    last = [p.rsplit(".", 1)[-1] for p in params]
    return {
        p: (short if last.count(short) == 1 and short != "seed" else p)
        for p, short in zip(params, last, strict=True)
    }


def _value_slugs(values: list[Any]) -> list[str]:
    """A readable slug per value; distinct values that would share a slug get a short hash suffix."""
    slugs = [_sanitize(_slug(v)) for v in values]
    for i, value in enumerate(values):
        clash = any(
            slugs[j] == slugs[i] and _canonical(values[j]) != _canonical(value) for j in range(len(values))
        )
        if clash or len(slugs[i]) > MAX_VALUE_SLUG:
            slugs[i] = f"{slugs[i][: MAX_VALUE_SLUG - 8]}_{_digest(value)}"
    return slugs


def _slug(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return "-".join(_slug(v) for v in value)
    if isinstance(value, dict):
        head = [str(value["name"])] if "name" in value else []
        rest = [f"{k}{_slug(v)}" for k, v in value.items() if k != "name" and not _is_component_list(v)]
        parts = [k for k, v in value.items() if _is_component_list(v)]
        comps = ["+".join(str(c.get("name", "?")) for c in value[k]) for k in parts]
        return "_".join(head + comps + rest)
    return str(value)


def _is_component_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _digest(value: Any) -> str:
    return hashlib.sha256(_canonical(value).encode()).hexdigest()[:6]


def _sanitize(run_id: str) -> str:
    """A file-name-safe id: odd characters become `_`, and no leading dot (hidden files)."""
    return RUN_ID_UNSAFE.sub("_", run_id).lstrip(".") or "run"


def _check_unique(runs: list[RunSpec]) -> None:
    seen: dict[str, RunSpec] = {}
    for run in runs:
        if run.run_id in seen:
            raise UserError(
                f"grid: two runs share the id {run.run_id!r} (a grid axis repeats a value); "
                "remove the duplicate value"
            )
        seen[run.run_id] = run


# ---------------------------------------------------------------------------------------------------------
# Validation and the sweep directory


def build_run_config(config: dict[str, Any]):
    """Raw run config → `RunConfig` (raises `UserError` naming the bad field)."""
    from rewritelab.run import run_config_from_dict

    return run_config_from_dict(config)


def validate_runs(runs: list[RunSpec]) -> dict[str, Any]:
    """Build every run's `RunConfig` (no training): a bad value fails before any run starts."""
    configs = {}
    for run in runs:
        try:
            configs[run.run_id] = build_run_config(run.config)
        except UserError as e:
            raise UserError(f"run {run.run_id}: {e}") from None
    return configs


def run_dir(sweep_dir: Path, run_id: str) -> Path:
    return Path(sweep_dir) / "runs" / run_id


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


def plan_workers(n_runs: int, workers: int | None, cuda: bool) -> tuple[int, int]:
    """(concurrent runs, threads per run): default one run per core on CPU, one run at a time on CUDA."""
    cores = cpu_count()
    if workers is None:
        workers = 1 if cuda else cores
    if workers < 1:
        raise UserError(f"--workers {workers}: must be at least 1")
    workers = max(1, min(workers, n_runs))
    return workers, max(1, cores // workers)


class LocalBackend:
    """Each run in its own `python -m rewritelab train` process; up to `workers` at once."""

    def __init__(self, workers: int, threads: int, log_dir: Path):
        self.workers = workers
        self.threads = threads
        self.log_dir = Path(log_dir)
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._stopping = False

    def run(self, runs: list[RunSpec], sweep_dir: Path) -> Iterator[Outcome]:
        pool = ThreadPoolExecutor(self.workers)
        try:
            futures = [pool.submit(self._train, run, run_dir(sweep_dir, run.run_id)) for run in runs]
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
            str(directory / "config.yaml"),
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
        summary_path = directory / "summary.json"
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

    from rewritelab.run import train_run

    torch.set_num_threads(threads)
    cfg = build_run_config(apply_overrides(config, [f"train.threads={threads}"]))
    return train_run(cfg, Path(directory), progress="none")


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
                workers, threads = plan_workers(len(runs), self.requested_workers, cuda)
            options = {"num_cpus": threads, "num_gpus": 1 if cuda else 0, "max_retries": 0}
            task = ray.remote(_train_in_ray_worker).options(**options)
            queue = iter(runs)
            in_flight: dict[Any, RunSpec] = {}

            def submit_next() -> None:
                run = next(queue, None)
                if run is not None:
                    ref = task.remote(run.config, str(run_dir(sweep_dir, run.run_id).resolve()), threads)
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
    from rewritelab.store import record_run

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
    from rewritelab.store import open_db

    with open_db(db_path) as db:
        return {row[0] for row in db.execute("SELECT DISTINCT run_id FROM results")}


# ---------------------------------------------------------------------------------------------------------
# Summaries (for `rewritelab reproduce`)


@dataclass(frozen=True)
class RunRow:
    """One finished run, the columns of the reproduce table."""

    run_id: str
    num_rules: int | None
    examples_per_rule: float | None
    budget: int | None
    rule_distribution: str | None
    alpha: float | None
    noop_frac: float | None
    family: str | None
    seed: int | None
    accuracy: dict[str, float]
    ci: dict[str, tuple[float, float]]  # splits without a confidence interval are left out


def summary_rows(db_path: Path, run_ids: Sequence[str]) -> list[RunRow]:
    """Rows of the results database for `run_ids` (in that order), one per run with both splits merged."""
    from rewritelab.store import load_results

    frame = load_results(db_path)
    rows = []
    for run_id in run_ids:
        part = frame[frame["run_id"] == run_id]
        if part.empty:
            continue
        first = part.iloc[0]
        accuracy = {r["split"]: float(r["accuracy"]) for _, r in part.iterrows()}
        ci = {
            r["split"]: (_opt(r, "ci_low", float), _opt(r, "ci_high", float))
            for _, r in part.iterrows()
            if _opt(r, "ci_low", float) is not None and _opt(r, "ci_high", float) is not None
        }
        rows.append(
            RunRow(
                run_id=run_id,
                num_rules=_opt(first, "num_rules", int),
                examples_per_rule=_opt(first, "examples_per_rule", float),
                budget=_opt(first, "budget", int),
                rule_distribution=_opt(first, "rule_distribution", str),
                alpha=_opt(first, "alpha", float),
                noop_frac=_opt(first, "noop_frac", float),
                family=_opt(first, "family", str),
                seed=_opt(first, "seed", int),
                accuracy=accuracy,
                ci=ci,
            )
        )
    return rows


def _opt(row: Any, key: str, cast: type) -> Any:
    value = row.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return cast(value)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _acc_cell(row: RunRow, split: str) -> str:
    if split not in row.accuracy:
        return "-"
    if split not in row.ci:
        return _pct(row.accuracy[split])
    low, high = row.ci[split]
    return f"{_pct(row.accuracy[split])} [{100 * low:.1f}, {100 * high:.1f}]"


def format_table(rows: Sequence[RunRow]) -> str:
    """A fixed-width text table: per run I, S, α, no-op share, family, seen / unseen accuracy (95% CI)."""
    header = ["run", "I", "S", "alpha", "no-op", "family", "seen acc [95% CI]", "unseen acc [95% CI]"]
    body = []
    for r in rows:
        alpha = "uniform" if r.rule_distribution == "uniform" else _num(r.alpha)
        body.append(
            [
                r.run_id,
                _num(r.num_rules),
                _num(r.examples_per_rule),
                alpha,
                _num(r.noop_frac),
                r.family or "-",
                _acc_cell(r, "test_seen"),
                _acc_cell(r, "test_unseen"),
            ]
        )
    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def contrast_sentences(sweep: Sweep, rows: Sequence[RunRow]) -> list[str]:
    """For sweeps over the number of rules: the measured unseen-accuracy contrast, fewest vs most rules.

    Seeds are averaged; when other parameters vary too, one sentence per combination of their values.
    """
    if "data.num_rules" not in sweep.params or not rows:
        return []
    by_id = {r.run_id: r for r in rows}
    others = [p for p in sweep.params if p != "data.num_rules"]
    groups: dict[str, dict[int, list[RunRow]]] = {}
    for run in expand(sweep):
        row = by_id.get(run.run_id)
        if row is None or row.num_rules is None:
            continue
        label = ", ".join(f"{p.rsplit('.', 1)[-1]} {_slug(run.params[p])}" for p in others)
        groups.setdefault(label, {}).setdefault(row.num_rules, []).append(row)
    sentences = []
    for label, by_rules in groups.items():
        if len(by_rules) < 2:
            continue
        few, many = min(by_rules), max(by_rules)
        sentences.append(_contrast(few, by_rules[few], many, by_rules[many], label))
    return sentences


def _mean(rows: Sequence[RunRow], split: str) -> float | None:
    values = [r.accuracy[split] for r in rows if split in r.accuracy]
    return sum(values) / len(values) if values else None


def _contrast(few: int, few_rows: list[RunRow], many: int, many_rows: list[RunRow], label: str) -> str:
    lo, hi = _mean(few_rows, "test_unseen"), _mean(many_rows, "test_unseen")
    shown_lo, shown_hi = round(100 * (lo or 0), 1), round(100 * (hi or 0), 1)  # as printed
    verb = "rises from" if shown_lo < shown_hi else "falls from" if shown_lo > shown_hi else "is"
    link = "to" if verb != "is" else "and"
    budgets = {r.budget for r in few_rows + many_rows}
    if len(budgets) == 1 and None not in budgets:
        scale = f"at the same budget of {budgets.pop()} examples"
    else:
        per_rule = (_num(few_rows[0].examples_per_rule), _num(many_rows[0].examples_per_rule))
        scale = f"with {per_rule[0]} and {per_rule[1]} examples per rule"
    seeds = len(few_rows)
    seed_note = f", mean of {seeds} seeds" if seeds > 1 else ""
    cond = f" ({label})" if label else ""
    seen = f"{_pct(_mean(few_rows, 'test_seen'))} / {_pct(_mean(many_rows, 'test_seen'))}"
    return (
        f"Unseen-rule accuracy {verb} {_pct(lo)} with {few} rules {link} {_pct(hi)} with {many} rules {scale}"
        f"{cond} (seen-rule accuracy {seen}{seed_note})."
    )
