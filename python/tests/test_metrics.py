"""medsynth.metrics against hand-computed cases (scikit-learn's definitions), degenerate ones included.

Expected values are worked out by hand in the comments; a few larger cases are literal numbers
computed with scikit-learn 1.9.1 (named where they appear). scikit-learn itself is not imported.
"""
import contextlib
import math
import sys
import warnings

import numpy as np
import pytest

from medsynth import metrics
from medsynth.metrics import UndefinedMetricWarning

# The main multiclass case. Confusion matrix (rows true 0,1,2; columns predicted 0,1,2):
#   [[1, 1, 0],      tp = [1, 2, 2], predicted = column sums [3, 3, 3], support = row sums [2, 3, 4]
#    [0, 2, 1],      precision = [1/3, 2/3, 2/3], recall = [1/2, 2/3, 1/2]
#    [2, 0, 2]]      F1 = 2tp / (predicted + support) = [2/5, 4/6, 4/7], accuracy 5/9
Y_TRUE = [0, 0, 1, 1, 1, 2, 2, 2, 2]
Y_PRED = [0, 1, 1, 1, 2, 2, 2, 0, 0]
CM = [[1, 1, 0], [0, 2, 1], [2, 0, 2]]
PRECISION, RECALL, F1 = [1 / 3, 2 / 3, 2 / 3], [1 / 2, 2 / 3, 1 / 2], [2 / 5, 4 / 6, 4 / 7]


