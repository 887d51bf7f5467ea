"""Checkpoints that are not what they say: byte-level mutants of a small saved classifier and
diffusion model (flips in header and data, dtype relabels, truncation, removed and extra tensors,
non-finite weights). Every load must either raise a clear exception naming the file, or load
exactly the weights that were saved; never crash, never load something else in silence.

The configuration and state in the metadata are checked too: a missing or mistyped value, or
state given as configuration, is refused naming the file and the key.
"""
import json

import numpy as np
import pytest

import medsynth
from medsynth.io import read_safetensors, write_safetensors

CLEAR = (OSError, ValueError, MemoryError)   # what a refused checkpoint may raise


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny trained classifier and diffusion model, saved; (kind, path, tensors) each."""
    d = tmp_path_factory.mktemp("ckpt")
    X, y = medsynth.datasets.make_shapes(n_per_class=8, num_classes=2, size=16, seed=3)
    clf = medsynth.Classifier("simple_cnn", seed=1).fit(X, y, epochs=1, batch_size=8, progress=False)
    clf.save(d / "clf.safetensors")
    diff = medsynth.DiffusionModel(base_channels=8, channel_multipliers=(1,), attention_resolutions=(), seed=0)
    diff.fit(X, y, steps=2, batch_size=8, progress=False)
    diff.save(d / "diff.safetensors")
    return {"classifier": (medsynth.Classifier, d / "clf.safetensors"),
            "diffusion": (medsynth.DiffusionModel, d / "diff.safetensors")}


def weights_of(model, path):
    """What `model` holds, through a save."""
    model.save(path)
    return read_safetensors(path)


def assert_refused_or_identical(cls, mutant, original_tensors, tmp_path):
    try:
        model = cls.load(mutant)
    except CLEAR as e:
        # the message names the file
        assert str(mutant) in str(e) or mutant.name in str(e), f"{type(e).__name__} does not name the file: {e}"
        return "refused"
    got = weights_of(model, tmp_path / "resaved.safetensors")
    assert set(got) == set(original_tensors)
    for k, v in original_tensors.items():
        assert got[k].dtype == v.dtype and np.array_equal(got[k], v, equal_nan=False), f"{mutant.name}: '{k}' differs"
    return "identical"


def header_span(data: bytes):
    n = int.from_bytes(data[:8], "little")
    return 8, 8 + n


KINDS = ["classifier", "diffusion"]


@pytest.mark.parametrize("kind", KINDS)
def test_byte_flips_in_header_and_data(saved, kind, tmp_path):
    cls, path = saved[kind]
    data = path.read_bytes()
    original = read_safetensors(path)
    h0, h1 = header_span(data)
    rng = np.random.default_rng(11)
    outcomes = {"refused": 0, "identical": 0}
    positions = list(rng.integers(0, 8, 4)) + list(rng.integers(h0, h1, 40)) + list(rng.integers(h1, len(data), 40))
    for i, pos in enumerate(positions):
        mutant = bytearray(data)
        mutant[pos] ^= 1 << int(rng.integers(0, 8))
        p = tmp_path / f"flip{i}.safetensors"
        p.write_bytes(bytes(mutant))
        outcomes[assert_refused_or_identical(cls, p, original, tmp_path)] += 1
    # every flip in the data is caught by the integrity hash
    assert outcomes["refused"] >= 40


@pytest.mark.parametrize("kind", KINDS)
def test_truncations(saved, kind, tmp_path):
    cls, path = saved[kind]
    data = path.read_bytes()
    _, h1 = header_span(data)
    for cut in [0, 4, 8, 9, h1 - 1, h1, h1 + 1, len(data) // 2, len(data) - 1]:
        p = tmp_path / f"cut{cut}.safetensors"
        p.write_bytes(data[:cut])
        with pytest.raises(CLEAR, match="cut"):
            cls.load(p)


def rewrite(path, out, *, tensors=None, metadata=None, edit=None, integrity=True):
    """A copy of a checkpoint with its tensors or metadata changed, its hash made to match."""
    t, m = read_safetensors(path, with_metadata=True)
    t = dict(t if tensors is None else tensors)
    m = dict(m if metadata is None else metadata)
    if edit:
        edit(t, m)
    write_safetensors(out, t, m, integrity_hash=integrity)
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_dtype_relabels_are_refused_naming_the_tensor(saved, kind, tmp_path):
    cls, path = saved[kind]
    original = read_safetensors(path)
    name = next(k for k, v in original.items() if v.dtype == np.float32 and v.size > 1)
    # same bytes, read as integers: F32 -> I32, and F32 -> U8 of four times the length
    for new in (original[name].view(np.int32), original[name].view(np.uint8)):
        p = rewrite(path, tmp_path / f"relabel_{new.dtype}.safetensors", edit=lambda t, m: t.__setitem__(name, new))
        with pytest.raises(CLEAR, match=name.replace(".", r"\.")):
            cls.load(p)
    # a float tensor relabelled in the header only (same byte count, hash still valid)
    data = bytearray(path.read_bytes())
    h0, h1 = header_span(data)
    header = json.loads(data[h0:h1])
    header[name]["dtype"] = "I32"
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (h1 - h0 - len(text))
    assert len(text) == h1 - h0
    p = tmp_path / "header_relabel.safetensors"
    p.write_bytes(bytes(data[:h0]) + text + bytes(data[h1:]))
    with pytest.raises(CLEAR, match="I32"):
        cls.load(p)


@pytest.mark.parametrize("kind", KINDS)
def test_non_finite_weights_are_refused_naming_the_tensor(saved, kind, tmp_path):
    cls, path = saved[kind]
    original = read_safetensors(path)
    name = next(k for k, v in original.items() if v.dtype == np.float32 and v.size > 1)
    for bad in (np.nan, np.inf, -np.inf):
        def poison(t, m):
            w = t[name].copy()
            w.reshape(-1)[1] = bad
            t[name] = w
        p = rewrite(path, tmp_path / f"nonfinite_{bad}.safetensors", edit=poison)
        with pytest.raises(CLEAR, match=name.replace(".", r"\.")):
            cls.load(p)


@pytest.mark.parametrize("kind", KINDS)
def test_removed_and_extra_tensors_are_refused(saved, kind, tmp_path):
    cls, path = saved[kind]
    original = read_safetensors(path)
    for i, name in enumerate(sorted(original)[:: max(1, len(original) // 6)]):
        p = rewrite(path, tmp_path / f"removed{i}.safetensors", edit=lambda t, m: t.pop(name))
        with pytest.raises(CLEAR):
            cls.load(p)
    p = rewrite(path, tmp_path / "extra.safetensors", edit=lambda t, m: t.__setitem__("stray.weight", np.zeros(3, np.float32)))
    with pytest.raises(CLEAR, match="stray.weight"):
        cls.load(p)
    # a BatchNorm counter that is not one non-negative I64 (classifier only)
    counters = [k for k in original if k.endswith("num_batches_tracked")]
    for i, value in enumerate([np.array(1.0, np.float32), np.array(-1, np.int64), np.array([1, 2], np.int64)][: len(counters) and 3]):
        p = rewrite(path, tmp_path / f"counter{i}.safetensors", edit=lambda t, m: t.__setitem__(counters[0], value))
        with pytest.raises(CLEAR, match="num_batches_tracked"):
            cls.load(p)


@pytest.mark.parametrize("kind", KINDS)
def test_a_stale_integrity_hash_is_refused(saved, kind, tmp_path):
    cls, path = saved[kind]
    original = read_safetensors(path)
    name = next(k for k, v in original.items() if v.dtype == np.float32)
    def change(t, m):
        t[name] = t[name] + np.float32(1)
    p = rewrite(path, tmp_path / "stale.safetensors", edit=change, integrity=False)   # keeps the old hash
    with pytest.raises(OSError, match="medsynth_sha256"):
        cls.load(p)
    # without any hash, a changed (finite, well-typed) weight is a different model that loads
    def change_unhashed(t, m):
        change(t, m)
        m.pop("medsynth_sha256")
    p = rewrite(path, tmp_path / "unhashed.safetensors", edit=change_unhashed, integrity=False)
    loaded = weights_of(cls.load(p), tmp_path / "re.safetensors")
    np.testing.assert_array_equal(loaded[name], original[name] + np.float32(1))


def test_the_untouched_files_load_identically(saved, tmp_path):
    for kind, (cls, path) in saved.items():
        assert assert_refused_or_identical(cls, path, read_safetensors(path), tmp_path) == "identical"


# ---- configuration and state metadata: the engine's option tables check every value ----

def metadata_edit(section, key, value):
    """Sets (or, with KeyError, removes) `key` of the JSON held in metadata `section`."""
    def edit(t, m):
        doc = json.loads(m[section])
        if value is KeyError:
            doc.pop(key)
        else:
            doc[key] = value
        m[section] = json.dumps(doc)
    return edit


@pytest.mark.parametrize("value", [[1, None], ["only-one"]])
def test_invalid_class_names_are_refused(saved, value, tmp_path):
    cls, path = saved["classifier"]
    p = rewrite(path, tmp_path / "names.safetensors", edit=metadata_edit("config", "class_names", value))
    with pytest.raises(CLEAR, match="names.safetensors"):
        cls.load(p)


# (kind, metadata section, key, value, what the message must also name)
METADATA_CASES = [
    ("classifier", "config", "mean", KeyError, "mean"),
    ("classifier", "config", "class_names", "ab", "class_names"),
    ("classifier", "state", "normalization_fitted", "yes", "normalization_fitted"),
    # trained_steps is output only: under "state", never accepted as configuration
    ("diffusion", "config", "trained_steps", 5, "trained_steps"),
    ("diffusion", "state", "trained_steps", 2 ** 63, "trained_steps"),
    ("diffusion", "state", "trained_steps", "x", "trained_steps"),
    ("diffusion", "state", "trained_steps", -1, "trained_steps"),
    ("diffusion", "state", "ema_updates", 1.5, "ema_updates"),
]


@pytest.mark.parametrize("kind,section,key,value,named", METADATA_CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}={c[3]!r}" for c in METADATA_CASES])
def test_invalid_config_or_state_metadata_is_refused(saved, kind, section, key, value, named, tmp_path):
    cls, path = saved[kind]
    p = rewrite(path, tmp_path / "meta.safetensors", edit=metadata_edit(section, key, value))
    with pytest.raises(CLEAR, match="meta.safetensors") as refused:
        cls.load(p)
    assert named in str(refused.value), f"the message does not name {named!r}: {refused.value}"
