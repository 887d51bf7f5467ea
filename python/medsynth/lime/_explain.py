"""LIME for images (Ribeiro, Singh & Guestrin, KDD 2016) on the engine: the lime package's
algorithm and defaults, reproducible by seed, with the model in the loop natively when it is a
medsynth Classifier."""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from .. import _engine
from .. import segmentation as seg
from .._core import ProgressReporter, to_nchw
from .._options import collect, defaults, documented, dumps
from ..classifier import Classifier
from ..stats import spearman
from ._explanation import Explanation

#: The explainer's options with their defaults, from the engine's table (registry topic "lime",
#: Sources/MedSynth/Explain/LimeSurrogate.swift): the one place they are written.
DEFAULTS = defaults("lime")
_SURROGATE_KEYS = ("kernel_width", "alpha", "feature_selection", "num_features")

_LEVELS = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "numpy"):   # a torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_image(image) -> np.ndarray:
    a = _to_numpy(image)
    if not (a.dtype in _LEVELS or np.issubdtype(a.dtype, np.floating)):
        raise TypeError(f"image must hold uint8, uint16 or floating-point pixels, got dtype {a.dtype}")
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[0] not in (1, 3, 4) and a.shape[2] not in (1, 3, 4)):
        raise ValueError(f"image must be one image, (H, W), (H, W, C) or (C, H, W); got shape {a.shape} "
                         f"(use explain_many for a batch)")
    return a


def _hide_values(hide_color, scale: float) -> Optional[np.ndarray]:
    if hide_color is None:
        return None
    values = np.atleast_1d(np.asarray(hide_color, dtype=np.float64)).ravel() * scale
    if not np.isfinite(values).all():
        raise ValueError("hide_color must be finite")
    return np.ascontiguousarray(values, dtype=np.float32)


def _classify_natively(model: Classifier, image: np.ndarray, segments: np.ndarray, z: np.ndarray, hide_color,
                       batch_size: int, data_format: str, progress: bool):
    """Perturbed images built and classified inside the engine: ms_lime_hidden_image, ms_lime_classify."""
    model._require_built()
    x = to_nchw(image[None], data_format=data_format, name="image")[0]      # [c, h, w], the model's scale
    levels = _LEVELS.get(image.dtype, 0)
    hidden = np.empty_like(x)
    _engine.lime_hidden_image(x, 0, segments, int(segments.max()) + 1, _hide_values(hide_color, 1.0 / levels if levels else 1.0),
                              levels, hidden)
    probs = np.empty((z.shape[0], len(model.classes_)), dtype=np.float32)
    reporter = ProgressReporter(progress, "LIME samples", unit="image")
    try:
        _engine.lime_classify(model._handle, x, hidden, segments, z, int(batch_size), probs, reporter)
    finally:
        reporter.close()
    return probs.astype(np.float64), hidden


def _classify_with_callable(fn: Callable, image: np.ndarray, segments: np.ndarray, z: np.ndarray, hide_color,
                            batch_size: int, data_format: str, progress: bool):
    """The engine builds each batch (ms_lime_perturb); Python calls the model on it, as lime does:
    (n, H, W, C) channels-last in the image's dtype, or (n, H, W) for a 2-D image."""
    hwc = seg.to_hwc(image, data_format=data_format)
    raw = np.ascontiguousarray(hwc, dtype=np.float32)
    integer = image.dtype in _LEVELS
    hidden = np.empty_like(raw)
    _engine.lime_hidden_image(raw, 1, segments, int(segments.max()) + 1, _hide_values(hide_color, 1.0), 1 if integer else 0, hidden)
    n = z.shape[0]
    outputs: List[np.ndarray] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=n, desc="LIME samples", unit="image")
    try:
        for first in range(0, n, batch_size):
            count = min(batch_size, n - first)
            batch = np.empty((count,) + raw.shape, dtype=np.float32)
            _engine.lime_perturb(raw, hidden, 1, segments, z, first, batch)
            if image.dtype != np.float32:
                batch = batch.astype(image.dtype)
            if image.ndim == 2:
                batch = batch[..., 0]
            p = np.asarray(_to_numpy(fn(batch)), dtype=np.float64)
            if p.ndim != 2 or p.shape[0] != count:
                raise ValueError(f"the model returned shape {p.shape} for a batch of {count} images; "
                                 f"it must return (n, n_classes) probabilities")
            if outputs and p.shape[1] != outputs[0].shape[1]:
                raise ValueError(f"the model returned {p.shape[1]} columns, earlier batches had {outputs[0].shape[1]}")
            if not np.isfinite(p).all():
                raise ValueError("the model returned NaN or infinite values")
            outputs.append(p)
            if bar is not None:
                bar.update(count)
    finally:
        if bar is not None:
            bar.close()
    hidden_image = hidden[..., 0] if image.ndim == 2 else hidden
    return np.concatenate(outputs), hidden_image


