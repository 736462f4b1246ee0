"""The built-in trainer's modules and the model-loading code import each other without cycles (lazy imports count:
a cycle hidden inside a function still ties two modules into one)."""

from __future__ import annotations

import ast
from pathlib import Path

import isengard

ROOT = Path(isengard.__file__).parent
PACKAGES = ("plugins/training", "models")


def _module_name(path: Path) -> str:
    return "isengard." + path.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")


def import_graph() -> dict[str, set[str]]:
    files = [path for package in PACKAGES for path in (ROOT / package).glob("*.py") if path.name != "__init__.py"]
    names = {_module_name(path) for path in files}
    graph: dict[str, set[str]] = {}
    for path in files:
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets.add(node.module)
                targets.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[_module_name(path)] = targets & names
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target] if target in path else [node, target]
            if target not in state:
                found = visit(target, [*path, target])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


def test_no_import_cycles_between_the_trainer_and_the_model_loading_modules() -> None:
    graph = import_graph()
    assert "isengard.plugins.training.flux_lora_loop" in graph and "isengard.models.loading" in graph
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_sees_a_lazy_import_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
