"""Superpixels for explanations, computed natively: quickshift (lime's default) and SLIC, as
scikit-image defines them, plus the checks that make any segmentation usable by LIME.

    >>> segments = medsynth.segmentation.quickshift(image)          # lime's settings
    >>> segments = medsynth.segmentation.slic(image, n_segments=50)

Images: (H, W) gray or (H, W, 3) RGB (also (1|3, H, W) channels-first), uint8, uint16 or float.
Pixels are read as scikit-image's ``img_as_float`` reads them (uint8 / 255), so on float64 and
integer images the segments are scikit-image's own (float32 images are computed in float64,
where scikit-image stays in float32). Gray images are segmented as lime segments them, as the
RGB image (v, v, v) (lime calls ``gray2rgb``), without making the caller convert anything.
Labels come back as int32 (H, W), numbered 0..K-1 with every value used.
"""
from __future__ import annotations

import json
from typing import Callable, Optional, Union

import numpy as np

from . import _engine
from ._options import collect, documented, dumps

#: The segmentations the engine offers by name (Sources/MedSynth/Explain); each one's options and
#: defaults are its own option table (``_engine.registry("quickshift")``, ``"slic"``).
METHODS = tuple(json.loads(_engine.registry("superpixel_methods")))


def as_float_image(image, *, data_format: str = "auto", name: str = "image") -> np.ndarray:
    """An image as contiguous float64 (H, W, C), C in {1, 3}, scaled as scikit-image's
    ``img_as_float``: uint8 · (1/255), uint16 · (1/65535), floats as they are."""
    a = _to_numpy(image)
    if a.dtype == np.uint8:
        a = np.multiply(a, 1.0 / 255, dtype=np.float64)
    elif a.dtype == np.uint16:
        a = np.multiply(a, 1.0 / 65535, dtype=np.float64)
    elif a.dtype == np.bool_ or np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    else:
        raise TypeError(f"{name} must hold uint8, uint16 or floating-point pixels, got dtype {a.dtype}")
    a = to_hwc(a, data_format=data_format, name=name)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return np.ascontiguousarray(a)


def to_hwc(a: np.ndarray, *, data_format: str = "auto", name: str = "image") -> np.ndarray:
    """(H, W) → (H, W, 1); (H, W, C) stays; (C, H, W) with C in {1, 3} is moved channels-last when
    the shape says so (or ``data_format='channels_first'``)."""
    if a.ndim == 2:
        return a[:, :, None]
    if a.ndim != 3:
        raise ValueError(f"{name} must be (H, W), (H, W, C) or (C, H, W); got shape {a.shape}")
    last, first = a.shape[2] in (1, 3), a.shape[0] in (1, 3)
    if data_format == "channels_last" or (data_format == "auto" and last and not first):
        out = a
    elif data_format == "channels_first" or (data_format == "auto" and first and not last):
        out = np.moveaxis(a, 0, -1)
    elif data_format == "auto":
        raise ValueError(f"{name} has shape {a.shape}: pass data_format='channels_last' or 'channels_first'")
    else:
        raise ValueError(f"data_format must be 'auto', 'channels_last' or 'channels_first', got {data_format!r}")
    if out.shape[2] not in (1, 3):
        raise ValueError(f"{name} must have 1 (gray) or 3 (RGB) channels, got shape {a.shape}")
    return out


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "numpy"):   # a torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _run(image, options: dict, data_format: str) -> np.ndarray:
    pixels = as_float_image(image, data_format=data_format)
    labels = np.empty(pixels.shape[:2], dtype=np.int32)
    _engine.superpixels(pixels, dumps(options), labels)
    return labels