@documented("lime", keys=_SURROGATE_KEYS)
def fit_surrogate(data, predictions, labels: Sequence[int], *, kernel_width: Optional[float] = None,
                  alpha: Optional[float] = None, feature_selection: Optional[str] = None,
                  num_features: Optional[int] = None) -> Dict[int, dict]:
    """lime's ``LimeBase.explain_instance_with_data`` for the image explainer, in the engine: the
    cosine distance of each binary row of ``data`` to row 0, the kernel √exp(−d²/width²), feature
    selection, and weighted Ridge(alpha) with intercept. Returns {label: {"intercept", "local_exp"
    (sorted by |weight|), "score" (weighted R²), "local_pred", "sample_weights"}}."""
    z = np.ascontiguousarray(_to_numpy(data), dtype=np.uint8)
    p = np.ascontiguousarray(_to_numpy(predictions), dtype=np.float64)
    if z.ndim != 2 or p.ndim != 2 or p.shape[0] != z.shape[0]:
        raise ValueError(f"data must be (num_samples, num_superpixels) and predictions (num_samples, n_classes); "
                         f"got {z.shape} and {p.shape}")
    label_list = np.ascontiguousarray([int(l) for l in labels], dtype=np.int64)
    options = collect(kernel_width=kernel_width, alpha=alpha, feature_selection=feature_selection, num_features=num_features)
    L, K = len(label_list), z.shape[1]
    features = np.empty((L, K), dtype=np.int32)
    weights = np.empty((L, K), dtype=np.float64)
    intercept, score, local = np.empty(L), np.empty(L), np.empty(L)
    sample_weights = np.empty(z.shape[0])
    _engine.lime_fit(z, p, label_list, dumps(options), features, weights, intercept, score, local, sample_weights)
    result = {}
    for i, label in enumerate(label_list):
        used = int((features[i] >= 0).sum())
        result[int(label)] = {"intercept": float(intercept[i]), "score": float(score[i]), "local_pred": float(local[i]),
                              "local_exp": [(int(f), float(w)) for f, w in zip(features[i, :used], weights[i, :used])],
                              "sample_weights": sample_weights}
    return result


@documented("lime")
def explain(model, image, labels: Optional[Sequence[int]] = None, top_labels: Optional[int] = None,
            num_samples: Optional[int] = None, segmentation: Union[None, str, np.ndarray, Callable] = None, hide_color=None,
            seed: Optional[int] = None, batch_size: Optional[int] = None, *, num_features: Optional[int] = None,
            feature_selection: Optional[str] = None, kernel_width: Optional[float] = None, alpha: Optional[float] = None,
            segmentation_options: Optional[dict] = None, data_format: str = "auto", progress: bool = False) -> Explanation:
    """Explains ``model``'s prediction for ``image`` with LIME, as lime's
    ``LimeImageExplainer().explain_instance`` does, natively and reproducibly.

    model : a fitted ``medsynth.Classifier`` (the perturbed images are built and classified
        inside the engine, batch by batch, with no Python in the loop) or any callable
        ``f(batch) -> (n, n_classes)`` probabilities, given batches as lime gives them:
        (n, H, W, C) channels-last in the image's dtype, or (n, H, W) for a 2-D image (gray
        models get gray batches; nothing is converted to RGB). Float images reach a callable as
        float32 values in the image's dtype.
    image : (H, W), (H, W, C) or (C, H, W); uint8, uint16 or float, as the Classifier takes it.
    labels : the output columns to explain; None explains the ``top_labels`` most probable ones
        for the image itself (lime instead ignores ``labels`` whenever ``top_labels`` is set).
    segmentation : "quickshift" (lime's: kernel_size 4, max_dist 200, ratio 0.2, tie-break noise
        as scikit-image draws it), "slic", a label map (any integers; renumbered 0..K-1), or a
        callable ``f(image) -> labels``. ``segmentation_options`` go to the named method
        (``medsynth.segmentation.quickshift`` / ``slic``).
    hide_color : None fills a hidden superpixel with its own mean colour (lime's default; for
        integer images the mean is truncated to an integer, as lime's uint8 assignment does); a
        number or one per channel, in the image's own pixel scale, fills every hidden pixel.
    seed : the same seed gives the same explanation bit for bit (lime's draws depend on NumPy's
        global state).
    Returns an ``Explanation``.
    """
    return _explain(model, image, labels, top_labels, num_samples, segmentation, hide_color, seed, batch_size, 0,
                    num_features=num_features, feature_selection=feature_selection, kernel_width=kernel_width, alpha=alpha,
                    segmentation_options=segmentation_options, data_format=data_format, progress=progress)


