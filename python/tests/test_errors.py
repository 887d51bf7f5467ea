"""Bad input raises a clear Python exception and leaves the interpreter running."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import medsynth
from medsynth import _engine


@pytest.fixture(scope="module")
def fitted(shapes_small):
    X, y = shapes_small
    return medsynth.Classifier(seed=0).fit(X[:60], y[:60], epochs=1, progress=False)


def test_wrong_dtype_and_shape(fitted, shapes_small):
    X, _ = shapes_small
    with pytest.raises(TypeError, match="X must hold uint8, uint16 or floating-point pixels, got dtype int32"):
        fitted.predict(X[:4].astype(np.int32))
    assert fitted.predict(np.zeros((2, 30, 30), np.float32)).shape == (2,)   # resized to the model's 24x24
    with pytest.raises(ValueError, match="channel"):
        fitted.predict(np.zeros((2, 24, 24, 3), np.float32))
    with pytest.raises(ValueError, match="X holds no images"):
        fitted.predict(np.zeros((0, 24, 24), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        fitted.predict(np.full((1, 24, 24), np.nan, np.float32))


def test_bad_training_arguments(shapes_small):
    X, y = shapes_small
    with pytest.raises(ValueError, match="architecture"):
        medsynth.Classifier("resnet1000")
    with pytest.raises(ValueError, match=r"one label per image \(10\), got shape \(9,\)"):
        medsynth.Classifier().fit(X[:10], y[:9], progress=False)
    with pytest.raises(ValueError, match="two classes"):
        medsynth.Classifier().fit(X[:10], np.zeros(10), progress=False)
    with pytest.raises(ValueError, match="lr"):
        medsynth.Classifier().fit(X[:30], y[:30], lr=-1, progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        medsynth.Classifier().fit(X[:30], y[:30], batch_size=0, progress=False)
    with pytest.raises(ValueError, match="optimizer"):
        medsynth.Classifier().fit(X[:30], y[:30], optimizer="adagrad", progress=False)
    with pytest.raises(ValueError, match="at least 8"):
        medsynth.Classifier().fit(np.zeros((4, 4, 4), np.float32), np.array([0, 1, 0, 1]), progress=False)


def test_low_level_calls_validate(fitted):
    with pytest.raises(TypeError, match="expected a medsynth classifier handle"):
        _engine.classifier_config(object())
    with pytest.raises(ValueError, match="invalid JSON at byte 1"):
        _engine.classifier_create("{not json")
    with pytest.raises(ValueError, match="unknown"):
        _engine.classifier_create('{"architecture": "simple_cnn", "num_classes": 2, "in_channels": 1, "image_size": 16, "colour": 1}')
    with pytest.raises(ValueError, match=r"label 9 at index 1 is outside \[0, 3\)"):
        _engine.classifier_fit(fitted._handle, np.zeros((2, 1, 24, 24), np.float32), np.array([0, 9]), None, None, "{}", None)
    out = np.empty((1, 3), np.float32)
    with pytest.raises(ValueError, match="probs must hold 2x3 values, got 3"):
        _engine.classifier_predict_proba(fitted._handle, np.zeros((2, 1, 24, 24), np.float32), 8, out, None)
    with pytest.raises(TypeError, match="x must have dtype float32"):
        _engine.classifier_predict_proba(fitted._handle, np.zeros((2, 1, 24, 24), np.float64), 8, out, None)
    strided = np.zeros((2, 1, 24, 48), np.float32)[:, :, :, ::2]
    with pytest.raises(TypeError, match="contiguous"):
        _engine.classifier_predict_proba(fitted._handle, strided, 8, np.empty((2, 3), np.float32), None)


def test_corrupt_and_truncated_checkpoints(fitted, tmp_path):
    path = tmp_path / "m.safetensors"
    fitted.save(path)
    data = path.read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match="trunc.safetensors"):
        medsynth.Classifier.load(tmp_path / "trunc.safetensors")
    (tmp_path / "huge.safetensors").write_bytes((10**12).to_bytes(8, "little") + data[8:])
    with pytest.raises(OSError, match="header length"):
        medsynth.Classifier.load(tmp_path / "huge.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 3)
    with pytest.raises(OSError, match="junk.safetensors' is not a valid safetensors file: file is 3 bytes"):
        medsynth.Classifier.load(tmp_path / "junk.safetensors")
    with pytest.raises(OSError, match="missing"):
        medsynth.Classifier.load(tmp_path / "missing.safetensors")
    # the interpreter and the model are fine afterwards
    assert fitted.predict(np.zeros((1, 24, 24), np.float32)).shape == (1,)


def test_interpreter_survives_garbage_in_a_subprocess(tmp_path):
    """Feed many malformed inputs to the low-level calls in a child process: every one must raise,
    none may kill the interpreter."""
    script = textwrap.dedent(f"""
        import numpy as np, medsynth
        from medsynth import _engine
        calls = [
            lambda: _engine.classifier_create(""),
            lambda: _engine.classifier_create('{{"architecture": "simple_cnn", "num_classes": -3, "in_channels": 1, "image_size": 16}}'),
            lambda: _engine.classifier_create('{{"architecture": "simple_cnn", "num_classes": 2, "in_channels": 1, "image_size": 99999999}}'),
            lambda: _engine.classifier_load("{tmp_path}/nope"),
            lambda: _engine.png_probe("{tmp_path}/nope.png"),
            lambda: _engine.conv2d_forward(np.zeros((1,1,2,2),np.float32), np.zeros((1,1,5,5),np.float32), None, 1, 0, 1, 1, np.zeros(1,np.float32)),
            lambda: _engine.conv2d_forward(np.zeros((1,2,4,4),np.float32), np.zeros((1,1,3,3),np.float32), None, 0, 0, 1, 1, np.zeros(4,np.float32)),
            lambda: _engine.make_shapes(-1, 4, 32, 1, 0, np.zeros(1,np.float32), np.zeros(1,np.int64)),
            lambda: _engine.make_shapes(2, 4, 32, 1, 0, np.zeros(10,np.float32), np.zeros(8,np.int64)),
            lambda: _engine.set_num_threads(0),
        ]
        for i, call in enumerate(calls):
            try:
                call()
            except (ValueError, TypeError, OSError, MemoryError, RuntimeError) as e:
                pass
            else:
                raise SystemExit(f"call {{i}} did not raise")
        print("survived")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "survived" in result.stdout


