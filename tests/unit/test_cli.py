"""Jobs fail like command-line tools: one `error: <file>: <field>: <what>` line, exit 2,
the traceback only behind --debug; Ctrl-C and SIGTERM exit 130 and 143."""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from steerrec.cli import EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USER_ERROR, describe, main
from steerrec.config import ConfigError
from steerrec.data import schema
from steerrec.errors import Terminated

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _keep_pytest_logging(monkeypatch):
    """main() sets up logging for a job (force=True); here it would drop pytest's handlers."""
    monkeypatch.setattr("steerrec.cli.setup_logging", lambda: None)


def _job(name: str):
    """A script of jobs/ as a module (jobs/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"job_{name}", REPO / "jobs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_job(name: str, argv: list[str], capsys) -> tuple[int, str]:
    job = _job(name)
    status = main(job.run, job.parser(), argv, exit=False)
    return status, capsys.readouterr().err


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error: ")]


def test_missing_dataset_folder_is_one_line_naming_the_file_and_folder(tmp_path, capsys):
    data = tmp_path / "nowhere" / "world"
    status, err = _run_job(
        "build_benchmark", ["--data", str(data), "--no-preferences", "--out", str(tmp_path / "b")], capsys
    )
    assert status == EXIT_USER_ERROR
    assert _error_lines(err) == [f"error: {data}/sequences.parquet: not found (no folder {data})"]
    assert "Traceback" not in err


def test_missing_sequences_file_names_the_file(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    status, err = _run_job(
        "build_benchmark", ["--data", str(tmp_path / "data"), "--no-preferences", "--out", str(tmp_path / "b")], capsys
    )
    assert status == EXIT_USER_ERROR
    assert _error_lines(err) == [f"error: {tmp_path}/data/sequences.parquet: not found"]


def test_a_column_of_the_wrong_type_names_file_and_column(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    rows = {"user_id": ["u1"], "t": ["second"], "history": [["i1"]], "target": ["i2"], "split": ["test"]}
    pq.write_table(pa.table(rows), data / schema.SEQUENCES_FILE)
    status, err = _run_job(
        "build_benchmark", ["--data", str(data), "--no-preferences", "--out", str(tmp_path / "b")], capsys
    )
    assert status == EXIT_USER_ERROR
    (line,) = _error_lines(err)
    assert line.startswith(f"error: {data}/sequences.parquet: column 't' has type string, expected int"), line


def test_an_unknown_run_folder_names_its_run_json(tmp_path, capsys):
    status, err = _run_job("evaluate", ["--runs", str(tmp_path / "no-such-run")], capsys)
    assert status == EXIT_USER_ERROR
    (line,) = _error_lines(err)
    assert line.startswith(f"error: {tmp_path}/no-such-run/run.json: missing"), line


def test_an_unknown_config_key_names_it(tmp_path, capsys):
    status, err = _run_job("prepare_data", ["--format", "world", "--out", str(tmp_path / "d"), "kcroe=3"], capsys)
    assert status == EXIT_USER_ERROR
    (line,) = _error_lines(err)
    assert line.startswith("error: <flags>: unknown key(s) ['kcroe'] for PrepareConfig"), line


def test_debug_shows_the_traceback_then_the_line(tmp_path, capsys):
    data = tmp_path / "nowhere"
    argv = ["--data", str(data), "--no-preferences", "--out", str(tmp_path / "b"), "--debug"]
    status, err = _run_job("build_benchmark", argv, capsys)
    assert status == EXIT_USER_ERROR
    assert "Traceback (most recent call last)" in err and "FileNotFoundError" in err
    assert err.rstrip().splitlines()[-1] == f"error: {data}/sequences.parquet: not found (no folder {data})"


def test_a_job_as_a_subprocess_prints_one_line_and_exits_2(tmp_path):
    data = tmp_path / "missing"
    cmd = [sys.executable, str(REPO / "jobs" / "build_benchmark.py"), "--data", str(data), "--no-preferences"]
    cmd += ["--out", str(tmp_path / "b")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "RAY_ADDRESS": ""})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == f"error: {data}/sequences.parquet: not found (no folder {data})"
    assert "Traceback" not in done.stderr
    debug = subprocess.run([*cmd, "--debug"], capture_output=True, text=True, timeout=120)
    assert debug.returncode == 2 and "Traceback (most recent call last)" in debug.stderr


def test_a_bug_keeps_its_traceback(capsys):
    def run(args):
        raise ZeroDivisionError("a bug, not a user error")

    with pytest.raises(ZeroDivisionError):
        main(run, argparse.ArgumentParser(), [], exit=False)


@pytest.mark.parametrize(("exc", "status"), [(KeyboardInterrupt(), EXIT_INTERRUPTED), (Terminated(), EXIT_TERMINATED)])
def test_interrupt_and_sigterm_exit_130_and_143(exc, status, capsys):
    def run(args):
        raise exc

    assert main(run, argparse.ArgumentParser(), [], exit=False) == status
    assert capsys.readouterr().err.strip() in ("interrupted", "terminated (SIGTERM)")


def test_describe_keeps_to_one_line():
    assert describe(ConfigError("cfg.yaml: a\n  b")) == "cfg.yaml: a b"
    assert describe(FileNotFoundError(2, "No such file", "/x/y.parquet")) == "/x/y.parquet: not found (no folder /x)"
    assert describe(PermissionError(13, "Permission denied", "/root/z")) == "/root/z: permission denied"
