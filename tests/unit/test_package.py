"""The package's own promises: a light import, and the config loader's rules."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from steerrec.config import ConfigError, load


def test_import_steerrec_imports_nothing_heavy():
    code = (
        "import sys, steerrec, steerrec.config, steerrec.data.schema;"
        "heavy = [m for m in ('torch', 'ray', 'vllm', 'transformers') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import steerrec pulled in: {out.stdout.strip()}"


@dataclass
class _Optim:
    lr: float = 1e-3
    betas: tuple[float, ...] = (0.9, 0.999)

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"optim.lr must be > 0, got {self.lr}")


@dataclass
class _Job:
    name: str = "run"
    seed: int = 0
    tag: str | None = None
    optim: _Optim = field(default_factory=_Optim)


def test_config_file_then_overrides(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("name: tiger\noptim:\n  lr: 0.01\n")
    cfg = load(_Job, path, ["seed=3", "optim.lr=3e-4", "optim.betas=[0.8, 0.9]"])
    assert cfg.name == "tiger" and cfg.seed == 3
    assert cfg.optim.lr == pytest.approx(3e-4) and cfg.optim.betas == (0.8, 0.9)
    assert cfg.tag is None


def test_config_unknown_key_names_it(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("optim:\n  lrr: 0.01\n")
    with pytest.raises(ConfigError, match=r"optim\.lrr"):
        load(_Job, path)
    with pytest.raises(ConfigError, match="colour"):
        load(_Job, None, ["colour=red"])


def test_config_wrong_type_and_check_name_field():
    with pytest.raises(ConfigError, match="seed must be int"):
        load(_Job, None, ["seed=abc"])
    with pytest.raises(ValueError, match="optim.lr must be > 0"):
        load(_Job, None, ["optim.lr=-1"])
    with pytest.raises(ConfigError, match="key=value"):
        load(_Job, None, ["seed"])


def test_library_never_imports_ray_tune():
    """The AST twin of pyproject's import-linter contract (ray is a root package there so that
    it can name ray.tune): this one keeps holding should that configuration change.

    Trainables take a `report` callback; only tune/ scripts import Ray Tune.
    """
    import ast
    from pathlib import Path

    import steerrec

    offenders = []
    for path in Path(steerrec.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            if any(n == "ray.tune" or n.startswith("ray.tune.") for n in names):
                offenders.append(f"{path}:{node.lineno}")
    assert not offenders, f"the library imports ray.tune at {offenders}"


def test_no_file_edits_sys_path():
    """jobs/, tune/, serve/, benchmarks/, tests/ and the library import the installed package
    (shared code lives in steerrec; a tune/ script finds tune/_sweep.py in its own folder),
    so no file edits sys.path: insert, append, extend, an item, += or a new list."""
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    edit = re.compile(r"\bsys\s*\.\s*path\s*(\.\s*(insert|append|extend)\s*\(|\[|\+=|=(?!=))")
    offenders = []
    for folder in ("jobs", "tune", "serve", "benchmarks", "tests", "platform"):
        for path in sorted((repo / folder).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if edit.search(line):
                    offenders.append(f"{path.relative_to(repo)}:{number}: {line.strip()}")
    assert not offenders, "sys.path edited at:\n" + "\n".join(offenders)
    path = "sys.path"  # the examples are built so that this file does not match itself
    assert edit.search(path + ".insert(0, here)") and edit.search(path + "[:0] = [here]")
    assert edit.search(path + ".append(here)") and edit.search(path + " += [here]")
    assert not edit.search("x in " + path) and not edit.search(path + " == before")


def test_library_modules_stay_small():
    """STYLE.md: modules under ~300 lines. A module past 330 is split, not grown."""
    root = Path(__file__).resolve().parents[2] / "platform" / "steerrec"
    sizes = {str(p.relative_to(root)): len(p.read_text().splitlines()) for p in root.rglob("*.py")}
    large = {name: n for name, n in sizes.items() if n > 330}
    assert not large, f"modules over 330 lines (split them by responsibility): {large}"
