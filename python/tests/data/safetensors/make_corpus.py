"""Writes the known-good and known-bad safetensors corpus of test_safetensors.py.

Run with the reference implementation (huggingface's `safetensors`, with torch for BF16):
    /work/ref-venv/bin/python python/tests/data/safetensors/make_corpus.py
ok_*.safetensors are written by the reference writer; expected.npz holds their contents (BF16
as the float32 values it stands for). bad_*.safetensors are crafted byte by byte, and each is
checked to be rejected by the reference reader before it is kept. The files are committed; this
script documents how they were made.
"""
import json
import os
import struct

import numpy as np
import torch
from safetensors.numpy import load as ref_load, save_file as np_save_file
from safetensors.torch import save_file as torch_save_file

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(2412)
expected = {}


def ok_numpy(name, tensors, metadata=None):
    np_save_file(tensors, os.path.join(HERE, f"ok_{name}.safetensors"), metadata=metadata)
    for k, v in tensors.items():
        expected[f"{name}/{k}"] = v


# every numpy dtype the format has
ok_numpy("all_dtypes", {
    "bool": np.array([True, False, True]),
    "u8": rng.integers(0, 256, (2, 3), dtype=np.uint8),
    "i8": rng.integers(-128, 128, (3,), dtype=np.int8),
    "i16": rng.integers(-2**15, 2**15, (2, 2), dtype=np.int16),
    "u16": rng.integers(0, 2**16, (4,), dtype=np.uint16),
    "f16": rng.standard_normal((2, 3)).astype(np.float16),
    "i32": rng.integers(-2**31, 2**31, (3,), dtype=np.int32),
    "u32": rng.integers(0, 2**32, (2,), dtype=np.uint32),
    "f32": rng.standard_normal((3, 2, 2)).astype(np.float32),
    "f64": rng.standard_normal((2,)),
    "i64": np.array([-2**63, 2**63 - 1, 0], dtype=np.int64),
    "u64": np.array([0, 2**64 - 1], dtype=np.uint64),
    "c64": (rng.standard_normal(3) + 1j * rng.standard_normal(3)).astype(np.complex64),
}, metadata={"format": "np", "note": "every dtype"})
ok_numpy("scalars_and_empty", {"scalar": np.array(3.5, dtype=np.float32), "empty": np.zeros((0, 4), np.float32),
                               "one": np.ones((1,), np.int64)})
ok_numpy("no_tensors", {})
ok_numpy("unicode_names", {"ünïcödé.weight": np.arange(4, dtype=np.float32), "a b/c": np.zeros(2, np.uint8)})

bf = torch.tensor([1.0, -5.0, 3.140625, float("inf"), 0.0, -1.5e-20], dtype=torch.bfloat16)
torch_save_file({"bf16": bf, "f32": torch.arange(3, dtype=torch.float32)}, os.path.join(HERE, "ok_bf16.safetensors"))
expected["bf16/bf16"] = bf.float().numpy()
expected["bf16/f32"] = np.arange(3, dtype=np.float32)
np.savez(os.path.join(HERE, "expected.npz"), **{k.replace("/", "__", 1): v for k, v in expected.items()})


# ---- bad files: a header (dict or raw text) and data bytes ----

def raw(header_text: bytes, data: bytes = b"", n=None):
    return struct.pack("<Q", len(header_text) if n is None else n) + header_text + data


def hdr(obj) -> bytes:
    return json.dumps(obj).encode()


T = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
bad = {
    "too_short": b"\x01\x02\x03",
    "header_too_large": raw(b"{}", n=100_000_001),
    "header_past_end": raw(b"{}", n=1000),
    "header_not_object": raw(b"[1, 2]"),
    "header_invalid_json": raw(b'{"a": '),
    "header_invalid_utf8": raw(b'{"\xff": 1}'),
    "unknown_dtype": raw(hdr({"a": {**T, "dtype": "F33"}}), bytes(8)),
    "missing_dtype": raw(hdr({"a": {"shape": [2], "data_offsets": [0, 8]}}), bytes(8)),
    "missing_offsets": raw(hdr({"a": {"dtype": "F32", "shape": [2]}}), bytes(8)),
    "negative_shape": raw(hdr({"a": {**T, "shape": [-2]}}), bytes(8)),
    "shape_bytes_mismatch": raw(hdr({"a": {**T, "shape": [3]}}), bytes(8)),
    "dtype_bytes_mismatch": raw(hdr({"a": {**T, "dtype": "F64"}}), bytes(8)),
    "shape_overflow": raw(hdr({"a": {**T, "shape": [2**62, 2**62]}}), bytes(8)),
    "offsets_reversed": raw(hdr({"a": {**T, "shape": [0], "data_offsets": [8, 0]}}), bytes(8)),
    "offsets_past_end": raw(hdr({"a": {**T, "shape": [4], "data_offsets": [0, 16]}}), bytes(8)),
    "gap_at_start": raw(hdr({"a": {**T, "data_offsets": [4, 12]}}), bytes(12)),
    "gap_between": raw(hdr({"a": T, "b": {**T, "data_offsets": [12, 20]}}), bytes(20)),
    "overlap": raw(hdr({"a": T, "b": {**T, "data_offsets": [4, 12]}}), bytes(12)),
    "trailing_bytes": raw(hdr({"a": T}), bytes(9)),
    "data_without_tensors": raw(b"{}", b"\x00"),
    "metadata_not_strings": raw(hdr({"__metadata__": {"k": 1}, "a": T}), bytes(8)),
    "truncated_data": raw(hdr({"a": {**T, "shape": [4], "data_offsets": [0, 16]}}), bytes(12)),
}
for name, content in bad.items():
    try:
        ref_load(content)
    except Exception:
        pass
    else:
        raise SystemExit(f"the reference accepts bad_{name}; not a bad file")
    with open(os.path.join(HERE, f"bad_{name}.safetensors"), "wb") as f:
        f.write(content)
print(f"{len(expected)} expected tensors, {len(bad)} bad files")
