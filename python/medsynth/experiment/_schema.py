"""A small declarative schema for nested configuration dicts: every key has a spec (type, range,
choices, default, documentation); unknown keys are errors; every error names the dotted key."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence


class ConfigError(ValueError):
    """An invalid experiment configuration; the message starts with the dotted key."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"{key}: {message}" if key else message)


_MISSING = object()


@dataclass
class Spec:
    """One key: ``kind`` is "int", "float", "bool", "str", "list", "table" or "any"."""
    kind: str
    default: Any = None
    doc: str = ""
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    exclusive_minimum: bool = False
    choices: Optional[Sequence] = None
    item: Optional["Spec"] = None          # spec of list items or of table values
    nullable: bool = True                  # None allowed (means "the library's default")
    check: Optional[Callable[[str, Any], None]] = None   # extra check, raises ConfigError

    def validate(self, key: str, value):
        if value is None:
            if not self.nullable:
                raise ConfigError(key, "must be set")
            return None
        kind = self.kind
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ConfigError(key, f"must be an integer, got {_show(value)}")
            value = int(value)
        elif kind == "float":
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ConfigError(key, f"must be a number, got {_show(value)}")
            value = float(value)
            if not math.isfinite(value):
                raise ConfigError(key, f"must be finite, got {value}")
        elif kind == "bool":
            if not isinstance(value, bool):
                raise ConfigError(key, f"must be true or false, got {_show(value)}")
        elif kind == "str":
            if not isinstance(value, str):
                raise ConfigError(key, f"must be a string, got {_show(value)}")
        elif kind == "list":
            if isinstance(value, (str, bytes, dict)) or not isinstance(value, Sequence):
                raise ConfigError(key, f"must be a list, got {_show(value)}")
            value = [self.item.validate(f"{key}[{i}]", v) if self.item else v for i, v in enumerate(value)]
        elif kind == "table":
            if not isinstance(value, dict):
                raise ConfigError(key, f"must be a table of keys and values, got {_show(value)}")
            value = {str(k): self.item.validate(f"{key}.{k}", v) if self.item else v for k, v in value.items()}
        if self.choices is not None and value not in self.choices:
            raise ConfigError(key, f"must be one of {', '.join(map(repr, self.choices))}, got {value!r}")
        if kind in ("int", "float"):
            if self.minimum is not None and (value < self.minimum or (self.exclusive_minimum and value == self.minimum)):
                raise ConfigError(key, f"must be {'>' if self.exclusive_minimum else '>='} {self.minimum}, got {value}")
            if self.maximum is not None and value > self.maximum:
                raise ConfigError(key, f"must be <= {self.maximum}, got {value}")
        if self.check is not None:
            self.check(key, value)
        return value


@dataclass
class Section:
    """A table with known keys (each a Spec or a nested Section)."""
    keys: dict
    doc: str = ""
    extra: Optional[Spec] = None           # spec for keys not listed (None: unknown keys are errors)

    def validate(self, key: str, value) -> dict:
        value = {} if value is None else value
        if not isinstance(value, dict):
            raise ConfigError(key, f"must be a table, got {_show(value)}")
        unknown = [k for k in value if k not in self.keys]
        if unknown and self.extra is None:
            where = f"{key}." if key else ""
            raise ConfigError(f"{where}{unknown[0]}", f"unknown key; {'the section' if key else 'the configuration'} "
                                                      f"takes {', '.join(sorted(self.keys))}")
        out = {}
        for name, spec in self.keys.items():
            child = f"{key}.{name}" if key else name
            if isinstance(spec, Section):
                out[name] = spec.validate(child, value.get(name))
            else:
                out[name] = spec.validate(child, value.get(name, spec.default))
        for name in unknown:
            out[name] = self.extra.validate(f"{key}.{name}" if key else name, value[name])
        return out

    def describe(self, prefix: str = "") -> list:
        """(dotted key, spec) of every leaf, for documentation."""
        rows = []
        for name, spec in self.keys.items():
            child = f"{prefix}.{name}" if prefix else name
            rows += spec.describe(child) if isinstance(spec, Section) else [(child, spec)]
        return rows


def passthrough(known: Sequence[str], *, types: Optional[dict] = None, forbidden: Sequence[str] = (), why: str = "",
                doc: str = "") -> Spec:
    """A table handed to a medsynth function as keyword arguments: only ``known`` keys, values of
    JSON types (checked against ``types`` where given); the function itself checks the values."""
    known = tuple(known)

    def check(key, table):
        for name, value in table.items():
            if name in forbidden:
                raise ConfigError(f"{key}.{name}", f"is set by the experiment itself{': ' + why if why else ''}")
            if name not in known:
                raise ConfigError(f"{key}.{name}", f"unknown option; it takes {', '.join(k for k in known if k not in forbidden)}")
            expected = (types or {}).get(name)
            if expected is not None:
                Spec(expected).validate(f"{key}.{name}", value)
            _json_value(f"{key}.{name}", value)

    return Spec("table", default={}, doc=doc, check=check, nullable=False)


def _json_value(key, value):
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, numbers.Real):
        if not math.isfinite(float(value)):
            raise ConfigError(key, f"must be finite, got {value}")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _json_value(f"{key}[{i}]", v)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            _json_value(f"{key}.{k}", v)
        return
    raise ConfigError(key, f"must be a number, string, boolean, list or table, got {type(value).__name__}")


def types_from_table(table: Sequence[dict]) -> dict:
    """JSON types of an engine option table's keys, from their defaults (None where the default
    is descriptive text such as "from the data")."""
    out = {}
    for option in table:
        default = option["default"]
        if isinstance(default, bool):
            out[option["key"]] = "bool"
        elif isinstance(default, numbers.Integral):
            out[option["key"]] = "float"      # ints are valid floats; the engine checks integrality
        elif isinstance(default, numbers.Real):
            out[option["key"]] = "float"
    return out


def _show(value) -> str:
    text = repr(value)
    return (text[:60] + "...") if len(text) > 60 else text


def merge(base: dict, override: dict) -> dict:
    """``override`` laid over ``base``, recursively for tables (lists and values replace)."""
    out = dict(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
