"""Image classifiers trained natively: ``medsynth.Classifier``."""
from __future__ import annotations

import json
import os
from collections import namedtuple
from typing import Callable, Optional, Sequence

import numpy as np

from . import _engine
from ._core import ProgressReporter, to_nchw
from ._options import collect, documented, dumps
from ._paths import fspath
from ._safetensors import from_image, state_dict_arrays, to_image
from .model_selection import stratified_split

#: The training options ``Classifier.fit`` passes to the engine (documented from its table).
_FIT_OPTIONS = ("epochs", "batch_size", "lr", "weight_decay", "optimizer", "momentum", "schedule", "warmup_epochs",
                "step_size_epochs", "gamma", "label_smoothing", "early_stopping_patience", "early_stopping_monitor", "restore_best", "grad_clip",
                "freeze_backbone", "backbone_lr_scale", "hflip", "vflip", "translate", "rotate", "crop_scale", "brightness", "contrast", "checkpoint", "resume",
                "seed")

#: What ``Classifier.load_state_dict`` returns, as torch's ``load_state_dict``.
LoadResult = namedtuple("LoadResult", ["missing_keys", "unexpected_keys"])

#: Architectures the engine builds (Sources/MedSynth/Models), from the engine's registry.
ARCHITECTURES = tuple(a["name"] for a in json.loads(_engine.registry("architectures")))