def _explain(model, image, labels, top_labels, num_samples, segmentation, hide_color, seed, batch_size, run: int, *,
             num_features, feature_selection, kernel_width, alpha, segmentation_options, data_format, progress) -> Explanation:
    """``explain`` with the sample generator's run index (0: the explanation, 1: a second,
    independent draw of it)."""
    a = _check_image(image)
    o = {**DEFAULTS, **collect(top_labels=top_labels, num_samples=num_samples, seed=seed, batch_size=batch_size)}
    num_samples, batch_size, top_labels, seed = int(o["num_samples"]), int(o["batch_size"]), int(o["top_labels"]), int(o["seed"])
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if segmentation is None:
        segmentation = o["segmentation"]
    segments = seg.segment(a, segmentation, data_format=data_format, **(segmentation_options or {}))
    k = int(segments.max()) + 1
    z = np.empty((num_samples, k), dtype=np.uint8)
    _engine.lime_samples(num_samples, k, seed, int(run), z)

    if isinstance(model, Classifier):
        predictions, hidden = _classify_natively(model, a, segments, z, hide_color, batch_size, data_format, progress)
        class_names = list(model.classes_)
    elif callable(model):
        predictions, hidden = _classify_with_callable(model, a, segments, z, hide_color, batch_size, data_format, progress)
        class_names = None
    else:
        raise TypeError(f"model must be a medsynth.Classifier or a callable returning probabilities, got {type(model).__name__}")

    n_classes = predictions.shape[1]
    if labels is None:
        if top_labels < 1:
            raise ValueError(f"top_labels must be at least 1, got {top_labels}")
        # lime: argsort of the image's own prediction, the last top_labels, most probable first
        chosen = [int(i) for i in np.argsort(predictions[0], kind="stable")[-top_labels:][::-1]]
    else:
        chosen = [int(l) for l in np.atleast_1d(labels)]
        for l in chosen:
            if not 0 <= l < n_classes:
                raise ValueError(f"label {l} is outside the model's {n_classes} outputs")
    fits = fit_surrogate(z, predictions, chosen, kernel_width=kernel_width, alpha=alpha, feature_selection=feature_selection,
                         num_features=num_features)
    first = fits[chosen[0]]
    return Explanation(a, segments, chosen, {l: fits[l]["local_exp"] for l in chosen}, {l: fits[l]["intercept"] for l in chosen},
                       {l: fits[l]["score"] for l in chosen}, {l: fits[l]["local_pred"] for l in chosen}, z, predictions,
                       first["sample_weights"], class_names=class_names, seed=seed, hidden_image=hidden)


class ExplanationSet(list):
    """Explanations of several images (a list), with the seed stability of the set:
    ``stability["spearman"]`` holds, per image, Spearman's rank correlation between the superpixel
    weights of the first explained label in two runs with different seeds (same segmentation),
    ``stability["mean"]`` their mean."""

    stability: Optional[dict] = None

    def summary(self, masks=None, true_labels=None, k: int = 5) -> dict:
        """``medsynth.lime.summarize`` of this set (with its stability)."""
        from .quantify import summarize
        return summarize(self, masks=masks, true_labels=true_labels, k=k)


