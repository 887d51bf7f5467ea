"""Rank statistics against values worked out by hand."""
import math

import numpy as np
import pytest

from medsynth.stats import mann_whitney_u, rankdata, spearman


def test_mann_whitney_without_ties():
    # x = 1, 2, 3 and y = 4, 5: ranks 1..5, R1 = 6, U1 = 6 − 3·4/2 = 0, U2 = 6, U = max = 6;
    # mu = 3, sigma = √(2·3/12 · 6) = √3, z = (6 − 3 − ½)/√3 = 1.44338, p = 2·Φ(−1.44338) = 0.148915
    r = mann_whitney_u([1, 2, 3], [4, 5])
    assert r.statistic == 0
    assert r.pvalue == pytest.approx(0.1489146731787657, abs=1e-12)
    assert mann_whitney_u([1, 2, 3], [4, 5], alternative="less").pvalue == pytest.approx(0.1489146731787657 / 2, abs=1e-12)


def test_mann_whitney_with_ties():
    # x = 1, 2, 2 and y = 2, 3: ranks 1, 3, 3 | 3, 5; R1 = 7, U1 = 1, U2 = 5, U = 5; one tie of
    # three: Σ(t³ − t) = 24, sigma = √(6/12 · (6 − 24/20)) = √2.4, z = 1.5/√2.4 = 0.968246,
    # p = 2·Φ(−0.968246) = 0.332922
    r = mann_whitney_u([1, 2, 2], [2, 3])
    assert r.statistic == 1
    assert r.pvalue == pytest.approx(0.3329216080655659, abs=1e-12)
    assert r.pvalue == pytest.approx(math.erfc((1.5 / math.sqrt(2.4)) / math.sqrt(2)), abs=1e-15)


def test_mann_whitney_identical_samples_and_errors():
    # every value tied: sigma = 0; with the continuity correction z = −½/0 = −∞ and p = 1, without
    # it z = 0/0 and p is NaN (as scipy)
    r = mann_whitney_u([1, 1, 1], [1, 1])
    assert r.statistic == 3 and r.pvalue == 1
    assert math.isnan(mann_whitney_u([1, 1, 1], [1, 1], use_continuity=False).pvalue)
    with pytest.raises(ValueError):
        mann_whitney_u([], [1])
    with pytest.raises(ValueError):
        mann_whitney_u([1, np.nan], [1])


def test_spearman_and_ranks():
    # ranks of 5, 6, 7, 8, 7: 1, 2, 3.5, 5, 3.5; centred (−2, −1, 0, 1, 2)·(−2, −1, .5, 2, .5) = 8,
    # norms 10 and 9.5: ρ = 8/√95 = 0.820783
    assert list(rankdata([5, 6, 7, 8, 7])) == [1, 2, 3.5, 5, 3.5]
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / math.sqrt(95), abs=1e-15)
    assert spearman([1, 2, 3], [3, 2, 1]) == -1
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
