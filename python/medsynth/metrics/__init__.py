"""Classification metrics with scikit-learn's definitions, in numpy (scikit-learn is not needed).

Each function takes the arguments of its scikit-learn namesake (without ``sample_weight``) and
returns the same numbers, warnings and errors as scikit-learn 1.9: accuracy and balanced
accuracy; precision, recall and F-scores with ``average`` = "binary" (the default, with
``pos_label``), "micro", "macro", "weighted" or None (per class) and ``zero_division``; the
confusion matrix; the ROC curve and one-vs-rest ROC-AUC; log loss; and a classification report
(a dict, a pandas DataFrame, or sklearn's text table through ``format_report``).

Labels may be integers or strings; unless ``labels=`` is given they are the sorted union of
``y_true`` and ``y_pred``, as scikit-learn's ``unique_labels``.

    >>> from medsynth import metrics
    >>> metrics.f1_score(["cat", "dog", "dog"], ["cat", "cat", "dog"], average="macro")
    0.6666666666666666
"""
from ._classification import (accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, fbeta_score,
                              precision_recall_fscore_support, precision_score, recall_score)
from ._ranking import auc, log_loss, roc_auc_score, roc_curve
from ._report import classification_report, format_report
from ._targets import UndefinedMetricWarning, unique_labels

__all__ = ["UndefinedMetricWarning", "unique_labels", "accuracy_score", "balanced_accuracy_score", "confusion_matrix",
           "precision_recall_fscore_support", "precision_score", "recall_score", "f1_score", "fbeta_score",
           "roc_curve", "auc", "roc_auc_score", "log_loss", "classification_report", "format_report"]