@contextlib.contextmanager
def no_warnings():
    """Any warning inside fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ---- accuracy and the confusion matrix ------------------------------------------------------------

def test_accuracy_and_balanced_accuracy():
    assert metrics.accuracy_score(Y_TRUE, Y_PRED) == pytest.approx(5 / 9)
    assert metrics.accuracy_score(Y_TRUE, Y_PRED, normalize=False) == 5
    # balanced accuracy = mean recall = (1/2 + 2/3 + 1/2) / 3 = 5/9; adjusted (5/9 - 1/3) / (2/3) = 1/3
    assert metrics.balanced_accuracy_score(Y_TRUE, Y_PRED) == pytest.approx(5 / 9)
    assert metrics.balanced_accuracy_score(Y_TRUE, Y_PRED, adjusted=True) == pytest.approx(1 / 3)
    # class 2 only predicted: its recall is undefined and left out, with scikit-learn's warning
    with pytest.warns(UserWarning, match="y_pred contains classes not in y_true"):
        assert metrics.balanced_accuracy_score([0, 0, 1, 1], [0, 2, 1, 1]) == pytest.approx((1 / 2 + 1) / 2)


def test_confusion_matrix_counts_and_normalisations():
    cm = metrics.confusion_matrix(Y_TRUE, Y_PRED)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, CM)
    np.testing.assert_allclose(metrics.confusion_matrix(Y_TRUE, Y_PRED, normalize="true"),
                               [[1 / 2, 1 / 2, 0], [0, 2 / 3, 1 / 3], [1 / 2, 0, 1 / 2]])
    np.testing.assert_allclose(metrics.confusion_matrix(Y_TRUE, Y_PRED, normalize="pred"), np.array(CM) / 3)
    np.testing.assert_allclose(metrics.confusion_matrix(Y_TRUE, Y_PRED, normalize="all"), np.array(CM) / 9)
    # labels choose and order the rows; samples outside them are dropped; an empty row stays 0
    np.testing.assert_array_equal(metrics.confusion_matrix(Y_TRUE, Y_PRED, labels=[2, 0]), [[2, 2], [0, 1]])
    np.testing.assert_array_equal(metrics.confusion_matrix([0, 1], [0, 1], labels=[0, 1, 5], normalize="true"),
                                  [[1, 0, 0], [0, 1, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match="At least one label specified must be in y_true"):
        metrics.confusion_matrix([0, 1], [0, 1], labels=[5, 6])
    with pytest.raises(ValueError, match="should contain at least one label"):
        metrics.confusion_matrix([0, 1], [0, 1], labels=[])
    with pytest.raises(ValueError, match="normalize must be one of"):
        metrics.confusion_matrix([0, 1], [0, 1], normalize="rows")


def test_confusion_matrix_of_a_single_label_warns():
    with pytest.warns(UserWarning, match="A single label was found"):
        np.testing.assert_array_equal(metrics.confusion_matrix([3, 3, 3], [3, 3, 3]), [[3]])


# ---- precision, recall, F ------------------------------------------------------------------------

def test_per_class_and_averages():
    p, r, f, support = metrics.precision_recall_fscore_support(Y_TRUE, Y_PRED)
    np.testing.assert_allclose(p, PRECISION)
    np.testing.assert_allclose(r, RECALL)
    np.testing.assert_allclose(f, F1)
    np.testing.assert_array_equal(support, [2, 3, 4])
    expected = {
        # micro: the counts summed over classes, which for single-label data is the accuracy
        "micro": (5 / 9, 5 / 9, 5 / 9),
        # macro: precision (1/3 + 2/3 + 2/3)/3 = 5/9, recall (1/2 + 2/3 + 1/2)/3 = 5/9, F1 (2/5 + 2/3 + 4/7)/3 = 172/315
        "macro": (5 / 9, 5 / 9, 172 / 315),
        # weighted by support (2, 3, 4): precision (2/3 + 2 + 8/3)/9 = 16/27; F1 (4/5 + 2 + 16/7)/9 = 178/315
        "weighted": (16 / 27, 5 / 9, 178 / 315),
    }
    for average, (ep, er, ef) in expected.items():
        assert metrics.precision_score(Y_TRUE, Y_PRED, average=average) == pytest.approx(ep)
        assert metrics.recall_score(Y_TRUE, Y_PRED, average=average) == pytest.approx(er)
        assert metrics.f1_score(Y_TRUE, Y_PRED, average=average) == pytest.approx(ef)
    # a labels subset: macro over classes 0 and 2 only; micro from their counts (tp 3, predicted 6, true 6)
    assert metrics.precision_score(Y_TRUE, Y_PRED, labels=[0, 2], average="macro") == pytest.approx(1 / 2)
    assert metrics.recall_score(Y_TRUE, Y_PRED, labels=[2, 0], average="micro") == pytest.approx(3 / 6)
    np.testing.assert_allclose(metrics.f1_score(Y_TRUE, Y_PRED, labels=[2, 0], average=None), [4 / 7, 2 / 5])


def test_binary_average_and_pos_label():
    y_true = [1, 0, 1, 1, 0, 0, 1]
    y_pred = [1, 1, 0, 1, 0, 0, 0]
    # positive 1: tp 2, fp 1, fn 2 -> precision 2/3, recall 1/2, F1 2·2/(3+4) = 4/7
    assert metrics.precision_score(y_true, y_pred) == pytest.approx(2 / 3)
    assert metrics.recall_score(y_true, y_pred) == pytest.approx(1 / 2)
    assert metrics.f1_score(y_true, y_pred) == pytest.approx(4 / 7)
    # F-beta, beta 2: 5·tp / (4·true + predicted) = 10 / (16 + 3)
    assert metrics.fbeta_score(y_true, y_pred, beta=2) == pytest.approx(10 / 19)
    # positive 0: tp 2, predicted 4, true 3
    assert metrics.precision_score(y_true, y_pred, pos_label=0) == pytest.approx(2 / 4)
    assert metrics.recall_score(y_true, y_pred, pos_label=0) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="Target is multiclass but average='binary'"):
        metrics.f1_score(Y_TRUE, Y_PRED)
    with pytest.raises(ValueError, match=r"pos_label=2 is not a valid label. It should be one of \[0, 1\]"):
        metrics.f1_score(y_true, y_pred, pos_label=2)
    with pytest.warns(UserWarning, match="pos_label .* is ignored when average != 'binary'"):
        metrics.f1_score(y_true, y_pred, pos_label=0, average="macro")
    with pytest.raises(ValueError, match="average has to be one of"):
        metrics.f1_score(y_true, y_pred, average="samples")


def test_a_class_never_predicted():
    # class 2 is never predicted: precision 0/0. tp = [1, 1, 0], predicted = [1, 2, 0], true = [1, 1, 1]
    y_true, y_pred = [0, 1, 2], [0, 1, 1]
    with pytest.warns(UndefinedMetricWarning, match="Precision is ill-defined and being set to 0.0 in labels with "
                                                    "no predicted samples"):
        p = metrics.precision_score(y_true, y_pred, average=None)
    np.testing.assert_array_equal(p, [1, 0.5, 0])
    with no_warnings():
        np.testing.assert_array_equal(metrics.precision_score(y_true, y_pred, average=None, zero_division=1), [1, 0.5, 1])
        assert metrics.precision_score(y_true, y_pred, average="macro", zero_division=1) == pytest.approx(5 / 6)
        p_nan = metrics.precision_score(y_true, y_pred, average=None, zero_division=np.nan)
        assert math.isnan(p_nan[2])
        assert metrics.precision_score(y_true, y_pred, average="macro", zero_division=np.nan) == 0.75  # NaN ignored
        assert metrics.precision_score(y_true, y_pred, average="macro", zero_division=0) == 0.5
        # recall and F1 are defined (the class occurs): 0, and F1 = 2·0 / (0 + 1) = 0 without a warning
        np.testing.assert_array_equal(metrics.recall_score(y_true, y_pred, average=None), [1, 1, 0])
        np.testing.assert_allclose(metrics.f1_score(y_true, y_pred, average=None), [1, 2 / 3, 0])
    # binary: nothing predicted positive; one score, so the message says "due to"
    with pytest.warns(UndefinedMetricWarning, match="Precision is ill-defined and being set to 0.0 due to no predicted"):
        assert metrics.precision_score([0, 1, 1], [0, 0, 0]) == 0.0


def test_a_class_never_present():
    # class 2 is predicted but absent from y_true: its recall is 0/0
    y_true, y_pred = [0, 0, 1], [0, 2, 1]
    with pytest.warns(UndefinedMetricWarning, match="Recall is ill-defined and being set to 0.0 in labels with no true"):
        np.testing.assert_array_equal(metrics.recall_score(y_true, y_pred, average=None), [0.5, 1, 0])
    with no_warnings():
        np.testing.assert_array_equal(metrics.precision_score(y_true, y_pred, average=None), [1, 1, 0])
    # a label neither true nor predicted: F is 0/0 ("true nor predicted")
    with pytest.warns(UndefinedMetricWarning, match="F-score is ill-defined and being set to 0.0 in labels with no "
                                                    "true nor predicted samples"):
        f = metrics.f1_score(y_true, y_pred, labels=[0, 1, 2, 3], average=None)
    np.testing.assert_allclose(f, [2 / 3, 1, 0, 0])
    # weighted average with zero weights everywhere falls back to the plain mean (scikit-learn's rule)
    with no_warnings():
        assert metrics.f1_score([0, 0], [1, 1], labels=[1], average="weighted", zero_division=0) == 0.0


def test_all_correct_all_wrong_and_one_class():
    with no_warnings():
        assert metrics.f1_score(Y_TRUE, Y_TRUE, average="macro") == 1.0
        assert metrics.accuracy_score(Y_TRUE, Y_TRUE) == 1.0
        # every class predicted and present, never right: all zeros, all defined
        np.testing.assert_array_equal(metrics.f1_score([0, 1, 2], [1, 2, 0], average=None), [0, 0, 0])
        assert metrics.accuracy_score([0, 1, 2], [1, 2, 0]) == 0.0
    # one class only (0), binary average with pos_label 1: every score is 0/0
    with pytest.warns(UndefinedMetricWarning) as record:
        p, r, f, _ = metrics.precision_recall_fscore_support([0, 0, 0], [0, 0, 0], average="binary")
    assert (p, r, f) == (0.0, 0.0, 0.0)
    assert [str(w.message).split(" is ")[0] for w in record] == ["Precision", "Recall", "F-score"]
    with no_warnings():
        assert math.isnan(metrics.precision_score([0, 0], [0, 0], zero_division=np.nan))


def test_string_labels():
    y_true = ["cat", "dog", "dog", "eel"]
    y_pred = ["cat", "cat", "dog", "dog"]
    # labels sorted: cat, dog, eel. Confusion [[1,0,0],[1,1,0],[0,1,0]]; eel never predicted
    np.testing.assert_array_equal(metrics.confusion_matrix(y_true, y_pred), [[1, 0, 0], [1, 1, 0], [0, 1, 0]])
    p, r, f, s = metrics.precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    np.testing.assert_allclose(p, [1 / 2, 1 / 2, 0])
    np.testing.assert_allclose(r, [1, 1 / 2, 0])
    np.testing.assert_allclose(f, [2 / 3, 1 / 2, 0])
    np.testing.assert_array_equal(s, [1, 2, 1])
    assert list(metrics.unique_labels(y_true, y_pred)) == ["cat", "dog", "eel"]
    assert metrics.precision_score(["n", "y", "y"], ["y", "y", "n"], pos_label="y") == pytest.approx(1 / 2)
    with pytest.raises(ValueError, match=r"pos_label=1 is not a valid label. It should be one of \['n', 'y'\]"):
        metrics.precision_score(["n", "y"], ["y", "y"])


def test_invalid_label_arrays():
    with pytest.raises(ValueError, match="Mix of label input types"):
        metrics.accuracy_score([0, 1], ["a", "b"])
    with pytest.raises(ValueError, match="inconsistent numbers of samples: \\[2, 3\\]"):
        metrics.accuracy_score([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="Found empty input array"):
        metrics.f1_score([], [])
    with pytest.raises(ValueError, match="continuous values"):
        metrics.accuracy_score([0.5, 1.0], [1, 1])
    with pytest.raises(ValueError, match="contains NaN"):
        metrics.accuracy_score([np.nan, 1.0], [1, 1])
    with pytest.raises(ValueError, match="1-D array of class labels"):
        metrics.accuracy_score(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="zero_division must be"):
        metrics.f1_score([0, 1], [0, 1], zero_division=2)
    with pytest.raises(ValueError, match="labels are strings but the labels in y_true/y_pred are numbers"):
        metrics.f1_score([0, 1, 2], [0, 1, 2], labels=["a"], average="macro")
    assert metrics.accuracy_score([1.0, 2.0], [1, 2]) == 1.0          # integral floats are labels
    assert metrics.accuracy_score(np.array(["a", "b"], dtype=object), ["a", "a"]) == 0.5


# ---- ROC curve and AUC -------------------------------------------------------------------------------

def test_binary_auc_counts_ordered_pairs():
    # positives {0.35, 0.8} vs negatives {0.1, 0.4}: 3 of the 4 pairs ordered correctly
    assert metrics.roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(3 / 4)
    assert metrics.roc_auc_score([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert metrics.roc_auc_score([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    # the positive class is the greater label, also for strings; an (n, 2) array gives its column 1
    assert metrics.roc_auc_score(["n", "n", "y", "y"], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(3 / 4)
    probs = np.array([[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]])
    assert metrics.roc_auc_score([0, 0, 1, 1], probs) == pytest.approx(3 / 4)


def test_ties_count_half_as_in_roc_curve():
    # positives {0.5, 0.9}, negatives {0.5, 0.2}: the tie 0.5-0.5 counts 1/2 -> (1/2 + 1 + 1 + 1) / 4
    y, score = [0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]
    assert metrics.roc_auc_score(y, score) == pytest.approx(7 / 8)
    # the curve: thresholds inf, 0.9, 0.5 (one point for the tied pair: a diagonal step), 0.2
    fpr, tpr, thresholds = metrics.roc_curve(y, score)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 1, 1])
    np.testing.assert_allclose(thresholds, [np.inf, 0.9, 0.5, 0.2])
    assert metrics.auc(fpr, tpr) == pytest.approx(7 / 8)
    # all scores tied: one diagonal segment, AUC 1/2
    assert metrics.roc_auc_score([0, 1, 0, 1, 1], [0.3] * 5) == pytest.approx(0.5)
    # collinear points are dropped (drop_intermediate) without changing the area
    fpr, tpr, _ = metrics.roc_curve([0, 0, 0, 1], [0.1, 0.2, 0.3, 0.9])
    np.testing.assert_allclose(fpr, [0, 0, 1])
    np.testing.assert_allclose(tpr, [0, 1, 1])
    fpr, _, _ = metrics.roc_curve([0, 0, 0, 1], [0.1, 0.2, 0.3, 0.9], drop_intermediate=False)
    assert len(fpr) == 5


def test_roc_curve_positive_label_rules():
    with pytest.raises(ValueError, match=r"y_true takes value in \{1, 2\} and pos_label is not specified"):
        metrics.roc_curve([1, 2], [0.1, 0.2])
    fpr, tpr, _ = metrics.roc_curve(["a", "b", "a"], [0.1, 0.8, 0.2], pos_label="b")
    assert metrics.auc(fpr, tpr) == 1.0
    with pytest.warns(UndefinedMetricWarning, match="No negative samples in y_true"):
        fpr, _, _ = metrics.roc_curve([1, 1], [0.1, 0.2])
    assert np.isnan(fpr).all()
    with pytest.raises(ValueError, match="x is neither increasing nor decreasing"):
        metrics.auc([0, 2, 1], [0, 1, 1])
    assert metrics.auc([2, 1, 0], [0, 1, 1]) == pytest.approx(1.5)     # decreasing x is fine


# Three classes, one-vs-rest by hand. Row 6 makes the supports unequal (3, 2, 2).
OVR_Y = [0, 1, 2, 0, 1, 2, 0]
OVR_P = [[.6, .3, .1], [.2, .5, .3], [.1, .3, .6], [.3, .4, .3], [.5, .3, .2], [.2, .2, .6], [.4, .4, .2]]
# class 0: positives .6 .3 .4 vs negatives .2 .1 .5 .2 -> 4 + 3 + 3 = 10 of 12 pairs -> 5/6
# class 1: positives .5 .3 vs negatives .3 .3 .4 .2 .4 -> 5 + (1/2 + 1/2 + 0 + 1 + 0) = 7 of 10 -> 7/10
# class 2: positives .6 .6 vs negatives .1 .3 .3 .2 .2 -> 10 of 10 -> 1
OVR_PER_CLASS = [5 / 6, 7 / 10, 1.0]


def test_one_vs_rest_auc_by_hand():
    np.testing.assert_allclose(metrics.roc_auc_score(OVR_Y, OVR_P, average=None), OVR_PER_CLASS)
    assert metrics.roc_auc_score(OVR_Y, OVR_P) == pytest.approx(38 / 45)                       # mean
    assert metrics.roc_auc_score(OVR_Y, OVR_P, average="weighted") == pytest.approx(59 / 70)   # (3·5/6 + 2·7/10 + 2) / 7
    assert metrics.roc_auc_score(OVR_Y, OVR_P, multi_class="ovr", labels=[0, 1, 2]) == pytest.approx(38 / 45)
    names = np.array(["a", "b", "c"])[OVR_Y]
    assert metrics.roc_auc_score(names, OVR_P) == pytest.approx(38 / 45)


def test_one_vs_rest_auc_matches_scikit_learn():
    # literal values computed with scikit-learn 1.9.1's roc_auc_score(y, p, multi_class="ovr", average=...)
    y = [0, 1, 2, 2, 0, 1, 1, 2, 0, 2, 1, 0]
    ab = np.array([[.7, .2], [.2, .5], [.1, .3], [.3, .3], [.4, .4], [.4, .4], [.1, .8], [.2, .8], [.5, .1], [0, 0],
                   [.3, .5], [.2, .6]])
    p = np.column_stack([ab, 1 - ab.sum(axis=1)])
    assert metrics.roc_auc_score(y, p) == pytest.approx(0.7916666666666666, abs=1e-15)
    np.testing.assert_allclose(metrics.roc_auc_score(y, p, average=None), [0.859375, 0.78125, 0.734375], atol=1e-15)
    assert metrics.roc_auc_score(y, p, average="micro") == pytest.approx(0.8125000000000001, abs=1e-15)
    # and its log_loss(y, p): one true-class probability is 0, clipped to eps
    assert metrics.log_loss(y, p) == pytest.approx(3.631004096489375, abs=1e-13)
    assert metrics.log_loss(y, p.astype(np.float32)) == pytest.approx(1.9558982849121094, abs=1e-6)


def test_auc_with_a_class_missing_from_y_true():
    p = np.array(OVR_P)[[0, 1, 3, 4, 6]]              # rows of classes 0 and 1 only; class 2 is absent
    y = [0, 1, 0, 1, 0]
    with pytest.raises(ValueError, match="Number of classes in y_true not equal to the number of columns"):
        metrics.roc_auc_score(y, p)
    # naming the columns: class 2 has no positives -> NaN with a warning (scikit-learn >= 1.6); the
    # weighted average gives it weight 0
    with pytest.warns(UndefinedMetricWarning, match="Only one class is present in y_true"):
        per_class = metrics.roc_auc_score(y, p, labels=[0, 1, 2], average=None)
    assert math.isnan(per_class[2])
    with pytest.warns(UndefinedMetricWarning, match="Only one class is present in y_true"):
        assert math.isnan(metrics.roc_auc_score(y, p, labels=[0, 1, 2]))
    with pytest.warns(UndefinedMetricWarning, match="Only one class is present in y_true"):
        weighted = metrics.roc_auc_score(y, p, labels=[0, 1, 2], average="weighted")
    assert weighted == pytest.approx((3 * per_class[0] + 2 * per_class[1]) / 5)
    with pytest.warns(UndefinedMetricWarning, match="Only one class is present in y_true"):
        assert math.isnan(metrics.roc_auc_score([1, 1, 1], [0.2, 0.5, 0.9]))


def test_auc_argument_errors():
    with pytest.raises(ValueError, match="Target scores need to be probabilities"):
        metrics.roc_auc_score([0, 1, 2], [[.5, .3, .3], [.2, .5, .3], [.1, .1, .8]])
    with pytest.raises(ValueError, match="Parameter 'labels' must be ordered"):
        metrics.roc_auc_score([0, 1, 2], [[.5, .3, .2], [.2, .5, .3], [.1, .1, .8]], labels=[2, 1, 0])
    with pytest.raises(ValueError, match="one-vs-rest"):
        metrics.roc_auc_score([0, 1, 2], [[.5, .3, .2], [.2, .5, .3], [.1, .1, .8]], multi_class="ovo")
    with pytest.raises(ValueError, match=r"multi_class must be in \('ovo', 'ovr'\)"):
        metrics.roc_auc_score([0, 1, 2], [[.5, .3, .2], [.2, .5, .3], [.1, .1, .8]], multi_class="raise")
    with pytest.raises(ValueError, match="y_score.shape"):
        metrics.roc_auc_score([0, 1, 2], [.5, .3, .2])
    with pytest.raises(ValueError, match="contains NaN"):
        metrics.roc_auc_score([0, 1], [np.nan, 0.2])


# ---- log loss --------------------------------------------------------------------------------------

def test_log_loss_by_hand():
    y = [0, 1, 1]
    p = np.array([[.9, .1], [.2, .8], [.4, .6]])
    expected = -(math.log(.9) + math.log(.8) + math.log(.6)) / 3
    assert metrics.log_loss(y, p) == pytest.approx(expected, rel=1e-14)
    assert metrics.log_loss(y, p[:, 1]) == pytest.approx(expected, rel=1e-14)      # probability of the greater label
    assert metrics.log_loss(y, p, normalize=False) == pytest.approx(3 * expected, rel=1e-14)
    # strings: columns follow the sorted labels a, b, c
    p3 = np.array([[.4, .5, .1], [.7, .2, .1], [.1, .1, .8]])
    assert metrics.log_loss(["b", "a", "c"], p3) == pytest.approx(-(math.log(.5) + math.log(.7) + math.log(.8)) / 3)
    # labels= names classes y_true lacks
    assert metrics.log_loss([0, 0], [[.5, .5], [.8, .2]], labels=[0, 1]) == pytest.approx(-(math.log(.5) + math.log(.8)) / 2)


def test_log_loss_clips_zero_and_one_to_machine_epsilon():
    # true-class probabilities 1 and 0: -log(1 - eps) and -log(eps), eps of the dtype
    p = np.array([[1.0, 0.0], [1.0, 0.0]])
    eps = np.finfo(np.float64).eps
    assert metrics.log_loss([0, 1], p) == pytest.approx((-math.log(1 - eps) - math.log(eps)) / 2, rel=1e-15)
    eps32 = np.finfo(np.float32).eps
    assert metrics.log_loss([0, 1], p.astype(np.float32)) == pytest.approx(-math.log(eps32) / 2, rel=1e-6)
    # a perfect prediction costs (almost) nothing, and never NaN
    assert 0 <= metrics.log_loss([0, 1], [[1.0, 0.0], [0.0, 1.0]]) < 1e-15
    # literal values computed with scikit-learn 1.9.1's log_loss([0, 1], [[1, 0], [1, 0]]) (float64, float32)
    assert metrics.log_loss([0, 1], p) == pytest.approx(18.021826694558577, rel=1e-15)
    assert metrics.log_loss([0, 1], p.astype(np.float32)) == pytest.approx(7.971192359924316, rel=1e-7)


def test_log_loss_errors_and_warnings():
    with pytest.raises(ValueError, match=r"y_true contains only one label \(1\)"):
        metrics.log_loss([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="labels array needs to contain at least two labels"):
        metrics.log_loss([1, 1], [0.2, 0.3], labels=[1])
    with pytest.raises(ValueError, match="greater than 1"):
        metrics.log_loss([0, 1], [1.2, 0.3])
    with pytest.raises(ValueError, match="lower than 0"):
        metrics.log_loss([0, 1], [-0.2, 0.3])
    with pytest.raises(ValueError, match="y_true and y_prob contain different number of classes: 3 vs 2"):
        metrics.log_loss([0, 1, 2], [[.4, .6], [.7, .3], [.5, .5]])
    with pytest.raises(ValueError, match=r"y_true contains values \{2\} not belonging to the passed labels"):
        metrics.log_loss([0, 2], [[.4, .6], [.7, .3]], labels=[0, 1])
    with pytest.warns(UserWarning, match="do not sum to one"):
        metrics.log_loss([0, 1], [[.5, .6], [.2, .3]])
    with pytest.warns(UserWarning, match="assumes labels are ordered lexicographically"):
        metrics.log_loss([0, 1], [[.4, .6], [.7, .3]], labels=[1, 0])


# ---- the report ------------------------------------------------------------------------------------

def test_classification_report_dict():
    report = metrics.classification_report(Y_TRUE, Y_PRED, target_names=["disc", "square", "triangle"])
    assert list(report) == ["disc", "square", "triangle", "accuracy", "macro avg", "weighted avg"]
    assert report["disc"] == pytest.approx({"precision": 1 / 3, "recall": 1 / 2, "f1-score": 2 / 5, "support": 2})
    assert report["triangle"]["support"] == 4 and isinstance(report["triangle"]["support"], int)
    assert report["accuracy"] == pytest.approx(5 / 9)
    assert report["macro avg"] == pytest.approx({"precision": 5 / 9, "recall": 5 / 9, "f1-score": 172 / 315, "support": 9})
    assert report["weighted avg"] == pytest.approx({"precision": 16 / 27, "recall": 5 / 9, "f1-score": 178 / 315,
                                                    "support": 9})
    assert "roc_auc" not in report and "log_loss" not in report
    # labels= leaving out a class that occurs: "micro avg" replaces "accuracy"
    partial = metrics.classification_report(Y_TRUE, Y_PRED, labels=[0, 2])
    assert "accuracy" not in partial and partial["micro avg"]["recall"] == pytest.approx(3 / 6)
    with pytest.raises(ValueError, match="Number of classes, 3, does not match size of target_names, 2"):
        metrics.classification_report(Y_TRUE, Y_PRED, target_names=["a", "b"])
    with pytest.raises(ValueError, match="output must be 'dict' or 'frame'"):
        metrics.classification_report(Y_TRUE, Y_PRED, output="json")


def test_classification_report_with_probabilities():
    y_pred = np.argmax(OVR_P, axis=1)       # 0, 1, 2, 1, 0, 2, 0 (ties go to the first column)
    report = metrics.classification_report(OVR_Y, y_pred, probs=OVR_P, target_names=["a", "b", "c"])
    assert [report[c]["roc_auc"] for c in "abc"] == pytest.approx(OVR_PER_CLASS)
    assert report["roc_auc"] == pytest.approx(38 / 45) and report["macro avg"]["roc_auc"] == pytest.approx(38 / 45)
    assert report["weighted avg"]["roc_auc"] == pytest.approx(59 / 70)
    true_class_p = [OVR_P[i][c] for i, c in enumerate(OVR_Y)]
    assert report["log_loss"] == pytest.approx(-np.mean(np.log(true_class_p)))
    # binary with the positive column only: the binary AUC, shared by both rows
    binary = metrics.classification_report([0, 0, 1, 1], [0, 1, 0, 1], probs=[0.1, 0.4, 0.35, 0.8])
    assert binary["roc_auc"] == binary["0"]["roc_auc"] == binary["1"]["roc_auc"] == pytest.approx(3 / 4)
    with pytest.raises(ValueError, match="probs must have one column per label"):
        metrics.classification_report(OVR_Y, y_pred, probs=np.array(OVR_P)[:, :2])


def test_format_report_is_scikit_learns_table():
    # literal text of scikit-learn 1.9.1's classification_report(Y_TRUE, Y_PRED, target_names=[...]),
    # with supports printed as integers (scikit-learn 1.9 prints "2.0")
    expected = ("              precision    recall  f1-score   support\n\n"
                "        disc       0.33      0.50      0.40         2\n"
                "      square       0.67      0.67      0.67         3\n"
                "    triangle       0.67      0.50      0.57         4\n\n"
                "    accuracy                           0.56         9\n"
                "   macro avg       0.56      0.56      0.55         9\n"
                "weighted avg       0.59      0.56      0.57         9\n")
    report = metrics.classification_report(Y_TRUE, Y_PRED, target_names=["disc", "square", "triangle"])
    assert metrics.format_report(report) == expected
    with_probs = metrics.format_report(metrics.classification_report(OVR_Y, np.argmax(OVR_P, axis=1), probs=OVR_P),
                                       digits=3)
    lines = with_probs.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support", "roc_auc"]
    assert lines[2].split()[-1] == "0.833" and lines[-1].split() == ["log", "loss", f"{-np.mean(np.log([OVR_P[i][c] for i, c in enumerate(OVR_Y)])):.3f}"]
    with pytest.raises(TypeError, match="must be the dict classification_report returns"):
        metrics.format_report("text")


def test_classification_report_frame():
    import pandas as pd          # requirements-dev.txt; output="frame" is the one use of pandas
    frame = metrics.classification_report(OVR_Y, np.argmax(OVR_P, axis=1), probs=OVR_P, output="frame")
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.index) == ["0", "1", "2", "accuracy", "macro avg", "weighted avg"]
    assert list(frame.columns) == ["precision", "recall", "f1-score", "support", "roc_auc"]
    assert frame.loc["accuracy", "f1-score"] == pytest.approx(metrics.accuracy_score(OVR_Y, np.argmax(OVR_P, axis=1)))
    assert math.isnan(frame.loc["accuracy", "precision"]) and frame.loc["accuracy", "support"] == 7
    assert frame.loc["2", "roc_auc"] == pytest.approx(1.0)
    assert frame.attrs["roc_auc"] == pytest.approx(38 / 45)


def test_classification_report_frame_without_pandas(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)          # import pandas now raises ImportError
    with pytest.raises(ImportError, match=r"output='frame'\) needs pandas"):
        metrics.classification_report(Y_TRUE, Y_PRED, output="frame")
    assert isinstance(metrics.classification_report(Y_TRUE, Y_PRED), dict)
