"""The apps import one way only: no module imports, directly or through others, a module
that imports it back (issue 17). A function-level import counts like any other: it only
postpones the cycle to the first call. Tests and migrations are left out, since nothing
imports them. Run ``python exchange_site/tests/test_import_graph.py`` to print the graph's
cycles and the function-level imports without Django.
"""

import ast
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("exchange_site", "accounts", "wallets", "trading", "marketdata", "testsupport")
SKIPPED_DIRECTORIES = {"tests", "migrations", "__pycache__"}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    in_function: bool


def _module_files() -> dict[str, Path]:
    """Every analysed module, by dotted name (a package by its own name)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if SKIPPED_DIRECTORIES & set(parts):
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _is_type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _import_nodes(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement and whether it sits in a function; ``if TYPE_CHECKING:``
    blocks never run, so their imports are no edges."""

    def visit(node: ast.AST, in_function: bool):
        for child in ast.iter_child_nodes(node):
            if _is_type_checking_block(child):
                yield from (
                    pair for orelse in child.orelse for pair in visit_one(orelse, in_function)
                )
                continue
            yield from visit_one(child, in_function)

    def visit_one(node: ast.AST, in_function: bool):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, in_function
        inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        yield from visit(node, inner)

    yield from visit(tree, False)


def _targets(
    node: ast.Import | ast.ImportFrom, importer: str, is_package: bool, modules
) -> list[str]:
    """What ``node`` makes Python execute among the analysed modules.

    ``from pkg import name`` depends on ``pkg.name`` when that is a module, else on the
    package ``pkg`` itself (its ``__init__``, which defines or re-exports ``name``). The
    parent packages an import also initialises are no edge: a package's ``__init__`` that
    re-exports its submodules would otherwise close a cycle with each of them.
    """
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in modules]
    if node.level:
        base = importer.split(".") if is_package else importer.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    targets = []
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        if submodule in modules:
            targets.append(submodule)
        elif source in modules:
            targets.append(source)
    return targets


def import_graph() -> tuple[dict[str, set[str]], list[Import]]:
    """(module → the analysed modules it imports, every such import)."""
    modules = _module_files()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    imports = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        for node, in_function in _import_nodes(tree):
            for target in _targets(node, name, is_package, modules):
                if target != name:
                    graph[name].add(target)
                    imports.append(Import(name, target, node.lineno, in_function))
    return graph, imports


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of more than one module, iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return components


def _shortest_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest cycle through the component's first module, for the failure message."""
    members = set(component)
    start = component[0]
    parents = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while parents[path[-1]] is not None:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if child not in parents:
                    parents[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"{component} is no cycle")


def _describe(graph: dict[str, set[str]]) -> str:
    lines = []
    for component in _strongly_connected(graph):
        lines.append(" -> ".join(_shortest_cycle(graph, component)))
        if len(component) > 2:
            lines.append(f"    (one of the cycles among {', '.join(component)})")
    return "\n".join(lines)


def test_no_module_is_part_of_an_import_cycle():
    graph, _ = import_graph()
    cycles = _describe(graph)

    assert not cycles, f"Import cycles:\n{cycles}"


def test_the_cycle_finder_reports_each_cycle_with_its_modules():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"f"}, "f": {"e"}}

    assert _strongly_connected(graph) == [["a", "b", "c"], ["e", "f"]]
    assert _shortest_cycle(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]
    assert _describe(graph).splitlines()[0] == "a -> b -> c -> a"


def test_the_graph_resolves_each_import_to_the_module_it_runs():
    graph, imports = import_graph()

    # ``from wallets import chain`` runs the module wallets.chain, not wallets/__init__.
    assert "wallets.chain" in graph["wallets.tasks"]
    assert "wallets" not in graph["wallets.tasks"]
    # ``from trading.services import markets_seed`` runs the package's __init__.
    assert "trading.services" in graph["trading.management.commands.seed_demo"]
    # Imports in functions count: ready() registers trading's freeze hook.
    assert any(
        edge.in_function and edge.imported == "accounts.hooks"
        for edge in imports
        if edge.importer == "trading.apps"
    )


def _text_files() -> Iterator[Path]:
    skipped = {".git", ".venv", "node_modules", "var", "__pycache__", "docs", "wallets"}
    suffixes = {".py", ".sql", ".html", ".js", ".md", ".txt", ".toml", ".cfg", ".ini", ".yml"}
    for directory, subdirectories, files in os.walk(ROOT):
        subdirectories[:] = [name for name in subdirectories if name not in skipped]
        for name in files:
            path = Path(directory, name)
            if path.suffix in suffixes or name in {"Makefile", "Procfile", "Dockerfile"}:
                yield path


def test_only_wallets_names_the_balance_and_ledger_tables():
    from wallets.models import Balance, LedgerEntry

    tables = (Balance._meta.db_table, LedgerEntry._meta.db_table)
    offenders = [
        f"{path.relative_to(ROOT)}: {table}"
        for path in _text_files()
        for table in tables
        if table in path.read_text(errors="replace")
    ]

    assert not offenders, "Only wallets writes SQL for its tables:\n" + "\n".join(offenders)


if __name__ == "__main__":
    graph, found = import_graph()
    print(_describe(graph) or "no cycles")
    late = [edge for edge in found if edge.in_function]
    for edge in late:
        path = _module_files()[edge.importer].relative_to(ROOT)
        print(f"function-level: {path}:{edge.line} {edge.imported}")
    print(f"{len(late)} function-level imports of the apps' own modules", file=sys.stderr)
