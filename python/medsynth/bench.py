"""Benchmarks: ``python -m medsynth.bench WORKLOAD [WORKLOAD ...] [--json]``.

Workloads follow ../shared/bench/WORKLOADS.md (torch_ref.py there is the same work in PyTorch;
compare the two side by side on the same machine, as ratios). Timings belong here, never in tests.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

import medsynth
from medsynth import ops


def timeit(fn, warm: int = 1, min_seconds: float = 2.0, min_runs: int = 3) -> float:
    """Seconds per call: warm-up calls, then calls until both limits are passed."""
    for _ in range(warm):
        fn()
    runs, start = 0, time.perf_counter()
    while True:
        fn()
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and runs >= min_runs:
            return elapsed / runs


#: The 3x3 convolutions of the reference U-Net (torch_ref.py UNet: base 32, mults 1,2,4), as
#: (in channels, out channels, input side, stride), at batch 16.
UNET_CONVS = [
    (1, 32, 64, 1), (32, 32, 64, 1), (32, 32, 64, 1), (32, 32, 64, 2),
    (32, 64, 32, 1), (64, 64, 32, 1), (64, 64, 32, 2),
    (64, 128, 16, 1), (128, 128, 16, 1),
    (128, 128, 16, 1), (128, 128, 16, 1), (128, 128, 16, 1), (128, 128, 16, 1),
    (256, 128, 16, 1), (128, 128, 16, 1), (192, 128, 16, 1), (128, 128, 16, 1), (128, 128, 32, 1),
    (192, 64, 32, 1), (64, 64, 32, 1), (96, 64, 32, 1), (64, 64, 32, 1), (64, 64, 64, 1),
    (96, 32, 64, 1), (32, 32, 64, 1), (64, 32, 64, 1), (32, 32, 64, 1), (32, 1, 64, 1),
]


def conv_workload(batch: int = 16) -> dict:
    """conv2d forward + backward (input, weight and bias gradients) over the U-Net's 3x3 shapes."""
    rng = np.random.default_rng(0)
    total_flops, total_seconds, per_shape = 0.0, 0.0, {}
    for cin, cout, side, stride in sorted(set(UNET_CONVS)):
        count = UNET_CONVS.count((cin, cout, side, stride))
        x = rng.standard_normal((batch, cin, side, side), dtype=np.float32)
        w = rng.standard_normal((cout, cin, 3, 3), dtype=np.float32) * 0.1
        b = np.zeros(cout, np.float32)
        out_side = (side + 2 - 3) // stride + 1
        dy = rng.standard_normal((batch, cout, out_side, out_side), dtype=np.float32)
        y = np.empty_like(dy)
        dx, dw, db = np.empty_like(x), np.empty_like(w), np.empty_like(b)

        def step():
            medsynth._engine.conv2d_forward(x, w, b, stride, 1, 1, 1, y)
            medsynth._engine.conv2d_backward(x, w, dy, stride, 1, 1, 1, dx, dw, db)

        seconds = timeit(step, min_seconds=0.5)
        flops = 3 * 2.0 * batch * cout * out_side * out_side * cin * 9   # forward, input and weight gradients
        per_shape[f"{cin}->{cout}@{side}/s{stride}"] = round(flops / seconds / 1e9, 1)
        total_flops += flops * count
        total_seconds += seconds * count
    n = 2048
    a = rng.standard_normal((n, n), dtype=np.float32)
    sgemm = 2.0 * n ** 3 / timeit(lambda: ops.matmul(a, a), min_seconds=1.0) / 1e9
    gflops = total_flops / total_seconds / 1e9
    return {"workload": "conv", "gflops": round(gflops, 1), "sgemm_gflops": round(sgemm, 1),
            "fraction_of_sgemm": round(gflops / sgemm, 3), "ms_per_unet_pass": round(total_seconds * 1e3, 1),
            "per_shape": per_shape}


def _reference_unet():
    """torch_ref.py's U-Net: 64x64 gray, base 32, multipliers (1, 2, 4), attention at 16, 4 classes."""
    return medsynth.DiffusionModel(64, in_channels=1, num_classes=4, base_channels=32, channel_multipliers=(1, 2, 4),
                                   attention_resolutions=(16,), seed=0)


def unet_train_workload(batch: int = 16, steps: int = 12, warm: int = 2) -> dict:
    """One DDPM training step of the reference U-Net at batch 16 (forward, backward, AdamW), as
    torch_ref.py: no EMA, no clipping, no label dropout. Timed between progress callbacks."""
    rng = np.random.default_rng(0)
    model = _reference_unet()
    x = rng.random((batch * 4, 64, 64), dtype=np.float32)
    y = np.arange(batch * 4) % 4
    stamps = []
    medsynth._engine.memory_reset_peak()
    model.fit(x, y, steps=warm + steps, batch_size=batch, lr=2e-4, warmup_steps=0, lr_schedule="constant", ema_decay=0,
              grad_clip=0, p_uncond=0, progress=False, callback=lambda info: stamps.append(time.perf_counter()))
    per_step = np.diff(stamps[warm:])
    return {"workload": "unet_train", "ms_per_step": round(float(np.median(per_step)) * 1e3, 1),
            "ms_per_step_mean": round(float(np.mean(per_step)) * 1e3, 1), "params": model.n_parameters,
            "peak_engine_mib": round(medsynth.memory_stats()["peak_bytes"] / 2**20, 1)}


