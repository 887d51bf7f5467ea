"""Accuracy, balanced accuracy, the confusion matrix, precision, recall and F-scores (scikit-learn's
definitions, from the counts of each class)."""
from __future__ import annotations

import math
import warnings

import numpy as np

from ._targets import UndefinedMetricWarning, check_targets, labels_array

AVERAGES = (None, "micro", "macro", "weighted", "binary")


# ---- accuracy ---------------------------------------------------------------------------------

def accuracy_score(y_true, y_pred, *, normalize: bool = True) -> float:
    """Fraction (or with ``normalize=False`` the number) of labels predicted exactly."""
    _, _, y_true, y_pred = check_targets(y_true, y_pred)
    correct = (y_true == y_pred).astype(np.float64)
    return float(correct.mean() if normalize else correct.sum())


def balanced_accuracy_score(y_true, y_pred, *, adjusted: bool = False) -> float:
    """Mean recall over the classes of ``y_true`` (Brodersen et al. 2010).

    Classes that occur only in ``y_pred`` are left out, with a warning, as scikit-learn does.
    ``adjusted=True`` rescales so that chance scores 0 and perfect 1: (score - 1/k) / (1 - 1/k).
    """
    cm = confusion_matrix(y_true, y_pred)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_class = np.diag(cm) / cm.sum(axis=1)
    if np.isnan(per_class).any():
        warnings.warn("y_pred contains classes not in y_true", UserWarning, stacklevel=2)
        per_class = per_class[~np.isnan(per_class)]
    score = per_class.mean()
    if adjusted:
        chance = 1 / len(per_class)
        score = (score - chance) / (1 - chance)
    return float(score)


# ---- confusion matrix ---------------------------------------------------------------------------

def confusion_matrix(y_true, y_pred, *, labels=None, normalize=None) -> np.ndarray:
    """``C[i, j]``: samples of true class ``labels[i]`` predicted as ``labels[j]``.

    labels : the classes to show, in this order (default: sorted union of y_true and y_pred);
        samples whose true or predicted label is not among them are left out.
    normalize : None (counts, int64), "true" (rows sum to 1), "pred" (columns sum to 1) or
        "all" (the matrix sums to 1); an empty row or column stays 0.
    """
    if normalize not in (None, "true", "pred", "all"):
        raise ValueError(f"normalize must be one of {{'true', 'pred', 'all', None}}, got {normalize!r}")
    _, present, y_true, y_pred = check_targets(y_true, y_pred)
    if labels is None:
        labels = present
    else:
        labels = labels_array(labels, present, "labels")
        if labels.size == 0:
            raise ValueError("'labels' should contain at least one label.")
        if len(np.intersect1d(y_true, labels)) == 0:
            raise ValueError("At least one label specified must be in y_true")
    n = len(labels)
    true_index, true_known = _index_in(labels, y_true)
    pred_index, pred_known = _index_in(labels, y_pred)
    keep = true_known & pred_known
    cm = np.bincount(true_index[keep] * n + pred_index[keep], minlength=n * n).reshape(n, n).astype(np.int64)
    if normalize is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            if normalize == "true":
                cm = cm / cm.sum(axis=1, keepdims=True)
            elif normalize == "pred":
                cm = cm / cm.sum(axis=0, keepdims=True)
            else:
                cm = cm / cm.sum()
        cm = np.nan_to_num(cm)
    if cm.shape == (1, 1):
        warnings.warn("A single label was found in 'y_true' and 'y_pred'. For the confusion matrix to have the "
                      "correct shape, use the 'labels' parameter to pass all known labels.", UserWarning, stacklevel=2)
    return cm


def _index_in(labels: np.ndarray, y: np.ndarray):
    """Position of each value of ``y`` in ``labels`` (any order, no duplicates) and whether it is there."""
    if len(labels) == 0:
        return np.zeros(len(y), dtype=np.int64), np.zeros(len(y), dtype=bool)
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    pos = np.clip(np.searchsorted(sorted_labels, y), 0, len(labels) - 1)
    known = sorted_labels[pos] == y
    return order[pos], known


# ---- precision, recall, F -------------------------------------------------------------------------

def _zero_division_value(zero_division) -> float:
    if isinstance(zero_division, str):
        if zero_division == "warn":
            return 0.0
    elif isinstance(zero_division, (int, float, np.number)) and not isinstance(zero_division, bool):
        if zero_division in (0, 1):
            return float(zero_division)
        if math.isnan(zero_division):
            return math.nan
    raise ValueError(f"zero_division must be 'warn', 0, 1 or np.nan, got {zero_division!r}")


def _divide(numerator, denominator, metric: str, modifier: str, average, warn_for, zero_division) -> np.ndarray:
    """numerator / denominator, with ``zero_division``'s value where the denominator is 0 and,
    for "warn", scikit-learn's UndefinedMetricWarning."""
    denominator = np.asarray(denominator, dtype=np.float64)
    mask = denominator == 0
    result = np.asarray(numerator, dtype=np.float64) / np.where(mask, 1.0, denominator)
    if not mask.any():
        return result
    result[mask] = _zero_division_value(zero_division)
    if isinstance(zero_division, str) and metric in warn_for:
        where = "due to" if result.shape[0] == 1 else "in labels with"
        warnings.warn(f"{metric.capitalize()} is ill-defined and being set to 0.0 {where} no {modifier} samples. "
                      "Use `zero_division` parameter to control this behavior.", UndefinedMetricWarning, stacklevel=4)
    return result


