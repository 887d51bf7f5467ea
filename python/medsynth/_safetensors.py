"""safetensors in numpy, over the engine's one reader and writer (Sources/MedSynthCore/IO/
Safetensors.swift, holding every rule of the reference implementation): the engine validates each
header and lays out each file; Python only moves bytes in and out of numpy arrays.

Files are read and written by ``medsynth.io.read_safetensors`` / ``write_safetensors``; images (a
whole file held in memory) carry state dicts between the engine and Python (``to_image`` /
``from_image``)."""
from __future__ import annotations

import json
from typing import Mapping

import numpy as np

from . import _engine

#: safetensors dtype → numpy dtype (little-endian, as the format stores them). BF16 has no numpy
#: dtype: readers convert it to float32 (exactly: bfloat16 is the upper half of a float32) or
#: return the raw uint16 bit patterns. The FP8 types come back as uint8 bit patterns.
DTYPES = {
    "BOOL": np.dtype(np.bool_), "U8": np.dtype("u1"), "I8": np.dtype("i1"), "I16": np.dtype("<i2"),
    "U16": np.dtype("<u2"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"), "I32": np.dtype("<i4"),
    "U32": np.dtype("<u4"), "F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "I64": np.dtype("<i8"),
    "U64": np.dtype("<u8"), "C64": np.dtype("<c8"),
    "F8_E5M2": np.dtype("u1"), "F8_E4M3": np.dtype("u1"), "F8_E8M0": np.dtype("u1"),
    "F8_E4M3FNUZ": np.dtype("u1"), "F8_E5M2FNUZ": np.dtype("u1"),
}
_FROM_NUMPY = {np.dtype(np.bool_): "BOOL", np.dtype("u1"): "U8", np.dtype("i1"): "I8", np.dtype("i2"): "I16",
               np.dtype("u2"): "U16", np.dtype("f2"): "F16", np.dtype("i4"): "I32", np.dtype("u4"): "U32",
               np.dtype("f4"): "F32", np.dtype("f8"): "F64", np.dtype("i8"): "I64", np.dtype("u8"): "U64",
               np.dtype("c8"): "C64"}
INTEGRITY_KEY = "medsynth_sha256"
BF16_CHOICES = ("float32", "uint16")


def check_bf16(bf16: str) -> None:
    if bf16 not in BF16_CHOICES:
        raise ValueError(f"bf16 must be 'float32' or 'uint16', got {bf16!r}")


def finish(array: np.ndarray, dtype: str, bf16: str) -> np.ndarray:
    """A tensor's array as returned to users: BF16 bit patterns widened to float32 when asked."""
    if dtype == "BF16" and bf16 == "float32":
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array


def prepare(tensors: Mapping, metadata: Mapping | None) -> tuple[str, list]:
    """What the engine's writer takes: the header JSON (metadata, names, dtypes, shapes) and each
    tensor's bytes, for name → array of bool, (u)int8/16/32/64, float16/32/64 or complex64
    (``ml_dtypes`` bfloat16 arrays become BF16)."""
    if not isinstance(tensors, Mapping):
        raise TypeError(f"tensors must be a mapping of name to array, got {type(tensors).__name__}")
    meta = {} if metadata is None else metadata
    if not isinstance(meta, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise TypeError("metadata must be a mapping of str to str")
    entries, arrays = [], []
    for name, value in tensors.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"tensor names must be non-empty strings, got {name!r}")
        if name == "__metadata__":
            raise ValueError("'__metadata__' is reserved and cannot name a tensor")
        a = np.asarray(value)
        if a.dtype.name == "bfloat16":
            dtype, a = "BF16", a.view(np.uint16)
        else:
            dtype = _FROM_NUMPY.get(a.dtype.newbyteorder("="))
        if dtype is None:
            raise TypeError(f"tensor '{name}' has dtype {a.dtype}, which safetensors cannot hold")
        a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
        entries.append({"name": name, "dtype": dtype, "shape": list(a.shape)})
        arrays.append(a.reshape(-1).view(np.uint8))
    return json.dumps({"metadata": dict(meta), "tensors": entries}), arrays


def to_image(tensors: Mapping, metadata: Mapping | None = None) -> bytearray:
    """The bytes ``medsynth.io.write_safetensors`` would write, held in memory."""
    header, arrays = prepare(tensors, metadata)
    return _engine.safetensors_image(header, arrays, False)


def from_image(buffer, *, bf16: str = "float32") -> tuple[dict, dict]:
    """(tensors, metadata) of a safetensors image validated by the engine; the arrays are views into
    ``buffer`` (writable when it is), in the order of the data."""
    check_bf16(bf16)
    header = json.loads(_engine.safetensors_image_header(buffer))
    raw = np.frombuffer(buffer, dtype=np.uint8)
    start = header["data_start"]
    tensors = {}
    for t in header["tensors"]:
        begin, end = t["data_offsets"]
        array = raw[start + begin:start + end].view(DTYPES[t["dtype"]]).reshape(t["shape"])
        tensors[t["name"]] = finish(array, t["dtype"], bf16)
    return tensors, dict(header["metadata"])


def state_dict_arrays(state_dict: Mapping) -> dict:
    """A state dict (numpy arrays or CPU torch tensors) as torchvision's dtypes hold it: floating
    point values as float32, integers and booleans as int64."""
    arrays = {}
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise TypeError(f"state dict keys must be strings, got {key!r}")
        if hasattr(value, "detach") and hasattr(value, "numpy"):   # a torch tensor
            value = value.detach().cpu().numpy()
        a = np.asarray(value)
        if np.issubdtype(a.dtype, np.floating):
            a = a.astype("<f4", copy=False)
        elif np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_:
            a = a.astype("<i8", copy=False)
        else:
            raise TypeError(f"state dict entry {key!r} has dtype {a.dtype}; expected floating point or integer values")
        arrays[key] = a
    return arrays
