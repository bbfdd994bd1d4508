"""Sweeps: a preset or sweep file (base run config × grid × seeds) → run directories → one results database.

`presets` finds and loads the packaged presets, `grid` parses a sweep and expands it into runs with stable
ids, `backends` trains runs (local processes or Ray tasks), `reuse` copies runs another sweep already
computed, `runner` drives a whole sweep, idempotently, `rebuild` re-makes a damaged results database
from the run directories, and `cost` and `plan` say what a sweep would do and cost before it starts
(`--dry-run`).
"""

from rewritelab.sweep.backends import BACKENDS, plan_workers
from rewritelab.sweep.grid import (
    Axis,
    RunSpec,
    Sweep,
    expand,
    is_sweep_file,
    parse_seeds_option,
    parse_sweep,
    validate_runs,
)
from rewritelab.sweep.plan import Plan, format_plan, plan_sweep, sweep_estimate
from rewritelab.sweep.presets import available_presets, load_sweep, preset_names, preset_text
from rewritelab.sweep.rebuild import rebuild_results
from rewritelab.sweep.runner import SweepResult, check_sweep, prepare_sweep_dir, run_sweep

__all__ = [
    "BACKENDS",
    "Axis",
    "Plan",
    "RunSpec",
    "Sweep",
    "SweepResult",
    "available_presets",
    "check_sweep",
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
    "rebuild_results",
    "run_sweep",
    "sweep_estimate",
    "validate_runs",
]
