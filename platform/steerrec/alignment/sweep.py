"""One trial of an alignment sweep: the trainable that tune/ hands to Ray Tune.

The library never imports ray.tune: tune/_sweep.py binds Tune's own functions,

    trainable = functools.partial(trial, report=tune.report, checkpoint_cls=tune.Checkpoint,
                                  get_checkpoint=tune.get_checkpoint, get_context=tune.get_context)

which pickles by reference (this module is importable on every worker, no cloudpickle by
value). A trial's config is {"base": AlignConfig as a dict, "runs": folder of the trials'
run folders, and the swept values under their dotted AlignConfig keys, e.g.
"loss.recpo.lam": 2.0}; each epoch reports through the loop's RaySession, so Ray Train
and Ray Tune share one adapter, and a restored trial resumes from its latest checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from steerrec.alignment.config import AlignConfig
from steerrec.alignment.train import run_stage
from steerrec.train import trial as train_trial


def trial_config(config: dict[str, Any], trial_name: str) -> AlignConfig:
    """The base AlignConfig with this trial's dotted overrides and its own run folder."""
    return train_trial.trial_config(AlignConfig, config, trial_name)


def trial(
    config: dict[str, Any],
    report: Callable[..., None],
    checkpoint_cls: Any,
    get_checkpoint: Callable[[], Any],
    get_context: Callable[[], Any],
) -> None:
    """Align with this trial's config, reporting each epoch (and its checkpoint) through `report`."""
    from steerrec.train.loop import RaySession

    def fit(cfg: AlignConfig) -> None:
        run_stage(cfg, "align", RaySession(report, checkpoint_cls, get_checkpoint(), use_gpu=cfg.use_gpu))

    train_trial.run_trial(AlignConfig, config, get_context, fit)
