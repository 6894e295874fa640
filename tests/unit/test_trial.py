"""The sweep trial skeleton both sweeps share (steerrec.train.trial)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from steerrec.train.trial import run_trial, trial_config


@dataclass
class Inner:
    beta: float = 0.1


@dataclass
class Job:
    out: str = ""
    epochs: int = 1
    inner: Inner = field(default_factory=Inner)


def test_trial_config_applies_dotted_overrides_and_names_the_run_folder(tmp_path):
    config = {"base": {"epochs": 3, "inner": {"beta": 0.5}}, "runs": str(tmp_path), "inner.beta": 2.0, "extra": 7}
    cfg = trial_config(Job, config, "t1", reserved=("extra",))
    assert cfg == Job(out=str(tmp_path / "t1"), epochs=3, inner=Inner(beta=2.0))
    assert config["base"]["inner"]["beta"] == 0.5  # the shared base is not modified
    with pytest.raises(ValueError, match="extra"):  # an unreserved unknown key is an error, never ignored
        trial_config(Job, config, "t1")


def test_run_trial_fits_the_trials_config_and_returns_what_fit_returns(tmp_path):
    config = {"base": {}, "runs": str(tmp_path), "epochs": 4}
    context = SimpleNamespace(get_trial_name=lambda: "t9")
    got = run_trial(Job, config, lambda: context, lambda cfg: (cfg.out, cfg.epochs))
    assert got == (str(tmp_path / "t9"), 4)
