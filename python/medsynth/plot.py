"""Figures of labelled image sets: a class grid with lesion outlines, and real next to synthetic.

Needs matplotlib (``pip install 'medsynth[plot]'``). Figures are built without pyplot (no GUI
backend, no global state): each function returns a ``matplotlib.figure.Figure`` (shown inline by
Jupyter) and writes a PNG when ``path`` is given.
"""
from __future__ import annotations

import os

import numpy as np

from ._core import to_nchw


def _matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError("medsynth.plot needs matplotlib: pip install 'medsynth[plot]' (or pip install matplotlib)") from e
    return Figure, FigureCanvasAgg


def _images(X, name: str) -> np.ndarray:
    """Images as (n, H, W) gray or (n, H, W, 3) colour floats in [0, 1] (any layout to_nchw takes)."""
    x = to_nchw(X, name=name)
    if x.shape[1] not in (1, 3):
        raise ValueError(f"{name} must have 1 or 3 channels, got {x.shape[1]}")
    x = np.clip(x, 0, 1)
    return x[:, 0] if x.shape[1] == 1 else x.transpose(0, 2, 3, 1)


def _labels(y, n: int, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{name} must hold one label per image ({n}), got shape {y.shape}")
    return y


def _class_list(y, class_names):
    """(label values in order, display names)."""
    values = np.unique(y)
    if class_names is None:
        return values, [str(v) for v in values]
    names = list(class_names)
    if np.issubdtype(values.dtype, np.integer) and values.min() >= 0 and values.max() < len(names):
        values = np.arange(len(names))
        return values, names
    return values, [str(v) for v in values]


def _show(ax, image, mask=None, mask_color="red"):
    if image.ndim == 2:
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(image, interpolation="nearest")
    if mask is not None and np.any(mask):
        ax.contour(np.asarray(mask, dtype=np.float32), levels=[0.5], colors=[mask_color], linewidths=0.8)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _save(fig, canvas_class, path, dpi):
    canvas_class(fig)
    if path is not None:
        path = os.fspath(path)
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        fig.savefig(path, dpi=dpi)
    return fig


def grid(X, y, class_names=None, masks=None, per_class: int = 8, *, path=None, tile: float = 1.3, dpi: int = 100,
         mask_color: str = "red", title=None):
    """One row per class with its first ``per_class`` images (missing ones left blank), lesion
    masks drawn as outlines.

    X : images (n, H, W), (n, H, W, C) or (n, C, H, W), floats in [0, 1] or uint8/uint16.
    y : labels; class_names : names in label order (labels 0..k-1), or None to show the labels.
    masks : (n, H, W), non-zero on the lesion, or None.
    path : also write the figure as a PNG there. tile : inches per image.
    """
    Figure, Canvas = _matplotlib()
    x = _images(X, "X")
    labels = _labels(y, len(x), "y")
    m = None
    if masks is not None:
        m = np.asarray(masks)
        if m.shape != x.shape[:3]:
            raise ValueError(f"masks must have shape {x.shape[:3]} (one (H, W) mask per image), got {m.shape}")
    if int(per_class) < 1:
        raise ValueError("per_class must be at least 1")
    per_class = int(per_class)
    values, names = _class_list(labels, class_names)
    fig = Figure(figsize=(per_class * tile + 1.2, len(values) * tile + (0.4 if title else 0.1)))
    axes = fig.subplots(len(values), per_class, squeeze=False)
    for row, (value, name) in enumerate(zip(values, names)):
        members = np.flatnonzero(labels == value)[:per_class]
        for col in range(per_class):
            ax = axes[row, col]
            if col < len(members):
                i = members[col]
                _show(ax, x[i], None if m is None else m[i], mask_color)
            else:
                ax.axis("off")
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=10)
        axes[row, 0].axis("on") if len(members) else None
    if title:
        fig.suptitle(title)
    fig.subplots_adjust(left=1.1 / fig.get_figwidth(), right=0.995, bottom=0.005, top=0.995 - (0.4 if title else 0) / fig.get_figheight(),
                        wspace=0.04, hspace=0.04)
    return _save(fig, Canvas, path, dpi)


def real_vs_synthetic(real, synthetic, y_real=None, y_synthetic=None, class_names=None, per_class: int = 4, *, path=None,
                      tile: float = 1.3, dpi: int = 100, title=None):
    """Real images on the left, synthetic on the right: one row per class when labels are given
    (``per_class`` of each side), otherwise one row of ``per_class`` real and synthetic images.

    real, synthetic : images in any layout ``grid`` takes; y_real, y_synthetic : their labels.
    """
    Figure, Canvas = _matplotlib()
    a, b = _images(real, "real"), _images(synthetic, "synthetic")
    if (a.ndim == 4) != (b.ndim == 4):
        raise ValueError("real and synthetic images must both be gray or both be colour")
    if (y_real is None) != (y_synthetic is None):
        raise ValueError("give labels for both real and synthetic images, or for neither")
    if int(per_class) < 1:
        raise ValueError("per_class must be at least 1")
    per_class = int(per_class)
    if y_real is None:
        rows = [("", np.arange(min(per_class, len(a))), np.arange(min(per_class, len(b))))]
    else:
        ya, yb = _labels(y_real, len(a), "y_real"), _labels(y_synthetic, len(b), "y_synthetic")
        values, names = _class_list(np.concatenate([ya, yb]), class_names)
        rows = [(name, np.flatnonzero(ya == v)[:per_class], np.flatnonzero(yb == v)[:per_class]) for v, name in zip(values, names)]
    columns = 2 * per_class + 1                        # a narrow gap between the two sides
    fig = Figure(figsize=(columns * tile + 1.0, len(rows) * tile + 0.45 + (0.3 if title else 0)))
    axes = fig.subplots(len(rows), columns, squeeze=False, gridspec_kw={"width_ratios": [1] * per_class + [0.15] + [1] * per_class})
    for r, (name, ia, ib) in enumerate(rows):
        for c in range(columns):
            axes[r, c].axis("off")
        for c, i in enumerate(ia):
            axes[r, c].axis("on")
            _show(axes[r, c], a[i])
        for c, i in enumerate(ib):
            axes[r, per_class + 1 + c].axis("on")
            _show(axes[r, per_class + 1 + c], b[i])
        if name:
            axes[r, 0].axis("on")
            axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=10)
    top = 1 - (0.35 + (0.3 if title else 0)) / fig.get_figheight()
    fig.subplots_adjust(left=1.0 / fig.get_figwidth(), right=0.995, bottom=0.005, top=top, wspace=0.04, hspace=0.04)
    fig.text((1.0 / fig.get_figwidth() + 0.5) / 2 - 0.02, top + 0.01, "real", ha="center", va="bottom", fontsize=11)
    fig.text(0.75, top + 0.01, "synthetic", ha="center", va="bottom", fontsize=11)
    if title:
        fig.suptitle(title)
    return _save(fig, Canvas, path, dpi)
