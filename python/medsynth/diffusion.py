"""Class-conditional diffusion models: ``medsynth.DiffusionModel`` and ``medsynth.generate``.

The model is the DDPM U-Net (Ho et al. 2020) with sinusoidal time embedding, a class embedding
with a null class for classifier-free guidance (Ho & Salimans 2021), GroupNorm, SiLU and
self-attention; trained on L_simple (ε or v prediction, optional min-SNR-γ weighting) with AdamW,
warmup and cosine decay, gradient clipping and an EMA of the weights; sampled with DDPM, DDIM
(Song et al. 2021) or DPM-Solver++(2M) (Lu et al. 2022). Everything runs in the native engine.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence, Union

import numpy as np

from . import _engine
from ._core import ProgressReporter, to_nchw

#: Samplers the engine offers, from its registry.
SAMPLERS = tuple(json.loads(_engine.registry("samplers")))


def _default_attention(image_size: int, multipliers: Sequence[int]) -> tuple:
    """Attention at the feature maps of side 16 and smaller (but not the input), as the DDPM
    U-Net does at 16x16 for 32-256 px inputs."""
    sides = [image_size // 2 ** i for i in range(len(multipliers))]
    chosen = tuple(s for s in sides if s <= 16 and s != image_size)
    return chosen or (sides[-1],)


class DiffusionModel:
    """A denoising diffusion model for (labelled) images.

    Parameters (defaults and their sources)
    ----------
    image_size, in_channels, num_classes : taken from the data at the first ``fit`` when None.
    base_channels : 32 (../shared/bench/torch_ref.py; DDPM used 128 at 32 px on GPUs).
    channel_multipliers : by image size: (1, 2, 2) below 48 px, (1, 2, 4) to 95, (1, 1, 2, 4) to
        191, (1, 1, 2, 2, 4) above.
    res_blocks : 1 residual block per level going down, res_blocks + 1 going up (Ho et al.).
    attention_resolutions : feature-map sides with self-attention; default 16 and below.
    schedule : "linear" (β 1e-4 → 0.02, Ho et al.) or "cosine" (Nichol & Dhariwal 2021).
    timesteps : T = 1000.  prediction : "epsilon" (Ho et al.) or "v" (Salimans & Ho 2022).
    seed : weight initialisation.
    """

    def __init__(self, image_size: Optional[int] = None, *, in_channels: Optional[int] = None,
                 num_classes: Optional[int] = None, base_channels: int = 32,
                 channel_multipliers: Optional[Sequence[int]] = None, res_blocks: int = 1,
                 attention_resolutions: Optional[Sequence[int]] = None, attention_heads: int = 1,
                 dropout: float = 0.0, norm_groups: int = 8, schedule: str = "linear", timesteps: int = 1000,
                 prediction: str = "epsilon", seed: int = 0):
        self._settings = dict(image_size=image_size, in_channels=in_channels, num_classes=num_classes,
                              base_channels=base_channels, channel_multipliers=channel_multipliers,
                              res_blocks=res_blocks, attention_resolutions=attention_resolutions,
                              attention_heads=attention_heads, dropout=dropout, norm_groups=norm_groups,
                              schedule=schedule, timesteps=timesteps, prediction=prediction, seed=seed)
        if int(seed) < 0:
            raise ValueError("seed must be non-negative")
        self._handle = None
        self.classes_ = None
        self.history_ = None
        if image_size is not None and in_channels is not None and num_classes is not None:
            self.classes_ = np.arange(num_classes) if num_classes else None
            self._build(data_dtype="float32", data_range=None)

    # ---- construction -------------------------------------------------------------------------

    def _build(self, data_dtype: str, data_range) -> None:
        s = dict(self._settings)
        size = int(s["image_size"])
        mults = tuple(s["channel_multipliers"] or _default_multipliers(size))
        attention = tuple(s["attention_resolutions"] if s["attention_resolutions"] is not None
                          else _default_attention(size, mults))
        num_classes = int(s["num_classes"] or 0)
        config = {"image_size": size, "in_channels": int(s["in_channels"]), "base_channels": int(s["base_channels"]),
                  "channel_multipliers": list(mults), "res_blocks": int(s["res_blocks"]),
                  "attention_resolutions": list(attention), "attention_heads": int(s["attention_heads"]),
                  "dropout": float(s["dropout"]), "num_classes": num_classes, "norm_groups": int(s["norm_groups"]),
                  "schedule": s["schedule"], "timesteps": int(s["timesteps"]), "prediction": s["prediction"],
                  "seed": int(s["seed"]), "data_dtype": data_dtype,
                  "class_names": [str(c) for c in (self.classes_ if num_classes else [])]}
        if data_range is not None:
            config["data_range"] = [float(data_range[0]), float(data_range[1])]
        self._handle = _engine.diffusion_create(json.dumps(config))

    @property
    def config(self) -> dict:
        """The engine's configuration (architecture, schedule, data range, parameters, steps trained)."""
        self._require_built()
        return json.loads(_engine.diffusion_config(self._handle))

    @property
    def n_parameters(self) -> int:
        return int(self.config["parameters"])

    @property
    def trained_steps(self) -> int:
        return int(self.config["trained_steps"])

    @property
    def conditional(self) -> bool:
        return self.config["num_classes"] > 0

    def _require_built(self) -> None:
        if self._handle is None:
            raise RuntimeError("this diffusion model has not been fitted or loaded yet; call fit() or DiffusionModel.load()")

    # ---- training -----------------------------------------------------------------------------

    def fit(self, X, y=None, *, steps: int = 2000, batch_size: int = 16, lr: float = 2e-4, weight_decay: float = 0.0,
            warmup_steps: Optional[int] = None, lr_schedule: str = "cosine", ema_decay: float = 0.999,
            p_uncond: float = 0.1, min_snr_gamma: Optional[float] = None, grad_clip: float = 1.0,
            hflip: bool = False, vflip: bool = False, translate: float = 0.0, rotate: float = 0.0,
            checkpoint: Optional[str] = None, checkpoint_every: int = 500, resume: bool = False, seed: Optional[int] = None,
            progress: bool = True, callback: Optional[Callable[[dict], object]] = None,
            data_format: str = "auto") -> "DiffusionModel":
        """Trains for ``steps`` optimiser steps.

        Defaults: AdamW lr 2e-4 (torch_ref.py), warmup min(500, steps/10) then cosine decay,
        gradient clipping at norm 1, EMA decay 0.999 (0.995-0.999 suits runs below ~20k steps;
        0 disables), label dropout p_uncond 0.1 for classifier-free guidance (Ho & Salimans),
        min-SNR-γ off (5 is the paper's value), augmentation off (anatomy has a left and a right).
        ``checkpoint`` is written atomically every ``checkpoint_every`` steps and at the end; with
        ``resume=True`` training continues from it exactly as the uninterrupted run would. A loss
        that becomes NaN stops training with RuntimeError and keeps the last good checkpoint;
        Ctrl-C stops within about a second and leaves the model usable.
        """
        raw = X
        x = to_nchw(X, data_format=data_format, name="X")
        dtype = np.asarray(raw).dtype if not hasattr(raw, "numpy") else np.dtype("float32")
        labels = None
        if self._handle is None:
            size = x.shape[2]
            if x.shape[2] != x.shape[3]:
                raise ValueError(f"images must be square, got {x.shape[2]}x{x.shape[3]}")
            if self._settings["image_size"] is not None and self._settings["image_size"] != size:
                raise ValueError(f"images are {size}x{size} but image_size is {self._settings['image_size']}")
            self._settings["image_size"] = size
            self._settings["in_channels"] = self._settings["in_channels"] or x.shape[1]
            if y is not None:
                self.classes_ = np.unique(np.asarray(y))
                if self._settings["num_classes"] not in (None, len(self.classes_)):
                    raise ValueError(f"num_classes is {self._settings['num_classes']} but y has {len(self.classes_)} classes")
                self._settings["num_classes"] = len(self.classes_)
            else:
                self._settings["num_classes"] = 0
            integer = dtype in (np.uint8, np.uint16)
            self._build(data_dtype=dtype.name if dtype.name in ("uint8", "uint16", "float64") else "float32",
                        data_range=(0.0, 1.0) if integer or dtype == np.bool_ else None)
        if self.conditional:
            if y is None:
                raise ValueError("this model is class-conditional: pass the labels y")
            labels = _encode(self.classes_, np.asarray(y), "y")
            if len(labels) != x.shape[0]:
                raise ValueError(f"y has {len(labels)} labels for {x.shape[0]} images")
        options = {"steps": int(steps), "batch_size": int(batch_size), "lr": float(lr), "weight_decay": float(weight_decay),
                   "lr_schedule": lr_schedule, "ema_decay": float(ema_decay), "p_uncond": float(p_uncond),
                   "grad_clip": float(grad_clip), "hflip": bool(hflip), "vflip": bool(vflip), "translate": float(translate),
                   "rotate": float(rotate), "checkpoint_every": int(checkpoint_every), "resume": bool(resume),
                   "seed": int(self._settings["seed"] if seed is None else seed)}
        if warmup_steps is not None:
            options["warmup_steps"] = int(warmup_steps)
        if min_snr_gamma is not None:
            options["min_snr_gamma"] = float(min_snr_gamma)
        if checkpoint is not None:
            options["checkpoint"] = os.fspath(checkpoint)
        reporter = ProgressReporter(progress, "training diffusion model", callback)
        try:
            _engine.diffusion_fit(self._handle, x, labels, json.dumps(options), reporter)
        finally:
            reporter.close()
        self.history_ = json.loads(_engine.diffusion_result(self._handle))
        return self

    # ---- sampling -----------------------------------------------------------------------------

    def sample(self, n_per_class: Union[int, Mapping, None] = None, *, labels=None, n: Optional[int] = None,
               sampler: str = "ddim", steps: int = 50, eta: float = 0.0, guidance_scale: float = 1.5, seed: int = 0,
               batch_size: int = 32, use_ema: bool = True, clip: bool = True, spacing: str = "linspace",
               output: str = "auto", progress: bool = True, callback: Optional[Callable[[dict], object]] = None):
        """Generates labelled images. Returns ``(images, labels)``.

        Ask with ``n_per_class`` (a number, or a dict {class: count}), or explicit ``labels``, or
        ``n`` for an unconditional model. ``sampler``: "ddim" (default, 50 steps, eta 0),
        "dpm_solver++" (10-25 steps), "ddpm" (T steps). ``guidance_scale`` s: ε_u + s(ε_c − ε_u);
        1 disables guidance (one model evaluation per step instead of two); default 1.5.
        Images come back as (n, H, W) or (n, H, W, C) in the training data's range and dtype
        (``output="auto"``), or as float32 (``"float"``), uint8 or uint16. The same seed gives the
        same images bit for bit at the same batch size, and up to float rounding at another.
        """
        self._require_built()
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
        config = self.config
        if self.conditional:
            label_values = self._requested_labels(n_per_class, labels, n)
            index = _encode(self.classes_, label_values, "labels")
            count = len(index)
        else:
            if labels is not None or n_per_class is not None:
                raise ValueError("this model is unconditional: ask for n images")
            if n is None or int(n) < 1:
                raise ValueError("pass n, the number of images")
            count, index, label_values = int(n), None, None
        c, size = config["in_channels"], config["image_size"]
        out = np.empty((count, c, size, size), dtype=np.float32)
        options = {"sampler": sampler, "steps": int(steps), "eta": float(eta), "guidance_scale": float(guidance_scale),
                   "seed": int(seed), "batch_size": int(batch_size), "use_ema": bool(use_ema), "clip": bool(clip),
                   "spacing": spacing}
        reporter = ProgressReporter(progress, f"sampling ({sampler})", callback)
        try:
            _engine.diffusion_sample(self._handle, index, count, json.dumps(options), out, reporter)
        finally:
            reporter.close()
        result = json.loads(_engine.diffusion_result(self._handle))
        for message in result.get("warnings", []):
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        images = out[:, 0] if c == 1 else out.transpose(0, 2, 3, 1)
        return _convert_output(np.ascontiguousarray(images), output, config["data_dtype"]), label_values

    def _requested_labels(self, n_per_class, labels, n) -> np.ndarray:
        given = sum(v is not None for v in (n_per_class, labels, n))
        if given != 1:
            raise ValueError("pass exactly one of n_per_class, labels or n")
        if labels is not None:
            return np.asarray(labels)
        if n is not None:
            k = len(self.classes_)
            return np.resize(self.classes_, int(n)) if k else np.array([])
        if isinstance(n_per_class, Mapping):
            unknown = [c for c in n_per_class if c not in set(self.classes_.tolist())]
            if unknown:
                raise ValueError(f"n_per_class names classes the model does not know: {unknown[:5]}")
            values = [np.full(int(v), c, dtype=self.classes_.dtype) for c, v in n_per_class.items() if int(v) > 0]
            if any(int(v) < 0 for v in n_per_class.values()):
                raise ValueError("n_per_class counts must be non-negative")
            return np.concatenate(values) if values else np.array([], dtype=self.classes_.dtype)
        per = int(n_per_class)
        if per < 1:
            raise ValueError("n_per_class must be at least 1")
        return np.repeat(self.classes_, per)

    # ---- persistence --------------------------------------------------------------------------

    def save(self, path) -> None:
        """Writes weights (torch_ref.py's key names; EMA weights under ``ema.``) and configuration
        as safetensors, atomically."""
        self._require_built()
        _engine.diffusion_save(self._handle, os.fspath(path))

    @classmethod
    def load(cls, path) -> "DiffusionModel":
        """Loads a model written by ``save`` or a training checkpoint."""
        handle = _engine.diffusion_load(os.fspath(path))
        config = json.loads(_engine.diffusion_config(handle))
        model = cls(seed=int(config["seed"]))
        model._handle = handle
        model._settings.update({k: config[k] for k in ("image_size", "in_channels", "num_classes")})
        from .classifier import _restore_labels
        model.classes_ = _restore_labels(config["class_names"]) if config["num_classes"] else None
        return model

    def __repr__(self) -> str:
        if self._handle is None:
            return "DiffusionModel(not fitted)"
        c = self.config
        return (f"DiffusionModel({c['image_size']}px, {c['in_channels']} channel(s), {c['num_classes']} classes, "
                f"{c['parameters']:,} parameters, {c['trained_steps']} steps trained)")


