"""LIME: the surrogate equals the lime package's on the same samples and predictions (numbers
stored by data/make_lime_reference.py with lime 0.2.0.1), the ridge equals its closed form,
explanations find the region a model looks at, are reproducible by seed, and the Python API
behaves as lime's (get_image_and_mask) where it promises to."""
from pathlib import Path

import numpy as np
import pytest

import medsynth
from medsynth import lime

REFERENCE = np.load(Path(__file__).parent / "data" / "lime_reference.npz")


# ---- the surrogate against lime's own numbers ----------------------------------------------------

@pytest.mark.parametrize("case", ["none_100000", "auto_100000", "highest_weights_3", "forward_selection_3", "auto_3", "auto_8"])
@pytest.mark.parametrize("label", [0, 1])
def test_surrogate_equals_limes(case, label):
    method, num_features = case.rsplit("_", 1)
    z, p = REFERENCE["random_z"], REFERENCE["random_predictions"]
    fit = lime.fit_surrogate(z, p, [label], feature_selection=method, num_features=int(num_features))[label]
    key = f"random_{case}_{label}"
    features = [f for f, _ in fit["local_exp"]]
    weights = np.array([w for _, w in fit["local_exp"]])
    assert features == list(REFERENCE[key + "_features"])
    np.testing.assert_allclose(weights, REFERENCE[key + "_weights"], rtol=1e-9, atol=1e-12)
    intercept, score, local_pred = REFERENCE[key + "_scalars"]
    assert fit["intercept"] == pytest.approx(intercept, rel=1e-9)
    assert fit["score"] == pytest.approx(score, rel=1e-9)
    assert fit["local_pred"] == pytest.approx(local_pred, rel=1e-9)
    # lime's kernel of sklearn's cosine distances
    np.testing.assert_allclose(fit["sample_weights"], REFERENCE["random_weights"], rtol=1e-12)


@pytest.mark.parametrize("case", ["forward_selection_1", "forward_selection_2", "forward_selection_3", "highest_weights_1",
                                  "highest_weights_2", "highest_weights_3", "auto_2", "auto_7"])
def test_feature_selection_selects_what_limes_does(case):
    # the crafted set makes forward selection and highest weights choose differently
    method, num_features = case.rsplit("_", 1)
    fit = lime.fit_surrogate(REFERENCE["crafted_z"], REFERENCE["crafted_predictions"], [0], feature_selection=method,
                             num_features=int(num_features))[0]
    assert [f for f, _ in fit["local_exp"]] == list(REFERENCE[f"crafted_{case}_0_features"])
    np.testing.assert_allclose([w for _, w in fit["local_exp"]], REFERENCE[f"crafted_{case}_0_weights"], rtol=1e-9)
    assert fit["score"] == pytest.approx(REFERENCE[f"crafted_{case}_0_scalars"][1], rel=1e-9)


def test_forward_selection_and_highest_weights_differ_on_the_crafted_set():
    z, p = REFERENCE["crafted_z"], REFERENCE["crafted_predictions"]
    forward = lime.fit_surrogate(z, p, [0], feature_selection="forward_selection", num_features=1)[0]["local_exp"]
    highest = lime.fit_surrogate(z, p, [0], feature_selection="highest_weights", num_features=1)[0]["local_exp"]
    assert forward[0][0] != highest[0][0]