class Classifier:
    """A CNN image classifier trained with AdamW and cross-entropy, as in the paper.

    Parameters
    ----------
    architecture : str, default "simple_cnn"
        One of ``medsynth.ARCHITECTURES``: the paper's CNNs "resnet18", "resnet50", "vgg16",
        "vgg19", "alexnet", "densenet121", "mobilenet_v2", "googlenet", built exactly as
        torchvision builds them (same layers, state-dict names and initialisation), and the small
        "simple_cnn".
    num_classes, in_channels, image_size : int, optional
        When all three are given the model is built at once (classes are then 0..num_classes-1);
        otherwise at the first ``fit``, from its data (a given value must agree with the data).
        Images of another size (or not square) are resized to ``image_size`` x ``image_size``
        with antialiased bilinear interpolation (``medsynth.ops.resize``, torchvision's
        ``Resize((s, s), antialias=True)``) wherever the model takes images.
    pretrained : path, optional
        A torchvision state dict saved as safetensors (e.g. ImageNet weights:
        ``safetensors.torch.save_file(torchvision.models.resnet18(weights="DEFAULT").state_dict(), p)``).
        The backbone is loaded strictly; the head (``fc``, ``classifier.6``, ``classifier`` or
        ``classifier.1``) is re-initialised when the file's is for another number of classes; the
        first convolution is adapted to ``in_channels`` (timm's rule: 1 channel sums the RGB
        filters); the input normalisation becomes ImageNet's (GoogLeNet: (x - 0.5) / 0.5, as
        torchvision's transform_input), so images are expected in [0, 1]. A file that does not fit
        raises ValueError listing every missing, unexpected and wrong-shape name.
    aux_logits : bool, default False
        GoogLeNet only: build its two auxiliary classifiers (torchvision's ``aux_logits``); in
        training each adds 0.3 x its cross-entropy to the loss. They are not used in prediction.
    seed : int, default 0
        Seeds weight initialisation, shuffling and dropout: the same seed gives bit-identical
        weights on the same machine.

    Labels may be any values numpy can sort (``classes_`` holds them, as in scikit-learn).
    """

    def __init__(self, architecture: str = "simple_cnn", *, num_classes: Optional[int] = None,
                 in_channels: Optional[int] = None, image_size: Optional[int] = None, pretrained=None,
                 aux_logits: bool = False, seed: int = 0):
        if architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURES)}")
        if int(seed) < 0:
            raise ValueError("seed must be non-negative")
        for name, value in (("num_classes", num_classes), ("in_channels", in_channels), ("image_size", image_size)):
            if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if pretrained is not None:
            pretrained = fspath(pretrained, "pretrained")
            if not os.path.isfile(pretrained):
                raise FileNotFoundError(f"pretrained weights {pretrained!r} do not exist")
        self.architecture = architecture
        self.seed = int(seed)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.in_channels = None if in_channels is None else int(in_channels)
        self.image_size = None if image_size is None else int(image_size)
        self.pretrained = pretrained
        self.aux_logits = bool(aux_logits)
        self._handle = None
        self.classes_ = None
        self.history_ = None
        self.pretrained_report_ = None
        if None not in (self.num_classes, self.in_channels, self.image_size):
            self.classes_ = np.arange(self.num_classes)
            self._build(self.num_classes, self.in_channels, self.image_size)

    # ---- construction -------------------------------------------------------------------------

    def _build(self, num_classes: int, in_channels: int, image_size: int) -> None:
        config = {"architecture": self.architecture, "num_classes": int(num_classes), "in_channels": int(in_channels),
                  "image_size": int(image_size), "seed": self.seed,
                  "class_names": [str(c) for c in self.classes_]}
        if self.aux_logits:
            config["aux_logits"] = True
        handle = _engine.classifier_create(json.dumps(config))
        if self.pretrained is not None:
            _engine.classifier_load_weights(handle, self.pretrained, None, json.dumps({"mode": "pretrained"}))
            self.pretrained_report_ = json.loads(_engine.classifier_result(handle))
        self._handle = handle

    @property
    def config(self) -> dict:
        """The engine's configuration of the model (architecture, sizes, normalisation, parameters)."""
        self._require_built()
        return json.loads(_engine.classifier_config(self._handle))

    @property
    def n_parameters(self) -> int:
        return int(self.config["state"]["parameters"])

    @property
    def head_parameters(self) -> list:
        """Names of the head's parameters (the rest is the backbone), e.g. ["fc.weight", "fc.bias"]."""
        return list(self.config["state"]["head_parameters"])

    def _require_built(self) -> None:
        if self._handle is None:
            raise RuntimeError("this classifier has not been built yet: pass num_classes, in_channels and image_size, "
                               "or call fit() or Classifier.load()")

    # ---- weights ------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """The weights as a dict of numpy arrays with torchvision's names, order, shapes and dtypes
        (float32; each ``num_batches_tracked`` an int64 scalar): what ``torchvision.models.<arch>(
        num_classes=k).state_dict()`` holds. The arrays are copies, independent of the model."""
        self._require_built()
        tensors, metadata = from_image(_engine.classifier_state_dict(self._handle))
        return {name: tensors[name] for name in json.loads(metadata["order"])}   # the data is sorted by dtype

    def load_state_dict(self, state_dict, strict: bool = True):
        """Loads weights with torchvision's names: a dict of arrays (numpy, or CPU torch tensors,
        e.g. a torchvision model's ``state_dict()``) or the path of a safetensors file. With
        ``strict`` every name and shape must match; otherwise missing and unexpected names are
        allowed (shapes must still match), as torch's ``load_state_dict``. Returns
        ``(missing_keys, unexpected_keys)``. Input normalisation is left as it is (identity
        until the first ``fit`` measures it)."""
        self._require_built()
        options = json.dumps({"mode": "strict" if strict else "non_strict"})
        if isinstance(state_dict, (str, bytes, os.PathLike)):
            _engine.classifier_load_weights(self._handle, fspath(state_dict, "state_dict"), None, options)
        else:
            if not hasattr(state_dict, "items"):
                raise TypeError("state_dict must be a mapping of names to arrays, or a path to a safetensors file")
            data = np.frombuffer(to_image(state_dict_arrays(state_dict)), dtype=np.uint8)
            _engine.classifier_load_weights(self._handle, None, data, options)
        report = json.loads(_engine.classifier_result(self._handle))
        return LoadResult(report["missing_keys"], report["unexpected_keys"])

    # ---- training -----------------------------------------------------------------------------

    @documented("classifier_training", keys=_FIT_OPTIONS)
    def fit(self, X, y, *, epochs: Optional[int] = None, batch_size: Optional[int] = None, lr: Optional[float] = None,
            weight_decay: Optional[float] = None, optimizer: Optional[str] = None, momentum: Optional[float] = None,
            schedule: Optional[str] = None, warmup_epochs: Optional[int] = None, step_size_epochs: Optional[int] = None,
            gamma: Optional[float] = None, label_smoothing: Optional[float] = None, class_weight=None,
            validation_data=None, validation_split: float = 0.0, early_stopping_patience: Optional[int] = None,
            early_stopping_monitor: Optional[str] = None, restore_best: Optional[bool] = None, grad_clip: Optional[float] = None,
            freeze_backbone: Optional[bool] = None, backbone_lr_scale: Optional[float] = None, hflip: Optional[bool] = None,
            vflip: Optional[bool] = None, translate: Optional[float] = None, rotate: Optional[float] = None,
            crop_scale: Optional[float] = None, brightness: Optional[float] = None, contrast: Optional[float] = None,
            checkpoint: Optional[str] = None,
            resume: Optional[bool] = None, seed: Optional[int] = None, progress: bool = True,
            callback: Optional[Callable[[dict], object]] = None, data_format: str = "auto") -> "Classifier":
        """Trains the classifier with AdamW and cross-entropy, as the paper does.

        X : images, see ``medsynth._core.to_nchw`` for accepted shapes and dtypes.
        y : labels (ints or strings).
        class_weight : None, "balanced" (n / (k · count), scikit-learn's rule), a dict {class: weight}
            or one weight per class.
        validation_data : (X_val, y_val), or use ``validation_split`` (a stratified fraction of X);
            with either, early stopping monitors the validation loss (or ``early_stopping_monitor``).
        checkpoint : path written atomically after every epoch (weights, optimiser, history);
            with ``resume=True`` training continues from it exactly.
        freeze_backbone, backbone_lr_scale : fine-tuning a pretrained model: train only the head
            (``head_parameters``), or the backbone at ``backbone_lr_scale`` x lr.
        progress : show a tqdm bar. ``callback(info)`` receives every progress dict.
        Ctrl-C stops training within about a second; the model keeps its last completed step.
        """
        x = self._images(X, data_format, "X")
        y = np.asarray(y)
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise ValueError(f"y must be a 1-D array with one label per image ({x.shape[0]}), got shape {y.shape}")
        if self._handle is None:
            self._build_for(x, y)
        labels = self._encode(y, "y")

        x_val = y_val = None
        if validation_data is not None:
            if validation_split:
                raise ValueError("pass validation_data or validation_split, not both")
            x_val = self._images(validation_data[0], data_format, "validation X")
            y_val = self._encode(np.asarray(validation_data[1]), "validation y")
        elif validation_split:
            if not 0 < validation_split < 1:
                raise ValueError("validation_split must be between 0 and 1")
            train_idx, val_idx = stratified_split(labels, test_size=validation_split, seed=self.seed)
            x, x_val = x[train_idx], x[val_idx]
            labels, y_val = labels[train_idx], labels[val_idx]

        options = collect(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, optimizer=optimizer,
                          momentum=momentum, schedule=schedule, warmup_epochs=warmup_epochs,
                          step_size_epochs=step_size_epochs, gamma=gamma, label_smoothing=label_smoothing,
                          class_weights=self._class_weights(class_weight, labels),
                          early_stopping_patience=early_stopping_patience,
                          early_stopping_monitor=early_stopping_monitor, restore_best=restore_best,
                          grad_clip=grad_clip, freeze_backbone=freeze_backbone,
                          backbone_lr_scale=backbone_lr_scale, hflip=hflip, vflip=vflip, translate=translate, rotate=rotate,
                          crop_scale=crop_scale, brightness=brightness, contrast=contrast,
                          checkpoint=checkpoint, resume=resume, seed=seed)
        reporter = ProgressReporter(progress, f"training {self.architecture}", callback)
        try:
            _engine.classifier_fit(self._handle, x, labels, x_val, y_val, dumps(options), reporter)
        finally:
            reporter.close()
        self.history_ = json.loads(_engine.classifier_result(self._handle))
        return self

    def _build_for(self, x: np.ndarray, y: np.ndarray) -> None:
        """Builds the model for the first training data, checking it against the given sizes."""
        classes = np.unique(y)
        if self.num_classes is not None and len(classes) != self.num_classes:
            if np.issubdtype(classes.dtype, np.integer) and classes.min() >= 0 and classes.max() < self.num_classes:
                classes = np.arange(self.num_classes)
            else:
                raise ValueError(f"num_classes is {self.num_classes} but y holds {len(classes)} classes")
        if len(classes) < 2:
            raise ValueError("y must contain at least two classes")
        if self.in_channels is not None and x.shape[1] != self.in_channels:
            raise ValueError(f"in_channels is {self.in_channels} but X has {x.shape[1]} channel(s)")
        self.classes_ = classes
        self._build(len(classes), x.shape[1], x.shape[2])

    def _images(self, X, data_format: str, name: str) -> np.ndarray:
        """X as float32 NCHW at the model's input size, resized when it differs (antialiased
        bilinear, as torchvision's ``Resize((s, s), antialias=True)``)."""
        x = to_nchw(X, data_format=data_format, name=name)
        size = self.image_size if self._handle is None else int(self.config["image_size"])
        if size is None:
            if x.shape[2] != x.shape[3]:
                raise ValueError(f"{name} images are {x.shape[2]}x{x.shape[3]}, not square: pass image_size= to the "
                                 "Classifier to resize them to a square input")
            return x
        if x.shape[2:] == (size, size):
            return x
        from .ops import resize
        return np.ascontiguousarray(resize(x.transpose(0, 2, 3, 1), size).transpose(0, 3, 1, 2))

    def _encode(self, y: np.ndarray, name: str) -> np.ndarray:
        index = np.searchsorted(self.classes_, y)
        index = np.clip(index, 0, len(self.classes_) - 1)
        if not np.all(self.classes_[index] == y):
            unknown = np.unique(y[self.classes_[index] != y])[:5]
            raise ValueError(f"{name} has labels the classifier does not know: {list(unknown)}")
        return np.ascontiguousarray(index, dtype=np.int64)

    def _class_weights(self, class_weight, labels: np.ndarray):
        k = len(self.classes_)
        if class_weight is None:
            return None
        if isinstance(class_weight, str):
            if class_weight != "balanced":
                raise ValueError("class_weight must be None, 'balanced' or a list of weights")
            counts = np.bincount(labels, minlength=k).astype(np.float64)
            return [float(len(labels) / (k * c)) if c > 0 else 0.0 for c in counts]
        if isinstance(class_weight, dict):
            return [float(class_weight.get(c, 1.0)) for c in self.classes_]
        weights = [float(w) for w in class_weight]
        if len(weights) != k:
            raise ValueError(f"class_weight needs {k} values, got {len(weights)}")
        return weights

    # ---- prediction ---------------------------------------------------------------------------

    def predict_proba(self, X, *, batch_size: int = 64, progress: bool = False, data_format: str = "auto") -> np.ndarray:
        """Class probabilities, shape (n, n_classes), columns in the order of ``classes_``."""
        self._require_built()
        x = self._images(X, data_format, "X")
        out = np.empty((x.shape[0], len(self.classes_)), dtype=np.float32)
        reporter = ProgressReporter(progress, "predicting", unit="image")
        try:
            _engine.classifier_predict_proba(self._handle, x, int(batch_size), out, reporter)
        finally:
            reporter.close()
        bad = ~np.isfinite(out).all(axis=1)
        if bad.any():
            raise ValueError(f"the model's outputs overflow for {int(bad.sum())} image(s) of X (the first: index "
                             f"{int(np.argmax(bad))}, largest |pixel| {float(np.abs(x).max()):.3g}): scale the images "
                             f"as the training data was (the model normalises with mean {self.config['mean']}, "
                             f"std {self.config['std']})")
        return out

    @property
    def feature_size(self) -> int:
        """Length of the pooled feature vector the head reads (512 for ResNet-18, 4096 for VGG)."""
        self._require_built()
        return int(_engine.classifier_feature_size(self._handle))

    def features(self, X, *, batch_size: int = 64, progress: bool = False, data_format: str = "auto") -> np.ndarray:
        """The pooled features of each image: the input of the model's head (its last linear
        layer), shape (n, feature_size), evaluation mode. ``head(features)`` gives the logits.
        This is the feature space ``medsynth.fidelity`` and ``medsynth.privacy`` measure in (as
        torchvision's ``create_feature_extractor`` up to the head, or scikit-learn's transform)."""
        self._require_built()
        x = self._images(X, data_format, "X")
        out = np.empty((x.shape[0], self.feature_size), dtype=np.float32)
        reporter = ProgressReporter(progress, "features", unit="image")
        try:
            _engine.classifier_features(self._handle, x, int(batch_size), out, reporter)
        finally:
            reporter.close()
        return out

    transform = features

    def predict(self, X, **kwargs) -> np.ndarray:
        """Predicted labels (values of ``classes_``)."""
        return self.classes_[np.argmax(self.predict_proba(X, **kwargs), axis=1)]

    def score(self, X, y, **kwargs) -> float:
        """Accuracy on (X, y), as scikit-learn's ``score``."""
        return float(np.mean(self.predict(X, **kwargs) == np.asarray(y)))

    def evaluate(self, X, y, *, batch_size: int = 64, data_format: str = "auto") -> dict:
        """Scores on a labelled set, with scikit-learn's definitions (``medsynth.metrics``).

        Returns ``metrics.classification_report`` (per-class and macro/weighted precision, recall,
        F1 and ROC-AUC, accuracy, log loss) with "loss" (the mean cross-entropy, as training reports
        it), "balanced_accuracy", "confusion_matrix" (rows true, columns predicted, in the order of
        "labels") and "labels".
        """
        from . import metrics
        self._require_built()
        y = np.asarray(y)
        self._encode(y, "y")
        probs = self.predict_proba(X, batch_size=batch_size, data_format=data_format)
        predicted = self.classes_[np.argmax(probs, axis=1)]
        report = metrics.classification_report(y, predicted, probs=probs, labels=self.classes_)
        true_index = np.searchsorted(self.classes_, y)
        p_true = probs[np.arange(len(y)), true_index].astype(np.float64)
        report["loss"] = float(-np.mean(np.log(np.maximum(p_true, np.finfo(np.float32).tiny))))
        report["balanced_accuracy"] = metrics.balanced_accuracy_score(y, predicted)
        report["confusion_matrix"] = metrics.confusion_matrix(y, predicted, labels=self.classes_).tolist()
        report["labels"] = self.classes_.tolist()
        return report

    # ---- model selection ----------------------------------------------------------------------

    def clone(self) -> "Classifier":
        """A new, unfitted classifier built with the same arguments."""
        return type(self)(self.architecture, num_classes=self.num_classes, in_channels=self.in_channels,
                          image_size=self.image_size, pretrained=self.pretrained, aux_logits=self.aux_logits, seed=self.seed)

    def cross_validate(self, X, y, *, n_splits: int = 5, seed: int = 0, progress: bool = True, **fit_params) -> dict:
        """Stratified k-fold cross-validation of this architecture and settings (the paper: 5 folds,
        early stopping on each fold's validation loss): see ``medsynth.model_selection.cross_validate``.
        This classifier itself is not trained."""
        from .model_selection import cross_validate
        return cross_validate(self, X, y, n_splits=n_splits, seed=seed, progress=progress, **fit_params)

    def grid_search(self, X, y, param_grid: dict, *, n_splits: int = 5, scoring: str = "accuracy", seed: int = 0,
                    refit: bool = True, progress: bool = True, **fit_params) -> dict:
        """Chooses fit options (e.g. {"lr": [...], "batch_size": [...], "weight_decay": [...]}) by
        mean cross-validation score: see ``medsynth.model_selection.grid_search``. With ``refit``
        the returned "model" is trained on all of X with the best options."""
        from .model_selection import grid_search
        return grid_search(self, X, y, param_grid, n_splits=n_splits, scoring=scoring, seed=seed, refit=refit,
                           progress=progress, **fit_params)

    # ---- persistence --------------------------------------------------------------------------

    def save(self, path) -> None:
        """Writes weights (torch state-dict keys) and configuration as safetensors, atomically."""
        self._require_built()
        _engine.classifier_save(self._handle, os.fspath(path))

    @classmethod
    def load(cls, path) -> "Classifier":
        """Loads a classifier written by ``save`` (or a training checkpoint)."""
        handle = _engine.classifier_load(os.fspath(path))
        config = json.loads(_engine.classifier_config(handle))
        model = cls(config["architecture"], seed=int(config["seed"]), aux_logits=bool(config.get("aux_logits", False)))
        model.num_classes, model.in_channels = int(config["num_classes"]), int(config["in_channels"])
        model.image_size = int(config["image_size"])
        model._handle = handle
        names = config["class_names"]
        model.classes_ = _restore_labels(names)
        return model

    def __repr__(self) -> str:
        state = f"{len(self.classes_)} classes" if self.classes_ is not None else "not fitted"
        return f"Classifier({self.architecture!r}, {state})"


def _restore_labels(names: Sequence[str]) -> np.ndarray:
    """Class labels as saved: integers come back as integers."""
    try:
        ints = [int(n) for n in names]
        if [str(i) for i in ints] == list(names):
            return np.array(ints)
    except ValueError:
        pass
    return np.array(names)