def ddim_sample_workload(batch: int = 16, steps: int = 50) -> dict:
    """50 DDIM steps (eta 0) of the reference U-Net, batch 16, class-conditional, no guidance and no
    clipping (as torch_ref.py)."""
    model = _reference_unet()
    model.fit(np.random.default_rng(0).random((4, 64, 64), dtype=np.float32), np.arange(4), steps=1, batch_size=4,
              ema_decay=0, progress=False)   # a model that has seen one step (sampling cost does not depend on weights)
    run = lambda: model.sample(labels=np.arange(batch) % 4, steps=steps, guidance_scale=1.0, clip=False,
                               batch_size=batch, use_ema=False, progress=False)
    seconds = timeit(run, warm=1, min_seconds=1.0, min_runs=2)
    return {"workload": "ddim_sample", "s_per_batch": round(seconds, 2), "images_per_s": round(batch / seconds, 3)}


#: The paper's eight CNNs (torch_ref.py's ZOO; GoogLeNet without its auxiliary heads).
ZOO = ["resnet18", "resnet50", "vgg16", "vgg19", "alexnet", "densenet121", "mobilenet_v2", "googlenet"]


def zoo_infer_workload(batch: int = 32) -> dict:
    """Evaluation-mode forward of each CNN, 4 classes, 3x64x64, batch 32: images per second."""
    x = np.random.default_rng(0).standard_normal((batch, 3, 64, 64), dtype=np.float32)
    out = {"workload": "zoo_infer"}
    for arch in ZOO:
        model = medsynth.Classifier(arch, num_classes=4, in_channels=3, image_size=64)
        seconds = timeit(lambda: model.predict_proba(x, batch_size=batch, data_format="channels_first"), min_seconds=1.0)
        out[arch] = round(batch / seconds, 1)
    return out


def zoo_train_workload(batch: int = 32, steps: int = 4, warm: int = 1, architectures=ZOO) -> dict:
    """One training step of each CNN (train mode, cross-entropy, AdamW lr 1e-3: forward, backward,
    optimiser step), 4 classes, 3x64x64, batch 32: images per second, timed between progress
    callbacks (the median step after `warm`)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch * (warm + steps), 3, 64, 64), dtype=np.float32)
    y = np.arange(len(x)) % 4
    out = {"workload": "zoo_train"}
    for arch in architectures:
        stamps = []
        model = medsynth.Classifier(arch, num_classes=4, in_channels=3, image_size=64)
        model.fit(x, y, epochs=1, batch_size=batch, lr=1e-3, progress=False, data_format="channels_first",
                  callback=lambda info: stamps.append(time.perf_counter()) if info.get("phase") == "train" else None)
        out[arch] = round(batch / float(np.median(np.diff(stamps[warm:]))), 1)
    return out


def resnet18_train_workload() -> dict:
    """torch_ref.py's resnet18_train: zoo_train's ResNet-18 step (4 classes, 3x64x64, batch 32, AdamW)."""
    return {"workload": "resnet18_train", "images_per_s": zoo_train_workload(architectures=["resnet18"])["resnet18"]}


#: The model the lime workload explains: a 4-class ResNet-18, as torch_ref.py's.
LIME_ARCHITECTURE = "resnet18"


def lime_workload(architecture: str = LIME_ARCHITECTURE, num_samples: int = 1000, batch_size: int = 100) -> dict:
    """One LIME explanation of a 64x64x3 image (torch_ref.py: uniform noise, seed 0) for a 4-class
    classifier: quickshift with lime's defaults, 1000 samples in batches of 100, ridge fit; the
    whole ``medsynth.lime.explain`` call, segmentation included. Also the segmentation alone."""
    rng = np.random.default_rng(0)
    image = rng.random((64, 64, 3))
    model = medsynth.Classifier(architecture, seed=0)
    model.fit(rng.random((8, 64, 64, 3), dtype=np.float32), np.arange(8) % 4, epochs=1, batch_size=8, progress=False)
    run = lambda: medsynth.lime.explain(model, image, num_samples=num_samples, batch_size=batch_size, seed=0)
    seconds = timeit(run, warm=1, min_seconds=3.0, min_runs=3)
    segmentation = timeit(lambda: medsynth.segmentation.quickshift(image), warm=1, min_seconds=1.0)
    explanation = run()
    return {"workload": "lime", "s_per_explanation": round(seconds, 3), "architecture": architecture,
            "s_segmentation": round(segmentation, 4), "superpixels": explanation.num_superpixels,
            "num_samples": num_samples, "batch_size": batch_size}


def phantoms_workload(size: int = 128, per_class: int = 100) -> dict:
    """Phantom generation (medsynth.datasets.phantom, with masks) at 128 px: images per second per
    domain, and the seconds a whole domain at the paper's Table 1 counts takes at that rate."""
    rates, table1 = {}, {}
    for domain, info in medsynth.datasets.PHANTOM_DOMAINS.items():
        seconds = timeit(lambda: medsynth.datasets.phantom(domain, per_class, size, return_masks=True), min_seconds=2.0, min_runs=2)
        rate = per_class * len(info["classes"]) / seconds
        rates[domain] = round(rate, 1)
        table1[domain] = round(sum(info["default_counts"]) / rate, 1)
    return {"workload": "phantoms", "size": size, "images_per_s": rates, "table1_seconds": table1}


WORKLOADS = {"conv": conv_workload, "unet_train": unet_train_workload, "ddim_sample": ddim_sample_workload,
             "resnet18_train": resnet18_train_workload, "zoo_infer": zoo_infer_workload, "zoo_train": zoo_train_workload, "lime": lime_workload,
             "phantoms": phantoms_workload}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workloads", nargs="*", default=list(WORKLOADS), help=f"any of {', '.join(WORKLOADS)}")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    unknown = [w for w in args.workloads if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; available: {', '.join(WORKLOADS)}")
    for name in args.workloads:
        result = WORKLOADS[name]()
        result["threads"] = medsynth.get_num_threads()
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            print(name, json.dumps(result, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
