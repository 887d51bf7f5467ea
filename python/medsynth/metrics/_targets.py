"""Checking label arrays the way scikit-learn's ``_check_targets`` and ``unique_labels`` do."""
from __future__ import annotations

import numbers

import numpy as np


class UndefinedMetricWarning(UserWarning):
    """A metric is ill-defined (a division by zero, or a class missing from y_true) and was set to
    ``zero_division``'s value or NaN. The same role as ``sklearn.exceptions.UndefinedMetricWarning``."""


def as_labels(y, name: str) -> np.ndarray:
    """A 1-D array of class labels: integers, booleans, integral floats or strings."""
    a = np.asarray(y)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class labels, got shape {np.shape(y)}")
    if a.dtype.kind == "O":
        values = a.tolist()
        if all(isinstance(v, str) for v in values):
            a = np.array(values, dtype=str) if values else np.array([], dtype=str)
        elif all(isinstance(v, numbers.Number) and not isinstance(v, complex) for v in values):
            a = np.array(values)
        else:
            raise ValueError(f"Mix of label input types (string and number) in {name}")
    if a.dtype.kind == "S":
        a = a.astype(str)
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise ValueError(f"Input {name} contains NaN or infinity.")
        if (a != np.round(a)).any():
            raise ValueError(f"{name} has continuous values such as {a[a != np.round(a)][0]}; classification "
                             "metrics need class labels (integers or strings)")
    elif a.dtype.kind not in "biuU":
        raise ValueError(f"{name} must hold integer, boolean or string labels, got dtype {a.dtype}")
    return a


def _is_string(a: np.ndarray) -> bool:
    return a.dtype.kind == "U"


def check_targets(y_true, y_pred):
    """Validates a pair of label arrays.

    Returns ``(y_type, labels, y_true, y_pred)``: y_type "binary" (at most two labels in the
    union) or "multiclass", labels the sorted union of both arrays.
    """
    y_true = as_labels(y_true, "y_true")
    y_pred = as_labels(y_pred, "y_pred")
    if len(y_true) != len(y_pred):
        raise ValueError(f"Found input variables with inconsistent numbers of samples: [{len(y_true)}, {len(y_pred)}]")
    if len(y_true) == 0:
        raise ValueError("Found empty input array (e.g., `y_true` or `y_pred`) while a minimum of 1 sample is required.")
    labels = unique_labels(y_true, y_pred)
    return ("binary" if len(labels) <= 2 else "multiclass"), labels, y_true, y_pred


def unique_labels(*ys) -> np.ndarray:
    """The sorted union of the labels of the arrays (scikit-learn's ``unique_labels``); strings
    and numbers cannot be mixed."""
    if not ys:
        raise ValueError("No argument has been passed.")
    arrays = [as_labels(y, "y") for y in ys]
    if len({_is_string(a) for a in arrays}) > 1:
        raise ValueError("Mix of label input types (string and number)")
    return np.unique(np.concatenate(arrays))


def labels_array(labels, present: np.ndarray, name: str) -> np.ndarray:
    """A user's ``labels=`` list as an array comparable with the data's labels (same kind, no duplicates)."""
    a = np.asarray(labels)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D list of labels, got shape {a.shape}")
    if a.size:
        a = as_labels(a, name)
        if _is_string(a) != _is_string(present):
            kinds = ("strings", "numbers") if _is_string(a) else ("numbers", "strings")
            raise ValueError(f"{name} are {kinds[0]} but the labels in y_true/y_pred are {kinds[1]}")
        if len(np.unique(a)) != len(a):
            raise ValueError(f"{name} must not contain duplicates, got {a.tolist()}")
    return a
