"""The layers: no module outside dart_hub.commands (and the click group, dart_hub.cli) imports a
command module, and dart_hub has no import cycle (imports inside functions count too)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("dart_hub", cache_dir=None)


def test_no_module_outside_the_commands_imports_one(graph):
    upward = [
        f"{importer} imports {imported}"
        for importer in graph.modules
        if not importer.startswith(("dart_hub.commands", "dart_hub.cli"))
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported == "dart_hub.commands" or imported.startswith("dart_hub.commands.")
    ]
    assert not upward, "library code must call dart_hub.api or the stage modules, not a command: " + "; ".join(sorted(upward))


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
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
                    found.append(sorted(component))
    return found


def test_no_import_cycles(graph):
    cycles = _cycles(graph)
    chains = [" -> ".join(graph.find_shortest_chain(c[0], c[1]) or ()) + f" -> ... -> {c[0]}" for c in cycles]
    assert not cycles, "import cycles: " + "; ".join(chains)


def test_cycle_finder_finds_a_cycle():
    """The check above can fail: a two-module cycle is found."""

    class Graph:
        modules = {"a", "b", "c"}

        def find_modules_directly_imported_by(self, module):
            return {"a": {"b"}, "b": {"a"}, "c": {"a"}}[module]

    assert _cycles(Graph()) == [["a", "b"]]


def test_import_linter_contracts_hold():
    """The same rule as an import-linter contract in pyproject.toml (`lint-imports`)."""
    done = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())", "--no-cache"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 1 kept, 0 broken" in done.stdout
