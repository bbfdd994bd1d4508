"""YAML a user wrote (config and sweep files, `--set` values), parsed within stated bounds.

PyYAML composes nested collections by recursion and lets an alias stand for a whole collection, so a
file nested 1,000 levels deep ends in a RecursionError, and a 1 KB "billion laughs" (nine aliases of
nine aliases, nine levels) stands for 9^9 values that whatever walks it next expands. Both are refused
while the document is composed, before anything is built from it: no config comes near `MAX_DEPTH`
levels or `MAX_VALUES` values, counting each alias as the values it stands for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode

from rewritelab.errors import UserError

MAX_DEPTH = 32  # nesting levels of a document (the deepest preset has 10)
MAX_VALUES = 100_000  # values of a document, aliases expanded (the largest preset has about 400)
MAX_INT_CHARS = 100  # an integer literal longer than this is no setting (and Python refuses 4,300 digits)


class _Refused(Exception):
    """A bound exceeded at `mark` (a YAML position)."""

    def __init__(self, mark: Any, problem: str):
        super().__init__(problem)
        self.mark, self.problem = mark, problem


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, counting the depth and the expanded values of what it composes."""

    def __init__(self, text: str, max_depth: int):
        super().__init__(text)
        self.max_depth = max_depth
        self.depth = 0  # collections open around the node being composed
        self.values = 0  # values composed so far, each alias counted as its node's expansion
        self.expanded: dict[int, tuple[int, int]] = {}  # id(node) → (values, levels) it expands to

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        mark = self.peek_event().start_mark
        if self.check_event(AliasEvent):
            node = super().compose_node(parent, index)
            if id(node) not in self.expanded:
                raise _Refused(mark, "an alias inside the collection it names (a loop)")
            values, levels = self.expanded[id(node)]
            self._count(mark, values, self.depth + levels)
            return node
        self._count(mark, 1, self.depth + 1)
        self.depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        if isinstance(node, SequenceNode):
            children = node.value
        elif isinstance(node, MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            children = []
        below = [self.expanded[id(child)] for child in children]
        self.expanded[id(node)] = (1 + sum(v for v, _ in below), 1 + max((lv for _, lv in below), default=0))
        return node

    def _count(self, mark: Any, values: int, depth: int) -> None:
        self.values += values
        if depth > self.max_depth:
            raise _Refused(mark, f"nested more than {self.max_depth} levels deep")
        if self.values > MAX_VALUES:
            raise _Refused(mark, f"more than {MAX_VALUES:,} values once its aliases are expanded")

    def construct_yaml_int(self, node: Node) -> int:
        if len(node.value) > MAX_INT_CHARS:
            raise _Refused(node.start_mark, f"an integer of more than {MAX_INT_CHARS} characters")
        return super().construct_yaml_int(node)


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)


def parse_yaml(text: str, where: str, max_depth: int = MAX_DEPTH) -> Any:
    """`text` as plain data, as `yaml.safe_load` reads it. A document deeper than `max_depth` levels or
    larger than `MAX_VALUES` values, or a value YAML cannot construct (`2001-13-45`), is a `UserError`
    naming `where` and the position; malformed YAML raises `yaml.YAMLError`, for the caller to word."""
    loader = _BoundedLoader(text, max_depth)
    try:
        return loader.get_single_data()
    except _Refused as e:
        raise UserError(f"{where}{_position(e.mark)}: {e.problem}; no config needs that") from None
    except ValueError as e:  # a scalar of a known tag that holds no such value
        raise UserError(f"{where}: a value YAML cannot read ({str(e)[:100]})") from None
    finally:
        loader.dispose()


def _position(mark: Any) -> str:
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file, malformed YAML or one past the bounds is a `UserError`."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a directory, not a config file")
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not a UTF-8 text file (byte {e.start}); give a YAML config") from None
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None
    try:
        data = parse_yaml(text, str(path))
    except yaml.YAMLError as e:
        where = _position(getattr(e, "problem_mark", None))
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise UserError(f"malformed YAML in {path}{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: the top level must be a mapping of sections (data:, model:, train:, ...)")
    return data
