"""medsynth.fidelity against closed forms, medsynth.privacy on planted copies, and the pooled
features they measure in (Classifier.features)."""
import numpy as np
import pytest

import medsynth
from medsynth import fidelity, privacy


# ---- Fréchet distance -------------------------------------------------------------------------


def test_frechet_distance_of_commuting_gaussians_is_the_closed_form():
    # S1 = Q D1 Q^T, S2 = Q D2 Q^T commute: FD = |mu1 - mu2|^2 + sum (sqrt d1 - sqrt d2)^2
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    d1, d2 = np.array([1.0, 2.0, 0.5, 4.0, 0.1]), np.array([3.0, 0.2, 0.5, 1.0, 2.0])
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(d1) - np.sqrt(d2)) ** 2)
    got = fidelity.frechet_distance(mu1, q @ np.diag(d1) @ q.T, mu2, q @ np.diag(d2) @ q.T)
    assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_of_non_commuting_2x2_covariances():
    # Tr (S1 S2)^(1/2) = sqrt(Tr(S1 S2) + 2 sqrt(det S1 det S2)) for 2x2 (eigenvalues of S1 S2 are >= 0)
    s1 = np.array([[2.0, 0.7], [0.7, 1.0]])
    s2 = np.array([[1.0, -0.4], [-0.4, 3.0]])
    assert not np.allclose(s1 @ s2, s2 @ s1)
    trace_sqrt = np.sqrt(np.trace(s1 @ s2) + 2 * np.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
    expected = 1.0 ** 2 + 2.0 ** 2 + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt
    assert fidelity.frechet_distance([0, 0], s1, [1, 2], s2) == pytest.approx(expected, rel=1e-10)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    x = np.random.default_rng(1).normal(size=(400, 16))
    assert fidelity.fid(x, x) == pytest.approx(0.0, abs=1e-8)
    shifted = x + 0.5
    assert fidelity.fid(x, shifted) == pytest.approx(16 * 0.25, rel=1e-8)   # covariance unchanged: |shift|^2


def test_fid_from_samples_approaches_the_gaussians_distance():
    rng = np.random.default_rng(2)
    a = rng.normal(0.0, 1.0, size=(20000, 3))
    b = rng.normal(1.0, 2.0, size=(20000, 3))
    expected = 3 * 1.0 + 3 * (1 - 2) ** 2                  # |mu diff|^2 + sum (1 - 2)^2
    assert fidelity.fid(a, b) == pytest.approx(expected, rel=0.03)


def test_fid_errors_name_the_argument():
    with pytest.raises(ValueError, match="real_features must be a 2-D array"):
        fidelity.fid(np.zeros(5), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="different widths"):
        fidelity.fid(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="synthetic_features contains NaN"):
        fidelity.fid(np.zeros((5, 2)), np.full((5, 2), np.nan))


# ---- KID ----------------------------------------------------------------------------------------


def _mmd2_by_loops(x, y):
    d = x.shape[1]
    k = lambda a, b: (a @ b / d + 1) ** 3
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_unbiased_estimate_matches_the_direct_sum():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(9, 4)), rng.normal(0.5, 1.2, size=(7, 4))
    assert fidelity.mmd2_unbiased(x, y) == pytest.approx(_mmd2_by_loops(x, y), rel=1e-12)
    whole = fidelity.kid(x, y, subset_size=1000)
    assert whole["mean"] == pytest.approx(_mmd2_by_loops(x, y), rel=1e-12) and whole["std"] == 0


def test_kid_subsets_average_the_estimates_of_random_subsets():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(30, 3)), rng.normal(size=(40, 3))
    got = fidelity.kid(x, y, subsets=5, subset_size=10, seed=7)
    draw = np.random.default_rng(7)
    values = [_mmd2_by_loops(x[draw.choice(30, 10, replace=False)], y[draw.choice(40, 10, replace=False)]) for _ in range(5)]
    assert got["mean"] == pytest.approx(np.mean(values), rel=1e-10)
    assert got["std"] == pytest.approx(np.std(values), rel=1e-8)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(5)
    same = fidelity.kid(rng.normal(size=(600, 8)), rng.normal(size=(600, 8)), subsets=20, subset_size=200)
    apart = fidelity.kid(rng.normal(size=(600, 8)), rng.normal(1.0, 1.0, size=(600, 8)), subsets=20, subset_size=200)
    assert abs(same["mean"]) < 0.05 < apart["mean"]


# ---- precision and recall -----------------------------------------------------------------------


def test_precision_recall_by_hand_in_one_dimension():
    real = np.arange(10.0)[:, None]                 # k=1: every real radius is 1
    synthetic = np.array([[0.5], [20.0]])          # 0.5 is inside, 20 is not; their radii are 19.5
    got = fidelity.precision_recall(real, synthetic, k=1)
    assert got["precision"] == 0.5
    assert got["recall"] == 1.0                     # every real point lies within 19.5 of 0.5 or 20
    near = np.array([[0.5], [1.0], [1.5]])          # radii 0.5: covers reals 0, 1, 2
    assert fidelity.precision_recall(real, near, k=1)["recall"] == pytest.approx(0.3)


