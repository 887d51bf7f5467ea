"""Stratified splits: the paper's per-class 20 % sample, and StratifiedKFold's fold sizes."""
import numpy as np
import pytest

from medsynth.model_selection import StratifiedKFold, stratified_split

# Nafi et al. (arXiv 2412.16860), Table 1: images per class and the 20 % sampled to train the diffusion model
PAPER_TABLE_1 = {
    "brain MRI": ([1621, 1645, 2000, 1757], [324, 329, 400, 351]),
    "ALL": ([504, 985, 963, 804], [101, 197, 193, 161]),
    "lung CT": ([1252, 1229], [250, 246]),
}


def labels_with_counts(counts, seed=0):
    y = np.repeat(np.arange(len(counts)), counts)
    return np.random.default_rng(seed).permutation(y)


def check_partition(train, test, n):
    assert train.dtype == np.int64 and test.dtype == np.int64
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)           # sorted, no repeats
    assert len(np.intersect1d(train, test)) == 0
    np.testing.assert_array_equal(np.union1d(train, test), np.arange(n))


@pytest.mark.parametrize("dataset", PAPER_TABLE_1)
def test_reproduces_the_papers_per_class_counts(dataset):
    counts, sampled = PAPER_TABLE_1[dataset]
    y = labels_with_counts(counts)
    for train, test in (stratified_split(y), stratified_split(y, train_size=0.2), stratified_split(y, test_size=0.8)):
        check_partition(train, test, len(y))
        assert np.bincount(y[train]).tolist() == sampled
        assert np.bincount(y[test]).tolist() == [c - s for c, s in zip(counts, sampled)]


def test_rounding_halves_and_small_classes():
    y = np.array([0] * 5 + [1] * 2 + [2])
    train, test = stratified_split(y, train_size=0.5)
    # class 0: 2.5 rounds up to 3; class 1: 1 and 1; class 2 (one member): 0.5 rounds up to train
    assert np.bincount(y[train], minlength=3).tolist() == [3, 1, 1]
    train, test = stratified_split(y, test_size=0.5)
    assert np.bincount(y[test], minlength=3).tolist() == [3, 1, 1]
    # at least one on each side for classes of two or more, even when rounding gives 0
    train, test = stratified_split(y, train_size=0.1)
    assert np.bincount(y[train], minlength=3).tolist() == [1, 1, 0]
    train, test = stratified_split(y, train_size=0.9)
    assert np.bincount(y[test], minlength=3).tolist() == [1, 1, 0]
    # both sizes: 20 % and 50 % of 10 per class, 3 left out
    y = np.repeat([0, 1], 10)
    train, test = stratified_split(y, train_size=0.2, test_size=0.5)
    assert np.bincount(y[train]).tolist() == [2, 2] and np.bincount(y[test]).tolist() == [5, 5]
    assert len(np.intersect1d(train, test)) == 0


def test_seeded_and_string_labels():
    y = np.array(["glioma", "meningioma", "pituitary", "no tumour"] * 25)
    a = stratified_split(y, seed=4)
    b = stratified_split(y, seed=4)
    c = stratified_split(y, seed=5)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    check_partition(*a, len(y))
    names, counts = np.unique(y[a[0]], return_counts=True)
    assert names.tolist() == sorted(set(y)) and counts.tolist() == [5, 5, 5, 5]


def test_split_argument_errors():
    y = np.repeat([0, 1], 5)
    for bad in (0, 1, 1.5, -0.2, 5, True, "0.2"):
        with pytest.raises(ValueError, match="train_size must be a fraction strictly between 0 and 1"):
            stratified_split(y, train_size=bad)
    with pytest.raises(ValueError, match="test_size must be a fraction"):
        stratified_split(y, test_size=0)
    with pytest.raises(ValueError, match="train_size \\+ test_size must not exceed 1"):
        stratified_split(y, train_size=0.6, test_size=0.5)
    with pytest.raises(ValueError, match="y is empty"):
        stratified_split([])
    with pytest.raises(ValueError, match="1-D array of class labels"):
        stratified_split(np.zeros((2, 2)))


# ---- StratifiedKFold -----------------------------------------------------------------------------

def per_class_fold_sizes(cv, y):
    classes = np.unique(y)
    return {c: [int((y[val] == c).sum()) for _, val in cv.split(np.zeros(len(y)), y)] for c in classes}


