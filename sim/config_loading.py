"""Typed, frozen config dataclasses loaded from YAML, with errors that name the file, key and allowed values.

A field declares its allowed values in its metadata:
    bound(lo, hi)      numbers (or each element of a [lo, hi] pair) must lie in [lo, hi]
    choice("a", "b")   strings must be one of these
A [lo, hi] pair must also satisfy lo <= hi.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from sim.errors import InhandError

T = TypeVar("T")


class ConfigError(InhandError, ValueError):
    """A config file or mapping that does not match its dataclass."""


def bound(lo: float, hi: float) -> dict[str, Any]:
    """Field metadata: numeric values (or both ends of a pair) must lie in [lo, hi]."""
    return {"bound": (lo, hi)}


def choice(*options: str) -> dict[str, Any]:
    """Field metadata: the value must be one of `options`."""
    return {"choice": options}


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (plain PyYAML keeps the last one silently)."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # keys merged in with `<<` may be overridden on purpose
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: let PyYAML report it
            break
        if first is not None:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark,
                f"key {key!r} appears twice (first {first.line + 1}:{first.column + 1}); give each key once",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def parse_yaml(text: str, source: str = "<string>") -> Any:
    """The single YAML document in `text`, refusing duplicate keys; errors are ConfigErrors naming `source`."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as error:  # one line: where, what, and in which construct
        mark = error.problem_mark or error.context_mark
        where = f", line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        context = f" ({error.context})" if error.context else ""
        raise ConfigError(f"{source}{where}: not valid YAML: {error.problem}{context}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from None


def read_yaml(path: str | Path, kind: str = "config file", mapping: bool = False) -> Any:
    """The parsed content of a YAML file: every config, params and launch file is read here.

    A missing, unreadable, binary or malformed file, a key given twice and (with mapping=True) an empty document or
    anything but a mapping at the top level are ConfigErrors naming the file.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: {kind} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder; expected a YAML {kind}") from None
    except PermissionError:
        raise ConfigError(f"{path}: {kind} cannot be read (permission denied)") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not a YAML {kind}: byte {error.start} is not UTF-8 text (a binary file?)") from None
    content = parse_yaml(text, str(path))
    if mapping and content is None:
        raise ConfigError(f"{path}: the {kind} is empty; expected a mapping of keys (write {{}} for all defaults)")
    if mapping and not isinstance(content, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level of the {kind}, got {type(content).__name__}")
    return content


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Command-line ["ppo.clip=0.1", ...] -> {"ppo.clip": 0.1}; values read as YAML, so 3, true, [1, 2] keep types."""
    overrides = {}
    for item in items:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE with a dotted key, e.g. ppo.clip=0.1")
        overrides[key] = parse_yaml(value, f"--set {item}")
    return overrides


def flatten_mapping(mapping: dict[str, Any], prefix: str = "", separator: str = ".") -> dict[str, Any]:
    """Dotted keys -> leaf values of a nested mapping."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            flat.update(flatten_mapping(value, f"{prefix}{key}{separator}", separator))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def load_config(cls: type[T], path: str | Path, overrides: dict[str, Any] | None = None) -> T:
    """Load YAML at `path` into the frozen dataclass `cls`; `overrides` maps dotted keys to values."""
    path = Path(path)
    raw = read_yaml(path, mapping=True)
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value)
    return from_mapping(cls, raw, source=str(path))


def from_mapping(cls: type[T], mapping: dict[str, Any], source: str = "<config>", prefix: str = "") -> T:
    """Build `cls` from a plain mapping, checking keys, types and ranges; missing keys keep defaults."""
    if not isinstance(mapping, dict):
        raise ConfigError(f"{source}: key '{prefix.rstrip('.') or '<top>'}': expected a mapping, got {mapping!r}")
    hints = typing.get_type_hints(cls)
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        raise ConfigError(
            f"{source}: unknown key '{prefix}{unknown[0]}'; allowed keys here: {', '.join(sorted(fields))}"
        )
    values = {}
    for name, value in mapping.items():
        values[name] = _convert(hints[name], value, fields[name].metadata, source, prefix + name)
    try:
        return cls(**values)
    except ConfigError as error:  # a rule across fields, checked by the dataclass itself
        raise ConfigError(f"{source}: {error}") from None


def to_mapping(config: Any) -> Any:
    """The plain-data (YAML-ready) form of a config dataclass."""
    if dataclasses.is_dataclass(config):
        return {field.name: to_mapping(getattr(config, field.name)) for field in dataclasses.fields(config)}
    if isinstance(config, tuple):
        return [to_mapping(item) for item in config]
    return config


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    node = raw
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def _convert(hint: Any, value: Any, metadata: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_mapping(hint, value, source, key + ".")
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [option for option in options if option is not type(None)]
        return _convert(inner, value, metadata, source, key)
    if origin is tuple:
        element_types = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: key '{key}': expected a list, got {value!r}")
        if len(element_types) == 2 and element_types[1] is Ellipsis:
            items = tuple(_scalar(element_types[0], item, metadata, source, key) for item in value)
        else:
            if len(value) != len(element_types):
                raise ConfigError(f"{source}: key '{key}': expected {len(element_types)} values, got {value!r}")
            items = tuple(
                _scalar(element_type, item, metadata, source, key) for element_type, item in zip(element_types, value)
            )
            if len(items) == 2 and all(isinstance(item, (int, float)) for item in items) and items[0] > items[1]:
                raise ConfigError(f"{source}: key '{key}': range {list(value)} has low > high")
        return items
    return _scalar(hint, value, metadata, source, key)


def _scalar(hint: Any, value: Any, metadata: Any, source: str, key: str) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: key '{key}': expected true or false, got {value!r}")
        return value
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (hint is int and isinstance(value, float)):
            raise ConfigError(f"{source}: key '{key}': expected {hint.__name__}, got {value!r}")
        value = hint(value)
        if not math.isfinite(value):
            raise ConfigError(f"{source}: key '{key}': expected a finite number, got {value!r}")
        if "bound" in metadata:
            lo, hi = metadata["bound"]
            if not lo <= value <= hi:
                raise ConfigError(f"{source}: key '{key}': value {value!r} outside allowed range [{lo}, {hi}]")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{source}: key '{key}': expected a string, got {value!r}")
        if "choice" in metadata and value not in metadata["choice"]:
            options = ", ".join(option or '""' for option in metadata["choice"])  # "" shown as such
            raise ConfigError(
                f"{source}: key '{key}': value {value!r} not allowed; choose one of {options}"
            )
        return value
    raise ConfigError(f"{source}: key '{key}': unsupported config type {hint!r}")