def test_ridge_equals_the_closed_form_with_sample_weights_and_intercept():
    rng = np.random.default_rng(3)
    n, s = 60, 5
    z = rng.integers(0, 2, (n, s)).astype(np.uint8)
    z[0] = 1
    y = rng.random(n)
    fit = lime.fit_surrogate(z, np.stack([1 - y, y], 1), [1], feature_selection="none", alpha=1.0)[1]
    # the weights: cosine distance to row 0 in the binary space, lime's kernel of width 0.25
    on = z.sum(1)
    d = np.where(on > 0, 1 - on / (np.sqrt(np.maximum(on, 1)) * np.sqrt(s)), 1.0)
    w = np.sqrt(np.exp(-d ** 2 / 0.25 ** 2))
    np.testing.assert_allclose(fit["sample_weights"], w, rtol=1e-13)
    # closed form: weighted centring, (Xcᵀ W Xc + I) β = Xcᵀ W yc, intercept = ȳ − x̄·β
    x = z.astype(float)
    xm, ym = w @ x / w.sum(), w @ y / w.sum()
    xc, yc = x - xm, y - ym
    beta = np.linalg.solve(xc.T @ (w[:, None] * xc) + np.eye(s), xc.T @ (w * yc))
    intercept = ym - xm @ beta
    got = np.zeros(s)
    for f, weight in fit["local_exp"]:
        got[f] = weight
    np.testing.assert_allclose(got, beta, rtol=1e-10)
    assert fit["intercept"] == pytest.approx(intercept, rel=1e-10)
    residual = w @ (y - (intercept + x @ beta)) ** 2
    assert fit["score"] == pytest.approx(1 - residual / (w @ (y - ym) ** 2), rel=1e-10)
    assert fit["local_pred"] == pytest.approx(intercept + beta.sum(), rel=1e-10)
    # local_exp is sorted by |weight|
    assert [f for f, _ in fit["local_exp"]] == list(np.argsort(-np.abs(beta), kind="stable"))


# ---- explanations of models ----------------------------------------------------------------------

