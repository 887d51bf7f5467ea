"""How close synthetic images are to real ones, measured in a feature space: Fréchet distance,
kernel inception distance, improved precision and recall, and diversity.

The features are what a network's head reads (``Classifier.features``): the experiment uses a
classifier trained on the real sample, since Inception-v3's ImageNet weights (the "I" of FID and
KID) are not available offline. Values are therefore comparable within one feature extractor, not
with published FIDs.

* Fréchet distance (Heusel et al. 2017, "GANs trained by a two time-scale update rule"):
  ``||mu_r - mu_s||^2 + Tr(S_r + S_s - 2 (S_r S_s)^(1/2))`` of the two sets' Gaussian fits.
* KID (Bińkowski et al. 2018, "Demystifying MMD GANs"): the unbiased estimate of the squared
  MMD with the cubic polynomial kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over random
  subsets (torchmetrics' and clean-fid's defaults: 100 subsets of 1000).
* Improved precision and recall (Kynkäänniemi et al. 2019): the share of synthetic samples inside
  the real manifold (the union of balls reaching each real sample's k-th nearest real neighbour),
  and of real samples inside the synthetic manifold; k = 3 as in the paper.
* Diversity: mean pairwise feature distance within a set, and its ratio to the real set's.

numpy only (float64): no scipy. Heavy work is matrix products (BLAS) in chunks.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

#: Kynkäänniemi et al. 2019 use the 3rd nearest neighbour for the manifold radii.
DEFAULT_K = 3
#: torchmetrics / clean-fid: KID over 100 random subsets of 1000 samples each.
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000
#: rows of a distance matrix computed at once (bounds memory to CHUNK x n doubles).
_CHUNK = 1024


def _features(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (samples, features), got shape {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples, got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _same_width(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"real and synthetic features have different widths ({a.shape[1]} vs {b.shape[1]})")


# ---- Fréchet distance --------------------------------------------------------------------------


def gaussian_statistics(features) -> tuple:
    """Mean and covariance (unbiased, n - 1) of a feature set, as pytorch-fid computes them."""
    x = _features(features, "features")
    return x.mean(axis=0), np.cov(x, rowvar=False, ddof=1).reshape(x.shape[1], x.shape[1])


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((a + a.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``Tr((S1 S2)^(1/2))`` is the sum of the square roots of the eigenvalues of the symmetric
    positive semi-definite ``S1^(1/2) S2 S1^(1/2)``, which has the same eigenvalues as ``S1 S2``:
    an eigendecomposition instead of scipy's ``sqrtm`` (as torchmetrics and clean-fid avoid it).
    """
    mu1, mu2 = np.asarray(mu1, np.float64).ravel(), np.asarray(mu2, np.float64).ravel()
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.size
    if mu2.size != d or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shapes do not match: mu1 {mu1.shape}, sigma1 {s1.shape}, mu2 {mu2.shape}, sigma2 {s2.shape}")
    root = _sqrt_psd(s1)
    product = root @ s2 @ root
    trace_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((product + product.T) / 2), 0, None)).sum())
    diff = mu1 - mu2
    return max(0.0, float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt))


def fid(real_features, synthetic_features) -> float:
    """Fréchet distance between the Gaussian fits of two feature sets (FID in the given space)."""
    real, synthetic = _features(real_features, "real_features"), _features(synthetic_features, "synthetic_features")
    _same_width(real, synthetic)
    return frechet_distance(*gaussian_statistics(real), *gaussian_statistics(synthetic))


# ---- kernel inception distance -------------------------------------------------------------------


def _polynomial_kernel(a: np.ndarray, b: np.ndarray, degree: int, gamma: float, coef0: float) -> np.ndarray:
    return (a @ b.T * gamma + coef0) ** degree


