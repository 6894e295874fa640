"""No pickle outside tests: checkpoints are safetensors + JSON, and nothing loads with torch.load.

An AST scan of the library, jobs, sweeps, the Serve app and the benchmarks: any import of
pickle / cloudpickle / dill / joblib, any `torch.load` (or `from torch import load`) and
any use of `cloudpickle` (e.g. ray.cloudpickle.register_pickle_by_value) fails the test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO

FOLDERS = ("platform", "jobs", "tune", "serve", "benchmarks")
PICKLERS = {"pickle", "cPickle", "_pickle", "cloudpickle", "dill", "joblib", "shelve"}


def _sources() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (REPO / folder).rglob("*.py") if ".venv" not in p.parts)


def pickle_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) for every pickle import, torch.load call or cloudpickle attribute in `tree`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names if a.name.split(".")[-1] in PICKLERS]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = {a.name for a in node.names}
            if set(module.split(".")) & PICKLERS or names & PICKLERS:
                found.append((node.lineno, f"from {module} import {sorted(names)}"))
            if module == "torch" and "load" in names:
                found.append((node.lineno, "from torch import load"))
        elif isinstance(node, ast.Attribute):
            if node.attr in PICKLERS:
                found.append((node.lineno, f".{node.attr}"))
            if node.attr == "load" and isinstance(node.value, ast.Name) and node.value.id == "torch":
                found.append((node.lineno, "torch.load"))
    return found


def test_the_scan_finds_what_it_looks_for():
    code = (
        "import pickle\nfrom ray import cloudpickle\nimport torch\n"
        "torch.load('x', weights_only=False)\nray.cloudpickle.dumps(1)\nfrom torch import load\n"
    )
    lines = sorted({line for line, _ in pickle_uses(ast.parse(code))})
    assert lines == [1, 2, 4, 5, 6]
    assert pickle_uses(ast.parse("import json\nfrom safetensors.torch import load_file\n")) == []


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_pickle_or_torch_load(path):
    uses = pickle_uses(ast.parse(path.read_text(), str(path)))
    assert not uses, f"{path.relative_to(REPO)}: " + ", ".join(f"line {n}: {what}" for n, what in uses)
