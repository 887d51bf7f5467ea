"""The classifier learns, saves, reloads and reproduces."""
import numpy as np
import pytest

import medsynth
from medsynth.model_selection import stratified_split


def test_small_cnn_learns_generated_shapes(shapes_small, tmp_path):
    X, y = shapes_small
    train, test = stratified_split(y, train_size=0.5, seed=0)
    clf = medsynth.Classifier("simple_cnn", seed=0)
    clf.fit(X[train], y[train], epochs=6, batch_size=24, lr=3e-3, progress=False)
    accuracy = clf.score(X[test], y[test])
    # chance is 1/3; shapes at random positions need convolutions to tell apart
    assert accuracy >= 0.85, f"held-out accuracy {accuracy:.3f}"
    losses = [e["train_loss"] for e in clf.history_["epochs"]]
    assert losses[-1] < losses[0] * 0.5

    path = tmp_path / "model.safetensors"
    clf.save(path)
    again = medsynth.Classifier.load(path)
    np.testing.assert_array_equal(again.predict_proba(X[test]), clf.predict_proba(X[test]))
    assert list(again.classes_) == [0, 1, 2]


def test_same_seed_gives_identical_weights(shapes_small, tmp_path):
    X, y = shapes_small
    paths = []
    for run in range(2):
        clf = medsynth.Classifier("simple_cnn", seed=7).fit(X[:90], y[:90], epochs=2, batch_size=16, progress=False)
        paths.append(tmp_path / f"run{run}.safetensors")
        clf.save(paths[-1])
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_string_labels_and_probabilities(shapes_small):
    X, y = shapes_small
    names = np.array(["disc", "square", "triangle"])[y]
    clf = medsynth.Classifier(seed=0).fit(X[:60], names[:60], epochs=1, progress=False)
    p = clf.predict_proba(X[:5])
    assert p.shape == (5, 3) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-5)
    assert set(clf.predict(X[:5])) <= set(names)


def test_resume_continues_like_an_uninterrupted_run(shapes_small, tmp_path):
    X, y = shapes_small
    full = medsynth.Classifier(seed=3).fit(X[:96], y[:96], epochs=3, batch_size=16, progress=False)
    ckpt = tmp_path / "ckpt.safetensors"
    part = medsynth.Classifier(seed=3).fit(X[:96], y[:96], epochs=2, batch_size=16, progress=False, checkpoint=ckpt)
    resumed = medsynth.Classifier(seed=3).fit(X[:96], y[:96], epochs=3, batch_size=16, progress=False,
                                              checkpoint=ckpt, resume=True)
    np.testing.assert_array_equal(resumed.predict_proba(X[96:]), full.predict_proba(X[96:]))
    assert len(resumed.history_["epochs"]) == 3


def test_progress_callback_and_validation(shapes_small):
    X, y = shapes_small
    seen = []
    clf = medsynth.Classifier(seed=0)
    clf.fit(X[:90], y[:90], epochs=2, batch_size=30, validation_data=(X[90:], y[90:]), progress=False, callback=seen.append)
    phases = [s["phase"] for s in seen]
    assert phases.count("epoch") == 2 and phases.count("train") == 6
    assert "val_accuracy" in clf.history_["epochs"][-1]


def test_validation_split_holds_out_a_stratified_part(shapes_small):
    X, y = shapes_small
    clf = medsynth.Classifier(seed=0).fit(X[:90], y[:90], epochs=1, batch_size=30, validation_split=0.2, progress=False)
    assert "val_accuracy" in clf.history_["epochs"][-1]
    with pytest.raises(ValueError, match="validation_split must be between 0 and 1"):
        medsynth.Classifier(seed=0).fit(X[:90], y[:90], epochs=1, validation_split=1.5, progress=False)


def test_callback_exception_stops_training_and_model_stays_usable(shapes_small):
    X, y = shapes_small

    def boom(info):
        if info["phase"] == "train" and info["done"] == 2:
            raise ZeroDivisionError("stop here")

    clf = medsynth.Classifier(seed=0)
    with pytest.raises(ZeroDivisionError, match="stop here"):
        clf.fit(X[:90], y[:90], epochs=3, batch_size=15, progress=False, callback=boom)
    assert clf.predict(X[:4]).shape == (4,)


def test_augmented_training_is_reproducible_and_differs_from_plain(shapes_small):
    X, y = shapes_small
    kw = dict(epochs=1, batch_size=16, progress=False)
    augment = dict(rotate=15, crop_scale=0.7, brightness=0.2, contrast=0.2, hflip=True)
    plain = medsynth.Classifier(seed=1).fit(X[:64], y[:64], **kw).predict_proba(X[64:80])
    once = medsynth.Classifier(seed=1).fit(X[:64], y[:64], **augment, **kw).predict_proba(X[64:80])
    again = medsynth.Classifier(seed=1).fit(X[:64], y[:64], **augment, **kw).predict_proba(X[64:80])
    np.testing.assert_array_equal(once, again)
    assert not np.array_equal(once, plain)
    with pytest.raises(ValueError, match="crop_scale must be in"):
        medsynth.Classifier(seed=1).fit(X[:64], y[:64], crop_scale=0, **kw)


