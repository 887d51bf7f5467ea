"""PNG reading and writing through libpng."""
import zlib
import struct

import numpy as np
import pytest

import medsynth
from medsynth.io import read_png, write_png


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_round_trip(tmp_path, channels, dtype):
    rng = np.random.default_rng(channels)
    top = np.iinfo(dtype).max
    shape = (7, 5) if channels == 1 else (7, 5, channels)
    image = rng.integers(0, top + 1, size=shape, dtype=np.int64).astype(dtype)
    if channels in (2, 4):
        image[..., -1] = top  # opaque: 16-bit alpha goes through libpng's premultiplied form
    path = tmp_path / "x.png"
    write_png(path, image)
    back = read_png(path)
    assert back.dtype == dtype and back.shape == image.shape
    np.testing.assert_array_equal(back, image)


def _png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def test_reads_a_16_bit_file_written_elsewhere(tmp_path):
    # a 16-bit grayscale PNG assembled by hand (no gAMA/sRGB chunk): values must come back as stored
    values = np.array([[0, 1000, 65535], [256, 40000, 7]], dtype=">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in values)
    png = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 2, 16, 0, 0, 0, 0)) \
        + _png_chunk(b"IDAT", zlib.compress(raw)) + _png_chunk(b"IEND", b"")
    path = tmp_path / "ext16.png"
    path.write_bytes(png)
    np.testing.assert_array_equal(read_png(path), values.astype(np.uint16))


def test_float_images_are_scaled(tmp_path):
    image = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    write_png(tmp_path / "f.png", image)
    np.testing.assert_array_equal(read_png(tmp_path / "f.png"), np.rint(image * 255).astype(np.uint8))


def test_corrupt_files_raise_os_error_naming_the_file(tmp_path):
    good = tmp_path / "good.png"
    write_png(good, np.zeros((8, 8), np.uint8))
    data = good.read_bytes()
    cases = {"truncated.png": data[:40], "not_png.png": b"hello world, not a png", "empty.png": b"",
             "garbled.png": data[:8] + bytes(reversed(data[8:]))}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(OSError, match=name):
            read_png(tmp_path / name)
    with pytest.raises(OSError, match="absent.png"):
        read_png(tmp_path / "absent.png")


def test_bad_images_to_write(tmp_path):
    with pytest.raises(ValueError, match=r"1 to 4 channels, got shape \(4, 4, 5\)"):
        write_png(tmp_path / "a.png", np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(TypeError, match="image must be uint8, uint16 or float, got int32"):
        write_png(tmp_path / "a.png", np.zeros((4, 4), np.int32))
    with pytest.raises(ValueError, match="NaN or infinite"):
        write_png(tmp_path / "a.png", np.full((4, 4), np.nan))


def test_image_folder_round_trip_keeps_each_image_with_its_label(tmp_path, shapes_small):
    X, y = shapes_small
    # the class names are not in sorted order, so a reader that sorts folders must remap the labels
    names = ["triangle", "disc", "square"]
    images = np.rint(X[:12] * 255).astype(np.uint8)
    labels = y[:12]
    assert len({im.tobytes() for im in images}) == 12, "the test needs 12 distinct images"
    paths = medsynth.datasets.save_image_folder(tmp_path / "set", images, labels, names)
    assert all(f"/{names[label]}/" in path for path, label in zip(paths, labels))
    X2, y2, names2 = medsynth.datasets.load_image_folder(tmp_path / "set", dtype=None)
    assert names2 == ["disc", "square", "triangle"]
    assert X2.shape == (12, 24, 24) and X2.dtype == np.uint8 and y2.dtype == np.int64
    # every image read back is one written, exactly, under the class it was written with
    original = {im.tobytes(): names[label] for im, label in zip(images, labels)}
    assert sorted(im.tobytes() for im in X2) == sorted(original)
    for image, label in zip(X2, y2):
        assert names2[label] == original[image.tobytes()]
    # floats are scaled to [0, 1] and keep the same pairing
    X3, y3, _ = medsynth.datasets.load_image_folder(tmp_path / "set")
    np.testing.assert_array_equal(y3, y2)
    np.testing.assert_allclose(X3, X2 / 255.0, atol=1e-7)
