"""Metrics of predicted probabilities: the ROC curve, ROC-AUC (binary and one-vs-rest) and log loss,
as scikit-learn 1.9 computes them."""
from __future__ import annotations

import math
import warnings

import numpy as np

from ._targets import UndefinedMetricWarning, as_labels, labels_array


def _scores(y_score, name: str, n: int) -> np.ndarray:
    s = np.asarray(y_score)
    if s.dtype.kind not in "fiub":
        raise ValueError(f"{name} must be numeric, got dtype {s.dtype}")
    if s.dtype not in (np.float16, np.float32, np.float64):
        s = s.astype(np.float64)
    if s.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D or 2-D, got shape {s.shape}")
    if s.shape[0] != n:
        raise ValueError(f"Found input variables with inconsistent numbers of samples: [{n}, {s.shape[0]}]")
    if not np.isfinite(s).all():
        raise ValueError(f"Input {name} contains NaN or infinity.")
    return s


# ---- ROC curve ---------------------------------------------------------------------------------

def _positive_label(y_true: np.ndarray, pos_label):
    """scikit-learn's rule: without pos_label, y_true must be {0, 1} or {-1, 1} (or one of them) and 1 is positive."""
    if pos_label is not None:
        return pos_label
    classes = np.unique(y_true)
    allowed = ([0, 1], [-1, 1], [0], [-1], [1])
    if classes.dtype.kind == "U" or not any(classes.tolist() == a for a in allowed):
        shown = ", ".join(repr(c) for c in classes.tolist())
        raise ValueError(f"y_true takes value in {{{shown}}} and pos_label is not specified: either make y_true take "
                         "value in {0, 1} or {-1, 1} or pass pos_label explicitly.")
    return 1


def roc_curve(y_true, y_score, *, pos_label=None, drop_intermediate: bool = True):
    """Receiver operating characteristic of a binary problem: ``(fpr, tpr, thresholds)``.

    Thresholds are the distinct scores in decreasing order, preceded by +inf (the point (0, 0));
    tied scores form one threshold, so a tie between a positive and a negative draws a diagonal
    segment. ``drop_intermediate`` drops points on straight segments (the area is unchanged).
    """
    y_true = as_labels(y_true, "y_true")
    y_score = _scores(y_score, "y_score", len(y_true))
    if y_score.ndim == 2 and y_score.shape[1] == 1:
        y_score = y_score[:, 0]
    if y_score.ndim != 1:
        raise ValueError(f"y_score must be 1-D for a ROC curve, got shape {y_score.shape}")
    if pos_label is None and len(np.unique(y_true)) > 2:
        raise ValueError("multiclass format is not supported")
    positive = (y_true == _positive_label(y_true, pos_label)).astype(np.float64)

    order = np.argsort(-y_score.astype(np.float64), kind="stable")      # decreasing scores
    y_score, positive = y_score[order], positive[order]
    last_of_each_score = np.r_[np.flatnonzero(np.diff(y_score)), len(positive) - 1]
    tps = np.cumsum(positive)[last_of_each_score]
    fps = 1 + last_of_each_score - tps
    thresholds = y_score[last_of_each_score].astype(np.float64)

    if drop_intermediate and len(fps) > 2:
        corner = np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        fps, tps, thresholds = fps[corner], tps[corner], thresholds[corner]
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    thresholds = np.r_[np.inf, thresholds]
    if fps[-1] <= 0:
        warnings.warn("No negative samples in y_true, false positive value should be meaningless",
                      UndefinedMetricWarning, stacklevel=2)
        fpr = np.full(fps.shape, np.nan)
    else:
        fpr = fps / fps[-1]
    if tps[-1] <= 0:
        warnings.warn("No positive samples in y_true, true positive value should be meaningless",
                      UndefinedMetricWarning, stacklevel=2)
        tpr = np.full(tps.shape, np.nan)
    else:
        tpr = tps / tps[-1]
    return fpr, tpr, thresholds


