"""jobs/train_sft.py and jobs/align.py: flags, config file and overrides compose one AlignConfig."""

from __future__ import annotations

import argparse
import subprocess
import sys
from types import SimpleNamespace

import pytest

from conftest import REPO
from steerrec.alignment.cli import add_run_args, run_job
from steerrec.config import ConfigError


def _run(argv: list[str], **flags):
    seen = {}

    def fit(cfg, storage, name):
        seen.update(cfg=cfg, storage=storage, name=name)
        return SimpleNamespace(metrics={"epoch": 1})

    run_job(add_run_args(argparse.ArgumentParser()).parse_args(argv), fit, "sft", **flags)
    return seen


def test_flags_then_overrides_with_absolute_paths(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "align.yaml").write_text("lr: 0.5\nloss:\n  dpo:\n    beta: 0.3\n  sdpo:\n    beta: 0.4\n")
    seen = _run(["--data", "d", "--out", "o", "--config", "align.yaml", "loss.dpo.beta=2.0"], **{"loss.name": "dpo"})
    cfg = seen["cfg"]
    assert (cfg.data, cfg.out, cfg.loss.name) == (str(tmp_path / "d"), str(tmp_path / "o"), "dpo")
    assert (cfg.lr, cfg.loss.dpo.beta, cfg.loss.sdpo.beta) == (0.5, 2.0, 0.4)  # the file, then the override
    assert seen["storage"] == str(tmp_path / "o" / "ray") and seen["name"] == "sft"
    assert '"epoch": 1' in capsys.readouterr().out


def test_an_unknown_override_is_refused_by_name(tmp_path):
    with pytest.raises(ConfigError, match="no_such_field"):
        _run(["--data", str(tmp_path), "--out", str(tmp_path / "o"), "no_such_field=1"])


@pytest.mark.parametrize("job", ["train_sft.py", "align.py"])
def test_jobs_parse_their_flags(job):
    out = subprocess.run(
        [sys.executable, str(REPO / "jobs" / job), "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--eval-users" in out and ("--sft-run" in out) == (job == "align.py")


def test_the_example_config_loads_with_a_nested_override():
    from steerrec.alignment.config import AlignConfig
    from steerrec.config import load

    cfg = load(AlignConfig, REPO / "configs" / "align_recpo.yaml", ["loss.name=simpo", "loss.recpo.lam=1.5"])
    assert (cfg.loss.name, cfg.loss.section.gamma, cfg.loss.recpo.lam, cfg.loss.dpo.beta) == ("simpo", 0.5, 1.5, 0.1)
    assert cfg.loop("align").grad_accum == 2 and cfg.loop("align").trainable_only
