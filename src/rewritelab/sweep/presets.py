"""Presets and sweep files: find, list, print and load them, resolving `include:`.

A packaged preset is `rewritelab/presets/NAME.yaml`. Names starting with `_` are shared bases: they are not
listed and cannot be run by name, but any preset or sweep file may say `include: NAME` (a packaged preset
or base) or `include: PATH` (a YAML file, relative to the including file). The included file's mapping
(its own includes resolved first) lies under the including one: mappings merge key by key, every other
value, lists included, is replaced by the including file. So a preset states only what it changes.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from rewritelab.config import load_yaml, unknown_key_error
from rewritelab.errors import UserError
from rewritelab.sweep.grid import SWEEP_KEYS, Sweep, parse_sweep
from rewritelab.textfmt import clip, quoted

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

INCLUDE_KEY = "include"
MAX_INCLUDES = 16  # files an include chain may pass through beyond the first (the presets use 6 at most)


def _preset_root() -> Traversable:
    return resources.files("rewritelab") / "presets"


def _packaged_names() -> list[str]:
    """Every packaged preset file, the `_` bases included."""
    return sorted(p.name[: -len(".yaml")] for p in _preset_root().iterdir() if p.name.endswith(".yaml"))


def preset_names() -> list[str]:
    """The presets that can be run by name (not the `_` bases, which are only included)."""
    return [name for name in _packaged_names() if not name.startswith("_")]


def available_presets() -> dict[str, str]:
    """Preset name → one-line description, for `rewritelab presets`."""
    return {name: load_sweep(name).description for name in preset_names()}


def preset_text(name: str) -> str:
    """A packaged preset as one YAML document, includes resolved: its description, the comments of the
    preset and of the files it includes that still hold (`_true_comments`), then every setting (it loads
    back as the same sweep)."""
    _check_preset_name(name)
    source = _Source.preset(name)
    raw = _resolve(source, [])
    description = raw.get("description")
    head = [] if description is None else [f"description: {json.dumps(description, ensure_ascii=False)}"]
    head += _true_comments(_chain(source))
    order = [k for k in SWEEP_KEYS if k in raw] + [k for k in raw if k not in SWEEP_KEYS]
    body = {k: raw[k] for k in order if k != "description"}
    return "".join(f"{line}\n" for line in head) + (_dump(body) if body else "")


def _check_preset_name(name: str) -> None:
    names = preset_names()
    if name not in names:
        if name.startswith("_") and name in _packaged_names():
            raise UserError(
                f"preset {name!r} is a shared base for `include: {name}`, not a sweep to run; "
                f"available: {', '.join(names)}"
            )
        close = [n for n in names if n.startswith(f"{name}-")] or difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
        raise UserError(
            f"unknown preset {quoted(name)}; {hint}available: {', '.join(names)} "
            "(or give a sweep YAML file path)"
        )


def _looks_like_path(source: str) -> bool:
    return source.endswith((".yaml", ".yml")) or os.sep in source or Path(source).exists()


def load_sweep(
    source: str, overrides: Sequence[str] | None = None, seeds: Sequence[int] | None = None
) -> Sweep:
    """Load a packaged preset by name or a sweep YAML file by path, applying `--set` and `--seeds`."""
    if _looks_like_path(source):
        where = str(source)
        raw = _resolve(_Source.file(Path(source)), [])
        name = str(raw.get("preset") or Path(source).stem)
    else:
        _check_preset_name(source)
        where = f"preset {source}"
        name = source
        raw = _resolve(_Source.preset(source), [])
    return parse_sweep(raw, name, where, overrides, seeds)


# ---------------------------------------------------------------------------------------------------------
# include:


@dataclass(frozen=True)
class _Source:
    """One YAML file of a sweep: a packaged preset or a file on disk."""

    where: str  # how messages name it: "preset e1-cpu" or the path as given
    location: Traversable  # the file; `include: PATH` is relative to its directory
    packaged: bool

    @classmethod
    def preset(cls, name: str) -> _Source:
        return cls(f"preset {name}", _preset_root() / f"{name}.yaml", True)

    @classmethod
    def file(cls, path: Path) -> _Source:
        return cls(str(path), path, False)

    @property
    def key(self) -> str:
        """The same file reached by two names has one key (for cycle detection)."""
        loc = self.location
        return str(Path(loc).resolve()) if isinstance(loc, Path) else str(loc)

    def text(self) -> str:
        return self.location.read_text(encoding="utf-8")

    def mapping(self, included_by: str | None) -> dict[str, Any]:
        """The file's top-level mapping; `included_by` (the including file and value) prefixes the message
        when an included file is malformed or not a mapping."""
        if not self.packaged:  # read like a run config: a missing file or bad YAML names the file and line
            try:
                data = load_yaml(self.location)
            except UserError as e:
                raise UserError(f"{included_by}: {e}" if included_by else str(e)) from None
            unknown = [key for key in data if key not in (*SWEEP_KEYS, INCLUDE_KEY)]
            if included_by and unknown:  # name the included file, not the one that includes it
                raise unknown_key_error(
                    f"{included_by}: {self.where}", unknown[0], [*SWEEP_KEYS, INCLUDE_KEY]
                )
            return data
        data = yaml.safe_load(self.text())
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise UserError(f"{included_by or self.where}: {self.where} is not a mapping of sweep settings")
        return data

    def include(self, value: Any) -> _Source:
        """The source that `include: value` in this file names."""
        where = f"{self.where}: {INCLUDE_KEY}:"
        if not isinstance(value, str) or not value.strip():
            raise UserError(f"{where} expected a preset name or a YAML file path, got {quoted(value)}")
        if value.endswith((".yaml", ".yml")) or "/" in value or os.sep in value:
            target = _preset_root() / value if self.packaged else Path(self.location).parent / value
            if not target.is_file():
                raise UserError(f"{where} {quoted(value)}: no such file ({clip(str(target))})")
            name = value[: -len(".yaml")] if self.packaged and value.endswith(".yaml") else value
            return _Source(f"preset {name}" if self.packaged else str(target), target, self.packaged)
        names = _packaged_names()
        if value not in names:
            close = difflib.get_close_matches(value, names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise UserError(
                f"{where} unknown preset {quoted(value)}; {hint}known: {', '.join(names)} "
                "(or give a path ending in .yaml, relative to this file)"
            )
        return _Source.preset(value)


def _resolve(source: _Source, stack: list[_Source], included_by: str | None = None) -> dict[str, Any]:
    """The file's mapping with its `include:` chain merged in (includes first, this file on top)."""
    if len(stack) >= MAX_INCLUDES:
        raise UserError(
            f"{stack[0].where}: {INCLUDE_KEY}: a chain of more than {MAX_INCLUDES} files "
            f"({stack[0].where} -> ... -> {source.where}); no sweep needs that many"
        )
    if any(s.key == source.key for s in stack):
        cycle = " -> ".join(s.where for s in [*stack, source])
        raise UserError(
            f"{stack[0].where}: {INCLUDE_KEY}: cycle {cycle} (a file cannot include itself, even indirectly)"
        )
    raw = source.mapping(included_by)
    if INCLUDE_KEY not in raw:
        return raw
    own = {k: v for k, v in raw.items() if k != INCLUDE_KEY}
    included = source.include(raw[INCLUDE_KEY])
    base = _resolve(included, [*stack, source], f"{source.where}: {INCLUDE_KEY}: {quoted(raw[INCLUDE_KEY])}")
    return merge(base, own)


