"""Data: generated labelled image sets and image folders."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import _engine
from ._paths import component, fspath

#: Class names of ``make_shapes`` in label order.
SHAPE_CLASSES = ("disc", "square", "triangle", "cross", "ring", "horizontal_bars", "vertical_bars", "diagonal_bars")


def make_shapes(n_per_class: int = 100, num_classes: int = 4, size: int = 64, channels: int = 1, seed: int = 0):
    """A labelled image set generated natively: one shape per class (``SHAPE_CLASSES``) at a
    random position, size and brightness on a noisy, unevenly lit background, so that telling the
    classes apart needs convolutions.

    Returns ``(X, y)``: X float32 in [0, 1], shape (n, size, size) for one channel or
    (n, size, size, 3); y int64 labels 0..num_classes-1, interleaved by class.
    """
    n = int(n_per_class) * int(num_classes)
    if n_per_class < 1:
        raise ValueError("n_per_class must be at least 1")
    images = np.empty((n, channels, size, size), dtype=np.float32)
    labels = np.empty(n, dtype=np.int64)
    _engine.make_shapes(int(n_per_class), int(num_classes), int(size), int(channels), int(seed) & (2**64 - 1), images, labels)
    x = images[:, 0] if channels == 1 else images.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), labels


IMAGE_SUFFIXES = (".png",)


def load_image_folder(root, *, dtype=np.float32):
    """Reads an ImageFolder tree (``root/<class>/<image>.png``, torchvision's layout).

    Returns ``(X, y, class_names)``: images stacked as (n, H, W) or (n, H, W, C) (all images must
    share one size and channel count), y int64 indices into the sorted class names. With
    ``dtype=np.float32`` pixels are scaled to [0, 1]; pass ``dtype=None`` to keep uint8/uint16.
    """
    from .io import read_png

    root = Path(fspath(root, "root"))
    if not root.is_dir():
        raise FileNotFoundError(f"image folder '{root}' does not exist")
    class_names = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not class_names:
        raise ValueError(f"'{root}' has no class subfolders (expected root/<class>/<image>.png)")
    images, labels = [], []
    for index, name in enumerate(class_names):
        for path in sorted((root / name).iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                images.append(read_png(path))
                labels.append(index)
    if not images:
        raise ValueError(f"'{root}' holds no PNG images")
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(f"images in '{root}' have different shapes {sorted(shapes)[:3]}; resize them to one size first")
    x = np.stack(images)
    if dtype is not None:
        scale = 65535.0 if x.dtype == np.uint16 else 255.0
        x = (x.astype(np.float32) / np.float32(scale)).astype(dtype)
    return x, np.array(labels, dtype=np.int64), class_names


def save_image_folder(root, X, y, class_names=None, *, bit_depth: int = 8, prefix: str = "img") -> list:
    """Writes images as ``root/<class>/<prefix>_<index>.png`` (atomic writes) and returns the paths.

    X: (n, H, W) or (n, H, W, C) floats in [0, 1] (or uint8/uint16 as they are). With
    ``class_names``, y holds indices 0..len(class_names)-1; without, each label's text names its
    folder. Folder names and ``prefix`` must be single path components (no separators, not "." or
    "..", no NUL; folder names not empty), so nothing is written outside ``root``: anything else
    raises ValueError naming the argument before any file is written.
    """
    from .io import write_png

    x = np.asarray(X)
    y = np.asarray(y)
    root = Path(fspath(root, "root"))
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"y must be a 1-D array with one label per image ({len(x)}), got shape {y.shape}")
    component(prefix, "prefix", allow_empty=True)
    if class_names is not None:
        class_names = [component(c, f"class_names[{i}]") for i, c in enumerate(class_names)]
    folders = []
    for label in y:
        if class_names is not None:
            if not (np.issubdtype(y.dtype, np.integer) and 0 <= int(label) < len(class_names)):
                raise ValueError(f"y holds {label!r}, not an index into class_names (0..{len(class_names) - 1})")
            folders.append(class_names[int(label)])
        else:
            folders.append(component(label, f"the folder name of label {label!r} (from y)"))
    paths = []
    for i, (image, name) in enumerate(zip(x, folders)):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{prefix}_{i:06d}.png"
        write_png(path, image, bit_depth=bit_depth)
        paths.append(os.fspath(path))
    return paths