def test_fold_sizes_follow_scikit_learns_allocation():
    # 4 + 4 members in 3 folds: the sorted encoded labels 0 0 0 0 1 1 1 1 dealt round-robin give
    # fold 0 {0, 0, 1}, fold 1 {0, 1, 1}, fold 2 {0, 1}; class 0 is the one that appears first in y
    y = np.array(["b"] * 4 + ["a"] * 4)
    for shuffle in (False, True):
        sizes = per_class_fold_sizes(StratifiedKFold(3, shuffle=shuffle), y)
        assert sizes == {"b": [2, 1, 1], "a": [1, 2, 1]}
    assert per_class_fold_sizes(StratifiedKFold(3), y[::-1]) == {"a": [2, 1, 1], "b": [1, 2, 1]}
    # 7 + 3 members in 3 folds: 0 0 0 0 0 0 0 1 1 1 dealt -> fold 0 {0 0 0 1}, fold 1 {0 0 1}, fold 2 {0 0 1}
    y = np.array([1] * 7 + [0] * 3)
    assert per_class_fold_sizes(StratifiedKFold(3, seed=2), y) == {1: [3, 2, 2], 0: [1, 1, 1]}


def test_unshuffled_folds_equal_scikit_learns():
    # literal folds of scikit-learn 1.9.1's StratifiedKFold(3).split(np.zeros(10), y)
    y = [0, 0, 1, 1, 1, 0, 1, 0, 1, 1]
    expected = [([4, 5, 6, 7, 8, 9], [0, 1, 2, 3]), ([0, 1, 2, 3, 7, 8, 9], [4, 5, 6]),
                ([0, 1, 2, 3, 4, 5, 6], [7, 8, 9])]
    folds = [(a.tolist(), b.tolist()) for a, b in StratifiedKFold(3, shuffle=False).split(np.zeros(10), y)]
    assert folds == expected


def test_shuffled_folds_partition_the_data_and_are_seeded():
    y = labels_with_counts([23, 17, 9], seed=1)
    X = np.zeros((len(y), 3))
    cv = StratifiedKFold(5, seed=11)
    assert cv.get_n_splits() == 5 and cv.get_n_splits(X, y) == 5
    folds = list(cv.split(X, y))
    assert len(folds) == 5
    seen = np.concatenate([val for _, val in folds])
    np.testing.assert_array_equal(np.sort(seen), np.arange(len(y)))             # every sample validated once
    for train, val in folds:
        check_partition(train, val, len(y))
        # stratified: each class's share in a fold differs from its count / 5 by less than one
        for c, count in enumerate([23, 17, 9]):
            assert abs((y[val] == c).sum() - count / 5) < 1
    again = list(StratifiedKFold(5, seed=11).split(X, y))
    other = list(StratifiedKFold(5, seed=12).split(X, y))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, other))
    unshuffled = list(StratifiedKFold(5, shuffle=False).split(X, y))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, unshuffled))


def test_kfold_errors_and_warnings():
    y = np.array([0] * 6 + [1] * 2)
    with pytest.warns(UserWarning, match="The least populated class in y has only 2 members, which is less than n_splits=3"):
        folds = list(StratifiedKFold(3).split(np.zeros(8), y))
    assert len(folds) == 3
    with pytest.raises(ValueError, match="n_splits=7 cannot be greater than the number of members in each class"):
        list(StratifiedKFold(7).split(np.zeros(8), y))
    with pytest.raises(ValueError, match="Cannot have number of splits n_splits=9 greater than the number of samples"):
        list(StratifiedKFold(9).split(np.zeros(8), y))
    with pytest.raises(ValueError, match="requires at least one train/test split by setting n_splits=2 or more"):
        StratifiedKFold(1)
    with pytest.raises(ValueError, match="The number of folds must be of Integral type"):
        StratifiedKFold(2.5)
    with pytest.raises(TypeError, match="shuffle must be True or False"):
        StratifiedKFold(3, shuffle=1)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        list(StratifiedKFold(2).split(np.zeros(5), y))
    with pytest.raises(ValueError, match="Got 'continuous' instead"):
        list(StratifiedKFold(2).split(np.zeros(4), [0.5, 0.1, 0.2, 0.3]))
