"""Typed configs: dataclasses next to the component they configure, YAML files in
``configs/`` only as named presets. Building a dataclass from a mapping checks
every key and type, and errors name the key (``configs/reacher.yaml: collect.episodes:
expected int, got 'many'``).

Presets compose: a top-level ``base: other.yaml`` (relative to the file that names it)
is read first and the file's own keys are laid over it, mappings merged key by key, so
a variant states only what it changes (``benchmarks/configs/`` are such variants)."""

import copy
import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config key is unknown, missing, of the wrong type or out of range."""


def build(cls: type[T], data: Mapping[str, Any], where: str) -> T:
    """Instantiate dataclass ``cls`` from ``data``; ``where`` prefixes error messages."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__} fields, got {type(data).__name__}")
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{where}: expected a dataclass to build, got {cls!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; expected one of {sorted(fields)}")
    values = {}
    for name, f in fields.items():
        if name in data:
            values[name] = _coerce(data[name], hints[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}.{name}: required key missing")
    config = cls(**values)
    validate = getattr(config, "validate", None)
    if validate is not None:
        try:
            validate()
        except ConfigError as error:
            raise ConfigError(f"{where}.{error}") from None
    return config


BASE_KEY = "base"


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict:
    """``base`` with ``overrides`` laid over it, mappings merged key by key."""
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_document(path: str | Path, what: str = "config", _seen: tuple[Path, ...] = ()) -> dict:
    """A YAML file as a mapping, its ``base:`` chain resolved (see the module docstring)."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read {what} ({error})") from error
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(document).__name__}")
    base = document.pop(BASE_KEY, None)
    if base is None:
        return document
    if not isinstance(base, str):
        raise ConfigError(f"{path}: {BASE_KEY}: expected the path of another YAML file, got {base!r}")
    base_path = (path.parent / base).resolve()
    if base_path in _seen or base_path == path.resolve():
        raise ConfigError(f"{path}: {BASE_KEY}: {base} leads back to itself")
    return merge(read_document(base_path, what, (*_seen, path.resolve())), document)


def load(path: Path, section: str, cls: type[T], overrides: Mapping[str, Any] | None = None) -> T:
    """Build ``cls`` from one section of a YAML preset (its ``base:`` chain resolved), with
    ``overrides`` on top."""
    path = Path(path)
    document = read_document(path)
    if section not in document:
        raise ConfigError(f"{path}: no {section!r} section; found {sorted(document)}")
    data = {**document[section], **(overrides or {})}
    return build(cls, data, f"{path}: {section}")


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        options = typing.get_args(annotation)
        if value not in options:
            raise ConfigError(f"{where}: expected one of {list(options)}, got {value!r}")
        return value
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return build(annotation, value, where)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        return _coerce(value, next(a for a in options if a is not type(None)), where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = typing.get_args(annotation)[:1]
        return origin(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, float, str, bool) and not (
        isinstance(value, annotation) and not (annotation is int and isinstance(value, bool))
    ):
        raise ConfigError(f"{where}: expected {annotation.__name__}, got {value!r}")
    return value