def auc(x, y) -> float:
    """Area under a curve by the trapezoidal rule; x must be monotonic (either direction)."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"Found input variables with inconsistent numbers of samples: [{len(x)}, {len(y)}]")
    if x.shape[0] < 2:
        raise ValueError(f"At least 2 points are needed to compute area under curve, but x.shape = {x.shape}")
    dx = np.diff(x)
    direction = 1
    if (dx < 0).any():
        if not (dx <= 0).all():
            raise ValueError(f"x is neither increasing nor decreasing : {x}.")
        direction = -1
    return float(direction * (dx * (y[1:] + y[:-1]) / 2.0).sum())


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """AUC of 0/1 targets; NaN with a warning when only one class is present (scikit-learn >= 1.6)."""
    if len(np.unique(positive)) != 2:
        warnings.warn("Only one class is present in y_true. ROC AUC score is not defined in that case.",
                      UndefinedMetricWarning, stacklevel=3)
        return math.nan
    fpr, tpr, _ = roc_curve(positive, score)
    return auc(fpr, tpr)


def ovr_auc_per_class(y_true: np.ndarray, y_score: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """One-vs-rest AUC of each class: column c scores "is classes[c]" against all the others."""
    return np.array([_binary_auc((y_true == c).astype(np.int64), y_score[:, j]) for j, c in enumerate(classes)])


# ---- ROC-AUC -----------------------------------------------------------------------------------

def roc_auc_score(y_true, y_score, *, average="macro", multi_class="ovr", labels=None):
    """Area under the ROC curve.

    Binary y_true: ``y_score`` is the score of the greater label (shape (n,)); an (n, 2)
    probability array is also accepted and its second column used. Multiclass: ``y_score`` holds
    probabilities (n, n_classes) whose columns follow ``labels`` (sorted) or the sorted classes of
    y_true, and each class is scored one-vs-rest; ``average`` "macro" (mean over classes),
    "weighted" (by support), "micro" (all columns pooled) or None (per class).

    Unlike scikit-learn, ``multi_class`` defaults to "ovr" (scikit-learn's default "raise" makes
    you ask for it); "ovo" is not implemented. A class of ``labels`` that y_true lacks gives NaN
    for that class and an ``UndefinedMetricWarning``, as in scikit-learn 1.9; without ``labels``,
    y_true must hold as many classes as y_score has columns.
    """
    y_true = as_labels(y_true, "y_true")
    y_score = _scores(y_score, "y_score", len(y_true))
    if len(y_true) == 0:
        raise ValueError("Found empty input array while a minimum of 1 sample is required.")
    classes_in_y = np.unique(y_true)
    multiclass = len(classes_in_y) > 2 or (y_score.ndim == 2 and y_score.shape[1] > 2)
    if not multiclass:
        if average not in (None, "micro", "macro", "weighted", "samples"):
            raise ValueError(f"average has to be one of (None, 'micro', 'macro', 'weighted', 'samples'), got {average!r}")
        if y_score.ndim == 2:
            y_score = y_score[:, -1]      # (n, 1): the scores; (n, 2): the greater label's probability
        positive = (y_true == classes_in_y[-1]) if len(classes_in_y) == 2 else np.zeros(len(y_true), dtype=bool)
        return _binary_auc(positive.astype(np.int64), y_score)

    if multi_class == "raise":
        raise ValueError("multi_class must be in ('ovo', 'ovr')")
    if multi_class != "ovr":
        raise ValueError(f"multi_class={multi_class!r} is not supported; medsynth implements one-vs-rest ('ovr') only")
    if y_score.ndim != 2:
        raise ValueError("`y_score` needs to be of shape `(n_samples, n_classes)`, since `y_true` contains multiple "
                         f"classes. Got `y_score.shape={y_score.shape}`.")
    if not np.allclose(1, y_score.sum(axis=1)):
        raise ValueError("Target scores need to be probabilities for multiclass roc_auc, i.e. they should sum up to "
                         "1.0 over classes")
    if average not in ("micro", "macro", "weighted", None):
        raise ValueError(f"average must be one of ('micro', 'macro', 'weighted', None) for multiclass problems, "
                         f"got {average!r}")
    if labels is not None:
        classes = labels_array(labels, classes_in_y, "labels")
        if not np.array_equal(np.sort(classes), classes):
            raise ValueError("Parameter 'labels' must be ordered")
        if len(classes) != y_score.shape[1]:
            raise ValueError(f"Number of given labels, {len(classes)}, not equal to the number of columns in "
                             f"'y_score', {y_score.shape[1]}")
        if len(np.setdiff1d(y_true, classes)):
            raise ValueError("'y_true' contains labels not in parameter 'labels'")
    else:
        classes = classes_in_y
        if len(classes) != y_score.shape[1]:
            raise ValueError(f"Number of classes in y_true not equal to the number of columns in 'y_score' "
                             f"({len(classes)} classes {classes.tolist()}, {y_score.shape[1]} columns); pass labels= "
                             "to name the columns")

    onehot = (y_true[:, None] == classes[None, :]).astype(np.int64)
    if average == "micro":
        return _binary_auc(onehot.ravel(), y_score.ravel())
    per_class = ovr_auc_per_class(y_true, y_score, classes)
    return average_ovr(per_class, onehot.sum(axis=0), average)


def average_ovr(per_class: np.ndarray, support: np.ndarray, average):
    """scikit-learn's averaging of per-class scores: "weighted" by support, with a class of
    support 0 counted as 0 (so a NaN from an absent class drops out); all supports 0 gives 0."""
    if average is None:
        return per_class
    if average == "macro":
        return float(np.average(per_class))
    weights = np.asarray(support, dtype=np.float64)
    if np.isclose(weights.sum(), 0.0):
        return 0.0
    return float(np.average(np.where(weights == 0, 0.0, per_class), weights=weights))


# ---- log loss ----------------------------------------------------------------------------------

def log_loss(y_true, y_proba, *, normalize: bool = True, labels=None) -> float:
    """Cross-entropy -1/n · Σ_i log p_i[y_i] of predicted probabilities.

    y_proba : (n, n_classes), columns in the order of the sorted ``labels`` (default: the sorted
        classes of y_true), or (n,) for the probability of the greater of two classes.
    Probabilities are clipped to [eps, 1 - eps] with eps the machine epsilon of their dtype
    (float16/32/64 are kept), so a confident mistake costs -log(eps) and not infinity; rows are
    not renormalised (scikit-learn >= 1.5) but a warning says when they do not sum to one.
    """
    y_true = as_labels(y_true, "y_true")
    proba = _scores(y_proba, "y_proba", len(y_true))
    if proba.dtype.kind != "f":
        proba = proba.astype(np.float64)
    if len(y_true) == 0:
        raise ValueError("Found empty input array while a minimum of 1 sample is required.")
    if proba.max() > 1:
        raise ValueError(f"y_prob contains values greater than 1: {proba.max()}")
    if proba.min() < 0:
        raise ValueError(f"y_prob contains values lower than 0: {proba.min()}")

    if labels is not None:
        given = labels_array(labels, y_true, "labels")
        classes = np.unique(given)
        if not np.array_equal(classes, given):
            warnings.warn(f"Labels passed were {given.tolist()}. But this function assumes labels are ordered "
                          f"lexicographically. Pass the ordered labels={classes.tolist()} and ensure that the columns "
                          "of y_prob correspond to this ordering.", UserWarning, stacklevel=2)
        unknown = np.setdiff1d(y_true, classes)
        if len(unknown):
            raise ValueError(f"y_true contains values {set(unknown.tolist())} not belonging to the passed labels "
                             f"{given.tolist()}.")
    else:
        classes = np.unique(y_true)
    if len(classes) == 1:
        if labels is None:
            raise ValueError(f"y_true contains only one label ({classes[0]}). Please provide the list of all expected "
                             "class labels explicitly through the labels argument.")
        raise ValueError(f"The labels array needs to contain at least two labels, got {classes}.")

    if proba.ndim == 1:
        proba = proba[:, None]
    if proba.shape[1] == 1:
        proba = np.concatenate([1 - proba, proba], axis=1)
    eps = np.finfo(proba.dtype).eps
    if not np.isclose(proba.sum(axis=1), 1, rtol=math.sqrt(eps)).all():
        warnings.warn("The y_prob values do not sum to one. Make sure to pass probabilities.", UserWarning, stacklevel=2)
    if len(classes) != proba.shape[1]:
        if labels is None:
            raise ValueError(f"y_true and y_prob contain different number of classes: {len(classes)} vs "
                             f"{proba.shape[1]}. Please provide the true labels explicitly through the labels argument. "
                             f"Classes found in y_true: {classes}")
        raise ValueError(f"The number of classes in labels is different from that in y_prob. Classes found in labels: "
                         f"{classes}")

    proba = np.clip(proba, eps, 1 - eps)
    onehot = (y_true[:, None] == classes[None, :]).astype(proba.dtype)
    loss = -(onehot * np.log(proba)).sum(axis=1)       # clipped, so 0 · log p is never 0 · -inf
    return float(loss.mean() if normalize else loss.sum())