def mmd2_unbiased(x, y, *, degree: int = 3, gamma: Optional[float] = None, coef0: float = 1.0) -> float:
    """Unbiased squared MMD between samples x and y with the polynomial kernel
    ``(gamma x.y + coef0)^degree`` (gamma = 1/d by default):
    ``mean_{i!=j} k(x_i, x_j) + mean_{i!=j} k(y_i, y_j) - 2 mean_{i,j} k(x_i, y_j)``."""
    x, y = _features(x, "x"), _features(y, "y")
    _same_width(x, y)
    gamma = 1.0 / x.shape[1] if gamma is None else float(gamma)
    m, n = len(x), len(y)
    kxx = _polynomial_kernel(x, x, degree, gamma, coef0)
    kyy = _polynomial_kernel(y, y, degree, gamma, coef0)
    kxy = _polynomial_kernel(x, y, degree, gamma, coef0)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def kid(real_features, synthetic_features, *, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE,
        degree: int = 3, gamma: Optional[float] = None, coef0: float = 1.0, seed: int = 0) -> dict:
    """Kernel inception distance: the unbiased squared MMD (cubic polynomial kernel) averaged over
    ``subsets`` random subsets of ``subset_size`` samples drawn without replacement from each set
    (clipped to the smaller set's size). Returns ``{"mean", "std", "subsets", "subset_size"}``;
    when ``subset_size`` covers both sets the estimate is computed once on everything (std 0)."""
    real, synthetic = _features(real_features, "real_features"), _features(synthetic_features, "synthetic_features")
    _same_width(real, synthetic)
    if int(subsets) < 1 or int(subset_size) < 2:
        raise ValueError(f"subsets must be >= 1 and subset_size >= 2, got {subsets} and {subset_size}")
    if int(subset_size) >= max(len(real), len(synthetic)):
        value = mmd2_unbiased(real, synthetic, degree=degree, gamma=gamma, coef0=coef0)
        return {"mean": value, "std": 0.0, "subsets": 1, "subset_size": max(len(real), len(synthetic))}
    size = min(int(subset_size), len(real), len(synthetic))
    rng = np.random.default_rng(seed)
    values = np.array([mmd2_unbiased(real[rng.choice(len(real), size, replace=False)],
                                     synthetic[rng.choice(len(synthetic), size, replace=False)],
                                     degree=degree, gamma=gamma, coef0=coef0) for _ in range(int(subsets))])
    return {"mean": float(values.mean()), "std": float(values.std()), "subsets": int(subsets), "subset_size": size}


# ---- improved precision and recall ---------------------------------------------------------------


def pairwise_distances(a, b) -> np.ndarray:
    """Euclidean distances between the rows of a and b, (len(a), len(b)), through
    ``|a|^2 + |b|^2 - 2 a.b`` (BLAS), clipped at 0."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    out = np.empty((len(a), len(b)))
    bb = np.einsum("ij,ij->i", b, b)
    for start in range(0, len(a), _CHUNK):
        block = a[start:start + _CHUNK]
        sq = np.einsum("ij,ij->i", block, block)[:, None] + bb[None, :] - 2 * block @ b.T
        out[start:start + _CHUNK] = np.sqrt(np.clip(sq, 0, None))
    return out


def knn_radii(features, k: int = DEFAULT_K) -> np.ndarray:
    """Distance from each sample to its k-th nearest other sample of the same set."""
    x = _features(features, "features")
    if not 1 <= int(k) < len(x):
        raise ValueError(f"k must be between 1 and the number of samples - 1 ({len(x) - 1}), got {k}")
    radii = np.empty(len(x))
    for start in range(0, len(x), _CHUNK):
        d = pairwise_distances(x[start:start + _CHUNK], x)
        # the sample itself is at distance 0, the k-th smallest of the rest is the (k+1)-th overall
        radii[start:start + _CHUNK] = np.partition(d, int(k), axis=1)[:, int(k)]
    return radii


def _coverage(queries: np.ndarray, support: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """For each query, whether it lies within radii[j] of some support sample j."""
    inside = np.zeros(len(queries), dtype=bool)
    for start in range(0, len(queries), _CHUNK):
        d = pairwise_distances(queries[start:start + _CHUNK], support)
        inside[start:start + _CHUNK] = (d <= radii[None, :]).any(axis=1)
    return inside


def precision_recall(real_features, synthetic_features, *, k: int = DEFAULT_K) -> dict:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    precision: share of synthetic samples within the k-NN ball of at least one real sample
    (fidelity); recall: share of real samples within the k-NN ball of at least one synthetic
    sample (coverage of the real distribution). Returns ``{"precision", "recall", "k"}``."""
    real, synthetic = _features(real_features, "real_features"), _features(synthetic_features, "synthetic_features")
    _same_width(real, synthetic)
    precision = _coverage(synthetic, real, knn_radii(real, k)).mean()
    recall = _coverage(real, synthetic, knn_radii(synthetic, k)).mean()
    return {"precision": float(precision), "recall": float(recall), "k": int(k)}


