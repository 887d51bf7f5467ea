"""Computes the reference numbers test_lime.py and test_segmentation.py compare against, once,
with the lime package, scikit-learn and scikit-image (never project dependencies):

    /work/ref-venv/bin/python python/tests/data/make_lime_reference.py

Writes lime_reference.npz (lime's surrogate on fixed samples) and skimage_segments.npz
(scikit-image's quickshift and slic labels of fixed images).
"""
from pathlib import Path

import numpy as np
import sklearn.metrics
from lime import lime_base
from skimage.segmentation import quickshift, slic

HERE = Path(__file__).resolve().parent


def lime_kernel(d, kernel_width=0.25):
    return np.sqrt(np.exp(-(d ** 2) / kernel_width ** 2))   # lime_image.py's default kernel


def lime_outputs(out: dict, prefix: str, z, p, cases, labels):
    """lime's LimeBase.explain_instance_with_data on (z, p) for each (method, num_features) and label."""
    distances = sklearn.metrics.pairwise_distances(z, z[0].reshape(1, -1), metric="cosine").ravel()
    base = lime_base.LimeBase(lime_kernel, random_state=0)
    out[prefix + "z"], out[prefix + "predictions"] = z.astype(np.uint8), p
    out[prefix + "distances"], out[prefix + "weights"] = distances, lime_kernel(distances)
    for method, num_features in cases:
        for label in labels:
            intercept, exp, score, local_pred = base.explain_instance_with_data(
                z, p, distances, label, num_features, feature_selection=method)
            key = f"{prefix}{method}_{num_features}_{label}"
            out[key + "_features"] = np.array([f for f, _ in exp])
            out[key + "_weights"] = np.array([w for _, w in exp])
            out[key + "_scalars"] = np.array([intercept, score, local_pred[0]])


def surrogate_reference():
    out = {}
    # random samples; class 1 depends on superpixels 2, 5 and 7 (and a little noise)
    rng = np.random.default_rng(7)
    n, s, k = 400, 12, 3
    z = rng.integers(0, 2, (n, s)).astype(np.int64)
    z[0, :] = 1
    logits = np.stack([0.5 * z[:, 0] - 0.3 * z[:, 9],
                       1.5 * z[:, 2] + 1.0 * z[:, 5] - 0.8 * z[:, 7] + 0.05 * z[:, 11],
                       0.2 * z[:, 4]], axis=1) + 0.1 * rng.normal(size=(n, k))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    lime_outputs(out, "random_", z, p, [("none", 100000), ("auto", 100000), ("highest_weights", 3),
                                        ("forward_selection", 3), ("auto", 3), ("auto", 8)], labels=(0, 1))
    # crafted so that forward selection and highest weights disagree: superpixel 3 nearly copies
    # 2, so 2 explains most alone while 6 has the largest coefficient among all
    rng = np.random.default_rng(11)
    n, s = 300, 10
    z = rng.integers(0, 2, (n, s)).astype(np.int64)
    flip = rng.random(n) < 0.1
    z[:, 3] = np.where(flip, 1 - z[:, 2], z[:, 2])
    z[0, :] = 1
    y = 0.6 * z[:, 2] + 0.6 * z[:, 3] + 0.9 * z[:, 6] + 0.3 * z[:, 8] + 0.05 * rng.normal(size=n)
    lime_outputs(out, "crafted_", z, np.stack([y, 1 - y], 1),
                 [(m, k) for m in ("forward_selection", "highest_weights") for k in (1, 2, 3)] + [("auto", 2), ("auto", 7)],
                 labels=(0,))
    np.savez_compressed(HERE / "lime_reference.npz", **out)


def segmentation_reference():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:40, :48]
    # a smooth colour gradient with a bright disc, quantised to uint8, and a flat image with a square
    rgb = np.stack([xx / 47, yy / 39, 0.5 + 0.5 * np.sin(xx / 6.0) * np.cos(yy / 5.0)], axis=-1)
    rgb[(yy - 20) ** 2 + (xx - 30) ** 2 < 64] = (0.9, 0.2, 0.1)
    rgb = np.clip(rgb + 0.03 * rng.normal(size=rgb.shape), 0, 1)
    smooth_u8 = (rgb * 255).astype(np.uint8)
    flat_u8 = np.zeros((32, 32), np.uint8)
    flat_u8[8:20, 10:24] = 180
    noise_f64 = rng.random((24, 24, 3))
    out = {"smooth_u8": smooth_u8, "flat_u8": flat_u8, "noise_f64": noise_f64}
    for name, image in (("smooth_u8", smooth_u8), ("noise_f64", noise_f64)):
        out[name + "_quickshift"] = quickshift(image, kernel_size=4, max_dist=200, ratio=0.2)
        out[name + "_quickshift_k2"] = quickshift(image, kernel_size=2, max_dist=6, ratio=0.5, sigma=1.0)
        out[name + "_slic"] = slic(image, n_segments=30, compactness=10, start_label=0)
        out[name + "_slic_sigma"] = slic(image, n_segments=50, compactness=5, sigma=1.0, start_label=0)
    gray_rgb = np.repeat(flat_u8[:, :, None], 3, axis=2)   # what lime's gray2rgb hands scikit-image
    out["flat_u8_quickshift"] = quickshift(gray_rgb, kernel_size=4, max_dist=200, ratio=0.2)
    out["flat_u8_quickshift_k2"] = quickshift(gray_rgb, kernel_size=2, max_dist=6, ratio=0.5, sigma=1.0)
    out["flat_u8_slic"] = slic(gray_rgb, n_segments=30, compactness=10, start_label=0)
    out["flat_u8_slic_sigma"] = slic(gray_rgb, n_segments=50, compactness=5, sigma=1.0, start_label=0)
    out["flat_u8_slic_raw"] = slic(flat_u8, n_segments=30, compactness=0.1, channel_axis=None, start_label=0)
    # numpy's default_rng(42).normal(scale=1e-5): quickshift's tie-break noise
    out["normal_42"] = np.random.default_rng(42).normal(scale=1e-5, size=4096)
    np.savez_compressed(HERE / "skimage_segments.npz", **out)


if __name__ == "__main__":
    surrogate_reference()
    segmentation_reference()
