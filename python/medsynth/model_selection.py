"""Stratified splits: the paper's 20 % / 80 % split and scikit-learn's StratifiedKFold.

Nafi et al. sample 20 % of every class to train the diffusion model and keep the untouched 80 % as
the test set (their Table 1: brain MRI 1621/1645/2000/1757 images -> 324/329/400/351 sampled; ALL
504/985/963/804 -> 101/197/193/161; lung CT 1252/1229 -> 250/246). Rounding each class's
n · 0.2 to the nearest integer reproduces every one of those counts; flooring or scikit-learn's
``train_test_split`` rule (floor for train, ceil for test) does not.
"""
from __future__ import annotations

import math
import numbers
import warnings
from fractions import Fraction

import numpy as np

#: Fraction of each class the paper samples to train the diffusion model (the rest is the test set).
PAPER_TRAIN_SIZE = 0.2


def _class_indices(y, name: str = "y"):
    """(classes, list of index arrays) with classes sorted as numpy sorts them."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class labels, got shape {y.shape}")
    if len(y) == 0:
        raise ValueError(f"{name} is empty")
    classes, inverse = np.unique(y, return_inverse=True)
    inverse = inverse.reshape(-1)
    return classes, [np.flatnonzero(inverse == c) for c in range(len(classes))]


def _fraction(value, name: str):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1:
        raise ValueError(f"{name} must be a fraction strictly between 0 and 1, got {value!r}")
    # the decimal the user wrote (0.2, not 0.2000000000000000111), so that halves round predictably
    return Fraction(float(value)).limit_denominator(10**9)


def _round_half_up(n: int, fraction: Fraction) -> int:
    return math.floor(n * fraction + Fraction(1, 2))


def stratified_split(y, train_size=None, seed: int = 0, *, test_size=None):
    """Indices ``(train_idx, test_idx)`` with the same share of every class on each side.

    Per class of n members, ``round(n · train_size)`` go to train (halves round up) and the rest
    to test; with ``test_size`` alone, ``round(n · test_size)`` go to test and the rest to train;
    with both, both are rounded and the remainder is left out. A class of two or more members
    keeps at least one on each side (a single member goes where rounding puts it).
    Defaults to ``train_size=0.2``, the paper's split (``PAPER_TRAIN_SIZE``). Which members go
    where is drawn with ``seed``; both index arrays are sorted.
    """
    classes, members = _class_indices(y)
    train_frac, test_frac = _fraction(train_size, "train_size"), _fraction(test_size, "test_size")
    if train_frac is None and test_frac is None:
        train_frac = Fraction(PAPER_TRAIN_SIZE).limit_denominator(10**9)
    if train_frac is not None and test_frac is not None and train_frac + test_frac > 1:
        raise ValueError(f"train_size + test_size must not exceed 1, got {train_size} + {test_size}")
    if int(seed) < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    rng = np.random.default_rng(int(seed))
    train, test = [], []
    for idx in members:
        n = len(idx)
        if test_frac is None:
            n_train = _round_half_up(n, train_frac)
            n_test = n - n_train
        elif train_frac is None:
            n_test = _round_half_up(n, test_frac)
            n_train = n - n_test
        else:
            n_train, n_test = _round_half_up(n, train_frac), _round_half_up(n, test_frac)
        if n >= 2:
            n_train, n_test = max(n_train, 1), max(n_test, 1)
            if n_train + n_test > n:          # the clamp overshot: take the extra from the larger side
                if n_train > n_test:
                    n_train = n - n_test
                else:
                    n_test = n - n_train
        shuffled = rng.permutation(idx)
        test.append(shuffled[:n_test])
        train.append(shuffled[n - n_train:])
    return np.sort(np.concatenate(train)).astype(np.int64), np.sort(np.concatenate(test)).astype(np.int64)


class StratifiedKFold:
    """K folds with the class proportions of ``y`` in each, as ``sklearn.model_selection.StratifiedKFold``.

    Each class is dealt to the folds as evenly as possible with scikit-learn's allocation (classes
    in order of first appearance in y, the sorted list of members dealt round-robin to the
    folds), so every fold holds exactly as many members of each class as scikit-learn's. Without
    ``shuffle``, members go to the folds in blocks in data order and the folds equal
    scikit-learn's; with ``shuffle``, which member goes to which fold is drawn with ``seed`` (the
    same seed gives the same folds; the draw differs from scikit-learn's random_state).

    Raises ValueError when n_splits exceeds the size of every class, and warns (UserWarning) when
    it exceeds the size of the smallest one, as scikit-learn does.
    """

    def __init__(self, n_splits: int = 5, *, shuffle: bool = True, seed: int = 0):
        if isinstance(n_splits, bool) or not isinstance(n_splits, numbers.Integral):
            raise ValueError(f"The number of folds must be of Integral type. {n_splits!r} of type {type(n_splits)} "
                             "was passed.")
        if n_splits <= 1:
            raise ValueError("k-fold cross-validation requires at least one train/test split by setting n_splits=2 "
                             f"or more, got n_splits={n_splits}.")
        if not isinstance(shuffle, bool):
            raise TypeError(f"shuffle must be True or False; got {shuffle!r}")
        if int(seed) < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        self.n_splits = int(n_splits)
        self.shuffle = shuffle
        self.seed = int(seed)

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        return self.n_splits

    def _test_folds(self, y) -> np.ndarray:
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"y must be a 1-D array of class labels, got shape {y.shape}")
        if y.dtype.kind == "f" and (not np.isfinite(y).all() or (y != np.round(y)).any()):
            raise ValueError("Supported target types are: ('binary', 'multiclass'). Got 'continuous' instead.")
        _, first_index, inverse = np.unique(y, return_index=True, return_inverse=True)
        # classes numbered by first appearance in y, as scikit-learn does
        _, class_order = np.unique(first_index, return_inverse=True)
        y_encoded = class_order[inverse.reshape(-1)]
        n_classes = len(first_index)
        counts = np.bincount(y_encoded)
        if np.all(self.n_splits > counts):
            raise ValueError(f"n_splits={self.n_splits} cannot be greater than the number of members in each class.")
        if self.n_splits > counts.min():
            warnings.warn(f"The least populated class in y has only {counts.min()} members, which is less than "
                          f"n_splits={self.n_splits}.", UserWarning, stacklevel=3)
        # allocation[f, c]: members of class c in fold f, dealing the sorted labels round-robin
        y_sorted = np.sort(y_encoded)
        allocation = np.array([np.bincount(y_sorted[f::self.n_splits], minlength=n_classes)
                               for f in range(self.n_splits)])
        rng = np.random.default_rng(self.seed)
        test_folds = np.empty(len(y), dtype=np.int64)
        for c in range(n_classes):
            folds_for_class = np.repeat(np.arange(self.n_splits), allocation[:, c])
            if self.shuffle:
                rng.shuffle(folds_for_class)
            test_folds[y_encoded == c] = folds_for_class
        return test_folds

    def split(self, X, y, groups=None):
        """Yields ``(train_idx, val_idx)`` for each fold, both sorted."""
        n = len(X) if X is not None else len(y)
        if len(y) != n:
            raise ValueError(f"Found input variables with inconsistent numbers of samples: [{n}, {len(y)}]")
        if self.n_splits > n:
            raise ValueError(f"Cannot have number of splits n_splits={self.n_splits} greater than the number of "
                             f"samples: n_samples={n}.")
        test_folds = self._test_folds(y)
        indices = np.arange(n)
        for f in range(self.n_splits):
            mask = test_folds == f
            yield indices[~mask], indices[mask]

    def __repr__(self) -> str:
        return f"StratifiedKFold(n_splits={self.n_splits}, shuffle={self.shuffle}, seed={self.seed})"


# ---- cross-validation and hyperparameter search ------------------------------------------------

#: Scores every fold reports, from ``medsynth.metrics`` (scikit-learn's definitions).
FOLD_SCORES = ("accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "val_loss")


def _fold_scores(model, X_val, y_val) -> dict:
    from . import metrics
    report = model.evaluate(X_val, y_val)
    return {"accuracy": report["accuracy"], "balanced_accuracy": report["balanced_accuracy"],
            "precision_macro": report["macro avg"]["precision"], "recall_macro": report["macro avg"]["recall"],
            "f1_macro": report["macro avg"]["f1-score"], "val_loss": report["loss"]}


def _summary(folds: list) -> tuple:
    mean = {k: float(np.mean([f[k] for f in folds])) for k in FOLD_SCORES}
    std = {k: float(np.std([f[k] for f in folds])) for k in FOLD_SCORES}
    return mean, std


def cross_validate(estimator, X, y, *, n_splits: int = 5, seed: int = 0, progress: bool = True, **fit_params) -> dict:
    """Stratified k-fold cross-validation of an unfitted classifier (the paper: 5 folds).

    For each fold a fresh copy of ``estimator`` (``estimator.clone()``) is trained on the other
    folds with ``fit_params``, monitoring the held-out fold as its validation set (so early
    stopping, when ``early_stopping_patience`` is given, stops on the fold's validation loss (or ``early_stopping_monitor``) and
    restores the best epoch), then scored on that fold. ``estimator`` itself is not changed.

    Returns {"folds": [{scores, "best_epoch", "history"}, ...], "mean": {...}, "std": {...}} with
    the scores of ``FOLD_SCORES`` (std is the population standard deviation, numpy's default).
    """
    y = np.asarray(y)
    splitter = StratifiedKFold(n_splits, shuffle=True, seed=seed)
    folds = []
    splits = list(splitter.split(np.empty(len(y)), y))
    iterator = splits
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(splits, desc=f"{n_splits}-fold cross-validation", unit="fold")
    fit_params.setdefault("progress", False)
    for train, val in iterator:
        model = estimator.clone()
        model.fit(X[train], y[train], validation_data=(X[val], y[val]), **fit_params)
        scores = _fold_scores(model, X[val], y[val])
        history = model.history_ or {}
        folds.append({**scores, "best_epoch": int(history.get("best_epoch", 0)), "history": history.get("epochs", [])})
    mean, std = _summary(folds)
    return {"folds": folds, "mean": mean, "std": std}


def parameter_grid(param_grid: dict) -> list:
    """Every combination of a {name: [values]} grid, in order (the last name varies fastest)."""
    if not isinstance(param_grid, dict) or not param_grid:
        raise ValueError("param_grid must be a non-empty dict {name: [values, ...]}")
    combos = [{}]
    for name, values in param_grid.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise ValueError(f"param_grid['{name}'] must be a list of values, got {values!r}")
        values = list(values)
        if not values:
            raise ValueError(f"param_grid['{name}'] is empty")
        combos = [{**c, name: v} for c in combos for v in values]
    return combos


def grid_search(estimator, X, y, param_grid: dict, *, n_splits: int = 5, scoring: str = "accuracy", seed: int = 0,
                refit: bool = True, refit_validation_split: float = 0.1, progress: bool = True, **fit_params) -> dict:
    """Hyperparameter search by mean cross-validation score (the paper tunes learning rate, batch
    size and weight decay).

    ``param_grid`` maps fit options to candidate values, e.g. {"lr": [1e-3, 3e-4], "batch_size":
    [16, 32], "weight_decay": [0.01, 0.05]}; each combination is cross-validated with the same folds
    and ``scoring`` (one of ``FOLD_SCORES``; "val_loss" is minimised, the others maximised) picks
    the best (the first on ties). With ``refit`` a fresh copy is trained on all of X with the best
    parameters (holding out a stratified ``refit_validation_split`` for early stopping when
    ``early_stopping_patience`` is among the fit options) and returned as "model".

    Returns {"results": [{"params", "mean", "std", "folds"}, ...], "best_params", "best_score",
    "best_index", "model"}.
    """
    if scoring not in FOLD_SCORES:
        raise ValueError(f"scoring must be one of {', '.join(FOLD_SCORES)}, got {scoring!r}")
    combos = parameter_grid(param_grid)
    overlap = set(param_grid) & set(fit_params)
    if overlap:
        raise ValueError(f"{', '.join(sorted(overlap))} given both in param_grid and as fit options")
    results = []
    iterator = combos
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(combos, desc="grid search", unit="setting")
    for params in iterator:
        cv = cross_validate(estimator, X, y, n_splits=n_splits, seed=seed, progress=False, **params, **fit_params)
        results.append({"params": params, **cv})
    sign = -1 if scoring == "val_loss" else 1
    best_index = max(range(len(results)), key=lambda i: (sign * results[i]["mean"][scoring], -i))
    best = results[best_index]
    out = {"results": results, "best_params": best["params"], "best_score": best["mean"][scoring],
           "best_index": best_index, "scoring": scoring, "model": None}
    if refit:
        model = estimator.clone()
        options = {**fit_params, **best["params"]}
        if options.get("early_stopping_patience") and refit_validation_split > 0:
            options.setdefault("validation_split", refit_validation_split)
        options.setdefault("progress", False)
        out["model"] = model.fit(X, y, **options)
    return out
