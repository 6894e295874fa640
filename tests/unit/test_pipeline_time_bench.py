"""benchmarks/pipeline_time.py: training time summed over the epoch rows of every run folder."""

from __future__ import annotations

import json

import pytest
from benchmarks import pipeline_time as pt


def _rows(*pairs):
    return [{"epoch": i + 1, "steps": 10, "train_seconds": t, "seconds": s} for i, (t, s) in enumerate(pairs)]


def test_runs_rqvae_and_idgenrec_phases_are_summed_per_part(tmp_path):
    (tmp_path / "ids").mkdir()
    (tmp_path / "ids" / "metrics.json").write_text(json.dumps(_rows((1.0, 2.0), (1.0, 2.0))))  # a list of rows
    (tmp_path / "runs" / "tiger-s0").mkdir(parents=True)
    summary = {"epoch": 2, "start_epoch": 2, "history": _rows((4.0, 5.0), (6.0, 9.0))}  # resumed at epoch 2
    (tmp_path / "runs" / "tiger-s0" / "metrics.json").write_text(json.dumps(summary))
    (tmp_path / "runs" / "idgenrec-s0").mkdir()
    phases = {"phases": {"pretrain": {"history": _rows((2.0, 2.0))}, "rec_only": {"history": _rows((5.0, 6.0))}}}
    (tmp_path / "runs" / "idgenrec-s0" / "metrics.json").write_text(json.dumps(phases | {"ids": {}}))
    table = dict(pt.collect(tmp_path))
    assert list(table) == ["ids", "idgenrec-s0/pretrain", "idgenrec-s0/rec_only", "tiger-s0"]
    tiger = table["tiger-s0"]
    assert (tiger["epochs"], tiger["steps"], tiger["train_s"], tiger["valid_s"]) == (2, 20, 10.0, 4.0)
    assert tiger["steps_per_s"] == pytest.approx(2.0)
    assert table["ids"]["total_s"] == 4.0 and table["idgenrec-s0/rec_only"]["valid_s"] == 1.0


def test_a_run_in_progress_is_read_from_its_newest_checkpoints(tmp_path):
    phase = tmp_path / "runs" / "idgenrec-s0" / "phases" / "rec_only"
    for epoch in (1, 2):
        (phase / f"checkpoint_000{epoch}").mkdir(parents=True)
        state = {"epoch": epoch, "history": _rows(*[(3.0, 4.0)] * epoch)}
        (phase / f"checkpoint_000{epoch}" / "state.json").write_text(json.dumps(state))
    (phase / "checkpoint_0003").mkdir()  # being written: no state.json yet
    (tmp_path / "runs" / "idgenrec-s0" / "phases" / "pretrain").mkdir()  # nothing trained yet
    table = dict(pt.collect(tmp_path))
    assert list(table) == ["idgenrec-s0/rec_only (in progress)"]
    assert table["idgenrec-s0/rec_only (in progress)"]["epochs"] == 2
    assert table["idgenrec-s0/rec_only (in progress)"]["total_s"] == 8.0


def test_a_broken_metrics_file_is_named(tmp_path):
    (tmp_path / "runs" / "sasrec-s0").mkdir(parents=True)
    (tmp_path / "runs" / "sasrec-s0" / "metrics.json").write_text("{")
    with pytest.raises(SystemExit, match=r"sasrec-s0/metrics.json: not JSON"):
        pt.collect(tmp_path)
