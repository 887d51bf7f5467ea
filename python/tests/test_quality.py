"""The quality gate: its statistics by hand, and that it warns for the right reason."""
import numpy as np
import pytest

from medsynth import quality
from medsynth.datasets import phantom


def test_laplacian_by_hand():
    image = np.zeros((1, 4, 4), np.float32)
    image[0, 1, 1] = 1.0
    # interior pixels (1,1), (1,2), (2,1), (2,2): |4·1| = 4 at the spike, |−1| at its two interior
    # neighbours, 0 at the diagonal one → mean 6/4
    assert quality.laplacian_energy(image, data_range=(0, 1))[0] == pytest.approx(1.5)
    # integers are put on [0, 1] by their full scale; a ramp has no Laplacian
    ramp = np.tile(np.arange(8, dtype=np.uint8) * 30, (2, 8, 1))
    np.testing.assert_allclose(quality.laplacian_energy(ramp), 0, atol=1e-7)
    assert quality.laplacian_energy((image * 255).astype(np.uint8))[0] == pytest.approx(1.5)


def chest_ct(n_per_class: int, seed: int):
    """(uint8 images, labels 0/1) of the covid_ct phantom at 16 px."""
    X, y = phantom("covid_ct", n_per_class, 16, seed=seed)[:2]
    X = np.asarray(X)
    if X.dtype != np.uint8:
        X = np.rint(np.clip(X, 0, 1) * 255).astype(np.uint8)
    return X, np.unique(y, return_inverse=True)[1]


@pytest.fixture(scope="module")
def xray():
    return chest_ct(60, seed=0)


def test_real_images_pass(xray):
    X, y = xray
    other, other_y = chest_ct(60, seed=1)
    report = quality.check(X, other, y, other_y, warn=False)
    assert report["ok"], report["warnings"]
    assert report["noisy_fraction"] <= 0.05 and report["smooth_fraction"] <= 0.05
    assert set(report["classes"]) == {"0", "1"}


def test_noisy_images_are_named_with_a_remedy(xray):
    X, y = xray
    rng = np.random.default_rng(0)
    noisy = np.clip(X.astype(np.float32) + rng.normal(0, 40, X.shape), 0, 255).astype(np.uint8)
    with pytest.warns(RuntimeWarning, match=r"noisier than 99% of the real ones.*stochastic sampler.*train longer"):
        report = quality.check(X, noisy, y, y)
    assert report["noisy_fraction"] > 0.9 and not report["ok"]


def test_smooth_and_shifted_images_warn(xray):
    X, y = xray
    x = X.astype(np.float32)
    blurred = (x[:, :-2, :-2] + x[:, 1:-1, 1:-1] + x[:, 2:, 2:] + x[:, 2:, :-2] + x[:, :-2, 2:]) / 5
    blurred = np.pad(blurred, ((0, 0), (1, 1), (1, 1)), mode="edge").astype(np.uint8)
    report = quality.check(X, blurred, y, y, warn=False)
    assert report["smooth_fraction"] > 0.5 and any("smoother" in w for w in report["warnings"])
    brighter = np.clip(x + 40, 0, 255).astype(np.uint8)
    report = quality.check(X, brighter, y, y, warn=False)
    assert any("class 1: mean intensity" in w for w in report["warnings"])
    assert any("histograms differ" in w for w in report["warnings"])


def test_float_images_and_errors(xray):
    X, y = xray
    real = X.astype(np.float32) / 255 * 2000 - 1000          # e.g. Hounsfield units
    report = quality.check(real, real[::-1], warn=False)
    assert report["ok"] and report["scale"] == [pytest.approx(real.min()), pytest.approx(real.max())]
    with pytest.raises(ValueError, match="must match"):
        quality.check(X, X[:, :8, :8])
    with pytest.raises(ValueError, match="labels for both sets"):
        quality.check(X, X, y, None)
