"""Typed, validated configuration: YAML files + `--set section.key=value` overrides → dataclasses.

Every config section is a dataclass. `from_dict` builds one from plain data (through `build_section`, the
one section builder), rejecting unknown keys and wrong types with a message that names the full field
path (`data.num_rules`), then calls the dataclass's own `validate()` so each stage owns its rules. Value
types that are not mappings (`IntRange`'s `[min, max]`, a family chosen by name) give themselves a
`from_config(value, where)` hook. `to_dict` is the inverse, used to record resolved configs.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import types
import typing
from collections.abc import Sequence
from typing import Any, Literal, TypeVar, Union

import yaml

from rewritelab.bounded_yaml import MAX_DEPTH, parse_yaml
from rewritelab.bounded_yaml import load_yaml as load_yaml  # where the rest of rewritelab imports it
from rewritelab.errors import UserError
from rewritelab.textfmt import clip, quoted

T = TypeVar("T")


class FieldError(UserError):
    """A `validate()` failure on one field; `from_dict` prefixes the section path."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def apply_overrides(config: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides (value parsed as YAML) to a nested dict, returning a new dict; the
    path and its value together stay within `MAX_DEPTH` levels."""
    out = _deepcopy(config)
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        where = f"--set {quoted(item)}"
        if not sep or not key or any(not part for part in key.split(".")):
            raise UserError(f"{where}: expected SECTION.KEY=VALUE, e.g. --set data.num_rules=500")
        depth = len(_path_parts(key, where))
        try:
            value = parse_yaml(raw, where, MAX_DEPTH - depth) if raw != "" else ""
        except yaml.YAMLError:
            raise UserError(f"{where}: the value is not valid YAML") from None
        set_path(out, key, value, where)
    return out


def _path_parts(path: str, where: str) -> list[str]:
    parts = path.split(".")
    if len(parts) >= MAX_DEPTH:
        raise UserError(f"{where}: a path of {len(parts):,} keys; no setting is more than {MAX_DEPTH} deep")
    return parts


def set_path(config: dict[str, Any], path: str, value: Any, where: str) -> None:
    """Set `config["a"]["b"]["c"] = value` for path `a.b.c`, creating missing sections in place."""
    node = config
    parts = _path_parts(path, where)
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise UserError(
                f"{where}: {quoted(part)} is not a section of the run config (it is {quoted(child)})"
            )
        node = child
    node[parts[-1]] = value


def _deepcopy(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _deepcopy(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_deepcopy(v) for v in x]
    return x


# A setting's integers fit in 64 bits, where numpy, torch and results.sqlite's INTEGER columns hold them:
# past that they end in an OverflowError (torch.manual_seed, sqlite) rather than a message.
INT_LIMIT = 2**63


def check_seed(name: str, seed: int) -> None:
    """A seed is in [0, 2^63) (torch.manual_seed takes 64 bits, numpy's SeedSequence any size, and the
    results database stores it as a signed 64-bit integer); a `FieldError` on field `name` otherwise."""
    if not 0 <= seed < INT_LIMIT:
        raise FieldError(name, f"must be in [0, 2**63), got {seed}")


def from_dict(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass `cls` from `data`; `where` is the field path used in error messages."""
    return _convert(cls, data, where)


_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")


def is_setting_name(key: Any) -> bool:
    """Whether a key looks like a setting name, so that an error may quote it. Other keys come from a
    file that is not a config (`include: /etc/shadow` parses as a mapping whose first key is a whole line
    of that file), and an error must not print its content."""
    return isinstance(key, str) and _SETTING_NAME.fullmatch(key) is not None


def unknown_key_error(where: str, key: Any, known: Sequence[str]) -> UserError:
    """An unknown key, quoted with the nearest known one when it looks like a setting name (only then:
    see `is_setting_name`)."""
    if not is_setting_name(key):
        return UserError(
            f"{where}: a key that is not a setting name (not shown; is this a rewritelab YAML file?); "
            f"known keys: {', '.join(known)}"
        )
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
    return UserError(f"{where}: unknown key {key!r} ({hint})")


def build_section(cls: Any, data: Any, where: str) -> Any:
    """The one way a YAML mapping becomes a validated dataclass (every config section goes through it).

    `cls.normalize(data, where)`, when the class has it, first turns a shorthand into the mapping of
    fields (`model: paper` → `{preset: paper, n_layer: 6, ...}`, `occurrences: 3` → `{counts: [3]}`);
    then unknown keys are refused with a suggestion, each field is converted to its annotated type,
    required fields are checked, and the instance's `validate()` runs (its `FieldError`s get the path).
    """
    normalize = getattr(cls, "normalize", None)
    if normalize is not None:
        data = normalize(data, where)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise unknown_key_error(where, key, list(fields))
    kwargs = {}
    for name in fields:
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], f"{where}.{name}")
        elif (
            fields[name].default is dataclasses.MISSING
            and fields[name].default_factory is dataclasses.MISSING
        ):
            raise UserError(f"{where}.{name}: required field is missing")
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        try:
            validate()
        except FieldError as e:
            raise UserError(f"{where}.{e.field}: {e.message}") from None
    return obj


