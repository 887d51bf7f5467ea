"""safetensors images in numpy (huggingface/safetensors format): [u64 LE header length N][N bytes
of JSON header][data], tensors little-endian and row-major. Used to move state dicts between the
engine and Python without torch."""
from __future__ import annotations

import json
import struct
from typing import Mapping

import numpy as np

_TO_NUMPY = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
             "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}


def parse(buffer, *, name: str = "state dict") -> tuple[dict, dict]:
    """(tensors, metadata) of a safetensors image; arrays are views into ``buffer`` (writable when
    it is). BF16 tensors are converted to float32. Tensors come in the header's order, or in the
    order listed by the metadata key "order" when present (the engine's state-dict order)."""
    data = memoryview(buffer).cast("B")
    if len(data) < 8:
        raise ValueError(f"{name} is not a safetensors image: {len(data)} bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n > 100_000_000 or 8 + n > len(data):
        raise ValueError(f"{name} is not a safetensors image: header length {n}")
    header = json.loads(bytes(data[8:8 + n]).decode("utf-8"))
    metadata = header.pop("__metadata__", {}) or {}
    start = 8 + n
    raw = np.frombuffer(data, dtype=np.uint8)
    tensors = {}
    for key, info in header.items():
        begin, end = info["data_offsets"]
        shape = tuple(int(s) for s in info["shape"])
        chunk = raw[start + begin:start + end]
        if info["dtype"] == "BF16":
            array = (chunk.view("<u2").astype(np.uint32) << 16).view(np.float32)
        elif info["dtype"] in _TO_NUMPY:
            array = chunk.view(_TO_NUMPY[info["dtype"]])
        else:
            raise ValueError(f"{name}: tensor {key!r} has unsupported dtype {info['dtype']}")
        tensors[key] = array.reshape(shape)
    order = metadata.get("order")
    if order:
        names = json.loads(order)
        if sorted(names) == sorted(tensors):
            tensors = {k: tensors[k] for k in names}
    return tensors, metadata


def serialize(tensors: Mapping[str, object], metadata: Mapping[str, str] | None = None) -> bytearray:
    """A safetensors image of ``tensors`` (name -> array-like, e.g. numpy arrays or CPU torch
    tensors): floating-point values as F32, integers and booleans as I64, as torchvision's state
    dicts hold them. Tensors are laid out as the reference writer does (dtype size, then name)."""
    arrays = {}
    for key, value in tensors.items():
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
        arrays[key] = np.ascontiguousarray(a)
    order = sorted(arrays, key=lambda k: (-arrays[k].dtype.itemsize, k))
    header = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for key in order:
        a = arrays[key]
        header[key] = {"dtype": "F32" if a.dtype.kind == "f" else "I64", "shape": list(a.shape),
                       "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    out = bytearray(8 + len(text) + offset)
    out[:8] = struct.pack("<Q", len(text))
    out[8:8 + len(text)] = text
    view = np.frombuffer(out, dtype=np.uint8)
    position = 8 + len(text)
    for key in order:
        a = arrays[key]
        view[position:position + a.nbytes] = a.reshape(-1).view(np.uint8)
        position += a.nbytes
    return out
