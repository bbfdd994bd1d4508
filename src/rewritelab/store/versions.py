"""The package versions a run recorded (summary.json's `versions`), as results columns, and the short
table of them per sweep that the markdown export and the HTML report show.

A column holds the version, `not installed` when the run recorded the package as absent, and nothing
(NULL, an empty CSV cell) for runs recorded before versions were: those read as `unknown`. rewritelab's
own version is the older `code_version` column.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rewritelab.versions import PACKAGES

NOT_INSTALLED = "not installed"
UNKNOWN = "unknown"
VERSION_COLUMNS: dict[str, str] = {f"{name}_version": "TEXT" for name in PACKAGES}


def version_columns(summary: dict[str, Any]) -> dict[str, str | None]:
    """A summary's `versions` → the `<package>_version` columns (None for a summary without them)."""
    versions = summary.get("versions")
    if not isinstance(versions, dict):
        return dict.fromkeys(VERSION_COLUMNS)
    return {
        f"{name}_version": NOT_INSTALLED if versions.get(name) is None else str(versions[name])
        for name in PACKAGES
    }


def versions_table(frame) -> tuple[list[str], list[list[str]]]:
    """(header, rows): per sweep, each package's version; where the sweep's runs differ, every version
    with its count of runs (`2.12.0 (3 runs), 2.13.0 (5 runs)`); `unknown` for runs recorded before."""
    counts = _counts(frame)
    rows = [[sweep, *(_spread(c) for c in packages.values())] for sweep, packages in counts.items()]
    return ["sweep", *VERSIONED], rows


def varied_versions(frame) -> list[str]:
    """The packages (and `rewritelab`) whose recorded version differs between runs of one sweep."""
    counts = _counts(frame).values()
    return [name for name in VERSIONED if any(len(packages[name]) > 1 for packages in counts)]


VERSIONED = {"rewritelab": "code_version", **{name: f"{name}_version" for name in PACKAGES}}  # → column


def _counts(frame) -> dict[str, dict[str, Counter]]:
    """Sweep → package → how many runs (not rows: a run has a row per split) recorded each version."""
    runs = frame.drop_duplicates("run_id")
    sweeps = runs["sweep"].map(_text)
    return {
        sweep: {
            name: Counter(_text(v, UNKNOWN) for v in runs.loc[sweeps == sweep, column])
            for name, column in VERSIONED.items()
        }
        for sweep in sorted(set(sweeps))
    }


def _spread(counts: Counter) -> str:
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{value} ({n} {'run' if n == 1 else 'runs'})" for value, n in sorted(counts.items()))


def _text(value: Any, missing: str = "-") -> str:
    return missing if value is None or value != value else str(value)  # NaN != NaN: a missing cell
