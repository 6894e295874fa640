"""alignment/ is split by responsibility with no import cycle, and the library never imports ray.tune."""

from __future__ import annotations

import ast

import pytest

from conftest import REPO


def test_no_import_cycle_inside_alignment():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("steerrec")
    modules = sorted(m for m in graph.modules if m.startswith("steerrec.alignment."))
    cycles = [
        (a, b)
        for i, a in enumerate(modules)
        for b in modules[i + 1 :]
        if graph.chain_exists(a, b, as_packages=False) and graph.chain_exists(b, a, as_packages=False)
    ]
    assert not cycles, f"import cycles: {cycles}"


def test_the_library_never_imports_ray_tune():
    found = []
    for path in sorted((REPO / "platform" / "steerrec").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            if any(n == "ray.tune" or n.startswith("ray.tune.") for n in names):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not found, f"ray.tune imported by the library: {found}"
