"""The walls between the layers, and no import cycles: checked on every run of the suite.

The contracts themselves are in ``pyproject.toml`` (``[tool.importlinter]``); this runs them as
``lint-imports`` does, and then looks for cycles among the package's modules, counting imports
made inside functions too (only imports a type checker alone follows are left out: they never
run).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]


def test_every_import_contract_holds() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's algorithm over the module graph: each component of more than one module is a
    cycle (or several)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:
        nonlocal counter
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return components


def test_there_is_no_import_cycle_not_even_inside_functions() -> None:
    graph = grimp.build_graph("adflywheel", exclude_type_checking_imports=True)
    assert len(graph.modules) > 100  # the whole package was read
    cycles = _strongly_connected(graph)
    assert cycles == [], "\n".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "b", "c"):
        graph.add_module(module)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    graph.add_import(importer="c", imported="a")
    assert _strongly_connected(graph) == [["a", "b", "c"]]


def test_a_services_private_helpers_are_used_only_inside_its_package() -> None:
    """Each ``services/<loop>`` package names its public modules in ``__all__``; the others
    are its own helpers."""
    import importlib
    import pkgutil

    import adflywheel.services

    graph = grimp.build_graph("adflywheel", exclude_type_checking_imports=True)
    breaches = []
    for info in pkgutil.iter_modules(adflywheel.services.__path__):
        if not info.ispkg:
            continue
        package = f"adflywheel.services.{info.name}"
        public = set(importlib.import_module(package).__all__)
        for module in sorted(graph.find_children(package)):
            if module.rsplit(".", 1)[1] in public:
                continue
            outsiders = {
                importer
                for importer in graph.find_modules_that_directly_import(module)
                if not importer.startswith(package + ".")
            }
            breaches += [f"{importer} -> {module}" for importer in sorted(outsiders)]
    assert breaches == []
