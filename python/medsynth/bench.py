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
                                   attention_resolutions=(16,), prediction="epsilon", seed=0)   # torch_ref.py's target


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
              grad_clip=0, p_uncond=0, min_snr_gamma=0, progress=False, callback=lambda info: stamps.append(time.perf_counter()))
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
    run = lambda: model.sample(labels=np.arange(batch) % 4, sampler="ddim", eta=0.0, steps=steps, guidance_scale=1.0, clip=False,
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


#: One process of zoo_memory: zoo_train's steps for one architecture, then the peak resident set
#: (ru_maxrss, KiB on Linux) above the one after importing medsynth and drawing the batch.
_MEMORY_PROBE = """
import resource, sys, numpy as np, medsynth
x = np.random.default_rng(0).standard_normal((96, 3, 64, 64), dtype=np.float32); y = np.arange(96) % 4
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
medsynth.Classifier(sys.argv[1], num_classes=4, in_channels=3, image_size=64).fit(
    x, y, epochs=1, batch_size=32, lr=1e-3, progress=False, data_format="channels_first")
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
"""


def zoo_memory_workload(architectures=ZOO) -> dict:
    """Peak memory of zoo_train's training (three steps, batch 32, 3x64x64, AdamW) of each CNN,
    each in a fresh process: MiB of resident memory above the process's own before the model
    exists (weights, gradients, optimiser state, activations and the engine's buffer cache)."""
    import subprocess

    out = {"workload": "zoo_memory", "unit": "MiB above import"}
    for arch in architectures:
        done = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, arch], capture_output=True, text=True, check=True)
        out[arch] = round(float(done.stdout.split()[-1]), 1)
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


def phantoms_workload(size: int = 128) -> dict:
    """Phantom generation (medsynth.datasets.phantom, with masks) at 128 px: each domain generated
    whole, at the paper's Table 1 counts, once (after a small warm-up call). Reports the wall
    seconds (issue 9 asks for under 30 s per domain) and the process CPU seconds (all threads; on a
    machine shared with other jobs the wall time depends on their load, the CPU time does not),
    and the images per second of each."""
    out = {"workload": "phantoms", "size": size, "images": {}, "table1_seconds": {}, "table1_cpu_seconds": {},
           "images_per_s": {}, "images_per_cpu_s": {}}
    for domain, info in medsynth.datasets.PHANTOM_DOMAINS.items():
        medsynth.datasets.phantom(domain, 2, size, return_masks=True)
        n = sum(info["default_counts"])
        wall, cpu = time.perf_counter(), time.process_time()
        medsynth.datasets.phantom(domain, None, size, return_masks=True)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        out["images"][domain] = n
        out["table1_seconds"][domain] = round(wall, 2)
        out["table1_cpu_seconds"][domain] = round(cpu, 2)
        out["images_per_s"][domain] = round(n / wall, 1)
        out["images_per_cpu_s"][domain] = round(n / cpu, 1)
    return out


#: The difficulty measurement of issue 9: a ResNet-18 trained from scratch with AdamW (the
#: paper's optimiser; lr 1e-3, weight decay 1e-2, cosine schedule, batch 32, no augmentation) on
#: a stratified 80 % of `per_class` phantoms per class at 64 px, scored on the held-out 20 %.
DIFFICULTY = {"architecture": "resnet18", "size": 64, "per_class": 1000, "train_size": 0.8, "epochs": 4,
              "batch_size": 32, "lr": 1e-3, "schedule": "cosine", "seed": 0}
#: The accuracy band the phantoms are tuned to: learnable, but not trivially.
DIFFICULTY_BAND = (0.85, 0.98)


