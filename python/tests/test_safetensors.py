"""medsynth.io.read_safetensors / write_safetensors against a corpus made with the reference
implementation (data/safetensors/make_corpus.py): ok files load with their exact contents, every
bad file (each rejected by the reference too) raises OSError naming the file."""
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from medsynth.io import read_safetensors, safetensors_metadata, write_safetensors

DATA = Path(__file__).parent / "data" / "safetensors"
EXPECTED = dict(np.load(DATA / "expected.npz"))
OK = sorted(DATA.glob("ok_*.safetensors"))
BAD = sorted(DATA.glob("bad_*.safetensors"))


def test_corpus_is_present():
    assert len(OK) == 5 and len(BAD) >= 20


@pytest.mark.parametrize("path", OK, ids=lambda p: p.stem)
def test_ok_files_load_exactly(path):
    name = path.stem[3:]
    tensors = read_safetensors(path)
    want = {k.split("__", 1)[1]: v for k, v in EXPECTED.items() if k.startswith(name + "__")}
    assert set(tensors) == set(want)
    for key, value in want.items():
        got = tensors[key]
        assert got.dtype == value.dtype and got.shape == value.shape, key
        np.testing.assert_array_equal(got, value, err_msg=key)


def test_metadata_and_bf16_bits():
    assert safetensors_metadata(DATA / "ok_all_dtypes.safetensors") == {"format": "np", "note": "every dtype"}
    bits = read_safetensors(DATA / "ok_bf16.safetensors", bf16="uint16")["bf16"]
    assert bits.dtype == np.uint16 and bits[0] == 0x3F80 and bits[1] == 0xC0A0 and bits[3] == 0x7F80
    with pytest.raises(ValueError, match="bf16"):
        read_safetensors(DATA / "ok_bf16.safetensors", bf16="float16")


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_files_raise_naming_the_file(path):
    with pytest.raises(OSError, match=path.name):
        read_safetensors(path)


def test_round_trip_of_every_dtype_and_the_reference_layout(tmp_path):
    tensors = read_safetensors(DATA / "ok_all_dtypes.safetensors")
    out = tmp_path / "rt.safetensors"
    write_safetensors(out, tensors, {"format": "np", "note": "every dtype"})
    back, meta = read_safetensors(out, with_metadata=True)
    assert meta == {"format": "np", "note": "every dtype"}
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype
        np.testing.assert_array_equal(back[k], v)
    # the reference writer's layout: same order, offsets and data bytes (metadata order may differ)
    from medsynth.io import _safetensors_header
    ours, ref = _safetensors_header(str(out)), _safetensors_header(str(DATA / "ok_all_dtypes.safetensors"))
    assert ours["tensors"] == ref["tensors"]
    assert out.read_bytes()[ours["data_start"]:] == (DATA / "ok_all_dtypes.safetensors").read_bytes()[ref["data_start"]:]


def test_integrity_hash_catches_a_flipped_bit(tmp_path):
    path = tmp_path / "h.safetensors"
    write_safetensors(path, {"w": np.arange(10, dtype=np.float32)}, integrity_hash=True)
    assert len(safetensors_metadata(path)["medsynth_sha256"]) == 64
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x02
    path.write_bytes(bytes(data))
    with pytest.raises(OSError, match="medsynth_sha256"):
        read_safetensors(path)


def test_writer_rejects_what_the_format_cannot_hold(tmp_path):
    p = tmp_path / "x.safetensors"
    with pytest.raises(TypeError, match="'o'"):
        write_safetensors(p, {"o": np.array(["a"], dtype=object)})
    with pytest.raises(ValueError, match="reserved"):
        write_safetensors(p, {"__metadata__": np.zeros(1)})
    with pytest.raises(ValueError, match="non-empty"):
        write_safetensors(p, {"": np.zeros(1)})
    with pytest.raises(TypeError, match="metadata"):
        write_safetensors(p, {"a": np.zeros(1)}, {"k": 1})
    with pytest.raises(TypeError, match="mapping"):
        write_safetensors(p, [np.zeros(1)])
    with pytest.raises(ValueError, match="NUL"):
        write_safetensors(str(tmp_path / "a\0b"), {"a": np.zeros(1)})
    assert not p.exists()
    # big-endian and non-contiguous input is written as little-endian, contiguous
    a = np.arange(12, dtype=">i4").reshape(3, 4)[:, ::2]
    write_safetensors(p, {"a": a})
    np.testing.assert_array_equal(read_safetensors(p)["a"], a)


def test_non_regular_files_are_refused(tmp_path):
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        read_safetensors(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        read_safetensors(tmp_path)


def test_hand_made_edge_cases(tmp_path):
    def raw(header: dict, data: bytes = b"") -> bytes:
        h = json.dumps(header).encode()
        return struct.pack("<Q", len(h)) + h + data
    cases = {
        "dup.safetensors": (b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                            b'"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b"\x01\x02", "duplicate"),
        "f4.safetensors": (json.dumps({"a": {"dtype": "F4", "shape": [2], "data_offsets": [0, 1]}}).encode(), b"\x00", "F4"),
    }
    for name, (header, data, fragment) in cases.items():
        (tmp_path / name).write_bytes(struct.pack("<Q", len(header)) + header + data)
        with pytest.raises(OSError, match=fragment):
            read_safetensors(tmp_path / name)
    # the header may be padded with spaces, as the reference writer does
    h = b'{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}     '
    (tmp_path / "pad.safetensors").write_bytes(struct.pack("<Q", len(h)) + h + b"\x07\x09")
    assert read_safetensors(tmp_path / "pad.safetensors")["a"].tolist() == [7, 9]
    # zero-sized tensors anywhere
    (tmp_path / "z.safetensors").write_bytes(raw({"e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [0, 0]}}))
    assert read_safetensors(tmp_path / "z.safetensors")["e"].shape == (0, 3)


# ---- images: a whole file in memory (state dicts), through the same engine reader and writer ----

def test_images_are_the_bytes_of_files_and_read_back_exactly(tmp_path):
    from medsynth._safetensors import from_image, to_image
    tensors, metadata = read_safetensors(DATA / "ok_all_dtypes.safetensors", bf16="uint16", with_metadata=True)
    image = to_image(tensors, metadata)
    path = tmp_path / "f.safetensors"
    write_safetensors(path, tensors, metadata)
    assert bytes(image) == path.read_bytes()
    back, meta = from_image(image, bf16="uint16")
    assert meta == metadata and list(back) == list(read_safetensors(path, bf16="uint16"))
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape
        np.testing.assert_array_equal(back[k], v)


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_images_are_refused_by_the_same_rules(path):
    from medsynth._safetensors import from_image
    with pytest.raises(ValueError, match="not a valid safetensors image"):
        from_image(bytearray(path.read_bytes()))


def test_an_image_with_a_stale_hash_is_refused(tmp_path):
    from medsynth._safetensors import from_image
    path = tmp_path / "h.safetensors"
    write_safetensors(path, {"w": np.arange(4, dtype=np.float32)}, integrity_hash=True)
    image = bytearray(path.read_bytes())
    assert from_image(image)[1]["medsynth_sha256"]
    image[-1] ^= 1
    with pytest.raises(ValueError, match="medsynth_sha256"):
        from_image(image)
