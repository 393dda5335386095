"""The package's layering, read from the source with ``ast``: data flows one way.

Rooms, lowest first: the floor (errors, registry, cache, masks) -> config -> data -> models ->
attribution -> objectives -> metrics -> resolve -> train -> export -> evaluate -> explain -> sweep -> cli, with
analysis beside sweep (it reads results folders and imports neither sweep nor train). A room imports only
rooms below it (any import, also one inside a function), and no import cycle exists (module-level or
inside functions).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "attrsearch"

FLOOR = {"errors", "registry", "cache", "masks", "log"}
# room -> rooms it may import (besides itself and the floor)
ALLOWED: dict[str, set[str]] = {
    "floor": set(),
    "config": set(),
    "data": {"config"},
    "models": {"config"},
    "attribution": {"config", "data", "models"},
    "objectives": {"config", "models", "attribution"},
    "metrics": {"config", "data", "models", "attribution"},
    "resolve": {"config", "data", "models", "attribution", "objectives", "metrics"},
    "train": {"config", "data", "models", "attribution", "objectives", "metrics", "resolve"},
    "export": {"config", "data", "models", "attribution", "objectives", "metrics", "resolve", "train"},
    "evaluate": {"config", "data", "models", "attribution", "objectives", "metrics", "resolve", "train", "export"},
    "explain": {
        "config",
        "data",
        "models",
        "attribution",
        "objectives",
        "metrics",
        "resolve",
        "train",
        "export",
        "evaluate",
    },
    "results": {"config"},
    "analysis": {"config", "metrics", "results"},
    "sweep": {
        "config",
        "data",
        "models",
        "attribution",
        "objectives",
        "metrics",
        "resolve",
        "train",
        "evaluate",
        "results",
        "analysis",
    },
    "cli": {
        "config",
        "data",
        "models",
        "attribution",
        "objectives",
        "metrics",
        "resolve",
        "train",
        "export",
        "evaluate",
        "explain",
        "sweep",
        "results",
        "analysis",
    },
}


def _room(module: str) -> str:
    """``attrsearch.metrics.evaluate`` -> ``metrics``; floor modules -> ``floor``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "package"
    name = parts[1]
    return "floor" if name in FLOOR else name


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(path: Path, module_level_only: bool = False) -> set[str]:
    """Every ``attrsearch`` module a file imports (``from a.b import c`` counts ``a.b`` and ``a.b.c``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    if module_level_only:
        nodes = []
        stack = list(tree.body)
        while stack:  # module body, including if/try blocks, but not function or class bodies
            node = stack.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            nodes.append(node)
            stack.extend(n for n in ast.iter_child_nodes(node) if isinstance(n, ast.stmt))
    else:
        nodes = list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("attrsearch"))
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("attrsearch")
            and node.level == 0
        ):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


MODULES = _modules()


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _room(m) != "package"))
def test_room_imports_only_rooms_below(module):
    room = _room(module)
    assert room in ALLOWED, f"{module}: room {room!r} has no place in the layering (add it to ALLOWED)"
    bad = sorted(
        imported
        for imported in _imports(MODULES[module])
        if imported in MODULES
        and _room(imported) not in ("package", "floor", room)
        and _room(imported) not in ALLOWED[room]
    )
    assert not bad, f"{module} ({room}) imports {bad}"


def test_floor_and_config_import_nothing_above_them():
    for module, path in MODULES.items():
        if _room(module) in ("floor", "config"):
            above = {m for m in _imports(path) if m in MODULES and _room(m) not in ("floor", "config", "package")}
            assert not above, f"{module} imports {sorted(above)}"


def _graph(modules: dict[str, Path], module_level_only: bool) -> dict[str, set[str]]:
    return {m: {i for i in _imports(p, module_level_only) if i in modules and i != m} for m, p in modules.items()}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """The first import cycle of ``graph`` (module -> imported modules), or None. A package's
    ``__init__`` importing its own submodules is not a cycle of the layering; a submodule importing a
    sibling through the package is followed like any import."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if nxt.startswith(node + "."):
                continue  # the package imports its own submodule
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt) :] + [nxt]
                if not all(a.startswith(b + ".") or b.startswith(a + ".") for a, b in zip(cycle, cycle[1:])):
                    return cycle
            elif nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            found = visit(module)
            if found:
                return found
    return None


@pytest.mark.parametrize("module_level_only", [True, False], ids=["module-level", "also-inside-functions"])
def test_no_import_cycle(module_level_only):
    cycle = _find_cycle(_graph(MODULES, module_level_only))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_check_sees_imports_inside_functions(tmp_path):
    """A circle of two modules importing each other inside functions (train.run and train.evaluate
    once did) is invisible at module level and reported once function bodies are read."""
    fake = tmp_path / "attrsearch" / "train"
    fake.mkdir(parents=True)
    (fake / "run.py").write_text("def f():\n    from attrsearch.train.evaluate import g\n")
    (fake / "evaluate.py").write_text("def g():\n    from attrsearch.train.run import f\n")
    modules = {"attrsearch.train.run": fake / "run.py", "attrsearch.train.evaluate": fake / "evaluate.py"}
    assert _find_cycle(_graph(modules, module_level_only=True)) is None
    cycle = _find_cycle(_graph(modules, module_level_only=False))
    assert cycle is not None and set(cycle) == {"attrsearch.train.run", "attrsearch.train.evaluate"}


def test_the_checker_sees_a_forbidden_import(tmp_path):
    """The rules are not vacuous: a metrics module importing train would be reported."""
    fake = tmp_path / "fake.py"
    fake.write_text("def f():\n    from attrsearch.train.run import run_training\n")
    imported = _imports(fake)
    assert "attrsearch.train.run" in imported
    assert _room("attrsearch.train.run") not in ALLOWED["metrics"]
