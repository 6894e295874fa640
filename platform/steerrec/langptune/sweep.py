"""One trial of the profile-length sweep (langptune-profiles Table 3): the trainable that
tune/sweep_profile_length.py hands to Ray Tune.

The library never imports ray.tune: the script binds Tune's own functions,

    trainable = functools.partial(trial, report=tune.report, get_context=tune.get_context)

A trial's config is {"base": LangPTuneConfig as a dict, "runs": the folder of the trials'
run folders, "eval_sessions": test sessions to evaluate, and the swept values under their
dotted keys, e.g. "policy.rollout.profile_length": 128}. Each trial writes its own run
folder (<runs>/<trial name>), so a restored trial resumes after its last finished outer
iteration (train_langptune); it reports the test table once, at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from steerrec.langptune.train import LangPTuneConfig
from steerrec.train import trial as train_trial

RESERVED = ("eval_sessions",)  # read by the trial itself ("base" and "runs" are every trial's)


def trial_config(config: dict[str, Any], trial_name: str) -> LangPTuneConfig:
    """The base config with this trial's dotted overrides and its own run folder."""
    return train_trial.trial_config(LangPTuneConfig, config, trial_name, RESERVED)


def trial(config: dict[str, Any], report: Callable[[dict[str, Any]], None], get_context: Callable[[], Any]) -> None:
    """Train and evaluate this trial's config, then report its test metrics and baselines."""
    from steerrec.langptune.runs import train_and_evaluate

    def fit(cfg: LangPTuneConfig) -> None:
        results = train_and_evaluate(cfg, int(config.get("eval_sessions", 0)))
        flat = {f"test_{k}": v for k, v in results["metrics"].items()}
        for name, metrics in results["baselines"].items():
            flat |= {f"{name}_{k}": v for k, v in metrics.items()}
        flat |= {f"truth_{k}": v for k, v in results.get("truth", {}).items()}  # the world's likes/dislikes named
        report(flat | {"profile_length": cfg.policy.rollout.profile_length})

    train_trial.run_trial(LangPTuneConfig, config, get_context, fit, RESERVED)
