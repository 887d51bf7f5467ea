"""Image folders (torchvision's ImageFolder layout) in every format, and antialiased resizing."""
import builtins
import warnings

import numpy as np
import pytest

import medsynth
from medsynth.datasets import load_folder, save_image_folder
from medsynth.io import write_png
from medsynth.ops import resize


def _pair(tmp_path):
    """Two classes of 8-bit gray PNGs (12 phantoms)."""
    X, y, names = medsynth.datasets.phantom("covid_ct", 6, 32, seed=4)
    save_image_folder(tmp_path / "set", X, y, names)
    return X, y, names


def test_png_round_trip(tmp_path):
    X, y, names = _pair(tmp_path)
    X2, y2, names2, paths = load_folder(tmp_path / "set", return_paths=True)
    assert names2 == names and X2.dtype == np.float32 and X2.shape == X.shape
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(X2, np.rint(X * 255).astype(np.uint8) / np.float32(255))
    assert all(p.endswith(".png") for p in paths) and "covid" in paths[0]
    # as the older PNG-only reader
    X3, y3, _ = medsynth.datasets.load_image_folder(tmp_path / "set")
    np.testing.assert_array_equal(X3, X2)


def test_16_bit_rgb_and_channel_conversion(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 65536, (3, 9, 7, 3)).astype(np.uint16)
    gray = rng.integers(0, 256, (2, 9, 7)).astype(np.uint8)
    for i, im in enumerate(rgb):
        (tmp_path / "a").mkdir(exist_ok=True)
        write_png(tmp_path / "a" / f"{i}.png", im)
    for i, im in enumerate(gray):
        (tmp_path / "b" / "nested").mkdir(parents=True, exist_ok=True)
        write_png(tmp_path / "b" / "nested" / f"{i}.png", im)
    X, y, names = load_folder(tmp_path)                        # a colour image makes the set RGB
    assert X.shape == (5, 9, 7, 3) and names == ["a", "b"] and y.tolist() == [0, 0, 0, 1, 1]
    np.testing.assert_array_equal(X[:3], rgb / np.float32(65535))
    np.testing.assert_array_equal(X[3:], np.repeat((gray / np.float32(255))[..., None], 3, axis=3))
    G, _, _ = load_folder(tmp_path, channels=1)                # ITU-R 601-2 luma, as Pillow's "L"
    f = rgb / np.float32(65535)
    np.testing.assert_allclose(G[:3], f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114, atol=1e-6)
    np.testing.assert_array_equal(G[3:], gray / np.float32(255))


def test_other_files_are_ignored_and_classes_can_be_chosen(tmp_path):
    _pair(tmp_path)
    (tmp_path / "set" / "covid" / "notes.txt").write_text("not an image")
    (tmp_path / "set" / "covid" / ".DS_Store").write_bytes(b"\0\1")
    (tmp_path / "set" / ".hidden").mkdir()
    X, y, names = load_folder(tmp_path / "set")
    assert len(X) == 12 and names == ["covid", "non_covid"]
    X, y, names = load_folder(tmp_path / "set", classes=["non_covid"])
    assert len(X) == 6 and names == ["non_covid"] and (y == 0).all()
    with pytest.raises(ValueError, match="no class folder"):
        load_folder(tmp_path / "set", classes=["influenza"])
    with pytest.raises(FileNotFoundError):
        load_folder(tmp_path / "absent")


