"""Rank statistics in numpy (scipy is not a dependency): average ranks, Spearman's rank
correlation and the Mann-Whitney U test, computed as scipy.stats computes them."""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


def rankdata(a) -> np.ndarray:
    """Ranks 1..n of a 1-D array, ties given their average rank (scipy's method='average')."""
    a = np.asarray(a, dtype=np.float64).ravel()
    order = np.argsort(a, kind="mergesort")
    sorted_a = a[order]
    # start of each run of equal values in sorted order
    starts = np.concatenate(([True], sorted_a[1:] != sorted_a[:-1]))
    run = np.cumsum(starts) - 1
    bounds = np.concatenate((np.flatnonzero(starts), [a.size]))
    average = (bounds[:-1] + bounds[1:] + 1) / 2.0          # mean of 1-based ranks in each run
    ranks = np.empty(a.size, dtype=np.float64)
    ranks[order] = average[run]
    return ranks


def _tie_counts(a: np.ndarray) -> np.ndarray:
    _, counts = np.unique(np.asarray(a, dtype=np.float64), return_counts=True)
    return counts.astype(np.float64)


def spearman(a, b) -> float:
    """Spearman's rank correlation: Pearson's correlation of the average ranks (NaN if either
    input is constant), as scipy.stats.spearmanr for two 1-D inputs."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"spearman needs two arrays of the same length, got {a.size} and {b.size}")
    if a.size < 2:
        return float("nan")
    ra, rb = rankdata(a), rankdata(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denominator = math.sqrt(float(ra @ ra) * float(rb @ rb))
    if denominator == 0:
        return float("nan")
    return float(np.clip((ra @ rb) / denominator, -1.0, 1.0))


class MannWhitneyResult(NamedTuple):
    statistic: float
    pvalue: float


def mann_whitney_u(x, y, *, alternative: str = "two-sided", use_continuity: bool = True) -> MannWhitneyResult:
    """The Mann-Whitney U test of whether x and y come from the same distribution, with the normal
    approximation, tie correction and continuity correction (scipy.stats.mannwhitneyu with
    method='asymptotic'):

        U1 = R1 − n1(n1+1)/2   (R1: sum of x's average ranks in x ∪ y),   U2 = n1·n2 − U1
        z = (U − n1·n2/2 − ½) / √(n1·n2/12 · ((n+1) − Σ(t³−t) / (n(n−1))))
        p = 2·Φ(−z) with U = max(U1, U2) (two-sided), U = U1 ('greater'), U = U2 ('less')

    Returns (statistic=U1, pvalue). scipy's method='auto' uses the exact distribution instead when
    one sample has 8 or fewer values and there are no ties.
    """
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if x.size == 0 or y.size == 0:
        raise ValueError("x and y must each hold at least one value")
    if np.isnan(x).any() or np.isnan(y).any():
        raise ValueError("x and y must not contain NaN")
    if alternative not in ("two-sided", "less", "greater"):
        raise ValueError(f"alternative must be 'two-sided', 'less' or 'greater', got {alternative!r}")
    n1, n2 = x.size, y.size
    n = n1 + n2
    combined = np.concatenate((x, y))
    r1 = rankdata(combined)[:n1].sum()
    u1 = r1 - n1 * (n1 + 1) / 2
    u2 = n1 * n2 - u1
    if alternative == "greater":
        u, factor = u1, 1
    elif alternative == "less":
        u, factor = u2, 1
    else:
        u, factor = max(u1, u2), 2
    t = _tie_counts(combined)
    tie_term = float(np.sum(t ** 3 - t))
    s = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1)))) if n > 1 else 0.0
    numerator = u - n1 * n2 / 2 - (0.5 if use_continuity else 0.0)
    if s == 0:
        z = math.copysign(math.inf, numerator) if numerator != 0 else math.nan
    else:
        z = numerator / s
    p = 0.5 * math.erfc(z / math.sqrt(2)) if not math.isnan(z) else math.nan
    return MannWhitneyResult(float(u1), float(min(max(factor * p, 0.0), 1.0)) if not math.isnan(p) else math.nan)
