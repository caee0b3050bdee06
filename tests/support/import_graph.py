"""Who imports whom among a project's own modules, read from the source (no import runs).

Every import counts: at module level, inside functions, under ``TYPE_CHECKING``. A
function-level import still ties two modules together, so a circle through one is still
a circle. ``tests/unit/test_layering.py`` holds the project's layering to it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

Graph = Mapping[str, frozenset[str]]


@dataclass(frozen=True, slots=True)
class Imports:
    """The project's modules, and for each what it imports: its own modules (``local``)
    and the top-level names of everything else (``external``: ``redis``, ``celery``)."""

    local: Graph
    external: Mapping[str, frozenset[str]]


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(root, path)] = path
    return found


def _imported(node: ast.AST, package: str, modules: Mapping[str, Path]) -> Iterator[str]:
    """The dotted names one import statement names, relative ones made absolute:
    ``from p import m`` names the module ``p.m`` when there is one, else ``p`` itself."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*parts, base] if base else parts)
        named = [f"{base}.{alias.name}" for alias in node.names]
        yield from (name for name in named if name in modules)
        if any(name not in modules for name in named):
            yield base


def _owner(name: str, modules: Mapping[str, Path]) -> str | None:
    """The longest module of the project that ``name`` is or lies in."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def read_imports(root: Path, packages: Iterable[str]) -> Imports:
    modules = _modules(root, packages)
    local: dict[str, frozenset[str]] = {}
    external: dict[str, frozenset[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        mine: set[str] = set()
        theirs: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for imported in _imported(node, package, modules):
                owner = _owner(imported, modules)
                if owner is not None and owner != name:
                    mine.add(owner)
                elif owner is None and imported:
                    theirs.add(imported.partition(".")[0])
        local[name] = frozenset(mine)
        external[name] = frozenset(theirs)
    return Imports(local, external)


def collapse(graph: Graph, group: Mapping[str, str] | None = None, depth: int = 2) -> Graph:
    """The graph between groups of modules: by default each module's first ``depth``
    dotted parts (``tickfleet.stream.runner`` → ``tickfleet.stream``)."""
    edges: dict[str, set[str]] = {}

    def of(module: str) -> str:
        return group[module] if group else ".".join(module.split(".")[:depth])

    for module, imported in graph.items():
        edges.setdefault(of(module), set())
        for other in imported:
            if of(other) != of(module):
                edges[of(module)].add(of(other))
    return {name: frozenset(deps) for name, deps in edges.items()}


def reachable(graph: Graph, start: str) -> set[str]:
    """Every node some path of imports leads to from ``start`` (``start`` only if on a circle)."""
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def cycles(graph: Graph) -> list[list[str]]:
    """Every group of two or more nodes that reach each other, sorted: the import circles.
    Plain reachability, quadratic but plenty for a few hundred modules, and easy to trust."""
    reach = {node: reachable(graph, node) for node in graph}
    found: list[list[str]] = []
    placed: set[str] = set()
    for node in sorted(graph):
        if node in placed or node not in reach[node]:
            continue
        group = sorted(other for other in reach[node] if node in reach.get(other, ()))
        placed.update(group)
        if len(group) > 1:
            found.append(group)
    return found
