"""Memorisation audit of synthetic images: does the generator hand back (near-)copies of the
patients' images it was trained on?

For every synthetic image the audit finds its nearest training image twice: by pixel correlation
(Pearson's r of the two images' pixels, 1 for an exact copy, also for a copy whose brightness or
contrast was changed) and, when features are given, by Euclidean distance in a classifier's feature
space (``Classifier.features``). A synthetic image whose correlation reaches ``threshold`` is
flagged as a near-copy. As a reference for what "close" means in a data set whose images share
anatomy, held-out real images can be audited against the same training images: their nearest
neighbours are different patients, so their correlations show the background level (Carlini et
al. 2023, "Extracting training data from diffusion models", and Somepalli et al. 2023 use the same
nearest-neighbour comparison against the training set).

Heavy work is one matrix product per chunk (numpy's BLAS).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

#: Pixel correlation from which a synthetic image counts as a near-copy of a training image.
DEFAULT_THRESHOLD = 0.95
_CHUNK = 512


def _flatten(images, name: str) -> np.ndarray:
    x = np.asarray(images)
    if x.ndim < 2:
        raise ValueError(f"{name} must be a batch of images, got shape {x.shape}")
    if len(x) == 0:
        raise ValueError(f"{name} holds no images")
    x = x.reshape(len(x), -1).astype(np.float64)
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _standardise(x: np.ndarray) -> np.ndarray:
    """Rows centred and scaled to unit norm, so that a dot product is Pearson's r (a constant
    image, with no variation, correlates 0 with everything)."""
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def nearest_by_correlation(queries, references, *, query_labels=None, reference_labels=None):
    """For each query image, the reference image with the highest pixel correlation.

    With labels, only references of the query's class are searched. Returns ``(index, r)``:
    int64 indices into ``references`` and the correlations (float64)."""
    q, r = _standardise(_flatten(queries, "queries")), _standardise(_flatten(references, "references"))
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} values per image, references {r.shape[1]}")
    return _nearest(q, r, query_labels, reference_labels, lambda block, ref: block @ ref.T, largest=True)


def nearest_by_distance(query_features, reference_features, *, query_labels=None, reference_labels=None):
    """For each query, the nearest reference in Euclidean feature distance: ``(index, distance)``."""
    q = np.asarray(query_features, np.float64)
    r = np.asarray(reference_features, np.float64)
    if q.ndim != 2 or r.ndim != 2 or q.shape[1] != r.shape[1]:
        raise ValueError(f"features must be 2-D with the same width, got {q.shape} and {r.shape}")
    rr = np.einsum("ij,ij->i", r, r)

    def distances(block, ref_index):
        sq = np.einsum("ij,ij->i", block, block)[:, None] + rr[ref_index][None, :] - 2 * block @ r[ref_index].T
        return np.sqrt(np.clip(sq, 0, None))

    return _nearest(q, r, query_labels, reference_labels, distances, largest=False, pass_index=True)


def _nearest(q, r, query_labels, reference_labels, score, *, largest: bool, pass_index: bool = False):
    if (query_labels is None) != (reference_labels is None):
        raise ValueError("pass labels for both queries and references, or for neither")
    index = np.zeros(len(q), dtype=np.int64)
    value = np.full(len(q), -np.inf if largest else np.inf)
    groups = [(np.arange(len(q)), np.arange(len(r)))]
    if query_labels is not None:
        query_labels, reference_labels = np.asarray(query_labels), np.asarray(reference_labels)
        if len(query_labels) != len(q) or len(reference_labels) != len(r):
            raise ValueError("each image needs one label")
        groups = [(np.flatnonzero(query_labels == c), np.flatnonzero(reference_labels == c)) for c in np.unique(query_labels)]
    for rows, refs in groups:
        if len(refs) == 0:
            raise ValueError("a query class has no reference images of its class")
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start:start + _CHUNK]
            s = score(q[chunk], refs) if pass_index else score(q[chunk], r[refs])
            best = s.argmax(axis=1) if largest else s.argmin(axis=1)
            index[chunk] = refs[best]
            value[chunk] = s[np.arange(len(chunk)), best]
    return index, value


def memorisation_audit(synthetic, training, *, synthetic_labels=None, training_labels=None, synthetic_features=None,
                       training_features=None, reference=None, reference_labels=None, reference_features=None,
                       threshold: float = DEFAULT_THRESHOLD, same_class: bool = False) -> dict:
    """Nearest training image of every synthetic image, and the share of near-copies.

    synthetic, training : images (any shape per image, the same for both).
    synthetic_features, training_features : optional feature vectors of the same images (e.g.
        ``clf.features(images)``) for the feature-space distance to the nearest training image.
    reference : optional held-out real images (never seen by the generator), audited the same way
        against ``training`` as the background level of similarity between different patients.
    threshold : pixel correlation from which a synthetic image is a near-copy.
    same_class : search only the synthetic image's class (needs labels); by default every training
        image is searched, since a copy is a copy whatever its label.

    Returns a dict: ``nearest`` (index into training), ``correlation``, ``feature_distance`` (or
    None), ``near_copy`` (bool per synthetic image), ``near_copy_share``, ``threshold``,
    ``order`` (synthetic indices from the closest pair down), ``summary`` (quantiles of the
    correlations) and, with a reference, ``reference_correlation``, ``reference_summary`` and
    ``reference_share`` (share of held-out real images above the threshold: if it is high, the
    threshold is too low for this data, since different patients already reach it).
    """
    if not -1 <= float(threshold) <= 1:
        raise ValueError(f"threshold is a correlation between -1 and 1, got {threshold}")
    kwargs = {}
    if same_class:
        if synthetic_labels is None or training_labels is None:
            raise ValueError("same_class=True needs synthetic_labels and training_labels")
        kwargs = {"query_labels": synthetic_labels, "reference_labels": training_labels}
    nearest, r = nearest_by_correlation(synthetic, training, **kwargs)
    result = {"nearest": nearest, "correlation": r, "threshold": float(threshold)}
    result["near_copy"] = r >= float(threshold)
    result["near_copy_share"] = float(result["near_copy"].mean())
    result["order"] = np.argsort(-r, kind="stable")
    result["summary"] = _quantiles(r)
    result["feature_distance"] = None
    if synthetic_features is not None:
        if training_features is None:
            raise ValueError("synthetic_features needs training_features")
        result["feature_nearest"], result["feature_distance"] = nearest_by_distance(synthetic_features, training_features, **kwargs)
        # distance from each synthetic image to the training image it correlates with most
        sf, tf = np.asarray(synthetic_features, np.float64), np.asarray(training_features, np.float64)
        result["distance_to_correlated"] = np.linalg.norm(sf - tf[nearest], axis=1)
    if reference is not None:
        ref_kwargs = {}
        if same_class:
            if reference_labels is None:
                raise ValueError("same_class=True needs reference_labels")
            ref_kwargs = {"query_labels": reference_labels, "reference_labels": training_labels}
        _, ref_r = nearest_by_correlation(reference, training, **ref_kwargs)
        result["reference_correlation"] = ref_r
        result["reference_summary"] = _quantiles(ref_r)
        result["reference_share"] = float((ref_r >= float(threshold)).mean())
        if reference_features is not None and training_features is not None:
            _, result["reference_feature_distance"] = nearest_by_distance(reference_features, training_features, **ref_kwargs)
    if synthetic_labels is not None:
        labels = np.asarray(synthetic_labels)
        result["per_class_share"] = {str(c): float(result["near_copy"][labels == c].mean()) for c in np.unique(labels)}
    return result


def _quantiles(values: np.ndarray) -> dict:
    q = np.quantile(values, [0.5, 0.9, 0.99, 1.0])
    return {"median": float(q[0]), "p90": float(q[1]), "p99": float(q[2]), "max": float(q[3]), "mean": float(values.mean())}


def closest_pairs(audit: dict, k: int = 8) -> list:
    """The k synthetic images closest to a training image: ``[(synthetic_index, training_index, r), ...]``."""
    order = audit["order"][: int(k)]
    return [(int(i), int(audit["nearest"][i]), float(audit["correlation"][i])) for i in order]
