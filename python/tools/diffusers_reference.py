"""Writes the reference numbers python/tests/test_interop.py checks medsynth against: a small
medsynth U-Net's EMA weights (saved with ``weights="ema"``), loaded with ``strict=True`` into
../shared/bench/torch_ref.py's PyTorch U-Net of the same layout, run there on fixed inputs, and
sampled with diffusers' own schedulers from fixed noise.

Run it in a virtual environment that has torch, diffusers and safetensors (never a dependency of
medsynth), with this checkout's medsynth on the path:

    PYTHONPATH=python /path/to/ref-venv/bin/python python/tools/diffusers_reference.py \
        --torch-ref ../shared/bench/torch_ref.py [--out python/tests/data]

It prints the largest difference between medsynth and PyTorch/diffusers for each check.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
from unittest import mock

import numpy as np

import medsynth

#: The tiny model: torch_ref's layout at 16 px (base 8, multipliers 1, 2, attention at 8, 2 classes).
MODEL = dict(image_size=16, in_channels=1, num_classes=2, base_channels=8, channel_multipliers=(1, 2),
             attention_resolutions=(8,), seed=0, data_range=(0.0, 1.0))
#: (name, medsynth sample options, diffusers scheduler, scheduler kwargs, step kwargs)
SAMPLERS = [
    ("ddim_leading_eta0_clip", dict(sampler="ddim", steps=10, eta=0.0, clip=True), "DDIMScheduler", {},
     dict(eta=0.0, use_clipped_model_output=True)),
    ("ddim_trailing_eta1_noclip", dict(sampler="ddim", steps=10, eta=1.0, clip=False, spacing="trailing"), "DDIMScheduler",
     dict(timestep_spacing="trailing", clip_sample=False), dict(eta=1.0, use_clipped_model_output=True)),
    ("ddim_linspace_eta0_clip", dict(sampler="ddim", steps=10, eta=0.0, clip=True, spacing="linspace"), "DDIMScheduler",
     dict(timestep_spacing="linspace"), dict(eta=0.0, use_clipped_model_output=True)),
    ("dpm_solver_linspace", dict(sampler="dpm_solver++", steps=10, clip=False), "DPMSolverMultistepScheduler", {}, {}),
    ("dpm_solver_leading", dict(sampler="dpm_solver++", steps=10, clip=False, spacing="leading"), "DPMSolverMultistepScheduler",
     dict(timestep_spacing="leading"), {}),
    ("ddpm_10_leading_clip", dict(sampler="ddpm", steps=10, clip=True), "DDPMScheduler", {}, {}),
    ("dpm_solver_karras", dict(sampler="dpm_solver++", steps=10, clip=False, spacing="karras"), "DPMSolverMultistepScheduler",
     dict(use_karras_sigmas=True), {}),
    ("dpm_solver_log_snr", dict(sampler="dpm_solver++", steps=10, clip=False, spacing="log_snr"), "DPMSolverMultistepScheduler",
     dict(use_lu_lambdas=True), {}),
    ("dpm_solver_sde_karras", dict(sampler="dpm_solver++_sde", steps=10, clip=False), "DPMSolverMultistepScheduler",
     dict(algorithm_type="sde-dpmsolver++", use_karras_sigmas=True), {}),
    ("dpm_solver_sde_linspace", dict(sampler="dpm_solver++_sde", steps=10, clip=False, spacing="linspace"),
     "DPMSolverMultistepScheduler", dict(algorithm_type="sde-dpmsolver++"), {}),
]
GUIDANCE = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--torch-ref", required=True, help="path of torch_ref.py (its UNet class)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data"))
    args = parser.parse_args()
    import diffusers
    import torch
    from safetensors.torch import load_file

    torch.set_num_threads(2)
    spec = importlib.util.spec_from_file_location("torch_ref", args.torch_ref)
    torch_ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(torch_ref)

    # a medsynth model with distinct raw and EMA weights
    X, y = medsynth.datasets.make_shapes(n_per_class=16, num_classes=2, size=16, seed=3)
    model = medsynth.DiffusionModel(**MODEL)
    model.fit(X, y, steps=40, batch_size=8, lr=1e-3, ema_decay=0.9, progress=False)
    weights = os.path.join(args.out, "tiny_unet_ema.safetensors")
    model.save(weights, weights="ema")

    # the PyTorch copy loads the EMA-only file strictly
    net = torch_ref.UNet(cin=1, ch=8, mult=(1, 2), attn_res=(8,), res=16, ncls=2).eval()
    net.load_state_dict(load_file(weights), strict=True)

    rng = np.random.default_rng(0)
    x_t = rng.standard_normal((4, 1, 16, 16)).astype(np.float32)
    t = np.array([0, 250, 500, 999])
    labels = np.array([0, 1, 1, 0])
    null = np.full(4, 2)
    with torch.no_grad():
        eps = net(torch.from_numpy(x_t), torch.from_numpy(t), torch.from_numpy(labels)).numpy()
        eps_null = net(torch.from_numpy(x_t), torch.from_numpy(t), torch.from_numpy(null)).numpy()
    reference = {"x_t": x_t, "t": t, "labels": labels, "eps": eps, "eps_uncond": eps_null}
    report = {"forward": float(np.abs(model.predict_noise(x_t, t, labels) - eps).max()),
              "forward_uncond": float(np.abs(model.predict_noise(x_t, t) - eps_null).max())}

    x_T = rng.standard_normal((4, 1, 16, 16)).astype(np.float32)
    z = rng.standard_normal((10, 4, 1, 16, 16)).astype(np.float32)
    reference.update(x_T=x_T, z=z)

    def guided(x, step):
        with torch.no_grad():
            ts = torch.full((4,), int(step))
            c = net(x, ts, torch.from_numpy(labels))
            u = net(x, ts, torch.from_numpy(null))
        return u + GUIDANCE * (c - u)

    for name, ours, scheduler_name, config, step_kwargs in SAMPLERS:
        scheduler = getattr(diffusers, scheduler_name)(**config)
        scheduler.set_timesteps(10)
        x = torch.from_numpy(x_T)
        queue = [torch.from_numpy(z[k]) for k in range(10)]
        fake_randn = lambda *a, **k: queue_noise.pop(0)
        for k, step in enumerate(scheduler.timesteps):
            extra = dict(step_kwargs)
            if scheduler_name == "DDIMScheduler" and extra.get("eta", 0) > 0:
                extra["variance_noise"] = torch.from_numpy(z[k])
            if config.get("algorithm_type", "").startswith("sde"):
                extra["variance_noise"] = torch.from_numpy(z[k])
            queue_noise = [torch.from_numpy(z[k])]
            with mock.patch("diffusers.schedulers.scheduling_ddpm.randn_tensor", fake_randn):
                x = scheduler.step(guided(x, step), step, x, **extra).prev_sample
        final = x.numpy()
        images, _ = model.sample(labels=labels, noise=x_T, step_noise=z, guidance_scale=GUIDANCE, clamp_output=False,
                                 output="float", progress=False, **ours)
        reference[f"timesteps_{name}"] = scheduler.timesteps.numpy()
        reference[f"sample_{name}"] = final
        ms_timesteps = model.timesteps(**{k: v for k, v in ours.items() if k in ("sampler", "steps", "spacing")})
        report[name] = {"max_abs_diff": float(np.abs(images - ((final[:, 0] + 1) / 2)).max()),
                        "same_timesteps": bool(np.array_equal(ms_timesteps, scheduler.timesteps.numpy()))}
    np.savez_compressed(os.path.join(args.out, "diffusers_reference.npz"), **reference)
    report["versions"] = {"torch": torch.__version__, "diffusers": diffusers.__version__}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
