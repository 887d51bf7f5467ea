"""Superpixels: the engine's quickshift and SLIC give scikit-image's labels on the same images
(stored in data/skimage_segments.npz by data/make_lime_reference.py), keep the invariants LIME
needs, and accept a caller's own segmentation."""
from pathlib import Path

import numpy as np
import pytest

import medsynth
from medsynth import segmentation as seg

REFERENCE = np.load(Path(__file__).parent / "data" / "skimage_segments.npz")


def _same_partition(a, b):
    """The same labels, pixel for pixel (both number segments as scikit-image does)."""
    return a.shape == b.shape and np.array_equal(a, b)


@pytest.mark.parametrize("name", ["smooth_u8", "noise_f64", "flat_u8"])
def test_quickshift_gives_scikit_images_labels(name):
    image = REFERENCE[name]
    assert _same_partition(seg.quickshift(image), REFERENCE[name + "_quickshift"])
    k2 = seg.quickshift(image, kernel_size=2, max_dist=6, ratio=0.5, sigma=1.0)
    assert _same_partition(k2, REFERENCE[name + "_quickshift_k2"])
    assert k2.max() + 1 >= 15   # a real partition, not one segment


@pytest.mark.parametrize("name", ["smooth_u8", "noise_f64", "flat_u8"])
def test_slic_gives_scikit_images_labels(name):
    image = REFERENCE[name]
    assert _same_partition(seg.slic(image, n_segments=30, compactness=10), REFERENCE[name + "_slic"])
    assert _same_partition(seg.slic(image, n_segments=50, compactness=5, sigma=1.0), REFERENCE[name + "_slic_sigma"])


def test_slic_on_raw_gray_values_matches_channel_axis_none():
    image = REFERENCE["flat_u8"]
    labels = seg.slic(image, n_segments=30, compactness=0.1, convert2lab=False)
    assert _same_partition(labels, REFERENCE["flat_u8_slic_raw"])


def _components(labels):
    """Number of 4-connected components per label."""
    h, w = labels.shape
    seen = np.zeros_like(labels, dtype=bool)
    counts = np.zeros(labels.max() + 1, dtype=int)
    for start in zip(*np.nonzero(~seen)):
        if seen[start]:
            continue
        counts[labels[start]] += 1
        stack = [start]
        seen[start] = True
        while stack:
            y, x = stack.pop()
            for yy, xx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= yy < h and 0 <= xx < w and not seen[yy, xx] and labels[yy, xx] == labels[y, x]:
                    seen[yy, xx] = True
                    stack.append((yy, xx))
    return counts


def test_invariants_coverage_consecutive_labels_connectivity_determinism():
    X, _ = medsynth.datasets.make_shapes(2, 4, 48, channels=3, seed=2)
    for image in X[:4]:
        for labels in (seg.quickshift(image, kernel_size=2, max_dist=8), seg.slic(image, n_segments=40)):
            assert labels.dtype == np.int32 and labels.shape == image.shape[:2]
            assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))   # 0..K-1, every value used
        slic_labels = seg.slic(image, n_segments=40)
        assert np.all(_components(slic_labels) == 1)
        assert np.array_equal(seg.slic(image, n_segments=40), slic_labels)
        assert np.array_equal(seg.quickshift(image), seg.quickshift(image))


def test_same_labels_on_any_thread_count():
    image = REFERENCE["smooth_u8"]
    before = medsynth.get_num_threads()
    try:
        medsynth.set_num_threads(1)
        one = seg.quickshift(image, kernel_size=2, max_dist=6)
        medsynth.set_num_threads(3)
        three = seg.quickshift(image, kernel_size=2, max_dist=6)
    finally:
        medsynth.set_num_threads(before)
    assert np.array_equal(one, three)


def test_gray_images_are_segmented_as_lime_segments_them():
    gray = REFERENCE["flat_u8"]
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    assert np.array_equal(seg.quickshift(gray), seg.quickshift(rgb))
    assert np.array_equal(seg.slic(gray, n_segments=30), seg.slic(rgb, n_segments=30))
    # channels-first input is the same image
    chw = np.ascontiguousarray(REFERENCE["smooth_u8"].transpose(2, 0, 1))
    assert np.array_equal(seg.quickshift(chw, kernel_size=2, max_dist=6), seg.quickshift(REFERENCE["smooth_u8"], kernel_size=2, max_dist=6))


def test_own_segmentations_are_renumbered_and_checked():
    image = np.zeros((6, 8))
    one_based = np.repeat(np.array([[1, 1, 5, 5], [9, 9, 5, 5]]), 3, axis=0).repeat(2, axis=1)   # slic(start_label=1) style, gaps
    labels = seg.segment(image, one_based)
    assert labels.dtype == np.int32 and set(np.unique(labels)) == {0, 1, 2}
    assert np.array_equal(labels == 0, one_based == 1) and np.array_equal(labels == 2, one_based == 9)
    assert np.array_equal(seg.segment(image, lambda im: one_based), labels)
    with pytest.raises(ValueError, match="shape"):
        seg.segment(image, one_based[:, :4])
    with pytest.raises(TypeError, match="integer"):
        seg.relabel(np.full((6, 8), 0.5))
    with pytest.raises(ValueError, match="unknown segmentation"):
        seg.segment(image, "felzenszwalb")


def test_bad_images_and_options_are_errors():
    with pytest.raises(ValueError, match="NaN"):
        seg.quickshift(np.full((8, 8), np.nan))
    with pytest.raises(ValueError, match="kernel_size"):
        seg.quickshift(np.zeros((8, 8)), kernel_size=0)
    with pytest.raises(ValueError, match="channels"):
        seg.slic(np.zeros((8, 8, 4)), data_format="channels_last")
    with pytest.raises(TypeError, match="dtype"):
        seg.quickshift(np.zeros((8, 8), dtype=np.int32))


def test_defaults_come_from_the_engines_tables():
    from medsynth._options import table
    quickshift = {o["key"]: o["default"] for o in table("quickshift")}
    assert quickshift == {"ratio": 0.2, "kernel_size": 4, "max_dist": 200, "sigma": 0, "convert2lab": True, "rng": 42}   # lime's
    assert {o["key"] for o in table("slic")} >= {"n_segments", "compactness", "max_num_iter", "sigma", "enforce_connectivity"}
    assert "kernel_size : default 4" in seg.quickshift.__doc__ and "n_segments : default 100" in seg.slic.__doc__
    assert set(seg.METHODS) == {"quickshift", "slic"}
