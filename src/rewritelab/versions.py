"""What a run ran with besides the machine: rewritelab's own code version and the versions of the packages
that decide its numbers. Every summary.json (and checkpoint) records them, the results store and report
show them, and a run resumed or reused under other versions says so in one line on stderr.

The same config and seed reproduce a run's bytes only under the same versions (a numpy release changes a
sampler, a transformers release a loader's numerics): the record is what lets a reader tell.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from rewritelab import __version__

PACKAGES = ("torch", "transformers", "peft", "trl", "numpy")  # recorded as null when not installed


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """`rewritelab.__version__`, plus `+git.<short hash>` when the code runs from a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return __version__
    commit = out.stdout.strip()
    return f"{__version__}+git.{commit}" if out.returncode == 0 and commit else __version__


def package_version(name: str) -> str | None:
    """The installed distribution's version (read from its metadata: nothing is imported), or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def current_versions() -> dict[str, str | None]:
    """`{"rewritelab": code_version(), "torch": ..., ...}`: what a summary.json records as `versions`."""
    return {"rewritelab": code_version(), **{name: package_version(name) for name in PACKAGES}}


def version_changes(recorded: Any, current: dict[str, str | None]) -> list[str]:
    """`torch 2.12.0 (now 2.13.0)` for each package that `recorded` and `current` both name with a
    version, and the versions differ. A record without versions (runs from before them), or a package
    missing on either side, is unknown rather than different: nothing to say."""
    if not isinstance(recorded, dict):
        return []
    known = {name: now for name, now in current.items() if now is not None}
    return [
        f"{name} {recorded[name]} (now {now})"
        for name, now in known.items()
        if isinstance(recorded.get(name), str) and recorded[name] != now
    ]


def note_version_changes(recorded: Any, what: str) -> None:
    """One line on stderr when `what` (a resumed or reused run) recorded other versions than this
    environment's; the run goes on: a notice, not an error."""
    changes = version_changes(recorded, current_versions())
    if changes:
        print(f"rewritelab: note: {what} ran with {', '.join(changes)}; continuing", file=sys.stderr)