def test_evaluate_uses_scikit_learns_definitions(shapes_small):
    X, y = shapes_small
    clf = medsynth.Classifier(seed=0).fit(X[:96], y[:96], epochs=2, batch_size=16, progress=False)
    report = clf.evaluate(X[96:], y[96:])
    predicted = clf.predict(X[96:])
    assert report["accuracy"] == medsynth.metrics.accuracy_score(y[96:], predicted)
    assert report["macro avg"]["f1-score"] == medsynth.metrics.f1_score(y[96:], predicted, average="macro")
    probs = clf.predict_proba(X[96:])
    expected_loss = -np.mean(np.log(probs[np.arange(len(probs)), y[96:]].astype(np.float64)))
    assert abs(report["loss"] - expected_loss) < 1e-9
    assert np.array(report["confusion_matrix"]).sum() == len(X) - 96


def test_cross_validation_and_grid_search_are_stratified_and_reproducible(shapes_small):
    X, y = shapes_small
    X, y = X[:72], y[:72]
    kw = dict(epochs=2, batch_size=16, early_stopping_patience=1, progress=False)
    a = medsynth.Classifier(seed=0).cross_validate(X, y, n_splits=3, seed=1, **kw)
    b = medsynth.Classifier(seed=0).cross_validate(X, y, n_splits=3, seed=1, **kw)
    assert len(a["folds"]) == 3 and a["mean"] == b["mean"]
    assert abs(a["mean"]["accuracy"] - np.mean([f["accuracy"] for f in a["folds"]])) < 1e-12
    assert all(1 <= f["best_epoch"] <= 2 for f in a["folds"])
    search = medsynth.Classifier(seed=0).grid_search(X, y, {"lr": [3e-3, 1e-5]}, n_splits=3, seed=1, **kw)
    again = medsynth.Classifier(seed=0).grid_search(X, y, {"lr": [3e-3, 1e-5]}, n_splits=3, seed=1, **kw)
    assert [r["params"] for r in search["results"]] == [{"lr": 3e-3}, {"lr": 1e-5}]
    assert search["best_params"] == again["best_params"] and search["best_score"] == again["best_score"]
    best = max(search["results"], key=lambda r: r["mean"]["accuracy"])
    assert search["best_score"] == best["mean"]["accuracy"]
    assert search["model"] is not None and search["model"].classes_.tolist() == sorted(set(y.tolist()))
    with pytest.raises(ValueError, match="given both in param_grid"):
        medsynth.Classifier(seed=0).grid_search(X, y, {"lr": [1e-3]}, lr=1e-3)


def test_float_defaults_read_as_written():
    # Float options travel as the Double of their shortest decimal form: 0.001, not
    # 0.0010000000474974513, in docstrings, registries and resolved configurations.
    from medsynth import _options
    training = _options.defaults("classifier_training")
    assert training["lr"] == 0.001 and training["weight_decay"] == 0.01
    assert "default 0.001\n" in medsynth.Classifier.fit.__doc__
    assert training["gamma"] == 0.1


@pytest.mark.parametrize("monitor", ["val_loss", "val_accuracy"])
def test_early_stopping_restores_the_best_epoch_of_the_monitored_value(shapes_small, monitor):
    X, y = shapes_small
    # shuffled validation labels: the loss rises from the first epoch on (overconfidence) while
    # the accuracy wanders, so the two monitors pick different epochs
    X_val, y_val = X[150:210], np.random.default_rng(0).permutation(y[150:210])
    clf = medsynth.Classifier(seed=0)
    clf.fit(X[:150], y[:150], epochs=8, batch_size=30, lr=3e-3, validation_data=(X_val, y_val),
            early_stopping_patience=8, early_stopping_monitor=monitor, progress=False)
    epochs = clf.history_["epochs"]
    losses, accuracies = [e["val_loss"] for e in epochs], [e["val_accuracy"] for e in epochs]
    assert np.argmin(losses) != np.argmax(accuracies)
    # the first epoch with the lowest loss, or the highest accuracy (strict improvement, as Keras)
    best = int(np.argmin(losses) if monitor == "val_loss" else np.argmax(accuracies)) + 1
    assert clf.history_["best_epoch"] == best
    # the restored weights are that epoch's: the validation set scores as it did then
    assert float((clf.predict(X_val) == y_val).mean()) == pytest.approx(accuracies[best - 1], abs=1e-9)


def test_unknown_early_stopping_monitor_is_a_clear_error(shapes_small):
    X, y = shapes_small
    with pytest.raises(ValueError, match="early_stopping_monitor.*val_loss.*val_accuracy"):
        medsynth.Classifier(seed=0).fit(X[:60], y[:60], epochs=1, early_stopping_monitor="auc", progress=False)
