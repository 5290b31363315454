"""No import cycles inside the package.

A cycle makes the import order matter (a module sees a half-initialised neighbour), ties modules
that should change separately, and hides the layering a newcomer reads from the layout. The walk
reads every ``import``/``from`` statement of the package's source with :mod:`ast`, at module
level and inside functions alike (a deferred import still makes both modules need each other),
resolves relative names, and follows only imports of the package's own modules. Importing
``a.b.c`` points at ``a.b.c`` itself, not at its parent packages, so a package ``__init__`` may
offer its submodules' factory (``metadata.sinks.open_sink``) without counting as a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import airflow_provider_mwaaops


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve_from(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute name ``from <node.module> import ...`` refers to, in ``module``."""
    if not node.level:
        return node.module or ""
    # `from . import x` in a package's __init__ is relative to the package itself.
    anchor = module.split(".") if is_package else module.split(".")[:-1]
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join([*anchor, node.module] if node.module else anchor)


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``module`` imports, anywhere in its source."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_from(node, module, path.name == "__init__.py")
            # `from pkg import name` imports the submodule pkg.name when there is one, else pkg.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names
            ]
        else:
            continue
        found.update(target for target in targets if target in known and target != module)
    return found


def _knots(graph: dict[str, set[str]]) -> list[set[str]]:
    """Groups of modules that all reach each other (strongly connected components of more than
    one module, Tarjan's algorithm): each holds at least one cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    knots: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            knot = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                knot.add(member)
                if member == node:
                    break
            if len(knot) > 1:
                knots.append(knot)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return knots


def _one_cycle(graph: dict[str, set[str]], knot: set[str]) -> list[str]:
    """A shortest path a -> ... -> a through ``knot``, for a readable failure."""
    start = min(knot)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & knot):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start} in {sorted(knot)}")


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    """One line per knot: a cycle, and the other modules caught in it (each needs a cut too)."""
    lines = []
    for knot in _knots(graph):
        cycle = _one_cycle(graph, knot)
        others = sorted(knot - set(cycle))
        lines.append(" -> ".join(cycle) + (f"  (same knot: {', '.join(others)})" if others else ""))
    return sorted(lines)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module name -> the package's modules it imports, for the package in directory ``root``."""
    modules = {_module_name(root, path): path for path in sorted(root.rglob("*.py"))}
    known = set(modules)
    return {module: _imports(module, path, known) for module, path in modules.items()}


def test_the_walk_finds_cycles_through_functions_and_relative_imports(tmp_path: Path) -> None:
    """The walk itself, on a small package whose cycles hide in function bodies and relative names."""
    files = {
        "pkg/__init__.py": "from pkg.sinks.base import open_sink\n",
        "pkg/sinks/__init__.py": "",
        "pkg/sinks/base.py": "def open_sink():\n    from .local import Local\n    return Local()\n",
        "pkg/sinks/local.py": "from pkg.sinks import base\nclass Local: ...\n",
        "pkg/report.py": "import pkg.analysis.html\n",
        "pkg/analysis/__init__.py": "def render():\n    from .. import report\n",
        "pkg/analysis/html.py": "from ..analysis import render\nimport json\n",
        "pkg/plain.py": "from pkg import sinks\nfrom pkg.sinks import local\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)

    graph = import_graph(tmp_path / "pkg")

    assert graph["pkg.sinks.local"] == {"pkg.sinks.base"}
    assert graph["pkg.sinks.base"] == {"pkg.sinks.local"}
    assert graph["pkg.analysis"] == {"pkg.report"}
    assert graph["pkg.plain"] == {"pkg.sinks", "pkg.sinks.local"}
    assert _cycles(graph) == [
        "pkg.analysis -> pkg.report -> pkg.analysis.html -> pkg.analysis",
        "pkg.sinks.base -> pkg.sinks.local -> pkg.sinks.base",
    ]


def test_the_package_has_no_import_cycle() -> None:
    cycles = _cycles(import_graph(Path(airflow_provider_mwaaops.__file__).parent))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