def phantom_difficulty_workload(domains=None, **overrides) -> dict:
    """How hard each phantom domain is: held-out accuracy of ``DIFFICULTY``'s ResNet-18 (per-class
    recall, confusion matrix, last-epoch training accuracy, wall and CPU seconds), and whether it
    lies in ``DIFFICULTY_BAND``. Minutes per domain on two cores."""
    from medsynth.model_selection import stratified_split

    recipe = {**DIFFICULTY, **overrides}
    out = {"workload": "phantom_difficulty", **recipe, "band": list(DIFFICULTY_BAND), "domains": {}}
    for domain in domains or list(medsynth.datasets.PHANTOM_DOMAINS):
        X, y, names = medsynth.datasets.phantom(domain, recipe["per_class"], recipe["size"], seed=recipe["seed"])
        train, test = stratified_split(y, train_size=recipe["train_size"], seed=recipe["seed"])
        wall, cpu = time.perf_counter(), time.process_time()
        model = medsynth.Classifier(recipe["architecture"], seed=recipe["seed"])
        model.fit(X[train], y[train], epochs=recipe["epochs"], batch_size=recipe["batch_size"], lr=recipe["lr"],
                  schedule=recipe["schedule"], progress=False)
        predicted = model.predict(X[test])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        k = len(names)
        confusion = np.zeros((k, k), dtype=int)
        np.add.at(confusion, (y[test], predicted), 1)
        accuracy = float(np.trace(confusion) / confusion.sum())
        out["domains"][domain] = {
            "accuracy": round(accuracy, 4), "in_band": DIFFICULTY_BAND[0] <= accuracy <= DIFFICULTY_BAND[1],
            "recall": {name: round(float(confusion[i, i] / confusion[i].sum()), 3) for i, name in enumerate(names)},
            "confusion": confusion.tolist(), "classes": names, "train": len(train), "test": len(test),
            "train_accuracy": round(float(model.history_["epochs"][-1]["train_accuracy"]), 4),
            "seconds": round(wall, 1), "cpu_seconds": round(cpu, 1)}
    return out


# ---- fidelity: the paper's protocol at a fixed CPU budget ----------------------------------------

#: Domains of the fidelity benchmark: (phantom domain of medsynth.datasets.phantom, channels);
#: the first two classes of each.
FIDELITY_DOMAINS = {"gray": ("covid_ct", 1), "rgb": ("all", 3)}
#: Samplers compared for noise: (name, sample() options). The first is the library's default
#: (dpm_solver++_sde, 20 steps, Karras spacing); DDPM's 1000 steps are left out for time (issue 13
#: measured them: 0 % noisy).
FIDELITY_SAMPLERS = [
    ("default (dpm_solver++_sde 20)", {}),
    ("dpm_solver++_sde 50", {"sampler": "dpm_solver++_sde", "steps": 50}),
    ("dpm_solver++ 20", {"sampler": "dpm_solver++", "steps": 20}),
    ("ddim 50", {"sampler": "ddim", "steps": 50}),
    ("ddim eta=1 50", {"sampler": "ddim", "steps": 50, "eta": 1.0}),
]


def fidelity_data(domain: str, size: int, n_per_class: int, seed: int = 0):
    """(X uint8, y, source) of a fidelity domain: the first two classes of its phantom."""
    name, _ = FIDELITY_DOMAINS[domain]
    classes = medsynth.datasets.PHANTOM_DOMAINS[name]["classes"]
    X, y = medsynth.datasets.phantom(name, {c: n_per_class for c in classes[:2]}, image_size=size, seed=seed)[:2]
    X = np.rint(np.clip(np.asarray(X), 0, 1) * 255).astype(np.uint8)
    return X, np.unique(y, return_inverse=True)[1], f"phantom {name}"


def _judge_accuracy(train_x, train_y, test_x, test_y, seed: int = 0) -> float:
    """Accuracy on (test_x, test_y) of the demo's simple_cnn trained on (train_x, train_y)."""
    clf = medsynth.Classifier("simple_cnn", seed=seed)
    clf.fit(train_x, train_y, epochs=10, batch_size=32, lr=2e-3, schedule="cosine", validation_split=0.1,
            early_stopping_patience=3, progress=False)
    return float(np.mean(clf.predict(test_x) == test_y))


