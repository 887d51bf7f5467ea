"""Decoding single image files for ``medsynth.datasets.load_folder``: PNG through the engine's
libpng; JPEG, BMP, TIFF, WebP, GIF and PNM through Pillow; DICOM through pydicom; NIfTI through
nibabel. Each reader returns a list of images (H, W, C), C in {1, 3}, as (array, scale): uint8 or
uint16 samples with their full scale 255 or 65535, or float32 in [0, 1] with scale 1, so that thousands
of small files are kept compactly until they are stacked (a DICOM file with several frames or a
NIfTI volume gives several slices)."""
from __future__ import annotations

import os
import stat

import numpy as np

#: File suffixes (lower case) and the reader that handles them.
SUFFIXES = {".png": "png", ".jpg": "pillow", ".jpeg": "pillow", ".jpe": "pillow", ".bmp": "pillow", ".tif": "pillow",
            ".tiff": "pillow", ".webp": "pillow", ".gif": "pillow", ".ppm": "pillow", ".pgm": "pillow", ".pbm": "pillow",
            ".dcm": "dicom", ".dicom": "dicom", ".nii": "nifti", ".nii.gz": "nifti"}

#: The optional package each reader needs, and how to install it.
NEEDS = {"pillow": ("PIL", "Pillow", "images"), "dicom": ("pydicom", "pydicom", "dicom"),
         "nifti": ("nibabel", "nibabel", "nifti")}


class MissingDependency(ImportError):
    """An optional package a file type needs is not installed."""


def kind_of(name: str):
    """The reader for a file name, or None when it is not an image file medsynth reads."""
    name = name.lower()
    if name.endswith(".nii.gz"):
        return "nifti"
    dot = name.rfind(".")
    return SUFFIXES.get(name[dot:]) if dot >= 0 else None


def require(kind: str):
    """Imports the package `kind` needs, or raises MissingDependency saying how to install it."""
    if kind not in NEEDS:
        return None
    module, package, extra = NEEDS[kind]
    try:
        return __import__(module)
    except ImportError as e:
        raise MissingDependency(f"reading {kind.upper() if kind != 'pillow' else 'JPEG/BMP/TIFF'} files needs {package}: "
                                f"pip install 'medsynth[{extra}]' (or pip install {package})") from e


def _channels_last(a: np.ndarray) -> np.ndarray:
    """(H, W) -> (H, W, 1); drops an alpha channel (gray+alpha -> gray, RGBA -> RGB)."""
    if a.ndim == 2:
        return a[:, :, None]
    if a.shape[2] == 2:
        return a[:, :, :1]
    if a.shape[2] == 4:
        return a[:, :, :3]
    return a


def _samples(a: np.ndarray):
    """(array, full scale) for integer samples: uint8 and uint16 as they are, others min-max scaled."""
    if a.dtype == np.uint8:
        return _channels_last(a), 255.0
    if a.dtype == np.uint16:
        return _channels_last(a), 65535.0
    return _channels_last(_min_max(a.astype(np.float32))), 1.0


def _min_max(a: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(a)), float(np.max(a))
    return np.zeros_like(a, dtype=np.float32) if hi <= lo else ((a - lo) / (hi - lo)).astype(np.float32)


def apply_window(values: np.ndarray, level: float, width: float) -> np.ndarray:
    """Maps values (e.g. HU) through a display window to [0, 1]: (v − (level − width/2)) / width."""
    return np.clip((values.astype(np.float32) - (level - width / 2)) / width, 0, 1).astype(np.float32)


def read_png(path: str, **_):
    from .io import read_png as engine_read_png
    return [_samples(engine_read_png(path))]


def read_pillow(path: str, window=None, **_):
    Image = require("pillow").Image
    with Image.open(path) as im:
        im.load()
        mode = im.mode
        if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
            a = np.asarray(im, dtype=np.uint16)
        elif mode in ("I", "F"):
            a = np.asarray(im, dtype=np.float32)
            return [(_channels_last(apply_window(a, *window) if window else _min_max(a)), 1.0)]
        elif mode in ("L", "RGB"):
            a = np.asarray(im)
        elif mode in ("1", "LA") or (mode == "P" and not _palette_has_colour(im)):
            a = np.asarray(im.convert("L"))
        else:                                         # P, RGBA, CMYK, YCbCr, LAB, HSV, PA
            a = np.asarray(im.convert("RGB"))
    return [_samples(a)]


def _palette_has_colour(im) -> bool:
    rgb = im.convert("RGB")
    a = np.asarray(rgb)
    return not (np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 1], a[..., 2]))


def read_dicom(path: str, window=None, **_):
    pydicom = require("dicom")
    ds = pydicom.dcmread(str(path))
    if "PixelData" not in ds:
        raise ValueError("the DICOM file holds no image (no PixelData)")
    a = ds.pixel_array
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).upper()
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    colour = photometric in ("RGB", "YBR_FULL", "YBR_FULL_422") or (a.ndim >= 3 and a.shape[-1] == 3 and photometric != "MONOCHROME2")
    if colour:
        if photometric.startswith("YBR"):
            from pydicom.pixels import convert_color_space
            a = convert_color_space(a, photometric, "RGB")
        stack = a if frames > 1 else a[None]
        return [_samples(np.asarray(f)) for f in stack]
    values = a.astype(np.float32) * np.float32(float(getattr(ds, "RescaleSlope", 1) or 1)) \
        + np.float32(float(getattr(ds, "RescaleIntercept", 0) or 0))
    if window is None and "WindowCenter" in ds and "WindowWidth" in ds:
        centre, width = ds.WindowCenter, ds.WindowWidth
        centre = float(centre[0] if isinstance(centre, pydicom.multival.MultiValue) else centre)
        width = float(width[0] if isinstance(width, pydicom.multival.MultiValue) else width)
        if width > 0:
            window = (centre, width)
    stack = values if frames > 1 else values[None]
    out = [apply_window(f, *window) if window else _min_max(f) for f in stack]
    if photometric == "MONOCHROME1":                  # low values are white
        out = [1 - f for f in out]
    return [(_channels_last(f), 1.0) for f in out]


def read_nifti(path: str, window=None, nifti_slices="all", **_):
    nib = require("nifti")
    img = nib.as_closest_canonical(nib.load(str(path)))    # RAS+: axial slices along the last axis
    data = np.asarray(img.get_fdata(dtype=np.float32))
    if data.ndim == 4:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3:
        raise ValueError(f"NIfTI image of shape {data.shape} is neither a 2-D image nor a 3-D volume")
    scaled = apply_window(data, *window) if window else _min_max(data)
    indices = range(data.shape[2]) if nifti_slices == "all" else [data.shape[2] // 2]
    # radiological display: anterior at the top, the patient's right on the image's left
    return [(_channels_last(np.ascontiguousarray(scaled[::-1, ::-1, k].T)), 1.0) for k in indices]


READERS = {"png": read_png, "pillow": read_pillow, "dicom": read_dicom, "nifti": read_nifti}


def read(path: str, kind: str, **options):
    """The images of one file. Anything but a regular file is refused first: opening a FIFO (or a
    device) named like an image would block the third-party decoders forever."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise OSError(f"'{path}' is not a regular file")
    return READERS[kind](path, **options)
