"""No import cycle among imhub's modules (the layer contracts in pyproject.toml, checked
by ``lint-imports``, say which way imports go between packages; this finds cycles
inside them too, which would otherwise only work thanks to function-local imports)."""

from __future__ import annotations

import grimp


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    modules = sorted(m for m in graph.modules if m.startswith("imhub"))
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if not imported.startswith("imhub"):
                continue
            if state.get(imported) == 1:
                found.append([*path[path.index(imported):], imported])
            elif imported not in state:
                visit(imported)
        path.pop()
        state[module] = 2

    for module in modules:
        if module not in state:
            visit(module)
    return found


def test_no_import_cycle_among_imhub_modules() -> None:
    graph = grimp.build_graph("imhub", exclude_type_checking_imports=True)
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for name in ("imhub.a", "imhub.b", "imhub.c"):
        graph.add_module(name)
    graph.add_import(importer="imhub.a", imported="imhub.b")
    graph.add_import(importer="imhub.b", imported="imhub.c")
    graph.add_import(importer="imhub.c", imported="imhub.a")
    assert _cycles(graph) == [["imhub.a", "imhub.b", "imhub.c", "imhub.a"]]