def fidelity_workload(domains=("gray", "rgb"), size: int = 28, n_per_class: int = 1583, train_steps: int = 1200,
                      per_class_noise: int = 32, synthetic_per_class: int = 300, samplers=None, seed: int = 0) -> list:
    """The paper's protocol on each domain: a stratified 20 % sample trains the diffusion model
    (library defaults, ``train_steps`` steps); each sampler generates ``per_class_noise`` images
    per class, judged by the quality gate (share of noisy images); the default sampler generates
    ``synthetic_per_class`` per class, whose class fidelity a CNN trained on the held-out 80 %
    judges, and on which a CNN is trained and tested on the held-out 80 %, next to the same CNN
    trained on the real 20 % sample."""
    from . import quality
    from .model_selection import stratified_split

    results = []
    for domain in domains:
        X, y, source = fidelity_data(domain, size, n_per_class, seed)
        sample, held = stratified_split(y, train_size=0.2, seed=seed)
        row = {"workload": "fidelity", "domain": domain, "data": source, "image_size": size,
               "real_sample": len(sample), "held_out": len(held), "train_steps": train_steps}
        start = time.perf_counter()
        model = medsynth.DiffusionModel(seed=seed)
        model.fit(X[sample], y[sample], steps=train_steps, progress=False)
        row["train_seconds"] = round(time.perf_counter() - start, 1)
        row["prediction"] = model.config["prediction"]
        row["sampling"] = {}
        for name, options in (samplers or FIDELITY_SAMPLERS):
            start = time.perf_counter()
            images, labels = model.sample(n_per_class=per_class_noise, seed=seed, progress=False, **options)
            seconds = time.perf_counter() - start
            report = quality.check(X[sample], images, y[sample], labels, warn=False)
            row["sampling"][name] = {"noisy": round(report["noisy_fraction"], 3), "smooth": round(report["smooth_fraction"], 3),
                                     "histogram_distance": round(report["histogram_distance"], 3),
                                     "seconds_per_image": round(seconds / len(images), 3)}
        start = time.perf_counter()
        synthetic, synthetic_labels = model.sample(n_per_class=synthetic_per_class, seed=seed + 1, progress=False)
        row["synthetic_seconds"] = round(time.perf_counter() - start, 1)
        report = quality.check(X[sample], synthetic, y[sample], synthetic_labels, warn=False)
        row["synthetic_noisy"] = round(report["noisy_fraction"], 3)
        row["class_fidelity"] = round(_judge_accuracy(X[held], y[held], synthetic, synthetic_labels, seed), 3)
        row["accuracy_synthetic_only"] = round(_judge_accuracy(synthetic, synthetic_labels, X[held], y[held], seed), 3)
        row["accuracy_real_sample"] = round(_judge_accuracy(X[sample], y[sample], X[held], y[held], seed), 3)
        results.append(row)
    return results


#: Samplers of the sampling workload (docs/sampling.md's table): (name, sample() options).
SAMPLING_SAMPLERS = FIDELITY_SAMPLERS + [
    ("ddim 250", {"sampler": "ddim", "steps": 250}),
    ("dpm_solver++ 20 karras", {"sampler": "dpm_solver++", "steps": 20, "spacing": "karras"}),
    ("dpm_solver++_sde 10", {"sampler": "dpm_solver++_sde", "steps": 10}),
    ("dpm_solver++_sde 20 linspace", {"sampler": "dpm_solver++_sde", "steps": 20, "spacing": "linspace"}),
    ("ddpm", {"sampler": "ddpm"}),
]
#: Timesteps at which the sampling workload measures the model's error.
ERROR_TIMESTEPS = (0, 5, 10, 20, 50, 100, 200, 400, 700, 950)


