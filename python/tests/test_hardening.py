"""Hostile input at every door: non-regular files, NUL bytes and escaping names in paths,
decompression bombs, out-of-memory, 16-bit PNGs that must survive exactly. Each must give a clear
Python exception naming the file or argument, and the process must live on."""
import os
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest

import medsynth
from medsynth import _engine
from medsynth.datasets import load_image_folder, save_image_folder
from medsynth.io import get_max_image_pixels, read_png, read_safetensors, set_max_image_pixels, write_png

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(medsynth.__file__)))


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png(width, height, depth, color_type, raw):
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


# ---- nothing hangs ----

def test_fifos_and_directories_are_refused_everywhere(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    for read in (read_png, read_safetensors, medsynth.Classifier.load, medsynth.DiffusionModel.load,
                 medsynth.io.safetensors_metadata):
        with pytest.raises(OSError, match="pipe.png.*not a regular file"):
            read(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        read_png(tmp_path)
    folder = tmp_path / "images" / "a"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "x.png")
    with pytest.raises(OSError, match="x.png"):
        load_image_folder(tmp_path / "images")
    with pytest.raises(OSError, match="x.png.*not a regular file"):
        medsynth.datasets.load_folder(tmp_path / "images")
    # writing over a FIFO would replace it: refused too
    with pytest.raises(OSError, match="FIFO"):
        write_png(fifo, np.zeros((2, 2), np.uint8))
    assert os.path.exists(fifo)


@pytest.mark.parametrize("name,package", [("x.jpg", "PIL"), ("x.dcm", "pydicom")])
def test_load_folder_refuses_fifos_before_third_party_decoders_open_them(tmp_path, name, package):
    pytest.importorskip(package)   # an optional extra: without it the file is refused as unreadable anyway
    folder = tmp_path / "images" / "a"
    folder.mkdir(parents=True)
    os.mkfifo(folder / name)
    with pytest.raises(OSError, match=f"{name}.*not a regular file"):
        medsynth.datasets.load_folder(tmp_path / "images")


# ---- nothing escapes its folder ----

@pytest.mark.parametrize("path", ["m\0.safetensors", b"m\0.safetensors"])
def test_nul_bytes_in_paths_are_refused_at_every_door(tmp_path, path):
    full = os.path.join(os.fsencode(tmp_path) if isinstance(path, bytes) else str(tmp_path), path)
    for call in (lambda: read_png(full), lambda: write_png(full, np.zeros((2, 2), np.uint8)),
                 lambda: read_safetensors(full), lambda: medsynth.Classifier.load(full)):
        with pytest.raises(ValueError, match="NUL"):
            call()
    clf = medsynth.Classifier("simple_cnn", num_classes=2, in_channels=1, image_size=8)
    with pytest.raises(ValueError, match="NUL"):
        clf.load_state_dict(full)
    with pytest.raises(ValueError, match="pretrained contains a NUL"):
        medsynth.Classifier("resnet18", pretrained=full)
    if isinstance(full, str):   # paths inside the JSON options (checkpoints)
        with pytest.raises(ValueError, match="checkpoint contains a NUL"):
            clf.fit(np.zeros((4, 8, 8), np.float32), np.array([0, 1, 0, 1]), epochs=1, checkpoint=full, progress=False)
    # the C boundary itself, below the Python checks
    for call in (lambda: _engine.png_probe(full), lambda: _engine.png_write(full, np.zeros((2, 2, 1), np.uint8), 8),
                 lambda: _engine.safetensors_header(full), lambda: _engine.classifier_load(full),
                 lambda: _engine.classifier_load_weights(clf._handle, full, None, "{}"),
                 lambda: _engine.safetensors_write(full, '{"tensors": []}', [], False)):
        with pytest.raises(ValueError, match="path contains a NUL byte"):
            call()
    assert os.listdir(tmp_path) == []


def test_save_image_folder_keeps_to_its_root(tmp_path):
    root = tmp_path / "root"
    X = np.zeros((2, 4, 4), np.float32)
    bad = [(dict(class_names=["../esc", "b"]), "class_names\\[0\\]"), (dict(class_names=["", "b"]), "class_names\\[0\\]"),
           (dict(class_names=["a", ".."]), "class_names\\[1\\]"), (dict(class_names=["a", "b/c"]), "class_names\\[1\\]"),
           (dict(class_names=["a\0", "b"]), "NUL"), (dict(class_names=["a", "b"], prefix="../../esc"), "prefix"),
           (dict(class_names=["a", "b"], prefix="x/y"), "prefix"), (dict(class_names=["a"]), "index into class_names")]
    for kwargs, match in bad:
        with pytest.raises(ValueError, match=match):
            save_image_folder(root, X, np.array([0, 1]), **kwargs)
    for labels in (np.array(["..", "a"]), np.array(["a/b", "c"]), np.array(["", "a"])):
        with pytest.raises(ValueError, match="label"):
            save_image_folder(root, X, labels)
    with pytest.raises(ValueError, match="root"):
        save_image_folder(str(root) + "\0x", X, np.array([0, 1]))
    assert os.listdir(tmp_path) == []
    paths = save_image_folder(root, X, np.array([0, 1]), class_names=["a", "b"], prefix="")
    assert all(os.path.dirname(os.path.dirname(p)) == str(root) for p in paths)


# ---- nothing aborts ----

def test_decompression_bombs_are_refused_before_allocating(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png(65536, 65536, 8, 6, b"\x00" * 5))   # 16 GiB decoded, 100 bytes on disk
    with pytest.raises(OSError, match="bomb.png.*65536x65536.*set_max_image_pixels"):
        read_png(bomb)
    # above the default but allowed: the memory check still refuses what cannot fit
    previous = get_max_image_pixels()
    try:
        set_max_image_pixels(None)
        assert get_max_image_pixels() is None
        huge = tmp_path / "huge16.png"
        huge.write_bytes(_png(65536, 65536, 16, 6, b"\x00" * 9))   # 32 GiB decoded
        with pytest.raises((MemoryError, OSError), match="huge16.png"):
            read_png(huge)
        set_max_image_pixels(100)
        with pytest.raises(OSError, match="limit of 100"):
            read_png(tmp_path / "bomb.png")
        with pytest.raises(ValueError):
            set_max_image_pixels(-1)
        with pytest.raises(TypeError):
            set_max_image_pixels(1.5)
    finally:
        set_max_image_pixels(previous)
    assert get_max_image_pixels() == previous


def _run(code, **env):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": PACKAGE_DIR, **env})


def test_pixel_limit_from_the_environment():
    r = _run("import medsynth.io as io; print(io.get_max_image_pixels())", MEDSYNTH_MAX_IMAGE_PIXELS="1234")
    assert r.returncode == 0 and r.stdout.strip() == "1234", r.stderr
    r = _run("import medsynth.io as io; print(io.get_max_image_pixels())", MEDSYNTH_MAX_IMAGE_PIXELS="0")
    assert r.stdout.strip() == "None", r.stderr
    r = _run("""
        import medsynth.io as io
        try:
            io.get_max_image_pixels()
        except ValueError as e:
            print("ValueError", e)
        """, MEDSYNTH_MAX_IMAGE_PIXELS="lots")
    assert "MEDSYNTH_MAX_IMAGE_PIXELS" in r.stdout and "lots" in r.stdout, r.stdout + r.stderr


def test_allocation_failure_is_a_memory_error_and_the_process_lives_on():
    # address space limited to what the process has plus 256 MiB; MemAvailable still says there is
    # plenty, so the engine's preflight passes and its allocation itself fails
    r = _run("""
        import resource, numpy as np, medsynth
        X, y = medsynth.datasets.make_shapes(n_per_class=8, num_classes=2, size=32, seed=0)
        clf = medsynth.Classifier("simple_cnn").fit(X, y, epochs=1, batch_size=8, progress=False)
        big = np.zeros((4000, 32, 32), np.float32)   # 16 MB in, about 1 GiB of activations at once
        with open("/proc/self/status") as f:
            vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (vm + (256 << 20), resource.RLIM_INFINITY))
        try:
            clf.predict_proba(big, batch_size=4000)
            print("no error")
        except MemoryError as e:
            print("MemoryError:", e)
        print("alive", clf.predict(X[:4]).shape)
        """)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "MemoryError: out of memory: cannot allocate" in r.stdout, r.stdout + r.stderr[-2000:]
    assert "alive (4,)" in r.stdout


# ---- 16-bit PNGs without loss ----

@pytest.mark.parametrize("channels", [2, 4])
def test_16_bit_alpha_round_trips_exactly(tmp_path, channels):
    rng = np.random.default_rng(channels)
    image = rng.integers(0, 65536, size=(13, 11, channels), dtype=np.int64).astype(np.uint16)
    image[0, :, -1] = 0          # transparent
    image[1, :, -1] = 1          # nearly
    path = tmp_path / "a16.png"
    write_png(path, image)
    np.testing.assert_array_equal(read_png(path), image)


def test_16_bit_rgba_written_elsewhere_reads_exactly(tmp_path):
    values = np.array([[[0x1234, 0x5678, 0x9ABC, 0x0001], [0xFFFF, 0, 0x8000, 0x7FFF]]], dtype=">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in values)
    (tmp_path / "ext.png").write_bytes(_png(2, 1, 16, 6, raw))
    np.testing.assert_array_equal(read_png(tmp_path / "ext.png"), values.astype(np.uint16))