def _per_image_labels(labels, n: int) -> List[Optional[List[int]]]:
    if labels is None:
        return [None] * n
    if np.isscalar(labels):
        return [[int(labels)]] * n
    labels = list(labels)
    if len(labels) != n:
        raise ValueError(f"labels needs one entry per image ({n}), got {len(labels)}")
    return [None if l is None else [int(x) for x in np.atleast_1d(l)] for l in labels]


@documented("lime")
def explain_many(model, images, labels=None, top_labels: Optional[int] = None, num_samples: Optional[int] = None,
                 segmentation: Union[None, str, Callable] = None, hide_color=None, seed: Optional[int] = None,
                 batch_size: Optional[int] = None, *, stability: bool = True, progress: bool = True,
                 **options) -> ExplanationSet:
    """``explain`` for each image of ``images`` ((N, H, W), (N, H, W, C) or a sequence of images),
    with a tqdm bar. ``labels``: None (top labels), one label for all, or one entry per image
    (e.g. the true labels). Every image uses ``seed``, so an image's explanation does not depend
    on the others. With ``stability`` (default) each image is explained a second time from an
    independent draw of samples (the same seed's second run) on the same superpixels, which
    doubles the cost, and the set reports the rank agreement of the two runs' weights
    (``ExplanationSet.stability``). Other keywords go to ``explain``."""
    batch = [images[i] for i in range(len(images))]
    if isinstance(segmentation, np.ndarray):
        raise TypeError("explain_many takes a segmentation name or callable; pass one label map per image through explain")
    unknown = set(options) - {"num_features", "feature_selection", "kernel_width", "alpha", "segmentation_options", "data_format"}
    if unknown:
        raise TypeError(f"explain_many got unexpected keyword(s) {sorted(unknown)}")
    settings = {k: options.get(k) for k in ("num_features", "feature_selection", "kernel_width", "alpha")}
    data_format = options.get("data_format", "auto")
    per_image = _per_image_labels(labels, len(batch))
    result = ExplanationSet()
    rhos = []
    iterator = range(len(batch))
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(iterator, desc="explaining", unit="image")
    for i in iterator:
        e = _explain(model, batch[i], per_image[i], top_labels, num_samples, segmentation, hide_color, seed, batch_size, 0,
                     segmentation_options=options.get("segmentation_options"), data_format=data_format, progress=False,
                     **settings)
        result.append(e)
        if stability:
            again = _explain(model, batch[i], e.top_labels, None, num_samples, e.segments, hide_color, seed, batch_size, 1,
                             segmentation_options=None, data_format=data_format, progress=False, **settings)
            rhos.append(spearman(e.weights(), again.weights()))
    if stability:
        rho = np.array(rhos)
        finite = rho[np.isfinite(rho)]
        result.stability = {"spearman": rho, "mean": float(finite.mean()) if finite.size else float("nan"),
                            "median": float(np.median(finite)) if finite.size else float("nan")}
    return result


def seed_stability(model, image, seeds: Sequence[int] = (0, 1, 2, 3), *, label: Optional[int] = None, **options) -> dict:
    """How much an explanation depends on its samples: the image explained once per seed on the
    same superpixels, and Spearman's rank correlation of the weights for every pair of seeds.
    Returns {"mean", "min", "pairs", "num_superpixels"}; ``options`` go to ``explain``."""
    first = explain(model, image, labels=None if label is None else [label], seed=seeds[0], **options)
    rest = {k: v for k, v in options.items() if k not in ("segmentation", "segmentation_options", "top_labels")}
    runs = [first] + [explain(model, image, labels=first.top_labels[:1], seed=s, segmentation=first.segments, **rest)
                      for s in seeds[1:]]
    pairs = [spearman(runs[i].weights(), runs[j].weights()) for i in range(len(runs)) for j in range(i + 1, len(runs))]
    finite = [p for p in pairs if np.isfinite(p)]
    return {"mean": float(np.mean(finite)) if finite else float("nan"), "min": float(np.min(finite)) if finite else float("nan"),
            "pairs": pairs, "num_superpixels": first.num_superpixels}