@documented("quickshift")
def quickshift(image, *, ratio: Optional[float] = None, kernel_size: Optional[float] = None, max_dist: Optional[float] = None,
               sigma: Optional[float] = None, convert2lab: Optional[bool] = None, rng: Optional[int] = None,
               data_format: str = "auto") -> np.ndarray:
    """Quickshift superpixels (Vedaldi & Soatto 2008) as ``skimage.segmentation.quickshift``.

    Defaults are lime's (``LimeImageExplainer``: kernel_size 4, max_dist 200, ratio 0.2), not
    scikit-image's own (ratio 1, kernel_size 5, max_dist 10). ``rng`` seeds the 1e-5 noise that
    breaks density ties, drawn exactly as scikit-image draws it (numpy's ``default_rng(rng)``), so
    flat regions split the same way. Runs on every engine thread.
    """
    options = {"method": "quickshift", **collect(ratio=ratio, kernel_size=kernel_size, max_dist=max_dist, sigma=sigma,
                                                 convert2lab=convert2lab, rng=rng)}
    return _run(image, options, data_format)


@documented("slic")
def slic(image, *, n_segments: Optional[int] = None, compactness: Optional[float] = None, max_num_iter: Optional[int] = None,
         sigma: Optional[float] = None, convert2lab: Optional[bool] = None, enforce_connectivity: Optional[bool] = None,
         min_size_factor: Optional[float] = None, max_size_factor: Optional[float] = None, slic_zero: Optional[bool] = None,
         data_format: str = "auto") -> np.ndarray:
    """SLIC superpixels (Achanta et al. 2012) as ``skimage.segmentation.slic(..., start_label=0)``
    (scikit-image's defaults; its ``mask`` and ``spacing`` are not offered).

    ``convert2lab`` left unset converts to Lab (gray images as (v, v, v), which is what lime hands
    scikit-image); ``False`` clusters the raw [0, 1]-rescaled values, as scikit-image's
    ``channel_axis=None`` does for gray images. The k-means assignment runs on every engine thread.
    """
    options = {"method": "slic", **collect(n_segments=n_segments, compactness=compactness, max_num_iter=max_num_iter,
                                           sigma=sigma, convert2lab=convert2lab, enforce_connectivity=enforce_connectivity,
                                           min_size_factor=min_size_factor, max_size_factor=max_size_factor,
                                           slic_zero=slic_zero)}
    return _run(image, options, data_format)


def relabel(segments) -> np.ndarray:
    """Any integer label map → int32 labels 0..K-1 in sorted order of the original values (so
    ``slic(start_label=1)`` or gaps cannot shift features, lime issue #502)."""
    s = _to_numpy(segments)
    if s.ndim != 2:
        raise ValueError(f"a segmentation must be a 2-D label map, got shape {s.shape}")
    if not (np.issubdtype(s.dtype, np.integer) or s.dtype == np.bool_):
        if np.issubdtype(s.dtype, np.floating) and np.isfinite(s).all() and np.all(s == np.round(s)):
            s = s.astype(np.int64)
        else:
            raise TypeError(f"a segmentation must hold integer labels, got dtype {s.dtype}")
    _, inverse = np.unique(s, return_inverse=True)
    return np.ascontiguousarray(inverse.reshape(s.shape), dtype=np.int32)


def segment(image, segmentation: Union[str, np.ndarray, Callable] = "quickshift", *, data_format: str = "auto",
            **options) -> np.ndarray:
    """Superpixels of ``image`` by name ("quickshift", "slic", with ``options``), from a label map
    the caller made, or from a callable ``f(image) -> labels`` (given the image as passed); the
    result is always int32 0..K-1 with the image's height and width."""
    if isinstance(segmentation, str):
        if segmentation == "quickshift":
            labels = quickshift(image, data_format=data_format, **options)
        elif segmentation == "slic":
            labels = slic(image, data_format=data_format, **options)
        else:
            raise ValueError(f"unknown segmentation {segmentation!r}; choose one of {', '.join(METHODS)}, "
                             f"pass a label map, or a callable")
        return labels
    if options:
        raise TypeError(f"segmentation options {sorted(options)} only apply to a named segmentation")
    raw = segmentation(image) if callable(segmentation) else segmentation
    labels = relabel(raw)
    height, width = to_hwc(_to_numpy(image), data_format=data_format).shape[:2]
    if labels.shape != (height, width):
        raise ValueError(f"the segmentation has shape {labels.shape} but the image is {height}x{width}")
    return labels
