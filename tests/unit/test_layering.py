"""The package's layers, read from its source: who may import whom, and no import cycles.

core <- hooks <- jobs <- triggers <- sensors / operators (sensors never import operators), and
core never imports a platform module. Only imports run at import time count (one inside a
function or under ``if TYPE_CHECKING`` cannot form an import-time cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import airflow_provider_sapplan

PACKAGE = "airflow_provider_sapplan"
ROOT = Path(airflow_provider_sapplan.__file__).parent
PLATFORM_LAYERS = ("hooks", "jobs", "triggers", "sensors", "operators", "sandbox")

FORBIDDEN = {
    "sensors": ("operators",),
    "triggers": ("operators", "sensors"),
    "jobs": ("triggers", "sensors", "operators"),
    "hooks": ("jobs", "triggers", "sensors", "operators"),
    "core": PLATFORM_LAYERS,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


MODULES = _modules()


def _module_level_nodes(tree: ast.Module) -> list[ast.stmt]:
    """Statements run at import time: the body, and top-level if/try/with blocks (not ``if TYPE_CHECKING``)."""
    out: list[ast.stmt] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop(0)
        out.append(node)
        if isinstance(node, ast.If):
            if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                pending.extend(node.orelse)
                continue
            pending.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            pending.extend(node.body + node.orelse + node.finalbody)
            for handler in node.handlers:
                pending.extend(handler.body)
        elif isinstance(node, ast.With):
            pending.extend(node.body)
    return out


def _imports(name: str, path: Path) -> set[str]:
    """The package's modules that ``name`` imports at module level."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in _module_level_nodes(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] + [f"{module}.{alias.name}" for alias in node.names]
        for target in targets:
            if target in MODULES and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_the_graph_is_read() -> None:
    """Guards the test itself: the known edges are seen, so an empty graph cannot pass silently."""
    assert f"{PACKAGE}.hooks.anaplan" in GRAPH[f"{PACKAGE}.operators.anaplan"]
    assert f"{PACKAGE}.jobs.anaplan" in GRAPH[f"{PACKAGE}.sensors.anaplan"]
    assert f"{PACKAGE}.sandbox.anaplan.backend" in GRAPH[f"{PACKAGE}.sandbox.anaplan.routes"]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_only_downwards(layer: str) -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if _layer(module) == layer
        for target in targets
        if _layer(target) in FORBIDDEN[layer]
    )
    assert not wrong, f"{layer}/ must not import {', '.join(FORBIDDEN[layer])}/:\n" + "\n".join(wrong)


def test_no_import_cycles() -> None:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(GRAPH[node]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)
