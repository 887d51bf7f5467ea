"""Diffusion models that interoperate: diffusers' timesteps, the raw forward, supplied noise and
EMA-only weights, checked against numbers PyTorch and diffusers computed (tests/data, written by
python/tools/diffusers_reference.py: torch_ref.py's U-Net loaded strictly from the EMA-only file,
diffusers 0.42's schedulers, the same noise)."""
import json
import struct
from pathlib import Path

import numpy as np
import pytest

import medsynth

DATA = Path(__file__).parent / "data"
T = 1000

#: name -> medsynth options of the samplers diffusers ran (diffusers_reference.py's table)
SAMPLERS = {
    "ddim_leading_eta0_clip": dict(sampler="ddim", steps=10, eta=0.0, clip=True),
    "ddim_trailing_eta1_noclip": dict(sampler="ddim", steps=10, eta=1.0, clip=False, spacing="trailing"),
    "ddim_linspace_eta0_clip": dict(sampler="ddim", steps=10, eta=0.0, clip=True, spacing="linspace"),
    "dpm_solver_linspace": dict(sampler="dpm_solver++", steps=10, clip=False),
    "dpm_solver_leading": dict(sampler="dpm_solver++", steps=10, clip=False, spacing="leading"),
    "ddpm_10_leading_clip": dict(sampler="ddpm", steps=10, clip=True),
    "dpm_solver_karras": dict(sampler="dpm_solver++", steps=10, clip=False, spacing="karras"),
    "dpm_solver_log_snr": dict(sampler="dpm_solver++", steps=10, clip=False, spacing="log_snr"),
    "dpm_solver_sde_karras": dict(sampler="dpm_solver++_sde", steps=10, clip=False),
    "dpm_solver_sde_linspace": dict(sampler="dpm_solver++_sde", steps=10, clip=False, spacing="linspace"),
}


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(DATA / "diffusers_reference.npz"))


@pytest.fixture(scope="module")
def tiny():
    # the EMA-only file loads back: its weights are the EMA weights, under the plain names
    return medsynth.DiffusionModel.load(DATA / "tiny_unet_ema.safetensors")