def _default_multipliers(size: int) -> tuple:
    if size < 48:
        return (1, 2, 2)
    if size < 96:
        return (1, 2, 4)
    if size < 192:
        return (1, 1, 2, 4)
    return (1, 1, 2, 2, 4)


def _encode(classes: np.ndarray, values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"{name} must be 1-D")
    index = np.clip(np.searchsorted(classes, values), 0, len(classes) - 1)
    if len(values) and not np.all(classes[index] == values):
        unknown = np.unique(values[classes[index] != values])[:5]
        raise ValueError(f"{name} has classes the model does not know: {list(unknown)}")
    return np.ascontiguousarray(index, dtype=np.int64)


def _convert_output(images: np.ndarray, output: str, data_dtype: str) -> np.ndarray:
    kind = data_dtype if output == "auto" else output
    if kind in ("float", "float32", "float64"):
        return images
    if kind == "uint8":
        return np.rint(np.clip(images, 0, 1) * 255).astype(np.uint8)
    if kind == "uint16":
        return np.rint(np.clip(images, 0, 1) * 65535).astype(np.uint16)
    raise ValueError(f"output must be 'auto', 'float', 'uint8' or 'uint16', got {output!r}")


def _as_labelled_arrays(data):
    """(X, y) from (X, y), an ImageFolder path (labels become the folder names), or a map-style
    dataset of (image, label) items (labels kept as they are, e.g. torchvision's indices)."""
    if isinstance(data, (str, os.PathLike)):
        from .datasets import load_image_folder
        x, y, names = load_image_folder(data, dtype=None)
        return x, np.array(names)[y]
    if isinstance(data, tuple) and len(data) == 2:
        return data[0], np.asarray(data[1])
    try:
        items = [data[i] for i in range(len(data))]
    except TypeError as e:
        raise TypeError("data must be (X, y), an ImageFolder path, or a dataset of (image, label) pairs") from e
    images = [np.asarray(im.numpy() if hasattr(im, "numpy") else im) for im, _ in items]
    labels = np.asarray([lab.item() if hasattr(lab, "item") else lab for _, lab in items])
    return np.stack(images), labels


