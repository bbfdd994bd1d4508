"""Reusing finished runs of other sweeps (`rewritelab sweep --reuse DIR`).

A run (of any kind) whose config equals a pending run's in everything that determines its results
(`run_identity`: data, model and training, execution settings such as threads aside) is the same
experiment: E2's no-op-free runs and E3's uniform runs are E1's runs of the same I and seed. Its
directory is copied into this sweep instead of training it again; the sweep then records it like any
finished run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rewritelab.config import load_yaml
from rewritelab.errors import UserError
from rewritelab.folders import RUN, hold_folder, mark_folder
from rewritelab.io import atomic_dir, copy_owned, read_json
from rewritelab.kinds import build_run_config, run_identity
from rewritelab.layout import RUN_CONFIG, RUN_NAMES, RUNS_DIR, SUMMARY, sweep_run_dir
from rewritelab.sweep.grid import RunSpec
from rewritelab.versions import note_version_changes


def run_roots(sources: Iterable[str | os.PathLike]) -> list[Path]:
    """The directories of run directories that `--reuse` sources name: a sweep directory's runs/, or a
    directory of run directories; a source that is not there is an error."""
    roots = []
    for source in map(Path, sources):
        root = source / RUNS_DIR if (source / RUNS_DIR).is_dir() else source
        if not root.is_dir():
            raise UserError(f"--reuse {source}: no such directory; give a sweep directory")
        roots.append(root)
    return roots


def finished_runs(sources: Iterable[str | os.PathLike]) -> dict[str, Path]:
    """Identity → run directory of every finished run (a summary and a readable config) in `sources`."""
    index: dict[str, Path] = {}
    for root in run_roots(sources):
        for run_dir in sorted(p for p in root.iterdir() if (p / SUMMARY).is_file()):
            try:
                cfg = build_run_config(load_yaml(run_dir / RUN_CONFIG))
            except (UserError, OSError):
                continue  # not a run this version can read: never reused
            index.setdefault(_key(cfg), run_dir)
    return index


def reusable_runs(
    pending: Iterable[RunSpec], configs: dict[str, Any], sweep_dir: Path, sources: Iterable[Any]
) -> dict[str, Path]:
    """Run id → the finished run of `sources` that already computed it, for each pending run that has
    one (what `--reuse` copies; `--dry-run` lists it)."""
    index = finished_runs(sources)
    found = {}
    for run in pending:
        source = index.get(_key(configs[run.run_id]))
        if source is not None and source.resolve() != sweep_run_dir(sweep_dir, run.run_id).resolve():
            found[run.run_id] = source
    return found


def reuse_runs(
    pending: Iterable[RunSpec], configs: dict[str, Any], sweep_dir: Path, sources: Iterable[Any]
) -> dict[str, Path]:
    """Copy into `sweep_dir` each pending run that a finished run of `sources` already computed; returns
    run id → the directory it came from. Only a run's own files are copied (`RUN_NAMES`), each landing in
    one rename, summary.json last; they replace a partial run of that id, whose other files (a user's)
    stay. All under that run's lock: a run another process trains is refused."""
    reused = reusable_runs(pending, configs, sweep_dir, sources)
    for run_id, source in reused.items():
        note_version_changes(_recorded_versions(source), f"reused run {run_id} (from {source})")
        dest = sweep_run_dir(sweep_dir, run_id)
        with hold_folder(dest, RUN), atomic_dir(dest, RUN_NAMES) as staged:
            copy_owned(source, staged, RUN_NAMES)
            mark_folder(staged, RUN)
    return reused


def _key(cfg: Any) -> str:
    return json.dumps(run_identity(cfg), sort_keys=True)


def _recorded_versions(run_dir: Path) -> Any:
    """The versions a finished run's summary.json records (None when it has none or cannot be read: the
    sweep then refuses a damaged summary when it records the run)."""
    try:
        return read_json(run_dir / SUMMARY).get("versions")
    except (OSError, ValueError, AttributeError):
        return None
