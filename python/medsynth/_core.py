"""Shared helpers: array conventions, progress bars, engine settings."""
from __future__ import annotations

import json
from typing import Callable, Optional

import numpy as np

from . import _engine


def get_num_threads() -> int:
    """Threads the engine uses (default: MEDSYNTH_NUM_THREADS, OMP_NUM_THREADS or the core count)."""
    return _engine.get_num_threads()


def set_num_threads(n: int) -> None:
    """Sets the engine's thread count (1 to 256)."""
    _engine.set_num_threads(int(n))


def memory_stats() -> dict:
    """Bytes of tensor memory the engine holds now and at most since the last reset."""
    current, peak = _engine.memory()
    return {"current_bytes": current, "peak_bytes": peak}


def to_nchw(x, *, data_format: str = "auto", name: str = "X") -> np.ndarray:
    """Converts a batch of images to contiguous float32 [N, C, H, W] (a documented conversion).

    Accepted: (N, H, W) grayscale; (N, H, W, C) channels-last (numpy, PIL, scikit-image); or
    (N, C, H, W) channels-first (PyTorch), with C in {1, 3}. ``data_format`` ("auto",
    "channels_last", "channels_first") resolves shapes that fit both. uint8 is scaled by 1/255,
    uint16 by 1/65535; floats are taken as they are (typically [0, 1]); NaN or infinity is an error.
    """
    if hasattr(x, "detach") and hasattr(x, "numpy"):  # a torch tensor
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.dtype == np.uint8:
        scale = 1 / 255
    elif x.dtype == np.uint16:
        scale = 1 / 65535
    elif x.dtype == np.bool_:
        scale = 1.0
    elif np.issubdtype(x.dtype, np.floating):
        scale = None
    else:
        raise TypeError(f"{name} must hold uint8, uint16 or floating-point pixels, got dtype {x.dtype}")
    if data_format not in ("auto", "channels_last", "channels_first"):
        raise ValueError(f"data_format must be 'auto', 'channels_last' or 'channels_first', got {data_format!r}")
    if x.ndim == 3:
        x = x[:, None, :, :]
    elif x.ndim == 4:
        last, second = x.shape[3] in (1, 3, 4), x.shape[1] in (1, 3, 4)
        if data_format == "channels_last" or (data_format == "auto" and last and not second):
            x = x.transpose(0, 3, 1, 2)
        elif data_format == "channels_first" or (data_format == "auto" and second and not last):
            pass
        elif data_format == "auto":
            raise ValueError(f"{name} has shape {x.shape}: pass data_format='channels_last' (N, H, W, C) "
                             f"or 'channels_first' (N, C, H, W)")
        else:
            raise ValueError(f"data_format must be 'auto', 'channels_last' or 'channels_first', got {data_format!r}")
    else:
        raise ValueError(f"{name} must be a batch of images (N, H, W), (N, H, W, C) or (N, C, H, W); got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} holds no images")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if scale is not None:
        x = x * np.float32(scale)
    elif not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


class ProgressReporter:
    """Turns the engine's progress calls into a tqdm bar and/or a user callback."""

    def __init__(self, enabled: bool, description: str, callback: Optional[Callable[[dict], object]] = None,
                 unit: str = "step"):
        self.enabled = enabled
        self.description = description
        self.callback = callback
        self.unit = unit
        self.bar = None
        self.last_done = 0

    def __call__(self, done: int, total: int, info_json: str) -> None:
        info = json.loads(info_json)
        info.setdefault("done", done)
        info.setdefault("total", total)
        if self.enabled:
            if self.bar is None:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, desc=self.description, unit=self.unit, initial=done if info.get("phase") == "resume" else 0)
            if done > self.last_done:
                self.bar.update(done - self.last_done)
                self.last_done = done
            shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in info.items()
                     if k in ("epoch", "loss", "val_loss", "val_accuracy", "train_accuracy", "lr")}
            if shown:
                self.bar.set_postfix(shown, refresh=False)
        if self.callback is not None:
            self.callback(info)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
