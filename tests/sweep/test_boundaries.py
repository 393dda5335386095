"""Two owners of two concerns: only ``sweep/storage.py`` decides whether storage is local or remote,
only ``sweep/ray_node.py`` touches Ray's internals (``ray._private``)."""

from __future__ import annotations

import ast
from pathlib import Path

import attrsearch

PACKAGE = Path(attrsearch.__file__).parent
STORAGE = {"sweep/storage.py"}
RAY_NODE = {"sweep/ray_node.py"}
ADDRESS = {"sweep/ray_node.py"}  # parses --address (ray://...), a Ray address, not storage


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text())


def test_only_storage_decides_local_or_remote():
    found = []
    for name, tree in _modules():
        for node in ast.walk(tree):
            scheme = isinstance(node, ast.Constant) and node.value == "://"
            local_fs = isinstance(node, ast.Attribute) and node.attr == "LocalFileSystem"
            if (scheme or local_fs) and name not in STORAGE | ADDRESS:
                found.append(f"{name}:{node.lineno}")
    assert not found, f"decides local vs remote storage outside sweep/storage.py: {found}"


def test_only_the_ray_node_touches_ray_internals():
    found = []
    for name, tree in _modules():
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.Attribute) and node.attr == "_private":
                names = ["._private"]
            if any("._private" in n or n.startswith("_private") for n in names) and name not in RAY_NODE:
                found.append(f"{name}:{node.lineno}")
    assert not found, f"uses ray._private outside sweep/ray_node.py: {found}"