# ---- diversity ----------------------------------------------------------------------------------


def mean_pairwise_distance(features) -> float:
    """Mean Euclidean distance between distinct samples of a set (0 for a set of copies)."""
    x = _features(features, "features")
    total = 0.0
    for start in range(0, len(x), _CHUNK):
        total += pairwise_distances(x[start:start + _CHUNK], x).sum()
    return float(total / (len(x) * (len(x) - 1)))


def diversity(real_features, synthetic_features) -> dict:
    """Mean pairwise feature distance of each set and their ratio (synthetic / real): below 1 the
    synthetic images vary less than the real ones (towards mode collapse), near 1 as much."""
    real = mean_pairwise_distance(real_features)
    synthetic = mean_pairwise_distance(synthetic_features)
    return {"real": real, "synthetic": synthetic, "ratio": synthetic / real if real > 0 else float("nan")}


# ---- everything, per class ----------------------------------------------------------------------


def evaluate(real_features, real_labels, synthetic_features, synthetic_labels, *, class_names=None, k: int = DEFAULT_K,
             kid_subsets: int = KID_SUBSETS, kid_subset_size: int = KID_SUBSET_SIZE, seed: int = 0) -> dict:
    """FID, KID, precision/recall and diversity per class and over all images.

    Returns ``{"per_class": {name: {...}}, "all": {...}}``; each entry has ``fid``, ``kid`` (mean),
    ``kid_std``, ``precision``, ``recall``, ``diversity_real``, ``diversity_synthetic``,
    ``diversity_ratio``, ``n_real``, ``n_synthetic``. A class with fewer than k + 1 images on
    either side gets None for the neighbour-based scores."""
    real, synthetic = _features(real_features, "real_features"), _features(synthetic_features, "synthetic_features")
    real_labels, synthetic_labels = np.asarray(real_labels), np.asarray(synthetic_labels)
    if len(real_labels) != len(real) or len(synthetic_labels) != len(synthetic):
        raise ValueError("each feature row needs one label")
    classes = np.unique(np.concatenate([real_labels, synthetic_labels]))
    names = [str(c) for c in classes] if class_names is None else [str(class_names[int(c)]) for c in classes]

    def scores(a: np.ndarray, b: np.ndarray) -> dict:
        out = {"n_real": int(len(a)), "n_synthetic": int(len(b))}
        if len(a) < 2 or len(b) < 2:
            return out
        out["fid"] = fid(a, b)
        kernel = kid(a, b, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
        out["kid"], out["kid_std"] = kernel["mean"], kernel["std"]
        enough = min(len(a), len(b)) > k
        pr = precision_recall(a, b, k=k) if enough else {"precision": None, "recall": None}
        out["precision"], out["recall"] = pr["precision"], pr["recall"]
        div = diversity(a, b)
        out["diversity_real"], out["diversity_synthetic"], out["diversity_ratio"] = div["real"], div["synthetic"], div["ratio"]
        return out

    per_class = {name: scores(real[real_labels == c], synthetic[synthetic_labels == c]) for name, c in zip(names, classes)}
    return {"per_class": per_class, "all": scores(real, synthetic), "k": int(k)}
