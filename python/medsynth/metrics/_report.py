"""``classification_report``: scikit-learn's report as a dict (or a pandas DataFrame), with ROC-AUC
and log loss when probabilities are given, and ``format_report`` for its text table."""
from __future__ import annotations

import warnings

import numpy as np

from ._classification import precision_recall_fscore_support
from ._ranking import _scores, average_ovr, log_loss, ovr_auc_per_class
from ._targets import check_targets, labels_array

HEADERS = ("precision", "recall", "f1-score", "support")
AVERAGE_ROWS = ("micro avg", "macro avg", "weighted avg")


def classification_report(y_true, y_pred, probs=None, labels=None, target_names=None, output: str = "dict", *,
                          zero_division="warn"):
    """Per-class precision, recall, F1 and support, accuracy and their macro and weighted averages.

    The dict is scikit-learn's ``classification_report(..., output_dict=True)``: one entry per
    class (keyed by ``target_names`` or ``str(label)``) holding "precision", "recall", "f1-score"
    and "support"; "accuracy" (a float; "micro avg" instead when ``labels`` leaves out classes that
    occur); "macro avg" and "weighted avg".

    probs : optional (n, n_classes) predicted probabilities, columns in the order of ``labels``
        (default: the sorted union of y_true and y_pred; for a binary problem an (n,) array is the
        probability of the second label). Adds "roc_auc" (one-vs-rest) to each class and average
        row, and top-level "roc_auc" (the macro average; for two classes the binary AUC, which
        both classes' rows share) and "log_loss".
    output : "dict" or "frame" (a pandas DataFrame, one row per class and average; needs pandas).
    zero_division : as in ``precision_recall_fscore_support``.
    """
    if output not in ("dict", "frame"):
        raise ValueError(f"output must be 'dict' or 'frame', got {output!r}")
    y_type, present, y_true, y_pred = check_targets(y_true, y_pred)
    labels_given = labels is not None
    labels = labels_array(labels, present, "labels") if labels_given else present
    micro_is_accuracy = not labels_given or set(labels.tolist()) >= set(present.tolist())
    if target_names is not None and len(labels) != len(target_names):
        if not labels_given:
            raise ValueError(f"Number of classes, {len(labels)}, does not match size of target_names, "
                             f"{len(target_names)}. Try specifying the labels parameter")
        warnings.warn(f"labels size, {len(labels)}, does not match size of target_names, {len(target_names)}",
                      UserWarning, stacklevel=2)
    names = [str(n) for n in target_names] if target_names is not None else [str(label) for label in labels]

    p, r, f, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=None,
                                                       zero_division=zero_division)
    report = {name: {"precision": float(p[i]), "recall": float(r[i]), "f1-score": float(f[i]),
                     "support": int(support[i])} for i, name in zip(range(len(labels)), names)}
    total = int(support.sum())
    for average, row in zip(("micro", "macro", "weighted"), AVERAGE_ROWS):
        ap, ar, af, _ = precision_recall_fscore_support(y_true, y_pred, labels=labels, average=average,
                                                        zero_division=zero_division)
        if average == "micro" and micro_is_accuracy:
            report["accuracy"] = float(af)
        else:
            report[row] = {"precision": ap, "recall": ar, "f1-score": af, "support": total}

    if probs is not None:
        _add_probability_scores(report, names, y_true, probs, labels)
    return _frame(report) if output == "frame" else report


def _add_probability_scores(report: dict, names, y_true, probs, labels) -> None:
    proba = _scores(probs, "probs", len(y_true))
    if proba.ndim == 1 and len(labels) == 2:
        proba = np.stack([1 - proba, proba], axis=1)
    if proba.ndim != 2 or proba.shape[1] != len(labels):
        raise ValueError(f"probs must have one column per label ({len(labels)}: {labels.tolist()}), got shape "
                         f"{proba.shape}; pass labels= to name the columns")
    per_class = ovr_auc_per_class(y_true, proba, labels)
    support = np.array([(y_true == c).sum() for c in labels])
    for name, value in zip(names, per_class):
        report[name]["roc_auc"] = float(value)
    report["macro avg"]["roc_auc"] = average_ovr(per_class, support, "macro")
    report["weighted avg"]["roc_auc"] = average_ovr(per_class, support, "weighted")
    # scikit-learn's binary AUC scores the greater label; with more classes, the macro average
    report["roc_auc"] = float(per_class[np.argmax(labels)]) if len(labels) == 2 else report["macro avg"]["roc_auc"]
    order = np.argsort(labels, kind="stable")            # log_loss wants sorted labels
    report["log_loss"] = log_loss(y_true, proba[:, order], labels=labels[order])


def _frame(report: dict):
    try:
        import pandas as pd
    except ImportError as error:
        raise ImportError("classification_report(output='frame') needs pandas (pip install pandas); "
                          "use output='dict' without it") from error
    rows = {}
    for key, value in report.items():
        if isinstance(value, dict):
            rows[key] = value
        elif key == "accuracy":
            rows[key] = {"f1-score": value, "support": report["macro avg"]["support"]}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame["support"] = frame["support"].astype("int64")
    frame.attrs.update({k: report[k] for k in ("roc_auc", "log_loss") if k in report})
    return frame


def format_report(report: dict, digits: int = 2) -> str:
    """The text table scikit-learn's ``classification_report`` prints, from a report dict (with a
    roc_auc column and a log loss line when the report has them)."""
    if not isinstance(report, dict):
        raise TypeError(f"report must be the dict classification_report returns, got {type(report).__name__}")
    classes = [k for k, v in report.items() if isinstance(v, dict) and k not in AVERAGE_ROWS]
    averages = [k for k in AVERAGE_ROWS if k in report]
    with_auc = "roc_auc" in report
    headers = HEADERS + (("roc_auc",) if with_auc else ())
    width = max([len(c) for c in classes] + [len("weighted avg"), digits])
    row_fmt = "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}"
    auc_fmt = " {:>9.{digits}f}"

    def row(name: str) -> str:
        values = report[name]
        line = row_fmt.format(name, values["precision"], values["recall"], values["f1-score"], values["support"],
                              width=width, digits=digits)
        if with_auc and "roc_auc" in values:
            line += auc_fmt.format(values["roc_auc"], digits=digits)
        return line + "\n"

    text = ("{:>{width}s} " + " {:>9}" * len(headers)).format("", *headers, width=width) + "\n\n"
    text += "".join(row(c) for c in classes) + "\n"
    for name in averages:
        if name == "macro avg" and "accuracy" in report:
            text += ("{:>{width}s} " + " {:>9}" * 2 + " {:>9.{digits}f} {:>9}\n").format(
                "accuracy", "", "", report["accuracy"], report["macro avg"]["support"], width=width, digits=digits)
        text += row(name)
    if "log_loss" in report:
        text += "\n" + ("{:>{width}s} " + " {:>9}" * 2 + " {:>9.{digits}f}\n").format(
            "log loss", "", "", report["log_loss"], width=width, digits=digits)
    return text
