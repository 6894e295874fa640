"""Local model assembly (parts concatenated in order, sha256 checked, cache reused) and the
local engine's pure helpers. The parts here are tiny modules the test writes."""

from __future__ import annotations

import hashlib
import sys

import pytest

from steerrec.llm import make_sampling_params, read_sampling
from steerrec.llm.local_engine import _groups, _matches
from steerrec.llm.models import SplitGGUF, ensure_split_gguf


@pytest.fixture
def parts(tmp_path, monkeypatch):
    """Three importable 'part' modules, each with get_part_path() like the PyPI parts."""
    chunks = [b"GGUF" + bytes(range(50)), b"middle" * 100, b"tail"]
    pkg_dir = tmp_path / "site"
    pkg_dir.mkdir()
    for i, chunk in enumerate(chunks, start=1):
        (tmp_path / f"blob{i}").write_bytes(chunk)
        (pkg_dir / f"steerrec_test_part{i}.py").write_text(
            f"def get_part_path():\n    return {str(tmp_path / f'blob{i}')!r}\n"
        )
    monkeypatch.syspath_prepend(str(pkg_dir))
    yield b"".join(chunks)
    for i in range(1, 4):
        sys.modules.pop(f"steerrec_test_part{i}", None)


def _spec(blob: bytes, sha: str | None = None) -> SplitGGUF:
    return SplitGGUF(
        filename="tiny.gguf",
        packages=tuple(f"steerrec-test-part{i}" for i in range(1, 4)),
        version="0.0.1",
        size=len(blob),
        sha256=sha or hashlib.sha256(blob).hexdigest(),
    )


def test_split_gguf_assembled_checked_and_reused(parts, tmp_path):
    cache = tmp_path / "cache"
    path = ensure_split_gguf(_spec(parts), cache)
    assert path == cache / "tiny.gguf" and path.read_bytes() == parts
    assert [p.name for p in cache.iterdir()] == ["tiny.gguf"]  # no temp file left behind
    mtime = path.stat().st_mtime_ns
    assert ensure_split_gguf(_spec(parts), cache).stat().st_mtime_ns == mtime  # cached, not rebuilt
    path.write_bytes(b"corrupt")
    assert ensure_split_gguf(_spec(parts), cache).read_bytes() == parts  # a bad file is rebuilt


def test_split_gguf_wrong_hash_raises_and_keeps_nothing(parts, tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError, match="sha256"):
        ensure_split_gguf(_spec(parts, sha="0" * 64), cache)
    assert list(cache.iterdir()) == []


def test_seeded_rows_generate_alone_and_equal_params_share_a_batch():
    a, b = read_sampling(make_sampling_params(max_tokens=8)), read_sampling(make_sampling_params(max_tokens=9))
    s = read_sampling(make_sampling_params(max_tokens=8, seed=1))
    groups = _groups([a, s, b, a, s])
    assert sorted(rows for rows, _ in groups) == [[0, 3], [1], [2], [4]]


def test_schema_match():
    schema = {"type": "object", "properties": {"p": {"type": "array", "maxItems": 1}}, "required": ["p"]}
    assert _matches('{"p": ["x"]}', schema)
    assert not _matches('{"p": ["x", "y"]}', schema)
    assert not _matches('{"p": [', schema)
