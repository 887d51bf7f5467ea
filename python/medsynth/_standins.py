"""Stand-ins for the phantom domains (medsynth.datasets.phantom, written on another branch) so that
the fidelity benchmark runs before they land: a gray chest-X-ray-like set (normal / pneumonia) and
an RGB blood-smear-like set (hematogone / lymphoblast), drawn in numpy at 4x the size and
area-averaged down, with per-image pose, exposure and texture."""
from __future__ import annotations

import numpy as np


def _smooth_noise(rng, n: int, size: int, scale: float) -> np.ndarray:
    """Gaussian-filtered white noise (FFT), unit standard deviation per image."""
    z = rng.standard_normal((n, size, size))
    f = np.fft.fftfreq(size)
    g = np.exp(-2 * (np.pi * scale) ** 2 * (f[:, None] ** 2 + f[None, :] ** 2))
    out = np.fft.ifft2(np.fft.fft2(z) * g).real
    return out / (out.std(axis=(1, 2), keepdims=True) + 1e-8)


def chest_xray(n_per_class: int = 300, size: int = 28, seed: int = 0):
    """(X uint8 (n, size, size), y): class 0 normal, 1 pneumonia (patchy opacities in the lungs)."""
    rng = np.random.default_rng(seed)
    R, n = size * 4, 2 * n_per_class
    y = np.repeat([0, 1], n_per_class)
    yy, xx = np.meshgrid(np.linspace(-1, 1, R), np.linspace(-1, 1, R), indexing="ij")
    images = np.empty((n, R, R), np.float32)
    texture, cloud = _smooth_noise(rng, n, R, R / 40), _smooth_noise(rng, n, R, R / 10)
    for i in range(n):
        s = 1 + 0.06 * rng.standard_normal()
        dx, dy = 0.05 * rng.standard_normal(2)
        rot = 0.06 * rng.standard_normal()
        X = ((xx - dx) * np.cos(rot) - (yy - dy) * np.sin(rot)) / s
        Y = ((xx - dx) * np.sin(rot) + (yy - dy) * np.cos(rot)) / s
        body = 1 / (1 + np.exp(-(0.92 - np.abs(X) ** 1.5 * 1.1) * 25))
        img = 0.55 * body + 0.15
        lungs = np.zeros_like(X)
        for side in (-1, 1):
            cx = side * (0.42 + 0.03 * rng.standard_normal())
            w, h = 0.30 + 0.02 * rng.standard_normal(), 0.62 + 0.04 * rng.standard_normal()
            d = ((X - cx) / w) ** 2 + ((Y + 0.02) / h) ** 2
            lungs = np.maximum(lungs, 1 / (1 + np.exp((d - 1) * 12)))
        heart = 1 / (1 + np.exp((((X + 0.12) / 0.28) ** 2 + ((Y - 0.32) / 0.25) ** 2 - 1) * 10))
        field = lungs * (1 - 0.8 * heart)
        img -= 0.38 * field
        img += 0.04 * texture[i] * field                                     # vessels, parenchyma
        ribs = np.clip(np.sin((Y + 0.25 * X ** 2) * 22 + rng.uniform(0, 2 * np.pi)), 0, 1) ** 3
        img += 0.07 * ribs * field
        img += 0.12 * np.exp(-(X / 0.09) ** 2) * (1 - field)                  # spine, mediastinum
        img += 0.1 * (1 / (1 + np.exp(-(Y - 0.62 - 0.1 * X ** 2) * 20))) * body  # diaphragm
        if y[i] == 1:                                                        # opacities, lower zones favoured
            mask = (cloud[i] > 0.4 + 0.3 * rng.random()).astype(np.float32)
            zone = 1 / (1 + np.exp(-(Y + 0.1 * rng.standard_normal()) * 4))
            if rng.random() < 0.5:
                zone *= (X * (1 if rng.random() < 0.5 else -1) > 0)
            img += (0.18 + 0.08 * rng.random()) * mask * zone * field
        img = np.clip(img, 0, 1) ** np.exp(0.15 * rng.standard_normal()) * (0.9 + 0.2 * rng.random())
        images[i] = img + 0.03 * rng.standard_normal(img.shape)              # quantum noise
    small = np.clip(images.reshape(n, size, 4, size, 4).mean(axis=(2, 4)), 0, 1)
    return np.rint(small * 255).astype(np.uint8), y


