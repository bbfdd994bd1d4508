"""The package's import graph flows one way: no cycle, counting imports inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import rewritelab

ROOT = Path(rewritelab.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = ["rewritelab", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The innermost module of ours that `import name` executes, or None if it is not ours."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):  # every scope, functions too
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                resolved = _resolve(target, modules)
                if resolved is not None and resolved != name:
                    graph[name].add(resolved)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_reports_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_graph_sees_function_level_and_relative_imports():
    graph = import_graph()
    assert graph  # the package was found
    assert all(target in graph for targets in graph.values() for target in targets)


def test_rewritelab_imports_have_no_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


# --- front doors: a package is entered through its __init__ ------------------------------------------------

MAX_REACHING_IMPORTS = 3  # imports of another package's module instead of its front door (issue 30)


def reaching_imports(graph: dict[str, set[str]], packages: set[str]) -> list[str]:
    """`module -> target` for each import of a module inside another package (`rewritelab.run.train`
    from `rewritelab.lm.kind`), where the package's `__init__` should be imported instead."""
    found = []
    for name, targets in graph.items():
        own = name.split(".")[1] if "." in name else None
        for target in targets:
            parts = target.split(".")
            if len(parts) > 2 and parts[1] in packages and parts[1] != own:
                found.append(f"{name} -> {target}")
    return sorted(found)


def test_reaching_imports_are_imports_of_another_packages_module():
    graph = {
        "rewritelab.lm.kind": {"rewritelab.run", "rewritelab.run.train", "rewritelab.lm.hf", "rewritelab.io"},
        "rewritelab.kinds": {"rewritelab.lm.config"},
        "rewritelab.run.train": {"rewritelab.run.schedule"},
    }
    found = reaching_imports(graph, {"run", "lm"})
    assert found == ["rewritelab.kinds -> rewritelab.lm.config", "rewritelab.lm.kind -> rewritelab.run.train"]


def test_packages_are_entered_through_their_front_door():
    modules = _modules()
    packages = {
        name.split(".")[1] for name, path in modules.items() if path.name == "__init__.py" and "." in name
    }
    found = reaching_imports(import_graph(), packages)
    assert len(found) <= MAX_REACHING_IMPORTS, "import the package, not its module:\n" + "\n".join(found)


def test_no_module_imports_another_modules_private_names():
    found = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rewritelab"):
                private = [a.name for a in node.names if a.name.startswith("_") and a.name[1] != "_"]
                found += [f"{name}: {p} from {node.module}" for p in private]
    assert not found, "make the shared helper public where it lives:\n" + "\n".join(found)