def _chain(source: _Source) -> list[_Source]:
    """The source and the files it includes, nearest first (only called on resolved, valid chains)."""
    chain = [source]
    while True:
        raw = chain[-1].mapping(None)
        if INCLUDE_KEY not in raw:
            return chain
        chain.append(chain[-1].include(raw[INCLUDE_KEY]))


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top` over `base`: mappings merge key by key (base keys keep their order, new keys follow); any
    other value of `top`, a list included, replaces the one in `base`."""
    out = dict(base)
    for key, value in top.items():
        below = out.get(key)
        out[key] = merge(below, value) if isinstance(below, dict) and isinstance(value, dict) else value
    return out


# ---------------------------------------------------------------------------------------------------------
# Printing a resolved preset


class _Dumper(yaml.SafeDumper):
    """The presets' layout: sequences indented under their key, lists of scalars inline, mappings as blocks
    except flat ones of several keys inside a list (`- {name: repeated, k: [2, 3], block_len: 2}`)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)


class _InlineMap(dict):
    pass


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list))


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    items = [_InlineMap(v) if _inline_map(v) else v for v in data]
    return dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=all(map(_inline, data)))


def _inline_map(value: Any) -> bool:
    """A mapping of several scalars or lists of scalars (a one-key mapping reads better as `- key: value`)."""
    return isinstance(value, dict) and len(value) > 1 and all(map(_inline, value.values()))


def _inline(value: Any) -> bool:
    return _is_scalar(value) or (isinstance(value, list) and all(map(_is_scalar, value)))


_Dumper.add_representer(list, _represent_list)
_Dumper.add_representer(
    dict, lambda dumper, data: dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=False)
)
_Dumper.add_representer(
    _InlineMap, lambda dumper, data: dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)
)


def _dump(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=10**6, allow_unicode=True)


def _true_comments(chain: list[_Source]) -> list[str]:
    """The head comments of each file of an include chain, nearest first; an included file's notes
    describe its run config, so where a file above changes one of its `base:` settings they no longer
    hold, and one line says which settings changed instead."""
    lines: list[str] = []
    above: dict[str, Any] = {}  # what the files above the current one set
    for src in chain:
        own = {k: v for k, v in src.mapping(None).items() if k != INCLUDE_KEY}
        changed = _changed(own.get("base"), above.get("base"))
        if changed:
            name = src.where.removeprefix("preset ")
            lines.append(f"# Built on {name}, whose notes no longer hold: this changes {', '.join(changed)}.")
        else:
            lines += _head_comments(src.text())
        above = merge(own, above)
    return lines


def _changed(below: Any, above: Any, prefix: str = "") -> list[str]:
    """The setting paths that `below` sets and `above` sets to something else."""
    if not isinstance(below, dict) or not isinstance(above, dict):
        return [prefix.rstrip(".")] if above is not None and above != below else []
    return [p for key in below if key in above for p in _changed(below[key], above[key], f"{prefix}{key}.")]


def _head_comments(text: str) -> list[str]:
    """The comment lines at the top of a preset file (before its first setting other than description:
    and include:)."""
    lines = []
    for line in text.splitlines():
        if line.startswith("#"):
            lines.append(line)
        elif line.strip() and not line.startswith(("description:", f"{INCLUDE_KEY}:")):
            break
    return lines