def diffusers_timesteps(scheduler: str, spacing: str, n: int) -> np.ndarray:
    """set_timesteps(n) of diffusers' DDPMScheduler / DDIMScheduler / DPMSolverMultistepScheduler
    (T = 1000, steps_offset 0), as their code computes it."""
    if scheduler == "dpm_solver++":
        if spacing == "linspace":
            return np.linspace(0, T - 1, n + 1).round()[::-1][:-1].astype(np.int64)
        if spacing == "leading":
            return (np.arange(0, n + 1) * (T // (n + 1))).round()[::-1][:-1].astype(np.int64)
        return np.arange(T, 0, -T / n).round().astype(np.int64) - 1
    if spacing == "linspace":
        return np.linspace(0, T - 1, n).round()[::-1].astype(np.int64)
    if spacing == "leading":
        return (np.arange(0, n) * (T // n)).round()[::-1].astype(np.int64)
    return np.round(np.arange(T, 0, -T / n)).astype(np.int64) - 1


@pytest.mark.parametrize("n", [10, 20, 50])
def test_default_timesteps_are_diffusers_for_every_sampler_and_spacing(tiny, n):
    for sampler in ("ddpm", "ddim", "dpm_solver++"):
        for spacing in ("linspace", "leading", "trailing"):
            np.testing.assert_array_equal(tiny.timesteps(sampler=sampler, steps=n, spacing=spacing),
                                          diffusers_timesteps(sampler, spacing, n), err_msg=f"{sampler} {spacing} {n}")
        # without a spacing: the default of diffusers' scheduler for that sampler
        default = "linspace" if sampler == "dpm_solver++" else "leading"
        np.testing.assert_array_equal(tiny.timesteps(sampler=sampler, steps=n), diffusers_timesteps(sampler, default, n))
    # DDIM lands at t - T//n, as DDIMScheduler.step; "scheduled" at the next timestep evaluated
    ts, targets = tiny.timesteps(sampler="ddim", steps=n, spacing="linspace", with_targets=True)
    np.testing.assert_array_equal(targets, np.maximum(ts - T // n, -1))
    _, scheduled = tiny.timesteps(sampler="ddim", steps=n, spacing="linspace", ddim_target="scheduled", with_targets=True)
    np.testing.assert_array_equal(scheduled, np.append(ts[1:], -1))
    # DDPM takes every timestep unless given steps
    np.testing.assert_array_equal(tiny.timesteps(sampler="ddpm"), np.arange(T)[::-1])


def test_noise_level_spacings_are_diffusers(tiny):
    # DPMSolverMultistepScheduler(use_karras_sigmas=True) and (use_lu_lambdas=True), set_timesteps(10)
    # and (20), diffusers 0.42.1; every sampler takes these points with spacing="karras" / "log_snr"
    karras10 = [999, 937, 864, 775, 663, 511, 301, 102, 18, 0]
    log_snr10 = [999, 886, 757, 603, 410, 202, 73, 22, 5, 0]
    karras20_tail = [556, 472, 373, 265, 164, 88, 41, 16, 4, 0]
    for sampler in ("ddpm", "ddim", "dpm_solver++", "dpm_solver++_sde"):
        np.testing.assert_array_equal(tiny.timesteps(sampler=sampler, steps=10, spacing="karras"), karras10)
        np.testing.assert_array_equal(tiny.timesteps(sampler=sampler, steps=10, spacing="log_snr"), log_snr10)
        np.testing.assert_array_equal(tiny.timesteps(sampler=sampler, steps=20, spacing="karras")[-10:], karras20_tail)
    # the SDE variant defaults to Karras spacing (DPM++ 2M SDE Karras)
    np.testing.assert_array_equal(tiny.timesteps(sampler="dpm_solver++_sde", steps=10), karras10)
    # each step lands on the next level, the clean image after sigma(0)
    ts, targets = tiny.timesteps(sampler="dpm_solver++_sde", steps=10, with_targets=True)
    np.testing.assert_array_equal(targets, np.append(ts[1:], -1))


def test_timesteps_diffusers_printed(tiny, reference):
    # the lists diffusers itself returned when the reference was written
    for name, options in SAMPLERS.items():
        kw = {k: v for k, v in options.items() if k in ("sampler", "steps", "spacing")}
        np.testing.assert_array_equal(tiny.timesteps(**kw), reference[f"timesteps_{name}"], err_msg=name)
    np.testing.assert_array_equal(tiny.timesteps(sampler="dpm_solver++", steps=20, spacing="leading")[:3], [940, 893, 846])
    np.testing.assert_array_equal(tiny.timesteps(sampler="ddim", steps=50, spacing="linspace")[:4], [999, 979, 958, 938])


def test_forward_matches_pytorch(tiny, reference):
    eps = tiny.predict_noise(reference["x_t"], reference["t"], reference["labels"])
    assert eps.shape == reference["eps"].shape and eps.dtype == np.float32
    assert np.abs(eps - reference["eps"]).max() < 2e-5
    # labels=None: the unconditional (null-class) output
    assert np.abs(tiny.predict_noise(reference["x_t"], reference["t"]) - reference["eps_uncond"]).max() < 2e-5
    # guidance by hand equals guidance by the engine
    s = 2.0
    by_hand = reference["eps_uncond"] + s * (reference["eps"] - reference["eps_uncond"])
    guided = tiny.predict_noise(reference["x_t"], reference["t"], reference["labels"], guidance_scale=s)
    assert np.abs(guided - by_hand).max() < 1e-4
    # the model's own parametrisation is epsilon here; x0 follows from it
    np.testing.assert_array_equal(tiny.model_output(reference["x_t"], reference["t"], reference["labels"]), eps)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_samplers_match_diffusers_from_the_same_noise(tiny, reference, name):
    images, _ = tiny.sample(labels=reference["labels"], noise=reference["x_T"], step_noise=reference["z"],
                            guidance_scale=2.0, clamp_output=False, output="float", progress=False, **SAMPLERS[name])
    expected = reference[f"sample_{name}"][:, 0]
    x = images * 2 - 1                                    # data range [0, 1] -> the model's space
    assert np.abs(x - expected).max() <= 1e-5 * (1 + np.abs(expected).max()), name


def test_forward_layouts_and_arguments(tiny, reference):
    x = reference["x_t"]
    nchw = tiny.predict_noise(x, 500, labels=1)
    np.testing.assert_array_equal(tiny.predict_noise(x[:, 0], 500, labels=1), nchw[:, 0])       # (n, H, W)
    np.testing.assert_array_equal(tiny.predict_noise(x, np.full(4, 500), labels=[1, 1, 1, 1]), nchw)
    x0 = tiny.model_output(x, 500, labels=1, output="x0")
    ab = np.cumprod(1 - np.linspace(1e-4, 0.02, T))[500]
    np.testing.assert_allclose(x0, (x - np.sqrt(1 - ab) * nchw) / np.sqrt(ab), atol=1e-4)
    with pytest.raises(ValueError, match="outside"):
        tiny.predict_noise(x, 1000)
    with pytest.raises(TypeError, match="integer timesteps"):
        tiny.predict_noise(x, 10.5)
    with pytest.raises(TypeError, match="floating-point"):
        tiny.predict_noise(np.zeros((2, 16, 16), np.uint8), 10)
    with pytest.raises(ValueError, match="t must be one timestep or one per image"):
        tiny.predict_noise(x, [1, 2])
    with pytest.raises(ValueError, match="guidance needs labels"):
        tiny.predict_noise(x, 10, guidance_scale=2.0)
    with pytest.raises(ValueError, match="the model takes 1x16x16"):
        tiny.predict_noise(np.zeros((2, 1, 8, 8), np.float32), 10)


def test_supplied_noise(tiny, reference):
    kw = dict(labels=[0, 1, 1, 0], steps=4, output="float", progress=False)
    ddim = dict(kw, sampler="ddim")
    a, _ = tiny.sample(noise=reference["x_T"], seed=1, **ddim)
    b, _ = tiny.sample(noise=reference["x_T"][:, 0], seed=2, **ddim)       # deterministic DDIM: the seed no longer matters
    np.testing.assert_array_equal(a, b)
    c, _ = tiny.sample(seed=1, **ddim)
    assert np.abs(a - c).max() > 1e-3
    # a stochastic sampler with the same step noise is the same whatever the seed; without it, the seed's
    z = reference["z"][:4]
    d1, _ = tiny.sample(noise=reference["x_T"], step_noise=z, sampler="ddpm", seed=1, **kw)
    d2, _ = tiny.sample(noise=reference["x_T"], step_noise=z, sampler="ddpm", seed=2, **kw)
    d3, _ = tiny.sample(noise=reference["x_T"], sampler="ddpm", seed=1, **kw)
    np.testing.assert_array_equal(d1, d2)
    assert np.abs(d1 - d3).max() > 1e-3
    with pytest.raises(ValueError, match="noise must hold 4 images"):
        tiny.sample(noise=reference["x_T"][:3], **kw)
    with pytest.raises(ValueError, match="step noise must hold 4 steps x 4 images"):
        tiny.sample(noise=reference["x_T"], step_noise=reference["z"], sampler="ddpm", **kw)
    with pytest.raises(ValueError, match="NaN"):
        tiny.sample(noise=np.full((4, 16, 16), np.nan, np.float32), **kw)


def test_clip_false_means_no_clipping(tiny, reference):
    kw = dict(labels=reference["labels"], noise=reference["x_T"], sampler="dpm_solver++", steps=10, output="float",
              progress=False)
    raw, _ = tiny.sample(clip=False, clamp_output=False, **kw)
    assert raw.min() < 0 or raw.max() > 1          # this barely trained model's samples leave the data range
    clamped, _ = tiny.sample(clip=False, **kw)       # clamping to the data range is its own, explicit step
    np.testing.assert_array_equal(clamped, np.clip(raw, 0, 1))


def safetensors_keys(path):
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    metadata = header.pop("__metadata__", {})
    return set(header), metadata


def test_saved_weights_choice(tmp_path):
    X, y = medsynth.datasets.make_shapes(n_per_class=8, num_classes=2, size=16, seed=3)
    model = medsynth.DiffusionModel(16, in_channels=1, num_classes=2, base_channels=8, channel_multipliers=(1, 2),
                                    attention_resolutions=(8,), seed=0)
    model.fit(X, y, steps=3, batch_size=8, ema_decay=0.5, progress=False)
    for weights in ("both", "ema", "raw"):
        model.save(tmp_path / f"{weights}.safetensors", weights=weights)
    both, meta = safetensors_keys(tmp_path / "both.safetensors")
    plain = {k for k in both if not k.startswith("ema.")}
    assert plain != both                                       # both sets
    for weights in ("ema", "raw"):
        keys, meta = safetensors_keys(tmp_path / f"{weights}.safetensors")
        assert keys == plain and meta["medsynth_weights"] == weights and "config" in meta
    x = np.random.default_rng(0).standard_normal((2, 16, 16)).astype(np.float32)
    ema_model = medsynth.DiffusionModel.load(tmp_path / "ema.safetensors")
    raw_model = medsynth.DiffusionModel.load(tmp_path / "raw.safetensors")
    np.testing.assert_array_equal(ema_model.predict_noise(x, 100, 0), model.predict_noise(x, 100, 0))
    np.testing.assert_array_equal(raw_model.predict_noise(x, 100, 0), model.predict_noise(x, 100, 0, use_ema=False))
    assert not np.array_equal(ema_model.predict_noise(x, 100, 0), raw_model.predict_noise(x, 100, 0))
    with pytest.raises(ValueError, match="weights must be 'both', 'ema' or 'raw'"):
        model.save(tmp_path / "x.safetensors", weights="EMA")
    with pytest.raises(ValueError, match="has no EMA weights"):
        raw_model.save(tmp_path / "y.safetensors", weights="ema")
