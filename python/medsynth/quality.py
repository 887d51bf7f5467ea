"""A quality gate for synthetic images: cheap statistics that compare a synthetic set with the real
images it should resemble, and a warning that names the statistic and the remedy when they differ.

``check(real, synthetic)`` measures

* high-frequency energy: the mean absolute 4-neighbour Laplacian of each image (noise, grain,
  salt-and-pepper texture raise it; blur lowers it). A synthetic image is *noisy* when its value is
  above the 99th percentile of the real images', *smooth* when below their 1st percentile, so about
  1 % of real images would count as either;
* the intensity histogram: the total-variation distance between the pixel histograms (0 same, 1
  disjoint), next to the distance between two random halves of the real set (its sampling noise);
* each class's mean intensity and spread (the standard deviation of its pixels) in both sets.

Images are (n, H, W), (n, H, W, C) or (n, C, H, W), uint8, uint16 or float; both sets are put on
one [0, 1] scale (integers by their full scale, floats by the real images' range unless
``data_range`` is given). numpy only: every statistic is one vectorised pass.
"""
from __future__ import annotations

import warnings
from typing import Optional, Sequence

import numpy as np

from ._core import to_nchw

#: Share of noisy (or smooth) synthetic images above which check() warns: DDPM's 1000 steps on a
#: short-trained model stay below it on realistic data.
NOISY_LIMIT = 0.05
#: Histogram distance above which check() warns, unless the real set's own split distance is larger.
HISTOGRAM_LIMIT = 0.15
#: Largest difference of a class's mean intensity, and largest ratio of spreads, before a warning.
MEAN_LIMIT = 0.06
SPREAD_RATIO_LIMIT = 1.35
BINS = 64


def _scaled(images, data_range: Optional[Sequence[float]], name: str) -> tuple[np.ndarray, tuple]:
    """Images as float32 (n, C, H, W) on [0, 1] of `data_range` (integers: their full scale)."""
    x = np.asarray(images.detach().cpu().numpy() if hasattr(images, "detach") else images)
    if x.ndim == 2:
        x = x[None]
    integer = x.dtype in (np.uint8, np.uint16)
    nchw = to_nchw(x, name=name)             # integers come back on [0, 1]
    if integer or data_range is None:
        return nchw, (0.0, 1.0) if integer else None
    low, high = float(data_range[0]), float(data_range[1])
    return (nchw - np.float32(low)) / np.float32(high - low), (low, high)


def laplacian_energy(images, data_range: Optional[Sequence[float]] = None) -> np.ndarray:
    """The mean absolute 4-neighbour Laplacian |4x - up - down - left - right| of each image over
    its interior pixels and channels, on the [0, 1] scale: one value per image."""
    x, _ = _scaled(images, data_range, "images")
    return _laplacian(x)


def _laplacian(x: np.ndarray) -> np.ndarray:
    centre = x[:, :, 1:-1, 1:-1]
    lap = 4 * centre - x[:, :, :-2, 1:-1] - x[:, :, 2:, 1:-1] - x[:, :, 1:-1, :-2] - x[:, :, 1:-1, 2:]
    return np.abs(lap).mean(axis=(1, 2, 3))


def _histogram(x: np.ndarray) -> np.ndarray:
    h = np.histogram(np.clip(x, 0, 1), bins=BINS, range=(0, 1))[0].astype(np.float64)
    return h / max(h.sum(), 1)


