"""Files: PNG images through the engine's libpng binding (8 and 16 bit; gray, gray+alpha, RGB,
RGBA) and safetensors files of any content (``read_safetensors`` / ``write_safetensors``).

Every reader refuses what is not a regular file (a FIFO, socket or device would block or never
end) and every error names the file or argument.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
from typing import Mapping, Optional

import numpy as np

from . import _engine
from ._paths import fspath
from ._safetensors import DTYPES, INTEGRITY_KEY, check_bf16, finish, prepare

__all__ = ["read_png", "write_png", "get_max_image_pixels", "set_max_image_pixels", "read_safetensors",
           "safetensors_metadata", "write_safetensors", "SAFETENSORS_DTYPES"]


# ---- PNG ---------------------------------------------------------------------------------------

def get_max_image_pixels() -> Optional[int]:
    """The most pixels (width x height) ``read_png`` accepts, or None for no limit.

    Defaults to Pillow's ``Image.MAX_IMAGE_PIXELS`` (89,478,485, about 89.5 megapixels), or to the
    environment variable ``MEDSYNTH_MAX_IMAGE_PIXELS`` (0: no limit) when set before the first read.
    A PNG of a few hundred bytes can declare 65536 x 65536 pixels (a "decompression bomb", 32 GiB
    decoded); larger files raise OSError before any pixel memory is allocated.
    """
    n = _engine.get_max_image_pixels()
    return None if n == 0 else n


def set_max_image_pixels(n: Optional[int]) -> None:
    """Sets the pixel limit of ``read_png`` for the process; None (or 0) removes it. Raising it is
    for trusted files only; the memory check (a MemoryError when the decoded image cannot fit in
    the memory available) stays."""
    if n is None:
        n = 0
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an int or None, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"n must be non-negative (or None for no limit), got {n}")
    _engine.set_max_image_pixels(int(n))


def read_png(path) -> np.ndarray:
    """Reads a PNG: uint8 (8-bit files) or uint16 (16-bit files, exactly as stored, alpha
    included), shape (H, W) for gray or (H, W, C) with C = 2 (gray+alpha), 3 (RGB) or 4 (RGBA).
    Palette and low-bit files come back as 8-bit RGB(A) or gray. A missing, corrupt, non-PNG or
    non-regular file, or one above ``get_max_image_pixels()``, raises OSError naming the file; one
    too large for the memory available raises MemoryError."""
    path = fspath(path)
    width, height, channels, depth = _engine.png_probe(path)
    out = np.empty((height, width, channels), dtype=np.uint16 if depth == 16 else np.uint8)
    _engine.png_read(path, out)
    return out[:, :, 0] if channels == 1 else out


def write_png(path, image, *, bit_depth: int = None) -> None:
    """Writes an image atomically. ``image``: (H, W) or (H, W, C), C in 1..4; uint8 → 8-bit,
    uint16 → 16-bit (exact, alpha included), floats in [0, 1] → ``bit_depth`` (default 8) after
    rounding."""
    path = fspath(path)
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
    _engine.png_write(path, np.ascontiguousarray(a), depth)


# ---- safetensors (the engine's reader and writer; see _safetensors) ----------------------------

#: safetensors dtype → numpy dtype; see ``read_safetensors`` for BF16 and the FP8 types.
SAFETENSORS_DTYPES = DTYPES


def _safetensors_header(path) -> dict:
    return json.loads(_engine.safetensors_header(path))


def safetensors_metadata(path) -> dict:
    """The ``__metadata__`` of a safetensors file (str → str), after validating its header."""
    return dict(_safetensors_header(fspath(path))["metadata"])


def read_safetensors(path, *, bf16: str = "float32", with_metadata: bool = False):
    """Reads every tensor of a safetensors file into numpy arrays, as ``safetensors.numpy.load_file``
    (e.g. a torchvision state dict saved with ``safetensors.torch.save_file``), without torch.

    The header is checked against every rule of the reference implementation (huggingface/
    safetensors ``tensor.rs``: header at most 100,000,000 bytes, JSON starting with '{', no duplicate
    names, known dtypes, byte counts agreeing with shapes, tensors tiling the data without gaps or
    overlaps, nothing after the last tensor); a file that breaks one raises OSError naming the file
    and the rule. When the metadata holds ``medsynth_sha256`` (files medsynth writes), the data is
    verified against it.

    Parameters
    ----------
    bf16 : {"float32", "uint16"}, default "float32"
        BF16 tensors as float32 (exact) or as their raw uint16 bit patterns.
    with_metadata : bool, default False
        Return ``(tensors, metadata)`` instead of ``tensors``.

    Returns a dict name → array in the order of the data (dtypes: ``SAFETENSORS_DTYPES``; the FP8
    types come back as their uint8 bit patterns).
    """
    check_bf16(bf16)
    path = fspath(path)
    header = _safetensors_header(path)
    metadata = dict(header["metadata"])
    expected_hash = metadata.get(INTEGRITY_KEY)
    digest = hashlib.sha256() if expected_hash is not None else None
    tensors = {}
    # O_NONBLOCK then fstat: a path swapped for a FIFO since the header was read must not block
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size != header["file_size"]:
            raise OSError(f"'{path}' changed while being read")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", buffering=0, closefd=False) as f:
            for t in header["tensors"]:
                name, (begin, end) = t["name"], t["data_offsets"]
                array = np.empty(t["shape"], dtype=DTYPES[t["dtype"]])
                view = memoryview(array.reshape(-1).view(np.uint8))
                f.seek(header["data_start"] + begin)
                done = 0
                while done < len(view):
                    got = f.readinto(view[done:])
                    if not got:
                        raise OSError(f"'{path}' ended inside tensor '{name}' (changed while being read?)")
                    done += got
                if digest is not None:
                    digest.update(view)
                tensors[name] = finish(array, t["dtype"], bf16)
    finally:
        os.close(fd)
    if digest is not None and digest.hexdigest() != expected_hash.lower():
        raise OSError(f"'{path}': the tensor data does not match its {INTEGRITY_KEY}; the file is corrupt")
    return (tensors, metadata) if with_metadata else tensors


def write_safetensors(path, tensors: Mapping[str, np.ndarray], metadata: Optional[Mapping[str, str]] = None, *,
                      integrity_hash: bool = False) -> None:
    """Writes numpy arrays as a safetensors file (atomically), readable by ``safetensors.numpy``,
    ``safetensors.torch`` and ``read_safetensors``; the layout follows the reference (tensors sorted
    by dtype then name, header padded to 8 bytes).

    tensors: name → array of bool, (u)int8/16/32/64, float16/32/64 or complex64 (``ml_dtypes``
    bfloat16 arrays become BF16), each written with its own dtype. metadata: str → str. With
    ``integrity_hash``, the metadata also records ``medsynth_sha256``, the SHA-256 of the data,
    which ``read_safetensors`` verifies.
    """
    path = fspath(path)
    if integrity_hash and isinstance(metadata, Mapping) and INTEGRITY_KEY in metadata:
        metadata = {k: v for k, v in metadata.items() if k != INTEGRITY_KEY}   # recomputed over the data written now
    header, arrays = prepare(tensors, metadata)
    _engine.safetensors_write(path, header, arrays, bool(integrity_hash))