def sampling_workload(domain: str = "gray", size: int = 28, n_per_class: int = 1583, train_steps: int = 1200,
                      per_class: int = 16, prediction=None, fit_options=None, samplers=None, seed: int = 0) -> dict:
    """Issue 13's measurement (docs/sampling.md): a model trained as in the fidelity workload;
    its error against t (the MSE of the predicted noise, and the high-frequency energy of the
    one-shot x0 prediction over the real images') and each sampler's shares of noisy and smooth
    images by the quality gate. Tens of minutes with DDPM in the list. ``prediction`` and
    ``fit_options`` (keyword arguments of fit) override the library's defaults."""
    from . import quality
    from ._core import to_nchw
    from .model_selection import stratified_split

    X, y, source = fidelity_data(domain, size, n_per_class, seed)
    sample, _ = stratified_split(y, train_size=0.2, seed=seed)
    X, y = X[sample], y[sample]
    model = medsynth.DiffusionModel(seed=seed, prediction=prediction)
    start = time.perf_counter()
    model.fit(X, y, steps=train_steps, progress=False, **(fit_options or {}))
    out = {"workload": "sampling", "domain": domain, "data": source, "image_size": size, "train_images": len(X),
           "train_steps": train_steps, "prediction": model.config["prediction"], "fit_options": fit_options or {},
           "train_seconds": round(time.perf_counter() - start, 1),
           "error_vs_t": {}, "sampling": {}}
    rng = np.random.default_rng(seed + 1)
    pick = rng.choice(len(X), min(64, len(X)), replace=False)
    x0 = to_nchw(X[pick], name="X") * 2 - 1
    real_energy = quality.laplacian_energy((x0 + 1) / 2, data_range=(0, 1)).mean()
    alpha_bar = np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))   # the default linear schedule
    for t in ERROR_TIMESTEPS:
        eps = rng.standard_normal(x0.shape).astype(np.float32)
        x_t = (np.sqrt(alpha_bar[t]) * x0 + np.sqrt(1 - alpha_bar[t]) * eps).astype(np.float32)
        predicted = model.model_output(x_t, t, labels=model.classes_[y[pick]], output="epsilon")
        x0_hat = (x_t - np.sqrt(1 - alpha_bar[t]) * predicted) / np.sqrt(alpha_bar[t])
        energy = quality.laplacian_energy(np.clip((x0_hat + 1) / 2, 0, 1), data_range=(0, 1)).mean()
        out["error_vs_t"][t] = {"eps_mse": round(float(np.mean((predicted - eps) ** 2)), 4),
                                "x0_energy_ratio": round(float(energy / real_energy), 2)}
    for name, options in (samplers or SAMPLING_SAMPLERS):
        start = time.perf_counter()
        images, labels = model.sample(n_per_class=per_class, seed=seed, progress=False, quality="off", **options)
        report = quality.check(X, images, y, labels, warn=False)
        out["sampling"][name] = {"noisy": round(report["noisy_fraction"], 3), "smooth": round(report["smooth_fraction"], 3),
                                 "energy_ratio": round(report["laplacian"]["synthetic_mean"] / report["laplacian"]["real_mean"], 2),
                                 "seconds": round(time.perf_counter() - start, 1)}
    return out


WORKLOADS = {"conv": conv_workload, "unet_train": unet_train_workload, "ddim_sample": ddim_sample_workload,
             "resnet18_train": resnet18_train_workload, "zoo_infer": zoo_infer_workload, "zoo_train": zoo_train_workload, "zoo_memory": zoo_memory_workload, "lime": lime_workload,
             "phantoms": phantoms_workload, "phantom_difficulty": phantom_difficulty_workload,
             "fidelity": fidelity_workload, "sampling": sampling_workload}
#: Workloads left out when none is named (each takes many minutes).
SLOW = ("phantom_difficulty", "fidelity", "sampling")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workloads", nargs="*", default=[w for w in WORKLOADS if w not in SLOW],
                        help=f"any of {', '.join(WORKLOADS)} (default: all but {', '.join(SLOW)})")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    unknown = [w for w in args.workloads if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; available: {', '.join(WORKLOADS)}")
    for name in args.workloads:
        outcome = WORKLOADS[name]()
        for result in outcome if isinstance(outcome, list) else [outcome]:
            result["threads"] = medsynth.get_num_threads()
            if args.json:
                print(json.dumps(result), flush=True)
            else:
                print(name, json.dumps(result, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
