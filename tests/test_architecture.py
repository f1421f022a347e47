"""The one-way layering of alamos (issue 9), checked on its import graph.

* No import cycle between alamos' packages: modules are squashed to their package (the first
  two components of the name, three under ``alamos.report``), the root package ``alamos``
  (which re-exports the public API) is left out, and the package graph must be acyclic.
  Imports under ``TYPE_CHECKING`` and inside functions count: a loop held together by them is
  still a loop.
* The import-linter contracts of ``pyproject.toml`` are kept (``lint-imports``).
* The layers contract gives every package of alamos a place.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from collections import deque
from collections.abc import Iterable, Mapping, Set
from itertools import pairwise
from pathlib import Path
from typing import Any

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
ROOT_PACKAGE = "alamos"

# package -> imported package -> the module imports that make up that edge
Edges = dict[str, dict[str, list[tuple[str, str]]]]


def package_of(module: str) -> str:
    """The package a module is squashed to: ``alamos.x``, or ``alamos.report.x`` under
    ``alamos.report``; the root package is its own."""
    parts = module.split(".")
    depth = 3 if parts[1:2] == ["report"] else 2
    return ".".join(parts[:depth])


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    # Imports under TYPE_CHECKING are kept (the default, spelled out); no cache, so the graph
    # is always that of the files as they are now.
    return grimp.build_graph(ROOT_PACKAGE, exclude_type_checking_imports=False, cache_dir=None)


def package_edges(graph: grimp.ImportGraph) -> Edges:
    edges: Edges = {}
    for importer in sorted(graph.modules):
        source = package_of(importer)
        if source == ROOT_PACKAGE:
            continue
        edges.setdefault(source, {})
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            target = package_of(imported)
            if target in (ROOT_PACKAGE, source):
                continue
            edges[source].setdefault(target, []).append((importer, imported))
    return edges


def strongly_connected_components(
    nodes: Iterable[str], succ: Mapping[str, Set[str]]
) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components in no particular order, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for start in sorted(nodes):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(succ.get(start, ())))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, pending = work[-1]
            if pending:
                nxt = pending.pop(0)
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(succ.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def shortest_path(
    start: str, goal: str, succ: Mapping[str, Set[str]], within: Set[str]
) -> list[str]:
    """The shortest path start -> ... -> goal inside ``within`` (breadth first, sorted)."""
    previous: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            path = [node]
            while (back := previous[path[-1]]) is not None:
                path.append(back)
            return path[::-1]
        for nxt in sorted(succ.get(node, ())):
            if nxt in within and nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"no path {start} -> {goal} inside a strongly connected component")


def covering_cycles(component: list[str], succ: Mapping[str, Set[str]]) -> list[list[str]]:
    """Cycles through every edge of a strongly connected component (each edge u -> v closed by
    the shortest path v -> u), without repeats: every import that holds the loop together
    appears in at least one of them."""
    members = set(component)
    cycles: list[list[str]] = []
    seen: set[tuple[str, ...]] = set()
    for source in component:
        for target in sorted(succ.get(source, set()) & members):
            cycle = [source, *shortest_path(target, source, succ, members)]
            body = cycle[:-1]
            turn = body.index(min(body))
            key = tuple(body[turn:] + body[:turn])
            if key not in seen:
                seen.add(key)
                cycles.append([*key, key[0]])
    return sorted(cycles, key=lambda c: (len(c), c))


def describe_edge(graph: grimp.ImportGraph, edges: Edges, source: str, target: str) -> str:
    imports = edges[source][target]
    importer, imported = imports[0]
    details: list[dict[str, Any]] = graph.get_import_details(importer=importer, imported=imported)
    where = ""
    if details:
        first = details[0]
        where = f" (l.{first['line_number']}: {first['line_contents'].strip()})"
    more = f"; {len(imports) - 1} more module import(s)" if len(imports) > 1 else ""
    return f"    {source} -> {target}: {importer} -> {imported}{where}{more}"


def test_no_import_cycle_between_packages(graph: grimp.ImportGraph) -> None:
    edges = package_edges(graph)
    succ = {source: set(targets) for source, targets in edges.items()}
    loops = [c for c in strongly_connected_components(edges, succ) if len(c) > 1]
    if not loops:
        return
    lines = [f"{len(loops)} import loop(s) between alamos' packages:"]
    for component in sorted(loops):
        lines.append(f"loop of {len(component)} packages: {', '.join(component)}")
        for cycle in covering_cycles(component, succ):
            lines.append("  cycle " + " -> ".join(cycle))
            lines.extend(describe_edge(graph, edges, a, b) for a, b in pairwise(cycle))
    pytest.fail("\n".join(lines), pytrace=False)


def test_package_of() -> None:
    assert package_of("alamos") == "alamos"
    assert package_of("alamos.asgi") == "alamos.asgi"
    assert package_of("alamos.trace.span") == "alamos.trace"
    assert package_of("alamos.report") == "alamos.report"
    assert package_of("alamos.report.providers") == "alamos.report.providers"
    assert package_of("alamos.report.sql.writers") == "alamos.report.sql"


def test_cycle_finder_reports_every_edge_of_a_loop() -> None:
    succ = {"a": {"b"}, "b": {"c", "a"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected_components(succ, succ) == [["a", "b", "c"], ["d"]]
    assert covering_cycles(["a", "b", "c"], succ) == [["a", "b", "a"], ["a", "b", "c", "a"]]


def lint_imports() -> str:
    beside = Path(sys.executable).parent / "lint-imports"
    found = str(beside) if beside.exists() else shutil.which("lint-imports")
    if found is None:
        pytest.fail("lint-imports not found: pip install -e '.[dev]' (it needs import-linter)")
    return found


def test_import_contracts_are_kept() -> None:
    result = subprocess.run(
        [lint_imports(), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"lint-imports exit status {result.returncode}: an import contract of "
            f"pyproject.toml is broken\n{result.stdout}{result.stderr}",
            pytrace=False,
        )


def test_layers_contract_places_every_package(graph: grimp.ImportGraph) -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    (layers,) = [c for c in contracts if c["type"] == "layers"]
    declared = {
        f"{container}.{tail.strip().strip('()')}" if container else tail.strip().strip("()")
        for container in layers.get("containers", [""])
        for layer in layers["layers"]
        for tail in layer.replace(":", "|").split("|")
    }
    packages = {package_of(m) for m in graph.modules} - {ROOT_PACKAGE}
    # A folder whose subpackages are layers (alamos.report) needs no place of its own.
    folders = {p for p in packages if any(d.startswith(p + ".") for d in declared)}
    unplaced = sorted(packages - folders - declared)
    assert not unplaced, f"packages with no place in the layers contract: {unplaced}"
    unknown = sorted(declared - packages)
    assert not unknown, f"layers of the layers contract that are no package of alamos: {unknown}"
