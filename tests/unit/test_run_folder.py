"""steerrec.run_folder: run.json round trip, every check naming the file and the field, atomic writes."""

from __future__ import annotations

import json
import logging
import re
import sys

import pytest

from steerrec.run_folder import (
    RUN_FILE,
    RUN_SCHEMA_VERSION,
    RunFolderError,
    RunInfo,
    describe_input,
    new_run_info,
    read_run_info,
    require_file,
    write_json,
    write_run_info,
)


def _write(tmp_path, data) -> str:
    (tmp_path / RUN_FILE).write_text(data if isinstance(data, str) else json.dumps(data))
    return re.escape(str(tmp_path / RUN_FILE))


def _valid() -> dict:
    return json.loads(json.dumps(new_run_info("recommender", 3, {}, model="tiger").__dict__))


def test_round_trip_keeps_every_field_and_the_provenance(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "manifest.json").write_text("{}")
    inputs = {"data": describe_input(str(tmp_path / "data"))}
    info = new_run_info("recommender", 3, inputs, model="tiger", best_epoch=2, best_valid=0.5)
    write_run_info(tmp_path, info)
    back = read_run_info(tmp_path, kinds=("recommender",))
    assert back == info and isinstance(back, RunInfo)
    assert back.schema_version == RUN_SCHEMA_VERSION and back.details == {
        "model": "tiger",
        "best_epoch": 2,
        "best_valid": 0.5,
    }
    assert len(back.inputs["data"]["manifest_sha256"]) == 64
    assert back.versions["torch"] and back.python == "{}.{}.{}".format(*sys.version_info[:3]) and back.created_at
    assert back.git_commit is None or len(back.git_commit) == 40


def test_describe_input_of_a_missing_folder_records_no_digest(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        assert describe_input(str(tmp_path / "nope")) == {"path": str(tmp_path / "nope"), "manifest_sha256": None}
    assert "manifest.json: not found" in caplog.text
    (tmp_path / "f.parquet").write_bytes(b"x")
    assert describe_input(str(tmp_path / "f.parquet"), manifest=False)["sha256"].startswith("2d711642")


def test_missing_run_json_names_the_file_and_its_writer(tmp_path):
    with pytest.raises(RunFolderError, match=re.escape(str(tmp_path / RUN_FILE)) + ": missing"):
        read_run_info(tmp_path)
    with pytest.raises(RunFolderError, match=r"items.parquet: missing \(written by jobs/train_recommender.py\)"):
        require_file(tmp_path, "items.parquet")
    (tmp_path / "items.parquet").write_bytes(b"")
    assert require_file(tmp_path, "items.parquet") == tmp_path / "items.parquet"


def test_not_json_and_not_an_object(tmp_path):
    where = _write(tmp_path, "{not json")
    with pytest.raises(RunFolderError, match=where + ": not valid JSON"):
        read_run_info(tmp_path)
    where = _write(tmp_path, [1, 2])
    with pytest.raises(RunFolderError, match=where + ": expected a JSON object, got list"):
        read_run_info(tmp_path)


@pytest.mark.parametrize("version", [0, 2, "1", True, -1, None])
def test_unknown_schema_version(tmp_path, version):
    where = _write(tmp_path, _valid() | {"schema_version": version})
    with pytest.raises(RunFolderError, match=where + ": schema_version .* unknown; this code reads 1"):
        read_run_info(tmp_path)


@pytest.mark.parametrize("name", ["kind", "seed", "inputs", "details"])
def test_missing_field_is_named(tmp_path, name):
    data = _valid()
    del data[name]
    where = _write(tmp_path, data)
    with pytest.raises(RunFolderError, match=where + f": field '{name}' missing"):
        read_run_info(tmp_path)


@pytest.mark.parametrize(
    ("name", "value", "kind"),
    [
        ("kind", 3, "a string"),
        ("seed", "0", "an integer"),
        ("seed", True, "an integer"),
        ("inputs", [], "a JSON object"),
        ("details", "x", "a JSON object"),
    ],
)
def test_mistyped_field_is_named(tmp_path, name, value, kind):
    where = _write(tmp_path, _valid() | {name: value})
    with pytest.raises(RunFolderError, match=where + f": field '{name}' must be {kind}, got {re.escape(repr(value))}"):
        read_run_info(tmp_path)


def test_unknown_field_and_wrong_kind(tmp_path):
    where = _write(tmp_path, _valid() | {"modle": "tiger"})
    with pytest.raises(RunFolderError, match=where + r": unknown field\(s\) \['modle'\]"):
        read_run_info(tmp_path)
    where = _write(tmp_path, _valid())
    with pytest.raises(
        RunFolderError, match=where + r": field 'kind' is 'recommender', expected one of \['sft', 'align'\]"
    ):
        read_run_info(tmp_path, kinds=("sft", "align"))


def test_legacy_run_json_reads_with_a_warning(tmp_path, caplog):
    legacy = {"kind": "recommender", "model": "tiger", "mixture": "all", "best_epoch": 2, "seed": 1, "inputs": {}}
    legacy |= {"git_commit": "abc", "versions": {"torch": "2"}, "created_at": "2026-01-01T00:00:00+00:00"}
    _write(tmp_path, legacy)
    with caplog.at_level(logging.WARNING):
        info = read_run_info(tmp_path, kinds=("recommender",))
    assert "no schema_version" in caplog.text and "legacy" in caplog.text
    assert info.schema_version == 0 and info.details == {"model": "tiger", "mixture": "all", "best_epoch": 2}
    assert info.seed == 1 and info.git_commit == "abc" and info.python is None


def test_write_json_is_atomic(tmp_path, monkeypatch):
    path = write_json(tmp_path / "sub" / "metrics.json", {"a": 1.5})
    assert json.loads(path.read_text()) == {"a": 1.5}
    with pytest.raises(TypeError):
        write_json(path, {"a": object()})  # cannot be encoded: the old file stays, no temp file
    assert json.loads(path.read_text()) == {"a": 1.5} and sorted(p.name for p in path.parent.iterdir()) == [
        "metrics.json"
    ]

    import os

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1.5} and sorted(p.name for p in path.parent.iterdir()) == [
        "metrics.json"
    ]


def test_file_names_agree_with_the_dataset_schema_and_the_models():
    from steerrec import run_folder as rf
    from steerrec.data import schema
    from steerrec.models import seq2seq

    assert (rf.ITEMS_FILE, rf.SEMANTIC_IDS_FILE) == (schema.ITEMS_FILE, schema.SEMANTIC_IDS_FILE)
    assert (seq2seq.CONFIG_FILE, seq2seq.WEIGHTS_FILE) == (rf.CONFIG_FILE, rf.MODEL_FILE)