def check(real, synthetic, real_labels=None, synthetic_labels=None, *, data_range: Optional[Sequence[float]] = None,
          noisy_limit: float = NOISY_LIMIT, warn: bool = True, seed: int = 0) -> dict:
    """Compares synthetic images with real ones; returns a report dict and (``warn=True``) warns
    with a RuntimeWarning for every statistic out of bounds, naming it and the remedy.

    The report: ``noisy_fraction`` and ``smooth_fraction`` (shares of synthetic images beyond the
    real images' 99th / 1st percentile of high-frequency energy), ``laplacian`` (the thresholds
    and means), ``histogram_distance`` and ``histogram_floor`` (real half against real half),
    ``classes`` (per class: mean and spread of both sets), ``warnings`` and ``ok``.
    """
    r, scale = _scaled(real, data_range, "real")
    if scale is None:                         # float images: the real images' own range
        low, high = float(r.min()), float(r.max())
        scale = (low, high if high > low else low + 1)
        r = (r - np.float32(scale[0])) / np.float32(scale[1] - scale[0])
    s, _ = _scaled(synthetic, scale if np.asarray(synthetic).dtype.kind == "f" else None, "synthetic")
    if r.shape[1:] != s.shape[1:]:
        raise ValueError(f"real images are {r.shape[1:]} and synthetic ones {s.shape[1:]} (C, H, W): they must match")
    if r.shape[2] < 3 or r.shape[3] < 3:
        raise ValueError("images must be at least 3x3 for the Laplacian")

    lap_r, lap_s = _laplacian(r), _laplacian(s)
    hi, lo = float(np.percentile(lap_r, 99)), float(np.percentile(lap_r, 1))
    noisy, smooth = float(np.mean(lap_s > hi)), float(np.mean(lap_s < lo))
    distance = 0.5 * float(np.abs(_histogram(r) - _histogram(s)).sum())
    order = np.random.default_rng(seed).permutation(len(r))
    half = len(r) // 2
    floor = 0.5 * float(np.abs(_histogram(r[order[:half]]) - _histogram(r[order[half:]])).sum()) if half else 0.0

    report = {"n_real": len(r), "n_synthetic": len(s), "scale": list(scale),
              "noisy_fraction": noisy, "smooth_fraction": smooth,
              "laplacian": {"real_p99": hi, "real_p1": lo, "real_mean": float(lap_r.mean()),
                            "synthetic_mean": float(lap_s.mean())},
              "histogram_distance": distance, "histogram_floor": floor, "classes": {}, "warnings": []}
    messages = report["warnings"]
    if noisy > noisy_limit:
        messages.append(f"{noisy:.0%} of the synthetic images are noisier than 99% of the real ones (mean absolute "
                        f"Laplacian above {hi:.4f}, the real images' 99th percentile; synthetic mean "
                        f"{lap_s.mean():.4f}, real {lap_r.mean():.4f}): sample with a stochastic sampler "
                        f"(sampler='dpm_solver++_sde', the default, or 'ddpm'; more steps do not help the "
                        f"deterministic 'ddim' and 'dpm_solver++' of an epsilon-prediction model), train with "
                        f"prediction='v' (the default; min_snr_gamma=5), or train longer")
    if smooth > max(noisy_limit, 0.5):
        messages.append(f"{smooth:.0%} of the synthetic images are smoother than 99% of the real ones (mean absolute "
                        f"Laplacian below {lo:.4f}, the real images' 1st percentile): train longer or lower guidance_scale")
    if distance > max(HISTOGRAM_LIMIT, 2 * floor):
        messages.append(f"the intensity histograms differ (total-variation distance {distance:.3f}; two halves of the "
                        f"real set differ by {floor:.3f}): train longer, or lower guidance_scale")
    if (real_labels is None) != (synthetic_labels is None):
        raise ValueError("pass labels for both sets or for neither")
    groups = [(None, np.ones(len(r), bool), np.ones(len(s), bool))]
    if real_labels is not None:
        rl, sl = np.asarray(real_labels), np.asarray(synthetic_labels)
        if len(rl) != len(r) or len(sl) != len(s):
            raise ValueError("each set needs one label per image")
        groups = [(c, rl == c, sl == c) for c in np.unique(rl)]
    for label, in_r, in_s in groups:
        if not in_s.any():
            continue
        key = "all" if label is None else (label.item() if hasattr(label, "item") else label)
        rm, sm = float(r[in_r].mean()), float(s[in_s].mean())
        rs, ss = float(r[in_r].std()), float(s[in_s].std())
        report["classes"][str(key)] = {"n_real": int(in_r.sum()), "n_synthetic": int(in_s.sum()), "real_mean": rm,
                                       "synthetic_mean": sm, "real_spread": rs, "synthetic_spread": ss}
        what = "the images" if label is None else f"class {key!r}"
        if abs(sm - rm) > MEAN_LIMIT:
            messages.append(f"{what}: mean intensity {sm:.3f} in the synthetic images against {rm:.3f} in the real ones "
                            f"(on [0, 1]): train longer, or lower guidance_scale")
        ratio = ss / rs if rs > 0 else np.inf
        if not (1 / SPREAD_RATIO_LIMIT <= ratio <= SPREAD_RATIO_LIMIT):
            messages.append(f"{what}: intensity spread {ss:.3f} in the synthetic images against {rs:.3f} in the real ones: "
                            f"train longer, or lower guidance_scale")
    report["ok"] = not messages
    if warn:
        for message in messages:
            warnings.warn(message, RuntimeWarning, stacklevel=2)
    return report
