"""Sweeps: a preset or sweep file (base run config × grid × seeds) → run directories → one results database.

`presets` finds and loads the packaged presets, `grid` parses a sweep and expands it into runs with stable
ids, `backends` is where runs train (the protocol and its registry: `local` processes, `ray` tasks),
`reuse` copies runs another sweep already computed, `runner` drives a whole sweep, idempotently, and
`rebuild` re-makes a damaged results database from the run directories.
"""

from rewritelab.sweep import local, ray_backend  # noqa: F401 - registers the local and ray backends
from rewritelab.sweep.backends import (
    BACKENDS,
    Backend,
    BackendOptions,
    Outcome,
    configured_threads,
    plan_workers,
    register_backend,
)
from rewritelab.sweep.grid import (
    Axis,
    RunSpec,
    Sweep,
    expand,
    parse_seeds_option,
    parse_sweep,
    validate_runs,
    value_slug,
)
from rewritelab.sweep.presets import available_presets, load_sweep, preset_names, preset_text
from rewritelab.sweep.rebuild import rebuild_results
from rewritelab.sweep.runner import SweepResult, prepare_sweep_dir, run_sweep

__all__ = [
    "BACKENDS",
    "Axis",
    "Backend",
    "BackendOptions",
    "Outcome",
    "RunSpec",
    "Sweep",
    "SweepResult",
    "available_presets",
    "configured_threads",
    "expand",
    "load_sweep",
    "parse_seeds_option",
    "parse_sweep",
    "plan_workers",
    "prepare_sweep_dir",
    "preset_names",
    "preset_text",
    "register_backend",
    "rebuild_results",
    "run_sweep",
    "validate_runs",
    "value_slug",
]