def _nanaverage(values: np.ndarray, weights=None) -> float:
    """Average ignoring NaN entries; weights that are all zero are ignored (scikit-learn's rule)."""
    if values.shape[0] == 0:
        return math.nan
    keep = ~np.isnan(values)
    if not keep.any():
        return math.nan
    if weights is None:
        return float(values[keep].mean())
    weights = np.asarray(weights, dtype=np.float64)[keep]
    if weights.sum() == 0:
        return float(values[keep].mean())
    return float(np.average(values[keep], weights=weights))


def _set_wise_labels(y_type, present, average, labels, pos_label):
    """The labels a set-wise metric scores (scikit-learn's ``_check_set_wise_labels``)."""
    if average not in AVERAGES:
        raise ValueError(f"average has to be one of {AVERAGES}, got {average!r}")
    if average == "binary":
        if y_type != "binary":
            raise ValueError(f"Target is {y_type} but average='binary'. Please choose another average setting, "
                             f"one of {[a for a in AVERAGES if a != 'binary']}.")
        if pos_label not in present.tolist() and len(present) >= 2:
            raise ValueError(f"pos_label={pos_label!r} is not a valid label. It should be one of {present.tolist()}")
        return labels_array([pos_label], present, "pos_label")
    if pos_label not in (None, 1):
        warnings.warn(f"Note that pos_label (set to {pos_label!r}) is ignored when average != 'binary' (got "
                      f"{average!r}). You may use labels=[pos_label] to specify a single positive class.",
                      UserWarning, stacklevel=3)
    return present if labels is None else labels_array(labels, present, "labels")


def _class_counts(y_true, y_pred, labels):
    """True positives, predicted and true counts of each label in ``labels``."""
    true_index, true_known = _index_in(labels, y_true)
    pred_index, pred_known = _index_in(labels, y_pred)
    k = len(labels)
    tp = np.bincount(true_index[true_known & (y_true == y_pred)], minlength=k)
    predicted = np.bincount(pred_index[pred_known], minlength=k)
    actual = np.bincount(true_index[true_known], minlength=k)
    return tp.astype(np.int64), predicted.astype(np.int64), actual.astype(np.int64)


def precision_recall_fscore_support(y_true, y_pred, *, beta: float = 1.0, labels=None, pos_label=1, average=None,
                                    warn_for=("precision", "recall", "f-score"), zero_division="warn"):
    """Precision tp/(tp+fp), recall tp/(tp+fn), F-beta (1+β²)tp / ((1+β²)tp + β²fn + fp) and support.

    average : None (arrays, one value per label), "binary" (the ``pos_label`` class only; needs at
        most two classes), "micro" (from counts summed over the labels), "macro" (unweighted mean
        over the labels) or "weighted" (mean weighted by support). Averages ignore NaN scores.
    zero_division : value of a score whose denominator is 0: "warn" (0 and an
        ``UndefinedMetricWarning``), 0, 1 or np.nan.
    Returns (precision, recall, fbeta, support); support is None when averaging.
    """
    _zero_division_value(zero_division)
    if not beta >= 0:
        raise ValueError(f"beta must be non-negative, got {beta}")
    y_type, present, y_true, y_pred = check_targets(y_true, y_pred)
    labels = _set_wise_labels(y_type, present, average, labels, pos_label)
    tp, predicted, actual = _class_counts(y_true, y_pred, labels)
    if average == "micro":
        tp, predicted, actual = (np.array([a.sum()]) for a in (tp, predicted, actual))

    precision = _divide(tp, predicted, "precision", "predicted", average, warn_for, zero_division)
    recall = _divide(tp, actual, "recall", "true", average, warn_for, zero_division)
    if np.isposinf(beta):
        f_score = recall
    elif beta == 0:
        f_score = precision
    else:
        beta2 = beta ** 2
        f_score = _divide((1 + beta2) * tp, beta2 * actual + predicted, "f-score", "true nor predicted", average,
                          warn_for, zero_division)
    if average is None:
        return precision, recall, f_score, actual
    weights = actual if average == "weighted" else None
    return _nanaverage(precision, weights), _nanaverage(recall, weights), _nanaverage(f_score, weights), None


def precision_score(y_true, y_pred, *, labels=None, pos_label=1, average="binary", zero_division="warn"):
    """Precision tp / (tp + fp): of the samples predicted as a class, the fraction that are."""
    p, _, _, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, pos_label=pos_label, average=average,
                                                 warn_for=("precision",), zero_division=zero_division)
    return p


def recall_score(y_true, y_pred, *, labels=None, pos_label=1, average="binary", zero_division="warn"):
    """Recall (sensitivity) tp / (tp + fn): of the samples of a class, the fraction found."""
    _, r, _, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, pos_label=pos_label, average=average,
                                                 warn_for=("recall",), zero_division=zero_division)
    return r


def fbeta_score(y_true, y_pred, *, beta: float, labels=None, pos_label=1, average="binary", zero_division="warn"):
    """F-beta (1+β²)·tp / ((1+β²)·tp + β²·fn + fp); β > 1 favours recall."""
    _, _, f, _ = precision_recall_fscore_support(y_true, y_pred, beta=beta, labels=labels, pos_label=pos_label,
                                                 average=average, warn_for=("f-score",), zero_division=zero_division)
    return f


def f1_score(y_true, y_pred, *, labels=None, pos_label=1, average="binary", zero_division="warn"):
    """F1 2·tp / (2·tp + fn + fp), the harmonic mean of precision and recall."""
    return fbeta_score(y_true, y_pred, beta=1.0, labels=labels, pos_label=pos_label, average=average,
                       zero_division=zero_division)
