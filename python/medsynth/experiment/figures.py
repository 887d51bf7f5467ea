"""The report's figures, drawn with matplotlib's object interface (no pyplot: the user's backend
and open figures are left alone) and written as PNG."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> str:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    return str(path)


def _show(ax, image, title=None):
    image = np.clip(np.asarray(image, dtype=np.float32), 0, 1)
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7)


def real_vs_synthetic(real, real_y, synthetic, synthetic_y, class_names, path, per_class: int = 6, title: str = ""):
    """One row per class: real images on the left, synthetic ones on the right."""
    k = len(class_names)
    fig = _figure(2 * per_class * 0.9 + 1, k * 0.95 + 0.6)
    axes = fig.subplots(k, 2 * per_class, squeeze=False)
    for c in range(k):
        r = np.flatnonzero(real_y == c)[:per_class]
        s = np.flatnonzero(synthetic_y == c)[:per_class]
        for j in range(per_class):
            ax_r, ax_s = axes[c, j], axes[c, per_class + j]
            for ax, idx, images in ((ax_r, r, real), (ax_s, s, synthetic)):
                if j < len(idx):
                    _show(ax, images[idx[j]])
                else:
                    ax.axis("off")
        axes[c, 0].set_ylabel(class_names[c], fontsize=8)
    axes[0, 0].set_title("real", fontsize=8, loc="left")
    axes[0, per_class].set_title("synthetic", fontsize=8, loc="left")
    fig.suptitle(title, fontsize=9, y=1.04)
    return _save(fig, path)


def training_curves(histories: dict, path, title: str = ""):
    """Loss and accuracy per epoch of each model (training and validation)."""
    fig = _figure(9, 3.2)
    loss_ax, acc_ax = fig.subplots(1, 2)
    for name, epochs in histories.items():
        if not epochs:
            continue
        e = [h["epoch"] for h in epochs]
        line, = loss_ax.plot(e, [h.get("train_loss") for h in epochs], label=f"{name} train")
        acc_ax.plot(e, [h.get("train_accuracy") for h in epochs], color=line.get_color(), label=f"{name} train")
        if any("val_loss" in h for h in epochs):
            loss_ax.plot(e, [h.get("val_loss") for h in epochs], "--", color=line.get_color(), label=f"{name} validation")
            acc_ax.plot(e, [h.get("val_accuracy") for h in epochs], "--", color=line.get_color(), label=f"{name} validation")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("cross-entropy")
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel("accuracy")
    acc_ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=9, y=1.04)
    return _save(fig, path)


def confusion_matrices(matrices: dict, class_names, path, title: str = ""):
    """Confusion matrices on the real test set (rows true, columns predicted), one per model."""
    n = len(matrices)
    fig = _figure(3.2 * n + 0.5, 3.2)
    axes = np.atleast_1d(fig.subplots(1, n))
    for ax, (name, m) in zip(axes, matrices.items()):
        m = np.asarray(m)
        ax.imshow(m, cmap="Blues")
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if m[i, j] > m.max() / 2 else "black")
        ax.set_xticks(range(len(class_names)))
        ax.set_xticklabels(class_names, rotation=45, fontsize=7, ha="right")
        ax.set_yticks(range(len(class_names)))
        ax.set_yticklabels(class_names, fontsize=7)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
        ax.set_title(name, fontsize=8)
    fig.suptitle(title, fontsize=9, y=1.04)
    return _save(fig, path)


def learning_curve(points: dict, references: dict, path, title: str = ""):
    """Test accuracy against synthetic images per class (one line per model), with the real-only
    baselines as horizontal lines. points: {model: [(per_class, accuracy), ...]};
    references: {label: accuracy}."""
    fig = _figure(5, 3.4)
    ax = fig.subplots()
    for name, xy in points.items():
        xy = sorted(xy)
        ax.plot([p[0] for p in xy], [p[1] for p in xy], "o-", label=f"{name}, synthetic")
    for i, (label, value) in enumerate(references.items()):
        if value is not None:
            ax.axhline(value, linestyle=":", color=f"C{i + 3}", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("synthetic images per class")
    ax.set_ylabel("accuracy on the real test set")
    ax.legend(fontsize=6)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def closest_pairs(synthetic, training, pairs: list, path, title: str = ""):
    """Each synthetic image next to its most correlated training image, closest first."""
    n = len(pairs)
    fig = _figure(1.5 * n + 0.5, 3.3)
    axes = fig.subplots(2, n, squeeze=False)
    for j, pair in enumerate(pairs):
        _show(axes[0, j], synthetic[j], f"r = {pair['correlation']:.3f}\n{pair['class']}")
        _show(axes[1, j], training[j], pair["training_class"])
    axes[0, 0].set_ylabel("synthetic", fontsize=8)
    axes[1, 0].set_ylabel("nearest\ntraining", fontsize=8)
    fig.suptitle(title, fontsize=9, y=1.04)
    return _save(fig, path)


def correlation_histogram(synthetic_r, reference_r, threshold: float, path, title: str = ""):
    """Nearest-training-image correlations of synthetic images and of held-out real images."""
    fig = _figure(5, 3.2)
    ax = fig.subplots()
    bins = np.linspace(min(np.min(synthetic_r), np.min(reference_r), threshold) - 0.01, 1.0, 40)
    ax.hist(reference_r, bins=bins, alpha=0.6, density=True, label="held-out real -> training")
    ax.hist(synthetic_r, bins=bins, alpha=0.6, density=True, label="synthetic -> training")
    ax.axvline(threshold, color="red", linestyle="--", label=f"near-copy threshold {threshold:g}")
    ax.set_xlabel("pixel correlation with the nearest training image")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def image_grid(paths: list, labels: list, path, columns: int = 8, title: str = ""):
    """PNG files (e.g. LIME overlays) in a grid with a label under each."""
    from ..io import read_png
    n = len(paths)
    rows = -(-n // columns)
    fig = _figure(1.4 * min(n, columns) + 0.4, 1.6 * rows + 0.5)
    axes = np.atleast_2d(fig.subplots(rows, min(n, columns), squeeze=False))
    for ax in axes.ravel():
        ax.axis("off")
    for i, (p, label) in enumerate(zip(paths, labels)):
        image = read_png(p)
        image = image.astype(np.float32) / (65535.0 if image.dtype == np.uint16 else 255.0)
        ax = axes[i // columns, i % columns]
        _show(ax, image, label)
        ax.axis("on")
    fig.suptitle(title, fontsize=9, y=1.04)
    return _save(fig, path)
