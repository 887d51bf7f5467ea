"""Options travel to the engine as JSON holding only what the caller set: every default lives in the
engine (one table per option set, see Sources/MedSynthCore/IO/Options.swift), which resolves the
rest. This module collects the set values, checks that numbers are finite (naming the argument),
and documents each function's options from the engine's own table."""
from __future__ import annotations

import json
import math
import os
from functools import lru_cache

from . import _engine
from ._paths import fspath


def collect(**values) -> dict:
    """The options the caller set (None means "the engine's default"), as JSON-ready values."""
    out = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, os.PathLike):
            value = fspath(value, key)
        if isinstance(value, str) and "\0" in value:
            raise ValueError(f"{key} contains a NUL byte: {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{key} must be a finite number, got {value}")
        if isinstance(value, (list, tuple)):
            value = [_plain(key, v) for v in value]
        else:
            value = _plain(key, value)
        out[key] = value
    return out


def _plain(key, value):
    """numpy scalars and the like as plain JSON numbers, strings and booleans."""
    if isinstance(value, (bool, str, int)) or value is None:
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{key} must hold finite numbers, got {value}")
        return value
    if hasattr(value, "item"):           # numpy scalar
        return _plain(key, value.item())
    raise TypeError(f"{key} must be a number, string or boolean, got {type(value).__name__}")


def dumps(options: dict) -> str:
    return json.dumps(options, allow_nan=False)


@lru_cache(maxsize=None)
def table(topic: str) -> tuple:
    """The engine's option table for ``topic``: ({key, default, doc}, ...)."""
    return tuple(json.loads(_engine.registry(topic)))


def defaults(topic: str) -> dict:
    return {o["key"]: o["default"] for o in table(topic)}


def documented(*topics: str, keys=None):
    """Appends the engine's options of ``topics`` (their defaults and documentation) to a
    function's docstring, so the defaults are written in one place."""
    def decorate(fn):
        lines = []
        for topic in topics:
            for o in table(topic):
                if keys is not None and o["key"] not in keys:
                    continue
                lines.append(f"    {o['key']} : default {json.dumps(o['default'])}\n        {o['doc']}")
        fn.__doc__ = (fn.__doc__ or "").rstrip() + "\n\n    Engine options (None or left out: the default shown)\n    " \
            + "-" * 48 + "\n" + "\n".join(lines) + "\n"
        return fn
    return decorate