def generate(data, n_per_class: Union[int, Mapping] = 1000, *, checkpoint: Optional[str] = None,
             out_dir: Optional[str] = None, model: Optional[dict] = None, train: Optional[dict] = None,
             sampler: str = "ddim", steps: int = 50, guidance_scale: float = 1.5, eta: float = 0.0, seed: int = 0,
             batch_size: int = 32, progress: bool = True, data_format: str = "auto"):
    """Turns a small labelled image set into a larger labelled synthetic set (the paper's recipe).

    data : (X, y) arrays, an ImageFolder path (root/<class>/<image>.png), or a dataset whose items
        are (image, label) (a torchvision ImageFolder works).
    n_per_class : images per class (the paper generates 1000-1700), or {class: count}.
    checkpoint : a diffusion checkpoint. If the file exists the model is loaded and not trained;
        otherwise the trained model is written there.
    out_dir : if given, the images are also written as an ImageFolder of PNGs.
    model : keyword arguments for ``DiffusionModel`` (architecture, schedule, seed).
    train : keyword arguments for ``DiffusionModel.fit`` (default steps=2000, batch_size=16).
    sampler, steps, guidance_scale, eta, seed, batch_size : sampling (see ``DiffusionModel.sample``).
    Returns ``(images, labels)`` as numpy arrays.
    """
    if checkpoint is not None and Path(checkpoint).exists():
        diffusion = DiffusionModel.load(checkpoint)
    else:
        x, y = _as_labelled_arrays(data)
        diffusion = DiffusionModel(**(model or {}))
        options = {"steps": 2000, "batch_size": 16, "progress": progress, "data_format": data_format}
        options.update(train or {})
        if checkpoint is not None:
            options.setdefault("checkpoint", os.fspath(checkpoint) + ".training")
        diffusion.fit(x, y, **options)
        if checkpoint is not None:
            diffusion.save(checkpoint)
    images, labels = diffusion.sample(n_per_class, sampler=sampler, steps=steps, guidance_scale=guidance_scale,
                                      eta=eta, seed=seed, batch_size=batch_size, progress=progress)
    if out_dir is not None:
        from .datasets import save_image_folder
        index = np.searchsorted(diffusion.classes_, labels)
        save_image_folder(out_dir, images, index, [str(c) for c in diffusion.classes_], bit_depth=16 if images.dtype == np.uint16 else 8,
                          prefix="synthetic")
    return images, labels