def test_impossible_batch_sizes_raise_memory_error():
    """A request that cannot fit in memory is refused before it starts, not half-way through."""
    x = np.random.default_rng(0).random((2, 256, 256), dtype=np.float32)
    model = medsynth.DiffusionModel(base_channels=32, seed=0)
    with pytest.raises(MemoryError, match="batch size 4096"):
        model.fit(x, np.array([0, 1]), steps=1, batch_size=4096, progress=False)
    model.fit(x, np.array([0, 1]), steps=1, batch_size=2, progress=False)    # and the model still works
    with pytest.raises(MemoryError, match="batches of"):
        model.sample(n_per_class=1024, batch_size=2048, progress=False)


def test_overflowing_inputs_unknown_data_formats_and_integer_folder_dtypes_are_errors(tmp_path):
    X, y = medsynth.datasets.make_shapes(n_per_class=4, num_classes=2, size=16, seed=0)
    clf = medsynth.Classifier(seed=0).fit(X, y, epochs=1, progress=False)
    with pytest.raises(ValueError, match="outputs overflow for .* image"):
        clf.predict_proba(X * 1e38)
    with pytest.raises(ValueError, match="data_format must be"):
        clf.predict_proba(X, data_format="foo")      # 3-D input too, where the format is not needed
    medsynth.datasets.save_image_folder(tmp_path, X, y)
    with pytest.raises(TypeError, match="dtype must be a floating-point type"):
        medsynth.datasets.load_image_folder(tmp_path, dtype=np.int8)
