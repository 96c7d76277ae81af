"""The package's shape: no import cycles of any kind, imports pointing one way, small modules.

Imports are read from the source with :mod:`ast`, so an import inside a function or
under ``TYPE_CHECKING`` counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "gradprobe"

# Layers from the bottom up: a module may import its own layer and the layers below.
LAYERS = [
    {"errors", "_params", "_validate", "_text", "_version", "_lazy", "_console"},
    {"numdiff"},
    {"check"},
    {"signals"},
    {"nn"},
    {"torch", "jax"},
    {"diagnose"},
    {"report"},
    {"cli"},
    {"__init__", "__main__"},
]
MAX_LINES = 450
MAX_ROOT_MODULES = 8


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path) -> set[str]:
    """Every gradprobe module that ``name`` imports, wherever the import statement stands."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.append(submodule if submodule in MODULES else base)
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: imported(name, path) for name, path in MODULES.items()}


def layer_of(name: str) -> int:
    parts = name.split(".")
    key = parts[1] if len(parts) > 1 else "__init__"
    for rank, members in enumerate(LAYERS):
        if key in members:
            return rank
    raise AssertionError(f"{name} belongs to no layer of tests/test_layout.py")


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components with more than one module (the cycles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
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

    for node in graph:
        if node not in index:
            visit(node)
    return components


def test_the_graph_is_read_from_every_module() -> None:
    assert "gradprobe.check.checker" in GRAPH
    assert "gradprobe.numdiff.perturbation" in GRAPH["gradprobe.check.checker"]


def test_cycle_finder_finds_a_planted_cycle() -> None:
    planted = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(planted) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    assert strongly_connected(GRAPH) == []


@pytest.mark.parametrize("name", sorted(GRAPH))
def test_imports_point_down_the_layers(name: str) -> None:
    upward = {
        other for other in GRAPH[name] if other != "gradprobe" and layer_of(other) > layer_of(name)
    }
    assert not upward, f"{name} imports from a higher layer: {sorted(upward)}"


def test_nothing_imports_the_facade() -> None:
    importers = [name for name, targets in GRAPH.items() if "gradprobe" in targets]
    assert importers == ["gradprobe.__main__"] or importers == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size(name: str) -> None:
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines, more than {MAX_LINES}"


def test_root_holds_few_modules() -> None:
    root = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(root) <= MAX_ROOT_MODULES, root


def test_every_module_has_a_test_file() -> None:
    tests = Path(__file__).resolve().parent
    missing = []
    for name, path in MODULES.items():
        if path.name in {"__init__.py", "__main__.py"}:
            continue
        relative = path.relative_to(PACKAGE)
        stem = relative.stem.lstrip("_")
        candidates = [tests / relative.parent / f"test_{stem}.py"]
        if not any(candidate.exists() for candidate in candidates):
            missing.append(f"{name} -> {candidates[0].relative_to(tests)}")
    assert not missing, "modules without a test file:\n" + "\n".join(missing)
