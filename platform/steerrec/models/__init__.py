"""Recommender models by name: TIGER, Mender-Tok, Mender-Emb, SASRec, IDGenRec.

    model = build_model("tiger", TigerConfig(codebook_sizes=[256, 256, 256, 8]))
    model = model_class("mender_tok").load("runs/x")

Importing this package imports no torch; the builders import their module when called.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

# name -> (module, model class, config class)
_ENTRIES: dict[str, tuple[str, str, str]] = {
    "tiger": ("steerrec.models.tiger", "Tiger", "TigerConfig"),
    "mender_tok": ("steerrec.models.mender", "MenderTok", "MenderTokConfig"),
    "mender_emb": ("steerrec.models.mender", "MenderEmb", "MenderEmbConfig"),
    "sasrec": ("steerrec.models.sasrec", "SASRec", "SASRecConfig"),
    "idgenrec": ("steerrec.models.idgenrec", "IDGenRec", "IDGenRecConfig"),  # jobs/train_idgenrec.py trains it
}


def _entry(name: str) -> tuple[str, str, str]:
    if name not in _ENTRIES:
        raise KeyError(f"unknown model {name!r}; known: {sorted(_ENTRIES)}")
    return _ENTRIES[name]


def model_class(name: str) -> type:
    module, cls, _ = _entry(name)
    return getattr(importlib.import_module(module), cls)


def config_class(name: str) -> type:
    module, _, cfg = _entry(name)
    return getattr(importlib.import_module(module), cfg)


def _builder(name: str) -> Callable[[Any], Any]:
    def build(config: Any) -> Any:
        expected = config_class(name)
        if not isinstance(config, expected):
            raise TypeError(f"model {name!r} takes a {expected.__name__}, got {type(config).__name__}")
        return model_class(name)(config)

    build.__name__ = f"build_{name}"
    return build


MODELS: dict[str, Callable[[Any], Any]] = {name: _builder(name) for name in _ENTRIES}


def build_model(name: str, config: Any) -> Any:
    """A freshly initialised model; an unknown name raises listing the known ones."""
    _entry(name)
    return MODELS[name](config)