def _grid(h, w, block):
    return (np.arange(h)[:, None] // block) * ((w + block - 1) // block) + np.arange(w)[None, :] // block


def test_top_superpixel_lies_in_the_region_the_model_looks_at():
    rng = np.random.default_rng(0)
    image = rng.random((32, 32, 3)).astype(np.float32)
    region = (slice(8, 16), slice(16, 24))

    def model(batch):   # class 1 is more likely the more texture the region has; nothing else matters
        texture = batch[:, region[0], region[1], :].reshape(len(batch), -1).std(axis=1)
        p = 1 / (1 + np.exp(-30 * (texture - 0.15)))
        return np.stack([1 - p, p], axis=1)

    # a grid, and SLIC made compact (on noise its colour term alone would make one huge segment)
    for segmentation, options in ((_grid(32, 32, 4), None), ("slic", {"n_segments": 64, "compactness": 100})):
        e = lime.explain(model, image, labels=[1], segmentation=segmentation, segmentation_options=options,
                         num_samples=500, seed=1)
        top = e.top_features(1, 1, positive_only=True)[0][0]
        inside = (e.segments == top)[region].sum() / (e.segments == top).sum()
        assert inside > 0.5, (segmentation if isinstance(segmentation, str) else "grid", inside)
        # superpixels that do not touch the region carry only sampling noise
        outside = [f for f in range(e.num_superpixels) if not (e.segments == f)[region].any()]
        w = np.abs(e.weights(1)[outside])
        assert w.max() < 0.25 * e.weights(1)[top] and w.mean() < 0.1 * e.weights(1)[top]


@pytest.fixture(scope="module")
def shapes_model():
    X, y, masks = medsynth.datasets.make_shapes(n_per_class=100, num_classes=4, size=32, seed=5, return_masks=True)
    clf = medsynth.Classifier("simple_cnn", seed=0).fit(X[:320], y[:320], epochs=8, batch_size=32, lr=3e-3, progress=False)
    return clf, X[320:], y[320:], masks[320:]


def test_same_seed_same_explanation_bit_for_bit(shapes_model):
    clf, X, y, _ = shapes_model
    options = dict(segmentation="slic", num_samples=300, segmentation_options={"n_segments": 25})
    a = lime.explain(clf, X[0], seed=3, **options)
    b = lime.explain(clf, X[0], seed=3, **options)
    assert a.local_exp == b.local_exp and a.intercept == b.intercept and a.score == b.score
    assert np.array_equal(a.data, b.data) and np.array_equal(a.predictions, b.predictions)
    c = lime.explain(clf, X[0], seed=4, **options)
    assert not np.array_equal(a.data, c.data)
    # a callable gets the same perturbed images and so the same explanation
    f = lime.explain(lambda batch: clf.predict_proba(batch), X[0], seed=3, **options)
    np.testing.assert_allclose(f.predictions, a.predictions, rtol=1e-6, atol=1e-7)
    assert [k for k, _ in f.local_exp[f.top_labels[0]]][:3] == [k for k, _ in a.local_exp[a.top_labels[0]]][:3]


def test_pointing_game_on_masked_shapes_is_well_above_chance(shapes_model):
    clf, X, y, masks = shapes_model
    assert clf.score(X, y) > 0.8
    explanations = lime.explain_many(clf, X[:16], segmentation="slic", num_samples=150, stability=False, progress=False,
                                     segmentation_options={"n_segments": 20})
    game = lime.pointing_game(explanations, masks[:16], y[:16])
    # chance: the share of superpixels that overlap the shape, for a superpixel picked at random
    chance = np.mean([np.mean([masks[i][e.segments == s].any() for s in range(e.num_superpixels)])
                      for i, e in enumerate(explanations)])
    assert game["n"] >= 10
    assert game["score"] >= 0.75 and game["score"] > chance + 0.3, (game["score"], chance)
    summary = lime.summarize(explanations, masks=masks[:16], true_labels=y[:16])
    assert summary["mean"]["inside_share"] > np.mean([m.mean() for m in masks[:16]])


def test_explain_many_reports_stability_and_compare_tests_two_sets(shapes_model):
    clf, X, y, masks = shapes_model
    options = dict(segmentation="slic", num_samples=100, progress=False, segmentation_options={"n_segments": 16})
    real = lime.explain_many(clf, X[:4], **options)
    synthetic = lime.explain_many(clf, X[4:8], **options)
    assert real.stability["spearman"].shape == (4,) and -1 <= real.stability["mean"] <= 1
    table = lime.compare(real, synthetic, masks_real=masks[:4], masks_synthetic=masks[4:8], true_real=y[:4],
                         true_synthetic=y[4:8])
    assert {"top_k_weight_share", "top_k_area", "score", "inside_share", "stability_spearman"} <= set(table)
    for row in table.values():
        assert 0 <= row["p"] <= 1 and row["n_real"] >= 1
    assert "top_k_weight_share" in str(table)


def test_gray_classifier_images_stay_gray_and_hidden_means_follow_lime(shapes_model):
    clf, X, _, _ = shapes_model
    seen = []

    def model(batch):
        seen.append(batch.shape)
        return clf.predict_proba(batch)

    image8 = np.rint(X[1] * 255).astype(np.uint8)
    segments = _grid(32, 32, 8)
    e = lime.explain(model, image8, segmentation=segments, num_samples=50, batch_size=20)
    assert seen == [(20, 32, 32), (20, 32, 32), (10, 32, 32)]
    # hidden superpixels: the mean, truncated to an integer as lime's uint8 image does
    means = np.array([np.floor(image8[segments == s].mean()) for s in range(16)])
    np.testing.assert_array_equal(e.hidden_image, means[segments])
    native = lime.explain(clf, image8, segmentation=segments, num_samples=50)
    np.testing.assert_allclose(native.hidden_image[0], means[segments] / 255, rtol=1e-6)
    np.testing.assert_allclose(native.predictions, e.predictions, atol=1e-6)


def test_hide_color_and_labels(shapes_model):
    clf, X, _, _ = shapes_model
    e = lime.explain(clf, X[2], labels=[0, 3], hide_color=0.0, segmentation=_grid(32, 32, 8), num_samples=60)
    assert e.top_labels == [0, 3] and set(e.local_exp) == {0, 3}
    assert np.all(e.hidden_image == 0)
    top = lime.explain(clf, X[2], top_labels=2, segmentation=_grid(32, 32, 8), num_samples=60)
    assert top.top_labels == list(np.argsort(top.predictions[0])[::-1][:2])
    assert np.array_equal(top.data[0], np.ones(16, np.uint8))


# ---- lime's get_image_and_mask, pictures ----------------------------------------------------------

def _explanation(image):
    segments = _grid(4, 4, 2).astype(np.int32)   # four 2x2 superpixels
    local_exp = {1: [(2, 0.5), (0, -0.4), (3, 0.2), (1, -0.05)]}
    z = np.ones((1, 4), np.uint8)
    return lime.Explanation(image, segments, [1], local_exp, {1: 0.1}, {1: 0.9}, {1: 0.5}, z, np.array([[0.3, 0.7]]), np.ones(1))


def test_get_image_and_mask_as_lime():
    image = np.arange(48, dtype=np.float64).reshape(4, 4, 3) / 48
    e = _explanation(image)
    temp, mask = e.get_image_and_mask(1, positive_only=True, num_features=5)
    assert np.array_equal(mask, np.isin(e.segments, [2, 3]).astype(mask.dtype)) and np.array_equal(temp, image)
    temp, mask = e.get_image_and_mask(1, positive_only=True, num_features=1, hide_rest=True)
    assert np.array_equal(mask, (e.segments == 2).astype(mask.dtype))
    assert np.all(temp[e.segments != 2] == 0) and np.array_equal(temp[e.segments == 2], image[e.segments == 2])
    temp, mask = e.get_image_and_mask(1, positive_only=False, negative_only=True, min_weight=0.1)
    assert np.array_equal(mask, (e.segments == 0).astype(mask.dtype))
    temp, mask = e.get_image_and_mask(1, positive_only=False, num_features=3, min_weight=0.3)
    assert set(np.unique(mask)) == {-1, 0, 1}
    assert np.all(mask[e.segments == 2] == 1) and np.all(mask[e.segments == 0] == -1) and np.all(mask[e.segments == 3] == 0)
    assert np.all(temp[e.segments == 2][:, 1] == image.max()) and np.all(temp[e.segments == 0][:, 0] == image.max())
    with pytest.raises(KeyError):
        e.get_image_and_mask(0)
    with pytest.raises(ValueError):
        e.get_image_and_mask(1, positive_only=True, negative_only=True)
    gray = _explanation(image[:, :, 0])
    assert gray.get_image_and_mask(1)[0].shape == (4, 4)
    assert gray.get_image_and_mask(1, positive_only=False)[0].shape == (4, 4, 3)


def test_heatmap_overlay_png_and_plot(tmp_path):
    e = _explanation(np.linspace(0, 1, 16).reshape(4, 4))
    assert np.array_equal(e.heatmap(), e.weights()[e.segments])
    assert e.weights().tolist() == [-0.4, -0.05, 0.5, 0.2]
    picture = e.overlay()
    assert picture.shape == (4, 4, 3) and picture.dtype == np.uint8
    path = tmp_path / "explanation.png"
    e.save_png(path)
    assert np.array_equal(medsynth.io.read_png(path), picture)
    try:
        import matplotlib
        matplotlib.use("Agg")
    except ImportError:
        with pytest.raises(ImportError, match="matplotlib"):
            e.plot()
    else:
        assert len(e.plot()) == 3


def test_plot_without_matplotlib_says_how_to_get_it(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        _explanation(np.zeros((4, 4))).plot()


# ---- errors ----------------------------------------------------------------------------------------

def test_bad_arguments_raise_clear_errors(shapes_model):
    clf, X, _, _ = shapes_model
    with pytest.raises(TypeError, match="Classifier or a callable"):
        lime.explain("model", X[0], segmentation=_grid(32, 32, 8))
    with pytest.raises(ValueError, match="outside"):
        lime.explain(clf, X[0], labels=[9], segmentation=_grid(32, 32, 8), num_samples=20)
    with pytest.raises(ValueError, match=r"\(n, n_classes\)"):
        lime.explain(lambda b: np.ones(len(b)), X[0], segmentation=_grid(32, 32, 8), num_samples=20)
    with pytest.raises(ValueError, match="segmentation has shape"):
        lime.explain(clf, X[0], segmentation=_grid(16, 16, 8), num_samples=20)
    with pytest.raises(ValueError, match="feature_selection"):
        lime.explain(clf, X[0], feature_selection="lasso", segmentation=_grid(32, 32, 8))
    with pytest.raises(ValueError, match="explain_many"):
        lime.explain(clf, X[:2])
    with pytest.raises(ValueError, match="channel"):
        lime.explain(clf, np.repeat(X[0][:, :, None], 3, axis=2), segmentation=_grid(32, 32, 8), num_samples=20)


def test_defaults_come_from_the_engines_table():
    # lime's defaults where lime has one; batches of 100 and one label where medsynth differs
    assert lime.DEFAULTS == {"num_samples": 1000, "batch_size": 100, "top_labels": 1, "seed": 0, "segmentation": "quickshift",
                             "kernel_width": 0.25, "alpha": 1, "feature_selection": "auto", "num_features": None}
    assert "num_samples : default 1000" in lime.explain.__doc__ and "kernel_width : default 0.25" in lime.fit_surrogate.__doc__


def test_make_shapes_masks_mark_the_shapes():
    X, y, masks = medsynth.datasets.make_shapes(n_per_class=5, num_classes=4, size=32, seed=9, return_masks=True)
    assert masks.dtype == bool and masks.shape == X.shape
    assert all(0.02 < m.mean() < 0.6 for m in masks)
    assert all(x[m].mean() > x[~m].mean() + 0.15 for x, m in zip(X, masks))   # shapes are brighter than the background
    X2, y2 = medsynth.datasets.make_shapes(n_per_class=5, num_classes=4, size=32, seed=9)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)


def test_engine_bindings_reject_inconsistent_buffers(shapes_model):
    """The low-level calls validate every size and value before touching memory (a subprocess
    would die on an out-of-bounds access; here each is a Python exception)."""
    from medsynth import _engine
    clf, X, _, _ = shapes_model
    image = np.ascontiguousarray(X[0][None])                      # [1, 32, 32]
    segments = np.ascontiguousarray(_grid(32, 32, 8), dtype=np.int32)
    z = np.ones((10, 16), np.uint8)
    hidden = np.zeros_like(image)
    with pytest.raises(ValueError, match="every value"):
        bad = segments.copy()
        bad[bad == 3] = 2
        _engine.lime_hidden_image(image, 0, bad, 16, None, 0, hidden)
    with pytest.raises(ValueError, match="0..<"):
        bad = segments.copy()
        bad[0, 0] = 5000
        _engine.lime_hidden_image(image, 0, bad, 16, None, 0, hidden)
    with pytest.raises(ValueError, match="num_segments"):
        _engine.lime_hidden_image(image, 0, segments, 15, None, 0, hidden)
    with pytest.raises(ValueError, match="outside"):
        _engine.lime_perturb(image, hidden, 0, segments, z, 8, np.empty((5, 1, 32, 32), np.float32))
    with pytest.raises(ValueError, match="outside"):
        _engine.lime_perturb(image, hidden, 0, segments, z, 2**62, np.empty((1, 1, 32, 32), np.float32))
    with pytest.raises(ValueError, match="0 and 1"):
        _engine.lime_perturb(image, hidden, 0, segments, np.full((10, 16), 2, np.uint8), 0, np.empty((1, 1, 32, 32), np.float32))
    with pytest.raises(ValueError, match="probs"):
        _engine.lime_classify(clf._handle, image, hidden, segments, z, 5, np.empty((10, 3), np.float32), None)
    with pytest.raises(ValueError, match="batch_size"):
        _engine.lime_classify(clf._handle, image, hidden, segments, z, 0, np.empty((10, 4), np.float32), None)
    with pytest.raises(TypeError, match="float64"):
        _engine.superpixels(np.zeros((8, 8, 3), np.float32), "{}", np.empty((8, 8), np.int32))
    with pytest.raises(ValueError, match="unknown segmentation"):
        _engine.superpixels(np.zeros((8, 8, 3)), '{"method": "watershed"}', np.empty((8, 8), np.int32))
    with pytest.raises(ValueError, match="too large|superpixels"):
        _engine.lime_samples(10_000_000, 2048, 0, 0, np.empty((1, 1), np.uint8))
    with pytest.raises(ValueError, match="run"):
        _engine.lime_samples(10, 16, 0, -1, np.empty((10, 16), np.uint8))
    preds = np.full((10, 2), 0.5)
    out = [np.empty((1, 16), np.int32), np.empty((1, 16)), np.empty(1), np.empty(1), np.empty(1), None]
    with pytest.raises(ValueError, match="label 2"):
        _engine.lime_fit(z, preds, np.array([2]), "{}", *out)
    with pytest.raises(ValueError, match="NaN"):
        _engine.lime_fit(z, np.full((10, 2), np.nan), np.array([1]), "{}", *out)
    with pytest.raises(ValueError, match="unknown LIME surrogate option"):
        _engine.lime_fit(z, preds, np.array([1]), '{"kernel": 1}', *out)
