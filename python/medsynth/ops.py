"""Functional operations on numpy arrays, with torch.nn.functional's semantics (for checking the
engine against other libraries, and for benchmarks)."""
from __future__ import annotations

import numpy as np

from . import _engine


def _pair_check(value, name):
    if isinstance(value, (tuple, list)):
        if len(set(value)) != 1:
            raise ValueError(f"{name} must be the same along height and width here, got {value}")
        value = value[0]
    value = int(value)
    return value


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """torch.nn.functional.conv2d on float32 numpy arrays: x (N, Cin, H, W), weight
    (Cout, Cin/groups, kH, kW), bias (Cout,) or None. Returns (N, Cout, Ho, Wo)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    weight = np.ascontiguousarray(weight, dtype=np.float32)
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError("x and weight must be 4-D (N, C, H, W) and (Cout, Cin/groups, kH, kW)")
    stride, padding, dilation = (_pair_check(v, n) for v, n in ((stride, "stride"), (padding, "padding"), (dilation, "dilation")))
    if stride < 1 or dilation < 1 or padding < 0 or groups < 1:
        raise ValueError("stride, dilation and groups must be at least 1 and padding non-negative")
    kh, kw = weight.shape[2:]
    ho = (x.shape[2] + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    wo = (x.shape[3] + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"a {kh}x{kw} kernel does not fit a {x.shape[2]}x{x.shape[3]} input with padding {padding}")
    y = np.empty((x.shape[0], weight.shape[0], ho, wo), dtype=np.float32)
    b = None if bias is None else np.ascontiguousarray(bias, dtype=np.float32)
    _engine.conv2d_forward(x, weight, b, stride, padding, dilation, int(groups), y)
    return y


def conv2d_backward(x, weight, grad_output, stride=1, padding=0, dilation=1, groups=1, *, need_input=True,
                    need_weight=True, need_bias=True):
    """Gradients (dx, dweight, dbias) of conv2d for the output gradient ``grad_output``
    (entries not asked for are None)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    weight = np.ascontiguousarray(weight, dtype=np.float32)
    dy = np.ascontiguousarray(grad_output, dtype=np.float32)
    stride, padding, dilation = (_pair_check(v, n) for v, n in ((stride, "stride"), (padding, "padding"), (dilation, "dilation")))
    dx = np.empty_like(x) if need_input else None
    dw = np.empty_like(weight) if need_weight else None
    db = np.empty(weight.shape[0], dtype=np.float32) if need_bias else None
    _engine.conv2d_backward(x, weight, dy, stride, padding, dilation, int(groups), dx, dw, db)
    return dx, dw, db


def matmul(a, b) -> np.ndarray:
    """a @ b for 2-D float32 arrays, through the engine's multi-threaded OpenBLAS sgemm."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    b = np.ascontiguousarray(b, dtype=np.float32)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul needs a (m, k) and b (k, n), got {a.shape} and {b.shape}")
    c = np.empty((a.shape[0], b.shape[1]), dtype=np.float32)
    _engine.matmul(a, b, c)
    return c


def resize(images, size) -> np.ndarray:
    """Antialiased bilinear resize, as Pillow's ``Image.resize(size, BILINEAR)`` and torchvision's
    ``Resize(size, antialias=True)``: a triangle filter widened by the reduction factor when
    shrinking (every input pixel counts, no aliasing), plain bilinear interpolation with pixel
    centres aligned when enlarging.

    images: (H, W) one gray image, (N, H, W) gray images or (N, H, W, C) channels-last images
    (use ``image[None]`` for a single colour image). size: an int (square) or (height, width).
    Returns float32 in the same layout at the new size (values are not rescaled: uint8 input
    stays on the 0-255 scale, as floats).
    """
    x = np.asarray(images)
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"images must be (H, W), (N, H, W) or (N, H, W, C); got shape {x.shape}")
    if isinstance(size, (int, np.integer)):
        out_h = out_w = int(size)
    else:
        out_h, out_w = (int(s) for s in size)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"size must be positive, got {size}")
    if x.size == 0:
        raise ValueError("images is empty")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise TypeError(f"images must hold real numbers, got dtype {x.dtype}")
    batch = x[None, :, :, None] if x.ndim == 2 else x[..., None] if x.ndim == 3 else x
    batch = np.ascontiguousarray(batch, dtype=np.float32)
    if not np.isfinite(batch).all():
        raise ValueError("images contain NaN or infinite values")
    out = np.empty((batch.shape[0], out_h, out_w, batch.shape[3]), dtype=np.float32)
    _engine.resize(batch, out)
    if x.ndim == 2:
        return out[0, :, :, 0]
    if x.ndim == 3:
        return out[..., 0]
    return out