def blood_smear(n_per_class: int = 300, size: int = 28, seed: int = 0):
    """(X uint8 (n, size, size, 3), y): a white cell among red cells; class 0 hematogone (small
    round nucleus, condensed dark chromatin), 1 lymphoblast (large nucleus, fine chromatin,
    nucleoli, scant blue cytoplasm)."""
    rng = np.random.default_rng(seed)
    R, n = size * 4, 2 * n_per_class
    y = np.repeat([0, 1], n_per_class)
    yy, xx = np.meshgrid(np.arange(R) + 0.5, np.arange(R) + 0.5, indexing="ij")
    chromatin = _smooth_noise(rng, n, R, R / 60)
    images = np.empty((n, R, R, 3), np.float32)
    unit = R / 28                                           # one red cell is about 7 units across
    for i in range(n):
        light = np.array([0.94, 0.88, 0.89]) + 0.03 * rng.standard_normal(3)
        img = np.ones((R, R, 3)) * light
        for _ in range(rng.integers(6, 12)):               # red cells with central pallor
            cx, cy = rng.uniform(0, R, 2)
            r = unit * (3.4 + 0.3 * rng.standard_normal())
            d = np.hypot(xx - cx, yy - cy) / r
            disc = 1 / (1 + np.exp((d - 1) * 12))
            pallor = np.exp(-(d / 0.45) ** 2)
            red = np.array([0.86, 0.52, 0.55]) + 0.03 * rng.standard_normal(3)
            colour = red + (light - red) * 0.55 * pallor[..., None]
            img = img * (1 - disc[..., None]) + colour * disc[..., None]
        cx, cy = R / 2 + unit * rng.normal(0, 1.5, 2)
        blast = y[i] == 1
        cell_r = unit * ((5.5 if blast else 4.8) + 0.5 * rng.standard_normal())
        nuc_r = cell_r * ((0.88 if blast else 0.78) + 0.03 * rng.standard_normal())
        angle = rng.uniform(0, np.pi)
        u, v = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle), -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
        cell = 1 / (1 + np.exp((np.hypot(u, v * 1.05) / cell_r - 1) * 15))
        nucleus = 1 / (1 + np.exp((np.hypot(u / 1.08, v) / nuc_r - 1) * 15))
        if blast and rng.random() < 0.5:                     # an indented nucleus
            nucleus *= 1 - 1 / (1 + np.exp((np.hypot(u - nuc_r, v) / (0.45 * nuc_r) - 1) * 10))
        cytoplasm = np.array([0.62, 0.68, 0.90]) if blast else np.array([0.72, 0.74, 0.90])
        img = img * (1 - cell[..., None]) + cytoplasm * cell[..., None]
        dark = np.array([0.36, 0.22, 0.52]) if blast else np.array([0.25, 0.12, 0.38])
        grain = (0.05 if blast else 0.10) * chromatin[i][..., None]
        nuc_colour = dark + grain
        if blast:                                           # nucleoli: paler spots
            for _ in range(rng.integers(1, 4)):
                px, py = rng.normal(0, 0.4 * nuc_r, 2)
                nuc_colour = nuc_colour + 0.18 * np.exp(-(np.hypot(u - px, v - py) / (0.18 * nuc_r)) ** 2)[..., None]
        img = img * (1 - nucleus[..., None]) + nuc_colour * nucleus[..., None]
        img *= 0.93 + 0.14 * rng.random()                   # illumination
        images[i] = img + 0.02 * rng.standard_normal(img.shape)
    small = np.clip(images.reshape(n, size, 4, size, 4, 3).mean(axis=(2, 4)), 0, 1)
    return np.rint(small * 255).astype(np.uint8), y