def test_unreadable_files_are_named_or_skipped(tmp_path):
    _pair(tmp_path)
    (tmp_path / "set" / "covid" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (tmp_path / "set" / "non_covid" / "empty.png").write_bytes(b"")
    with pytest.raises(OSError) as info:
        load_folder(tmp_path / "set")
    message = str(info.value)
    assert "2 of 14 files" in message and "broken.png" in message and "empty.png" in message
    with pytest.warns(UserWarning, match="skipped 2 of 14") as record:
        X, y, _ = load_folder(tmp_path / "set", on_error="skip")
    assert "broken.png" in str(record[0].message) and "empty.png" in str(record[0].message)
    assert len(X) == 12 and np.bincount(y).tolist() == [6, 6]
    with pytest.raises(ValueError, match="on_error"):
        load_folder(tmp_path / "set", on_error="ignore")


def test_sizes_must_agree_unless_resized(tmp_path):
    rng = np.random.default_rng(1)
    small, large = rng.random((10, 12)).astype(np.float32), rng.random((20, 30)).astype(np.float32)
    (tmp_path / "c").mkdir()
    write_png(tmp_path / "c" / "1.png", small, bit_depth=16)
    write_png(tmp_path / "c" / "2.png", large, bit_depth=16)
    with pytest.raises(ValueError, match="image_size"):
        load_folder(tmp_path)
    X, _, _ = load_folder(tmp_path, image_size=(10, 12))
    stored = np.rint(large * 65535) / np.float32(65535)
    np.testing.assert_allclose(X[1], np.clip(resize(stored, (10, 12)), 0, 1), atol=1e-6)
    np.testing.assert_array_equal(X[0], np.rint(small * 65535) / np.float32(65535))


def test_resize_hand_computed():
    # shrinking 4 -> 2: centres 1 and 3, triangle of half-width 2: weights (.75, .75, .25)/1.75
    row = np.array([[0, 1, 2, 3]], np.float32)
    np.testing.assert_allclose(resize(row, (1, 2)), [[1.25 / 1.75, 4 / 1.75]], rtol=1e-6)
    # enlarging 2 -> 4: plain bilinear with aligned centres, edges clamped
    np.testing.assert_allclose(resize(np.array([[0, 1]], np.float32), (1, 4)), [[0, 0.25, 0.75, 1]], rtol=1e-6)
    # separable: rows and columns filtered independently
    a = np.array([0, 1, 2, 3], np.float32)
    np.testing.assert_allclose(resize(np.outer(a, a), (2, 2)), np.outer([1.25 / 1.75, 4 / 1.75], [1.25 / 1.75, 4 / 1.75]),
                               rtol=1e-6)
    # same size: unchanged; constant images stay constant
    x = np.random.default_rng(0).random((2, 5, 6, 3)).astype(np.float32)
    np.testing.assert_array_equal(resize(x, (5, 6)), x)
    np.testing.assert_allclose(resize(np.full((7, 9), 0.3, np.float32), (4, 13)), 0.3, rtol=1e-6)
    with pytest.raises(ValueError):
        resize(x, 0)
    with pytest.raises(ValueError):
        resize(np.full((3, 3), np.nan), 2)


def test_resize_matches_pillow():
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(2)
    for h, w, oh, ow in [(37, 53, 16, 20), (16, 16, 40, 33), (128, 128, 64, 64), (100, 100, 128, 128), (64, 48, 17, 80)]:
        a = rng.random((h, w), dtype=np.float32)
        reference = np.asarray(Image.fromarray(a, mode="F").resize((ow, oh), Image.BILINEAR))
        np.testing.assert_allclose(resize(a, (oh, ow)), reference, atol=1e-6)


def test_pillow_formats(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (16, 16, 3)).astype(np.uint8)
    gray = rng.integers(0, 256, (16, 16)).astype(np.uint8)
    (tmp_path / "x").mkdir()
    Image.fromarray(rgb).save(tmp_path / "x" / "a.bmp")
    Image.fromarray(gray).save(tmp_path / "x" / "b.tif")
    Image.fromarray(rgb).save(tmp_path / "x" / "c.jpg", quality=95)
    Image.fromarray(rgb).convert("P").save(tmp_path / "x" / "d.gif")
    X, y, _, paths = load_folder(tmp_path, return_paths=True)
    assert X.shape == (4, 16, 16, 3) and [p[-5:] for p in paths] == ["a.bmp", "b.tif", "c.jpg", "d.gif"]
    np.testing.assert_array_equal(X[0], rgb / np.float32(255))
    np.testing.assert_array_equal(X[1], np.repeat((gray / np.float32(255))[..., None], 3, axis=2))
    with Image.open(tmp_path / "x" / "c.jpg") as im:
        np.testing.assert_array_equal(X[2], np.asarray(im.convert("RGB")) / np.float32(255))


def _dicom(path, values, photometric="MONOCHROME2", window=None):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = values.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = (values + 1024).astype(np.uint16).tobytes()
    ds.save_as(str(path), enforce_file_format=True)


def test_dicom_in_hounsfield_units_through_a_window(tmp_path):
    hu = np.array([[-1000, -600, 200], [-1024, 0, 3000]], np.int32)
    (tmp_path / "ct").mkdir()
    _dicom(tmp_path / "ct" / "a.dcm", hu)
    X, _, _ = load_folder(tmp_path, window=(-600, 1600))      # lung window
    np.testing.assert_allclose(X[0], np.clip((hu + 1400) / 1600, 0, 1), atol=1e-6)
    _dicom(tmp_path / "ct" / "a.dcm", hu, window=(40, 400))    # the file's own (soft-tissue) window
    X, _, _ = load_folder(tmp_path)
    np.testing.assert_allclose(X[0], np.clip((hu - (40 - 200)) / 400, 0, 1), atol=1e-6)
    _dicom(tmp_path / "ct" / "a.dcm", hu, photometric="MONOCHROME1")
    X, _, _ = load_folder(tmp_path, window=(-600, 1600))
    np.testing.assert_allclose(X[0], 1 - np.clip((hu + 1400) / 1600, 0, 1), atol=1e-6)


def test_nifti_volume_gives_radiological_axial_slices(tmp_path):
    nib = pytest.importorskip("nibabel")
    volume = np.zeros((6, 8, 3), np.float32)                   # RAS+: i towards the right, j anterior
    volume[5, 7, :] = 1000                                     # far right, far anterior voxel
    volume[:, :, 1] += 10 * np.arange(1, 7)[:, None]
    (tmp_path / "mri").mkdir()
    nib.save(nib.Nifti1Image(volume, np.eye(4)), str(tmp_path / "mri" / "v.nii.gz"))
    X, y, _ = load_folder(tmp_path, window=(500, 1000))
    assert X.shape == (3, 8, 6) and y.tolist() == [0, 0, 0]
    # anterior at the top, the patient's right on the image's left
    assert X[0, 0, 0] == 1 and X[0].sum() == 1
    X, _, _ = load_folder(tmp_path, nifti_slices="middle", window=(500, 1000))
    assert X.shape == (1, 8, 6)
    np.testing.assert_allclose(X[0, 3], np.clip((np.arange(6, 0, -1) * 10) / 1000, 0, 1), atol=1e-6)


def test_missing_optional_reader_says_how_to_install(tmp_path, monkeypatch):
    (tmp_path / "ct").mkdir()
    (tmp_path / "ct" / "a.dcm").write_bytes(b"\0" * 200)
    write_png(tmp_path / "ct" / "b.png", np.zeros((4, 4), np.uint8))
    real_import = builtins.__import__

    def no_pydicom(name, *args, **kwargs):
        if name == "pydicom":
            raise ImportError("no pydicom here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pydicom)
    with pytest.raises(ImportError, match=r"pip install 'medsynth\[dicom\]'"):
        load_folder(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        X, _, _ = load_folder(tmp_path, on_error="skip")
    assert len(X) == 1 and "medsynth[dicom]" in str(caught[0].message)
