"""Packaged presets: the sweep YAML files under `rewritelab/presets/`, listed, printed and loaded."""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import yaml

from rewritelab.config import load_yaml
from rewritelab.errors import UserError
from rewritelab.sweep.grid import Sweep, parse_sweep


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