def test_precision_recall_of_identical_and_disjoint_sets():
    x = np.random.default_rng(6).normal(size=(200, 5))
    assert fidelity.precision_recall(x, x) == {"precision": 1.0, "recall": 1.0, "k": 3}
    far = fidelity.precision_recall(x, x + 100.0)
    assert far["precision"] == 0.0 and far["recall"] == 0.0


def test_knn_radii_are_the_kth_neighbour_distances():
    x = np.array([[0.0], [1.0], [3.0], [7.0]])
    assert fidelity.knn_radii(x, k=1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert fidelity.knn_radii(x, k=2).tolist() == [3.0, 2.0, 3.0, 6.0]
    with pytest.raises(ValueError, match="k must be between 1"):
        fidelity.knn_radii(x, k=4)


def test_diversity_of_copies_is_zero_and_the_ratio_compares_spreads():
    x = np.random.default_rng(7).normal(size=(100, 4))
    assert fidelity.mean_pairwise_distance(np.repeat(x[:1], 10, axis=0)) == 0.0
    d = fidelity.diversity(x, 0.5 * x)
    assert d["ratio"] == pytest.approx(0.5)
    a = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 4.0]])
    assert fidelity.mean_pairwise_distance(a) == pytest.approx((5 + 4 + 3) * 2 / 6)


def test_evaluate_reports_every_class():
    rng = np.random.default_rng(8)
    real, syn = rng.normal(size=(60, 4)), rng.normal(size=(45, 4))
    result = fidelity.evaluate(real, np.repeat([0, 1, 2], 20), syn, np.repeat([0, 1, 2], 15), class_names=["a", "b", "c"],
                               kid_subsets=3, kid_subset_size=10)
    assert list(result["per_class"]) == ["a", "b", "c"]
    for entry in list(result["per_class"].values()) + [result["all"]]:
        for key in ("fid", "kid", "kid_std", "precision", "recall", "diversity_ratio"):
            assert np.isfinite(entry[key])
    assert result["per_class"]["a"]["n_real"] == 20 and result["all"]["n_synthetic"] == 45


# ---- memorisation audit -------------------------------------------------------------------------


def test_audit_flags_a_planted_copy_and_finds_its_source():
    X, y = medsynth.datasets.make_shapes(n_per_class=40, num_classes=3, size=24, seed=1)
    train, train_y = X[:60], y[:60]
    synthetic, synthetic_y = X[60:].copy(), y[60:].copy()        # other real images: not copies
    synthetic[7] = train[23] * 0.8 + 0.1                         # a copy, dimmed: still r = 1
    audit = privacy.memorisation_audit(synthetic, train, synthetic_labels=synthetic_y, training_labels=train_y,
                                       threshold=0.95, reference=X[60:], reference_labels=y[60:])
    assert audit["near_copy"][7] and audit["nearest"][7] == 23
    assert audit["correlation"][7] == pytest.approx(1.0, abs=1e-9)
    assert audit["near_copy"].sum() == 1, f"only the planted copy is a near-copy, got {np.flatnonzero(audit['near_copy'])}"
    assert audit["near_copy_share"] == pytest.approx(1 / len(synthetic))
    assert privacy.closest_pairs(audit, 1)[0][:2] == (7, 23)
    assert audit["reference_share"] == 0.0 and audit["reference_summary"]["max"] < 0.95


def test_audit_in_feature_space_finds_the_copy_at_distance_zero():
    rng = np.random.default_rng(9)
    train = rng.random((30, 8, 8))
    synthetic = rng.random((10, 8, 8))
    synthetic[3] = train[11]
    projection = rng.normal(size=(64, 5))
    tf, sf = train.reshape(30, -1) @ projection, synthetic.reshape(10, -1) @ projection
    audit = privacy.memorisation_audit(synthetic, train, synthetic_features=sf, training_features=tf)
    assert audit["feature_nearest"][3] == 11 and audit["feature_distance"][3] < 1e-5
    assert audit["distance_to_correlated"][3] == 0.0      # computed directly, not through |a|^2 + |b|^2 - 2ab


def test_audit_errors():
    with pytest.raises(ValueError, match="threshold is a correlation"):
        privacy.memorisation_audit(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), threshold=2)
    with pytest.raises(ValueError, match="same_class=True needs synthetic_labels"):
        privacy.memorisation_audit(np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), same_class=True)
    with pytest.raises(ValueError, match="queries have 16 values per image, references 9"):
        privacy.memorisation_audit(np.zeros((2, 4, 4)), np.zeros((2, 3, 3)))


# ---- pooled features ----------------------------------------------------------------------------


def test_classifier_features_are_the_heads_input(shapes_small):
    X, y = shapes_small
    clf = medsynth.Classifier("simple_cnn", seed=0).fit(X, y, epochs=2, progress=False)
    f = clf.features(X[:50], batch_size=7)
    assert f.shape == (50, clf.feature_size) == (50, 128) and f.dtype == np.float32
    # the same to rounding at another batch size (small maps choose their convolution by batch size)
    np.testing.assert_allclose(f, clf.transform(X[:50], batch_size=64), rtol=1e-5, atol=1e-5 * np.abs(f).max())
    with pytest.raises(ValueError, match="channel"):
        clf.features(np.zeros((2, 24, 24, 3), np.float32))
