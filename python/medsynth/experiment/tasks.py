"""One unit of the classifier grid, run by any backend: train one CNN on one training set (a fold,
a refit, a baseline or a feature extractor), score it on its validation fold and on the real test
set, and hand the model back as bytes.

A task is a plain dict (its ``spec``) plus the arrays it names; it depends on nothing else, so a
process pool and a Ray cluster run it the same way and, with the same engine threads, give the
same numbers bit for bit.

spec keys: ``architecture``, ``seed``, ``fit`` (Classifier.fit options), ``threads``,
``train`` (list of parts {"images", "labels", "index" (None: all)} concatenated), ``val`` (a part
or None), ``validation_split``, ``test`` (a part or None), ``keep_model``, ``pretrained``.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np


def _part(part: dict, arrays: dict):
    images, labels = arrays[part["images"]], arrays[part["labels"]]
    index = part.get("index")
    if index is None:
        return np.asarray(images), np.asarray(labels)
    index = np.asarray(index, dtype=np.int64)
    return np.asarray(images[index]), np.asarray(labels[index])


def _scores(report: dict) -> dict:
    macro = report["macro avg"]
    return {"accuracy": report["accuracy"], "balanced_accuracy": report["balanced_accuracy"],
            "precision_macro": macro["precision"], "recall_macro": macro["recall"], "f1_macro": macro["f1-score"],
            "loss": report["loss"], "confusion_matrix": report["confusion_matrix"], "labels": report["labels"],
            "per_class_f1": {str(k): v["f1-score"] for k, v in report.items() if isinstance(v, dict) and "f1-score" in v
                             and k not in ("macro avg", "weighted avg")}}


def execute(spec: dict, arrays: dict) -> dict:
    """Runs one task. Returns {"history", "best_epoch", "train", "val", "test", "model" (bytes or
    None), "n_train", "seconds"}; "train" holds the training loss and accuracy of the best epoch."""
    import time
    import warnings

    import medsynth
    from medsynth.metrics import UndefinedMetricWarning

    # a weak model predicting too few classes: its precision counts 0 there, as the tables show
    warnings.simplefilter("ignore", UndefinedMetricWarning)

    start = time.perf_counter()
    if spec.get("threads"):
        medsynth.set_num_threads(int(spec["threads"]))
    parts = [_part(p, arrays) for p in spec["train"]]
    X = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    y = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    kwargs = {"seed": int(spec["seed"])}
    if spec.get("pretrained"):
        kwargs["pretrained"] = spec["pretrained"]
    clf = medsynth.Classifier(spec["architecture"], **kwargs)
    fit = dict(spec.get("fit") or {})
    val = _part(spec["val"], arrays) if spec.get("val") else None
    if val is not None:
        fit["validation_data"] = val
    elif spec.get("validation_split"):
        fit["validation_split"] = float(spec["validation_split"])
    clf.fit(X, y, progress=False, **fit)
    history = clf.history_ or {}
    epochs = history.get("epochs", [])
    best = int(history.get("best_epoch") or len(epochs))
    chosen = epochs[best - 1] if 0 < best <= len(epochs) else (epochs[-1] if epochs else {})
    result = {"history": epochs, "best_epoch": best, "stopped_early": bool(history.get("stopped_early", False)),
              "n_train": int(len(y)), "train": {"loss": chosen.get("train_loss"), "accuracy": chosen.get("train_accuracy")},
              "val": None, "test": None, "model": None}
    if val is not None:
        result["val"] = _scores(clf.evaluate(*val))
    elif "val_loss" in chosen:
        result["val"] = {"loss": chosen.get("val_loss"), "accuracy": chosen.get("val_accuracy")}
    if spec.get("test"):
        result["test"] = _scores(clf.evaluate(*_part(spec["test"], arrays)))
    if spec.get("keep_model"):
        with tempfile.TemporaryDirectory(prefix="medsynth-task-") as tmp:
            path = os.path.join(tmp, "model.safetensors")
            clf.save(path)
            with open(path, "rb") as f:
                result["model"] = f.read()
    result["seconds"] = time.perf_counter() - start
    return result


# ---- process-pool side: arrays come from .npy files, loaded once per worker process ----------------

_CACHE: dict = {}


def execute_from_files(spec: dict, paths: dict) -> dict:
    """``execute`` with arrays memory-mapped from .npy files (the local process pool)."""
    arrays = {}
    for name, path in paths.items():
        if path not in _CACHE:
            _CACHE[path] = np.load(path, mmap_mode="r", allow_pickle=False)
        arrays[name] = _CACHE[path]
    return execute(spec, arrays)


def execute_with_arrays(spec: dict, names: list, *values) -> dict:
    """``execute`` with arrays passed positionally (Ray resolves object references given as
    top-level arguments, so each array travels to a node once)."""
    return execute(spec, dict(zip(names, values)))


def arrays_used(spec: dict) -> list:
    names = []
    for part in list(spec["train"]) + [spec.get("val"), spec.get("test")]:
        if part:
            names += [part["images"], part["labels"]]
    return sorted(set(names))
