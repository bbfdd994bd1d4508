"""Sweep definitions and their expansion: a base run config × grid axes × seeds → one `RunSpec` per run.

`base` is a full run config, `grid` lists axes whose values combine as a Cartesian product (a `zip` axis
advances several parameters together), `seeds` repeats every grid point. Expansion is pure and
deterministic, so the same sweep always gives the same run ids; every run config is validated (built
into a `RunConfig`, or an `LMRunConfig` when it has an `lm:` section) before anything is written or
started, so a typo in a grid fails in a second instead of after hours of training.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rewritelab.config import apply_overrides, set_path, unknown_key_error
from rewritelab.errors import UserError
from rewritelab.kinds import build_run_config
from rewritelab.run import EXECUTION_FIELDS
from rewritelab.textfmt import quoted

SWEEP_KEYS = ("preset", "description", "base", "grid", "seeds")
RUN_SECTIONS = ("data", "model", "lm", "train")  # the sections of a run config (either kind)
SEED_PATHS = ("data.seed", "train.seed")
MAX_VALUE_SLUG = 40
MAX_RUNS = 100_000  # far beyond any sweep that could be trained; expanding more takes minutes and GBs
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
        own set of runs, so `--seeds 0` today and `--seeds 0,1,2` tomorrow extend one sweep), nor the
        base's execution settings (threads, device, progress, trackers: a run resumes whatever they say)."""
        cfg = copy.deepcopy(self.to_config())
        train = cfg["base"].get("train")
        if isinstance(train, dict):
            cfg["base"]["train"] = {k: v for k, v in train.items() if k not in EXECUTION_FIELDS}
        return {k: cfg[k] for k in ("preset", "base", "grid")}

    @property
    def params(self) -> list[str]:
        return [p for axis in self.grid for p in axis.params]


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
    if set(raw) & set(RUN_SECTIONS) and not set(raw) & {"base", "grid"}:
        raise UserError(
            f"{where}: a run config (data:, model:, train:), not a sweep: train it with `rewritelab train "
            f"{where} --out RUN_DIR`, or put it under base: in a sweep file"
        )
    for key in raw:
        if key not in SWEEP_KEYS:
            raise unknown_key_error(where, key, SWEEP_KEYS)
    base = raw.get("base")
    if not isinstance(base, dict):
        raise UserError(
            f"{where}: base: must be a full run config (a mapping with data:, model: or lm:, train:)"
        )
    description = raw.get("description") or ""
    if not isinstance(description, str):
        raise UserError(f"{where}: description: must be a string")
    grid = _parse_grid(raw.get("grid"), where)
    seed_list = _parse_seeds(raw.get("seeds", [0]) if seeds is None else seeds, where)
    _check_overrides(overrides or [], grid)
    return Sweep(name, description, apply_overrides(base, list(overrides or [])), grid, seed_list)


def is_sweep_file(raw: Any) -> bool:
    """Whether parsed YAML is a sweep (base:, grid:, seeds: or include:) rather than a run config, so
    `train` can point to `sweep`."""
    return (
        isinstance(raw, dict)
        and not set(raw) & set(RUN_SECTIONS)
        and bool(set(raw) & {*SWEEP_KEYS, "include"})
    )


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
        raise UserError(f"{where}: {quoted(param)} is not a parameter path; write SECTION.KEY (data.seed)")
    if param in SEED_PATHS:
        raise UserError(f"{where}: {param} is set by seeds:; list the seeds there (or use --seeds)")


def _value_list(values: Any, where: str) -> list[Any]:
    if not isinstance(values, list):
        raise UserError(f"{where}: expected a list of values, got {quoted(values)}")
    if not values:
        raise UserError(f"{where}: empty list of values; give at least one value or remove the axis")
    return values


def _parse_seeds(raw: Any, where: str) -> tuple[int, ...]:
    if not isinstance(raw, (list, tuple)) or not raw:
        raise UserError(f"{where}: seeds: must be a non-empty list of integers, e.g. [0, 1, 2]")
    for seed in raw:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise UserError(f"{where}: seeds: {quoted(seed)} is not a non-negative integer")
    if len(set(raw)) != len(raw):
        raise UserError(f"{where}: seeds: {list(raw)} repeats a seed; each seed must appear once")
    return tuple(raw)


def _check_overrides(overrides: Sequence[str], grid: tuple[Axis, ...]) -> None:
    """Reject a `--set` the grid would silently overwrite, and seeds set outside `--seeds`."""
    params = [p for axis in grid for p in axis.params]
    for item in overrides:
        key, where = item.partition("=")[0], f"--set {quoted(item)}"
        if key in SEED_PATHS:
            raise UserError(f"{where}: seeds are set per run; use --seeds instead")
        for param in params:
            if key == param or key.startswith(param + ".") or param.startswith(key + "."):
                raise UserError(f"{where}: the grid varies {param}; remove the override or the axis")


def parse_seeds_option(text: str) -> list[int]:
    """`--seeds 0,1,2` → [0, 1, 2]."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds {quoted(text)}: expected comma-separated integers (0,1,2)") from None
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
    check_run_count(sweep)
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


def check_run_count(sweep: Sweep) -> None:
    """Refuse a grid too large to expand, from its axes' lengths alone (before anything is built)."""
    sizes = [len(axis.values) for axis in sweep.grid] + [len(sweep.seeds)]
    count = math.prod(sizes)
    if count > MAX_RUNS:
        raise UserError(
            f"grid: {' x '.join(map(str, sizes))} (axes x seeds) = {count:,} runs, more than the "
            f"{MAX_RUNS:,} a sweep may hold; shorten the axes or split the sweep"
        )


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
    slugs = [_sanitize(value_slug(v)) for v in values]
    for i, value in enumerate(values):
        clash = any(
            slugs[j] == slugs[i] and _canonical(values[j]) != _canonical(value) for j in range(len(values))
        )
        if clash or len(slugs[i]) > MAX_VALUE_SLUG:
            slugs[i] = f"{slugs[i][: MAX_VALUE_SLUG - 8]}_{_digest(value)}"
    return slugs


def value_slug(value: Any) -> str:
    """A readable slug of one grid value (in run ids and in the sentences of `rewritelab reproduce`)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return "-".join(value_slug(v) for v in value)
    if isinstance(value, dict):
        head = [str(value["name"])] if "name" in value else []
        rest = [f"{k}{value_slug(v)}" for k, v in value.items() if k != "name" and not _is_component_list(v)]
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
                f"grid: two runs share the id {quoted(run.run_id)} (a grid axis repeats a value); "
                "remove the duplicate value"
            )
        seen[run.run_id] = run


# ---------------------------------------------------------------------------------------------------------
# Validation and run directories


def validate_runs(runs: list[RunSpec]) -> dict[str, Any]:
    """Build every run's config, of whichever kind (no training): a bad value fails before any run
    starts."""
    configs = {}
    for run in runs:
        try:
            configs[run.run_id] = build_run_config(run.config)
        except UserError as e:
            raise UserError(f"run {run.run_id}: {e}") from None
    return configs