def _convert(tp: Any, value: Any, where: str) -> Any:  # noqa: C901 - one branch per type form
    if tp is Any:
        return value
    hook = getattr(tp, "from_config", None)
    if hook is not None:
        return hook(value, where)
    if dataclasses.is_dataclass(tp):
        return build_section(tp, value, where)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where)
            except UserError as e:
                errors.append(str(e))
        if len(errors) == 1:
            raise UserError(errors[0])
        raise UserError(f"{where}: expected {_describe(tp)}, got {quoted(value)}")
    if origin is Literal:
        if value in args:
            return value
        raise UserError(f"{where}: must be one of {', '.join(map(repr, args))}, got {quoted(value)}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where}: expected a list, got {quoted(value)}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise UserError(f"{where}: expected a list of {len(args)} values, got {quoted(value)}")
            return tuple(
                _convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))
            )
        item = args[0] if args else Any
        items = [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected a mapping, got {quoted(value)}")
        kt, vt = args or (Any, Any)
        return {_convert(kt, k, where): _convert(vt, v, f"{where}.{clip(str(k))}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"{where}: expected true or false, got {quoted(value)}")
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise UserError(f"{where}: expected an integer, got {quoted(value)}")
        if not -INT_LIMIT <= value < INT_LIMIT:
            raise UserError(f"{where}: {quoted(value)} is out of range; a setting is an integer below 2**63")
        return value
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)  # YAML reads 1e-3 (no dot) as a string
            except ValueError:
                pass
        raise UserError(f"{where}: expected a number, got {quoted(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise UserError(f"{where}: expected a string, got {quoted(value)}")
    if tp is type(None):
        if value is None:
            return None
        raise UserError(f"{where}: expected null, got {quoted(value)}")
    raise TypeError(f"unsupported config type {tp!r} at {where}")


def _describe(tp: Any) -> str:
    names = [getattr(a, "__name__", str(a)) for a in typing.get_args(tp) if a is not type(None)]
    return " or ".join(names)


def to_dict(obj: Any) -> Any:
    """Plain-data view of a config (dataclasses → dicts, tuples → lists), suitable for YAML/JSON."""
    to_config = getattr(obj, "to_config", None)
    if to_config is not None:
        return to_config()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def dump_yaml(obj: Any) -> str:
    return yaml.safe_dump(to_dict(obj), sort_keys=False, default_flow_style=None)


# What differs between two configs, for the messages that refuse a directory holding another run or sweep.
SECTION_NAMES = {
    "data": "the data",
    "model": "the model",
    "lm": "the model",
    "train": "the training settings",
    "grid": "the grid",
    "preset": "the preset name",
}


ABSENT = object()  # a key one of two configs lacks


def differences(there: Any, here: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(path, value there, value here) of every leaf where two plain configs differ, in order (a key
    missing on one side is `ABSENT` there)."""
    if isinstance(there, dict) and isinstance(here, dict):
        out = []
        for key in dict.fromkeys([*there, *here]):
            out += differences(there.get(key, ABSENT), here.get(key, ABSENT), f"{prefix}{key}.")
        return out
    return [] if there == here else [(prefix.rstrip("."), there, here)]


def describe_differences(diffs: list[tuple[str, Any, Any]], skip: str = "", limit: int = 3) -> str:
    """`the data changed (data.num_rules: 100 there, 200 here)`: which sections changed and the first
    `limit` fields that did; `skip` is a path prefix left out of the names (e.g. `base.`)."""
    if not diffs:
        return "nothing that defines its results differs"
    paths = [path.removeprefix(skip) for path, _, _ in diffs]
    sections = list(dict.fromkeys(SECTION_NAMES.get(p.split(".")[0], p.split(".")[0]) for p in paths))
    what = " and ".join([", ".join(sections[:-1]), sections[-1]] if len(sections) > 1 else sections)
    shown = [f"{p}: {_shown(a)} there, {_shown(b)} here" for p, (_, a, b) in zip(paths, diffs, strict=True)]
    more = f"; {len(shown) - limit} more" if len(shown) > limit else ""
    return f"{what} changed ({'; '.join(shown[:limit])}{more})"


def _shown(value: Any) -> str:
    if value is ABSENT:
        return "absent"
    return clip(value if isinstance(value, str) else json.dumps(value, separators=(", ", ": ")))
