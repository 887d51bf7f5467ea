"""PNG files through the engine's libpng binding (8 and 16 bit; gray, gray+alpha, RGB, RGBA)."""
from __future__ import annotations

import os

import numpy as np

from . import _engine


def read_png(path) -> np.ndarray:
    """Reads a PNG: uint8 (8-bit files) or uint16 (16-bit files), shape (H, W) for gray or
    (H, W, C) with C = 2 (gray+alpha), 3 (RGB) or 4 (RGBA). Palette and low-bit files come back as
    8-bit RGB(A) or gray. A missing, corrupt or non-PNG file raises OSError naming the file."""
    path = os.fspath(path)
    width, height, channels, depth = _engine.png_probe(path)
    out = np.empty((height, width, channels), dtype=np.uint16 if depth == 16 else np.uint8)
    _engine.png_read(path, out)
    return out[:, :, 0] if channels == 1 else out


def write_png(path, image, *, bit_depth: int = None) -> None:
    """Writes an image atomically. ``image``: (H, W) or (H, W, C), C in 1..4; uint8 → 8-bit,
    uint16 → 16-bit, floats in [0, 1] → ``bit_depth`` (default 8) after rounding."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or not 1 <= a.shape[2] <= 4:
        raise ValueError(f"image must be (H, W) or (H, W, C) with 1 to 4 channels, got shape {np.asarray(image).shape}")
    if a.dtype == np.uint8:
        depth = 8 if bit_depth in (None, 8) else None
    elif a.dtype == np.uint16:
        depth = 16 if bit_depth in (None, 16) else None
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise ValueError("image contains NaN or infinite values")
        depth = bit_depth or 8
        if depth not in (8, 16):
            raise ValueError("bit_depth must be 8 or 16")
        top = 255 if depth == 8 else 65535
        a = np.rint(np.clip(a, 0, 1) * top).astype(np.uint8 if depth == 8 else np.uint16)
    else:
        raise TypeError(f"image must be uint8, uint16 or float, got {a.dtype}")
    if depth is None:
        raise ValueError(f"bit_depth {bit_depth} does not match dtype {a.dtype}")
    _engine.png_write(os.fspath(path), np.ascontiguousarray(a), depth)


def read_safetensors(path) -> dict:
    """Reads a safetensors file (e.g. a torchvision state dict saved with
    ``safetensors.torch.save_file``) as a dict of numpy arrays, without torch."""
    from ._safetensors import parse
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    return parse(data, name=f"'{path}'")[0]


def write_safetensors(path, tensors, metadata=None) -> None:
    """Writes a dict of arrays as a safetensors file that ``safetensors.torch.load_file`` reads
    (floats as F32, integers as I64), atomically."""
    from ._safetensors import serialize
    path = os.fspath(path)
    data = serialize(tensors, metadata)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
