"""The result of one LIME explanation, lime's ``ImageExplanation`` with numbers attached."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np


class Explanation:
    """LIME's explanation of one image, as lime's ``ImageExplanation`` holds it, plus what the
    engine used to compute it.

    Attributes (lime's names): ``image`` (as given, (H, W) or (H, W, C)), ``segments`` (int32
    (H, W), 0..K-1), ``top_labels`` (explained labels, most probable first), ``local_exp``
    ({label: [(superpixel, weight), ...]} sorted by |weight|), ``intercept``, ``score`` (weighted
    R² of the surrogate on the samples) and ``local_pred`` (the surrogate's prediction for the
    image), each {label: float}. Also ``data`` (the binary samples, (num_samples, K) uint8, row 0
    the image), ``predictions`` (the model's outputs on them), ``sample_weights``, ``class_names``
    and ``seed``. Labels are column indices of the model's output.
    """

    def __init__(self, image: np.ndarray, segments: np.ndarray, labels: Sequence[int], local_exp: Dict[int, list],
                 intercept: Dict[int, float], score: Dict[int, float], local_pred: Dict[int, float],
                 data: np.ndarray, predictions: np.ndarray, sample_weights: np.ndarray, *,
                 class_names: Optional[Sequence] = None, seed: int = 0, hidden_image: Optional[np.ndarray] = None):
        self.image = image
        self.segments = segments
        self.top_labels = list(labels)
        self.local_exp = local_exp
        self.intercept = intercept
        self.score = score
        self.local_pred = local_pred
        self.data = data
        self.predictions = predictions
        self.sample_weights = sample_weights
        self.class_names = None if class_names is None else list(class_names)
        self.seed = seed
        self.hidden_image = hidden_image

    # ---- numbers ------------------------------------------------------------------------------

    @property
    def num_superpixels(self) -> int:
        return int(self.segments.max()) + 1

    @property
    def predicted_label(self) -> int:
        """The model's most probable label for the image itself (row 0 of the samples)."""
        return int(np.argmax(self.predictions[0]))

    def _label(self, label: Optional[int]) -> int:
        if label is None:
            return self.top_labels[0]
        label = int(label)
        if label not in self.local_exp:
            raise KeyError(f"label {label} is not in this explanation (explained: {self.top_labels})")
        return label

    def weights(self, label: Optional[int] = None) -> np.ndarray:
        """One weight per superpixel (float64, (K,)), 0 for superpixels the feature selection left out."""
        w = np.zeros(self.num_superpixels)
        for feature, weight in self.local_exp[self._label(label)]:
            w[feature] = weight
        return w

    def heatmap(self, label: Optional[int] = None) -> np.ndarray:
        """Each pixel's superpixel weight, (H, W) float64: the explanation at image resolution."""
        return self.weights(label)[self.segments]

    def top_features(self, label: Optional[int] = None, k: int = 5, *, positive_only: bool = False) -> List[Tuple[int, float]]:
        """The k superpixels with the largest |weight| (or largest positive weight), with weights."""
        exp = self.local_exp[self._label(label)]
        if positive_only:
            exp = sorted([fw for fw in exp if fw[1] > 0], key=lambda fw: -fw[1])
        return list(exp[:k])

    # ---- lime's view --------------------------------------------------------------------------

    def get_image_and_mask(self, label: int, positive_only: bool = True, negative_only: bool = False,
                           hide_rest: bool = False, num_features: int = 5, min_weight: float = 0.0):
        """lime's ``get_image_and_mask``, same arguments and results: (image, mask) for
        ``skimage.segmentation.mark_boundaries``. ``positive_only``/``negative_only``: the first
        ``num_features`` superpixels (by |weight|) with weight > min_weight / < −min_weight, mask 1;
        neither: the first ``num_features`` with |weight| ≥ min_weight, mask +1/−1 and channel 1
        (positive) or 0 (negative) set to the image's maximum. ``hide_rest`` starts from zeros.
        Gray images stay gray, except in the coloured case, which needs RGB (as lime's gray2rgb)."""
        if label not in self.local_exp:
            raise KeyError("Label not in explanation")
        if positive_only & negative_only:
            raise ValueError("Positive_only and negative_only cannot be true at the same time.")
        segments, image, exp = self.segments, self.image, self.local_exp[label]
        mask = np.zeros(segments.shape, segments.dtype)
        if not (positive_only or negative_only) and image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        temp = np.zeros(image.shape) if hide_rest else image.copy()
        if positive_only or negative_only:
            if positive_only:
                fs = [f for f, w in exp if w > 0 and w > min_weight][:num_features]
            else:
                fs = [f for f, w in exp if w < 0 and abs(w) > min_weight][:num_features]
            for f in fs:
                temp[segments == f] = image[segments == f].copy()
                mask[segments == f] = 1
            return temp, mask
        for f, w in exp[:num_features]:
            if np.abs(w) < min_weight:
                continue
            c = 0 if w < 0 else 1
            mask[segments == f] = -1 if w < 0 else 1
            temp[segments == f] = image[segments == f].copy()
            temp[segments == f, c] = np.max(image)
        return temp, mask

    # ---- pictures -----------------------------------------------------------------------------

    def _rgb01(self) -> np.ndarray:
        """The image as float RGB in [0, 1] for display."""
        a = np.asarray(self.image)
        if a.dtype == np.uint8:
            a = a / 255.0
        elif a.dtype == np.uint16:
            a = a / 65535.0
        a = np.asarray(a, dtype=np.float64)
        if a.ndim == 2:
            a = a[:, :, None]
        if a.shape[2] == 1:
            a = np.repeat(a, 3, axis=2)
        elif a.shape[2] != 3:
            a = a[:, :, :3]
        lo, hi = float(a.min()), float(a.max())
        if lo < 0 or hi > 1:   # float images outside [0, 1]: stretch for display only
            a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
        return a

    def boundaries(self) -> np.ndarray:
        """(H, W) bool: pixels whose right or lower neighbour lies in another superpixel."""
        s = self.segments
        edge = np.zeros(s.shape, dtype=bool)
        edge[:, :-1] |= s[:, 1:] != s[:, :-1]
        edge[:-1, :] |= s[1:, :] != s[:-1, :]
        return edge

    def overlay(self, label: Optional[int] = None, *, num_features: Optional[int] = None, positive_only: bool = False,
                alpha: float = 0.6, boundaries: bool = True) -> np.ndarray:
        """The image with the explanation painted over it, uint8 RGB (H, W, 3): superpixels that
        raise the label's probability in green, those that lower it in red, opacity ∝ |weight|
        (``num_features`` strongest only, if given); superpixel borders in yellow."""
        label = self._label(label)
        w = self.weights(label)
        keep = np.ones_like(w, dtype=bool)
        if num_features is not None:
            keep[:] = False
            keep[[f for f, _ in self.top_features(label, num_features, positive_only=positive_only)]] = True
        if positive_only:
            keep &= w > 0
        w = np.where(keep, w, 0.0)
        scale = np.abs(w).max()
        strength = (np.abs(w) / scale if scale > 0 else np.zeros_like(w))[self.segments][:, :, None] * alpha
        colour = np.where((w[self.segments] >= 0)[:, :, None], np.array([0.1, 0.85, 0.2]), np.array([0.9, 0.1, 0.1]))
        out = self._rgb01() * (1 - strength) + colour * strength
        if boundaries:
            out[self.boundaries()] = (1.0, 0.9, 0.0)
        return np.rint(np.clip(out, 0, 1) * 255).astype(np.uint8)

    def save_png(self, path, label: Optional[int] = None, **overlay_options) -> None:
        """Writes ``overlay(label, **overlay_options)`` as a PNG (atomically, through the engine)."""
        from ..io import write_png
        write_png(path, self.overlay(label, **overlay_options))

    def plot(self, label: Optional[int] = None, *, num_features: Optional[int] = None, axes=None, cmap: str = "RdYlGn"):
        """Three panels for a notebook: the image with its superpixels, the weight heatmap
        (diverging, centred at 0, with a colour bar) and the overlay. Needs matplotlib."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as e:
            raise ImportError("Explanation.plot needs matplotlib: pip install matplotlib "
                              "(or pip install 'medsynth[plot]')") from e
        label = self._label(label)
        if axes is None:
            _, axes = plt.subplots(1, 3, figsize=(12, 4))
        base = self._rgb01().copy()
        base[self.boundaries()] = (1.0, 0.9, 0.0)
        axes[0].imshow(base)
        axes[0].set_title(f"{self.num_superpixels} superpixels")
        heat = self.heatmap(label)
        limit = float(np.abs(heat).max()) or 1.0
        shown = axes[1].imshow(heat, cmap=cmap, vmin=-limit, vmax=limit)
        plt.colorbar(shown, ax=axes[1], fraction=0.046)
        name = self.class_names[label] if self.class_names is not None else label
        axes[1].set_title(f"weights for {name} (R² {self.score[label]:.2f})")
        axes[2].imshow(self.overlay(label, num_features=num_features))
        axes[2].set_title(f"p({name}) = {self.predictions[0, label]:.3f}")
        for ax in axes:
            ax.axis("off")
        return axes

    def __repr__(self) -> str:
        label = self.top_labels[0]
        return (f"Explanation({self.num_superpixels} superpixels, {self.data.shape[0]} samples, labels {self.top_labels}, "
                f"score[{label}]={self.score[label]:.3f})")
