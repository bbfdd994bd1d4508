"""Sweeps: a preset or sweep file (base run config × grid × seeds) → run directories → one results database.

`presets` finds and loads the packaged presets, `grid` parses a sweep and expands it into runs with stable
ids, `backends` is where runs train (the protocol and its registry: `local` processes, `ray` tasks),
`reuse` copies runs another sweep already computed, `runner` drives a whole sweep, idempotently,
`rebuild` re-makes a damaged results database from the run directories, `rerun` writes the convergence
rule's re-run of a finished sweep, and `cost` and `plan` say what a sweep would do and cost before it
starts (`--dry-run`).
"""

from rewritelab.sweep import local, ray_backend  # noqa: F401 - registers the local and ray backends
from rewritelab.sweep.backends import (
    BACKENDS,
    Backend,
    BackendOptions,
    Outcome,
    configured_threads,
    cpu_count,
    plan_workers,
    register_backend,
)
from rewritelab.sweep.grid import (
    Axis,
    RunSpec,
    Sweep,
    expand,
    is_sweep_file,
    parse_seeds_option,
    parse_sweep,
    validate_runs,
    value_slug,
)
from rewritelab.sweep.plan import Plan, format_plan, plan_sweep, sweep_estimate
from rewritelab.sweep.presets import available_presets, load_sweep, preset_names, preset_text
from rewritelab.sweep.rebuild import rebuild_results
from rewritelab.sweep.rerun import Missed, rerun_sweep
from rewritelab.sweep.runner import SweepResult, check_sweep, prepare_sweep_dir, run_sweep

__all__ = [
    "BACKENDS",
    "Axis",
    "Plan",
    "Backend",
    "BackendOptions",
    "Missed",
    "Outcome",
    "RunSpec",
    "Sweep",
    "SweepResult",
    "available_presets",
    "check_sweep",
    "configured_threads",
    "cpu_count",
    "expand",
    "format_plan",
    "is_sweep_file",
    "load_sweep",
    "parse_seeds_option",
    "parse_sweep",
    "plan_sweep",
    "plan_workers",
    "prepare_sweep_dir",
    "preset_names",
    "preset_text",
    "register_backend",
    "rebuild_results",
    "rerun_sweep",
    "run_sweep",
    "sweep_estimate",
    "validate_runs",
    "value_slug",
]
