"""Checks of the paths and names a user hands to medsynth, before anything touches the disk.

A careful library refuses, with a ValueError naming the argument: NUL bytes (a C string ends at
the first one, so "model\\0.safetensors" would silently become "model"), empty paths, and, for names
that become one path component (class folders, file prefixes), separators and "." / "..", which
would write outside the folder the caller chose.
"""
from __future__ import annotations

import os


def fspath(path, name: str = "path"):
    """``os.fspath(path)``, checked: a non-empty str or bytes without NUL bytes."""
    try:
        p = os.fspath(path)
    except TypeError:
        raise TypeError(f"{name} must be a str, bytes or os.PathLike, got {type(path).__name__}") from None
    nul = "\0" if isinstance(p, str) else b"\0"
    if nul in p:
        raise ValueError(f"{name} contains a NUL byte: {p!r}")
    if len(p) == 0:
        raise ValueError(f"{name} is empty")
    return p


def component(value, name: str, *, allow_empty: bool = False) -> str:
    """``str(value)`` checked to be one safe path component (a folder or file name)."""
    text = str(value)
    if "\0" in text:
        raise ValueError(f"{name} contains a NUL byte: {text!r}")
    if not text and not allow_empty:
        raise ValueError(f"{name} is empty; it names a folder or file")
    if text in (".", ".."):
        raise ValueError(f"{name} is {text!r}, which is not a folder or file name")
    separators = {"/", "\\", os.sep} | ({os.altsep} if os.altsep else set())
    if any(s in text for s in separators):
        raise ValueError(f"{name} {text!r} contains a path separator; it must be a single folder or file name")
    return text
