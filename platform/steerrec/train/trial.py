"""The skeleton every sweep trial shares: the base config with the trial's dotted overrides
and its own run folder, then the caller's fit. tune/ binds Tune's own functions; the
library never imports ray.tune.

A trial's config is {"base": the job's config as a dict, "runs": the folder of the trials'
run folders, any `reserved` keys the fit reads itself, and the swept values under their
dotted keys, e.g. "loss.recpo.lam": 2.0}.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from typing import Any, TypeVar

C = TypeVar("C")
RESERVED = ("base", "runs")


def trial_config(cls: type[C], config: dict[str, Any], trial_name: str, reserved: tuple[str, ...] = ()) -> C:
    """`cls` from config["base"] with every non-reserved key as a dotted override, out = <runs>/<trial_name>."""
    from steerrec.config import from_dict, set_dotted

    data = copy.deepcopy(config["base"])
    for key, value in config.items():
        if key not in RESERVED + tuple(reserved):
            set_dotted(data, key, value)
    data["out"] = os.path.join(config["runs"], trial_name)
    return from_dict(cls, data, f"trial {trial_name}")


def run_trial(
    cls: type[C],
    config: dict[str, Any],
    get_context: Callable[[], Any],
    fit: Callable[[C], Any],
    reserved: tuple[str, ...] = (),
) -> Any:
    """Build this trial's config (named by Tune's context) and return `fit(config)`; `fit` reports."""
    return fit(trial_config(cls, config, get_context().get_trial_name(), reserved))
