"""The package's layers, read from its imports (DESIGN.md, "Architecture").

Data flows down only: a module imports its own layer and the layers below, never
one above; the storage gateway and the catalog know nothing of each other or of
the unit of work; and no two modules import each other, directly or around a
circle. Imports inside functions count too (they are the late imports that keep
``import catalogstore`` cheap, and still a dependency); imports for annotations
only (``if TYPE_CHECKING:``) count for the layers, not for circles.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "catalogstore"

# Each top-level module or folder of the package, with the ones it may import. The
# base modules (errors, names, record, ...) are importable from everywhere.
BASE = {"errors", "names", "record", "retry", "batching", "settings", "context",
        "bounded_json"}
ALLOWED = {
    "storage": set(),
    "catalog": set(),
    "txn": {"storage", "catalog"},
    "signing": set(),
    "serializers": set(),
    "cluster_memory": set(),
    "maintenance": {"storage", "catalog", "txn"},
    # Flowdapt's artifact hooks (issue 14): dataset handlers ask which runtime they run
    # in (cluster_memory's detection), pickle hooks sign (signing).
    "artifacts": {"storage", "catalog", "txn", "cluster_memory", "signing"},
    "object_store": {"artifacts", "cluster_memory", "serializers", "signing", "txn",
                     "storage"},
    # The interfaces use the package's own facade (``catalogstore.transaction()``, ...).
    "demo": {"__init__", "artifacts", "object_store", "cluster_memory"},
    "cli": {"__init__", "artifacts", "object_store", "cluster_memory", "maintenance",
            "catalog", "txn", "demo", "web"},
    # The web browser reads through the public API and the catalog (aggregates).
    "web": {"artifacts", "catalog", "maintenance", "txn"},
    "testing": {"__init__", "cluster_memory", "serializers", "storage", "catalog",
                "artifacts", "txn"},
    "__init__": {"txn"},
    "__main__": {"cli"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or path.is_dir()


def _type_checking_nodes(tree: ast.AST) -> set[ast.AST]:
    """The imports under ``if TYPE_CHECKING:``: names for annotations, never run."""
    return {inner for node in ast.walk(tree) if isinstance(node, ast.If)
            and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING"
            for stmt in node.body for inner in ast.walk(stmt)}


def _imports(typing_too: bool = True) -> dict[str, set[str]]:
    """Each module of the package -> the catalogstore modules it imports (with
    ``typing_too``, those it imports for annotations only as well)."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        targets: set[str] = set()
        tree = ast.parse(path.read_text(), str(path))
        skipped = set() if typing_too else _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if node in skipped:
                continue
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.startswith("catalogstore"))
            elif isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith("catalogstore") and node.level == 0:
                # ``from catalogstore.x import y`` may name a submodule y
                submodules = {f"{node.module}.{a.name}" for a in node.names
                              if _is_module(f"{node.module}.{a.name}")}
                targets.update(submodules)
                if len(submodules) < len(node.names):
                    targets.add(node.module)
        graph[name] = {t for t in targets if t != name}
    return graph


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_import_goes_down_the_layers() -> None:
    wrong = []
    for module, targets in _imports().items():
        room = _room(module)
        if room in BASE:
            allowed = BASE
        else:
            assert room in ALLOWED, f"{module}: a new top-level room; add it to ALLOWED"
            allowed = ALLOWED[room] | BASE | {room}
        for target in targets:
            if _room(target) not in allowed:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def test_no_import_circle() -> None:
    graph = _imports(typing_too=False)
    modules = set(graph)

    def resolve(target: str) -> str | None:
        return target if target in modules else None

    edges = {m: {t for t in map(resolve, targets) if t} for m, targets in graph.items()}
    # a package's __init__ is imported with each of its submodules: not a circle
    for m in edges:
        edges[m] = {t for t in edges[m] if not m.startswith(t + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(edges[m]):
            if state.get(t) == 1:
                return [*stack[stack.index(t):], t]
            if t not in state and (found := visit(t)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(edges):
        if m not in state and (circle := visit(m)):
            pytest.fail("import circle: " + " -> ".join(circle))
