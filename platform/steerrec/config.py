"""Plain dataclass configs: YAML holds data only; `key=value` overrides; unknown keys raise.

    cfg = load(TrainJobConfig, "configs/tiger.yaml", ["optim.lr=3e-4"], flags={"seed": args.seed})

Every job folds its flags in this one way: the YAML file (``--config``), then the flags
as a dict of dotted keys with their Python values, then the trailing overrides.

Nested dataclasses are addressed with dots. Values in overrides are parsed as YAML
scalars (``3e-4`` is a float, ``true`` a bool, ``[1, 2]`` a list). Checks live in each
dataclass's ``__post_init__`` and name the field and the value.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from steerrec.errors import UserError

C = TypeVar("C")


class ConfigError(UserError, ValueError):
    """A config file or override that does not fit the dataclass."""


def load(
    cls: type[C],
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    flags: Mapping[str, Any] | None = None,
) -> C:
    """Build `cls` from an optional YAML file, then a job's `flags`, then `key=value` overrides."""
    data, source = read(path, overrides, flags)
    return from_dict(cls, data, source)


def read(
    path: str | Path | None = None, overrides: Iterable[str] = (), flags: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], str]:
    """The raw nested dict and its source name, in three layers, each over the one before:

    1. the YAML file at `path` (when given);
    2. `flags`: a job's command-line flags as dotted keys and Python values
       (``{"data": args.data, "loop.seed": args.seed}``), set as they are (no parsing);
    3. `overrides`: the trailing ``key=value`` strings, values parsed as YAML scalars.
    """
    data: dict[str, Any] = {}
    source = "<flags>"
    if path is not None:
        source = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not valid YAML: {' '.join(str(exc).split())}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{source}: expected a mapping at the top level, got {type(loaded).__name__}")
        data = loaded
    for key, value in (flags or {}).items():
        set_dotted(data, key, value)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected key=value")
        set_dotted(data, key.strip(), yaml.safe_load(raw) if raw.strip() else "")
    return data, source


def from_dict(cls: type[C], data: dict[str, Any], source: str = "<dict>", prefix: str = "") -> C:
    """Build a dataclass from a nested dict; an unknown key is an error."""
    if not isinstance(data, dict):
        raise ConfigError(f"{_at(source)}{prefix or 'config'} must be a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(
            f"{_at(source)}unknown key(s) {[where + k for k in unknown]} for {cls.__name__}; known: {sorted(fields)}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        default = _default(fields[name])
        if isinstance(value, dict) and dataclasses.is_dataclass(default) and not isinstance(default, type):
            # a section given in part keeps its default's other values, also where the class's
            # default_factory sets them apart from the section class's own defaults
            value = _over(default, value)
        kwargs[name] = _convert(hints[name], value, source, f"{prefix}.{name}" if prefix else name)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # __post_init__ names the field and the value
        text = str(exc)
        where = f"{prefix}: " if prefix and not text.startswith(prefix) else ""
        raise ConfigError(f"{_at(source)}{where}{text}") from exc


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def _over(default: Any, given: dict[str, Any]) -> dict[str, Any]:
    """`given` over the init fields of the dataclass instance `default`, nested sections merged."""
    merged: dict[str, Any] = {f.name: getattr(default, f.name) for f in dataclasses.fields(default) if f.init}
    for key, value in given.items():
        inner = merged.get(key)
        if isinstance(value, dict) and dataclasses.is_dataclass(inner) and not isinstance(inner, type):
            value = _over(inner, value)
        merged[key] = value
    return merged


def _at(source: str) -> str:
    return f"{source}: " if source else ""


def to_dict(cfg: Any) -> dict[str, Any]:
    """The plain-data form of a config (for config.yaml in run folders)."""
    return dataclasses.asdict(cfg)


def dump(cfg: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def _convert(hint: Any, value: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):  # a default's section, kept whole
            return value
        return from_dict(hint, value if value is not None else {}, source, key)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _convert(non_none[0], value, source, key)
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:  # YAML 1.1 reads "3e-4" (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if hint in (int, float, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ConfigError(f"{_at(source)}{key} must be {hint.__name__}, got {value!r}")
        return value
    if origin in (list, tuple) and isinstance(value, (list, tuple)):
        inner = args[0] if args else Any
        items = [_convert(inner, v, source, f"{key}[{i}]") if inner is not Any else v for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (list, tuple):
        raise ConfigError(f"{_at(source)}{key} must be a list, got {value!r}")
    if origin is dict and len(args) == 2 and args[1] is not Any:
        if not isinstance(value, dict):
            raise ConfigError(f"{_at(source)}{key} must be a mapping, got {value!r}")
        return {k: _convert(args[1], v, source, f"{key}.{k}") for k, v in value.items()}
    return value


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set `value` at the dotted `key` of the nested dict `data`, creating sections as needed."""
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key}: {part!r} is not a section")
        node = child
    node[parts[-1]] = value
