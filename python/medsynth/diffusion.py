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
from ._options import collect, defaults, documented, dumps

#: The training options ``DiffusionModel.fit`` passes to the engine (documented from its table).
_FIT_OPTIONS = ("steps", "batch_size", "lr", "weight_decay", "warmup_steps", "lr_schedule", "ema_decay", "p_uncond",
                "min_snr_gamma", "grad_clip", "hflip", "vflip", "translate", "rotate", "checkpoint", "checkpoint_every",
                "resume", "seed")

#: Samplers the engine offers, from its registry.
SAMPLERS = tuple(json.loads(_engine.registry("samplers")))


#: The model options ``DiffusionModel`` passes to the engine (documented from its table).
_MODEL_OPTIONS = ("image_size", "in_channels", "num_classes", "base_channels", "channel_multipliers", "res_blocks",
                  "attention_resolutions", "attention_heads", "dropout", "norm_groups", "schedule", "timesteps",
                  "prediction", "seed", "data_range")


class DiffusionModel:
    """A denoising diffusion model for (labelled) images: the DDPM U-Net with class conditioning
    and classifier-free guidance.

    Every argument left as None takes the engine's default (listed below with its source); the
    image size, channels and classes are taken from the data at the first ``fit`` when not given.
    ``config`` returns the resolved configuration.
    """

    @documented("diffusion_config", keys=_MODEL_OPTIONS)
    def __init__(self, image_size: Optional[int] = None, *, in_channels: Optional[int] = None,
                 num_classes: Optional[int] = None, base_channels: Optional[int] = None,
                 channel_multipliers: Optional[Sequence[int]] = None, res_blocks: Optional[int] = None,
                 attention_resolutions: Optional[Sequence[int]] = None, attention_heads: Optional[int] = None,
                 dropout: Optional[float] = None, norm_groups: Optional[int] = None, schedule: Optional[str] = None,
                 timesteps: Optional[int] = None, prediction: Optional[str] = None, seed: int = 0,
                 data_range: Optional[Sequence[float]] = None):
        if int(seed) < 0:
            raise ValueError("seed must be non-negative")
        self._settings = collect(image_size=image_size, in_channels=in_channels, num_classes=num_classes,
                                 base_channels=base_channels, channel_multipliers=channel_multipliers,
                                 res_blocks=res_blocks, attention_resolutions=attention_resolutions,
                                 attention_heads=attention_heads, dropout=dropout, norm_groups=norm_groups,
                                 schedule=schedule, timesteps=timesteps, prediction=prediction, seed=int(seed),
                                 data_range=data_range)
        self._handle = None
        self.classes_ = None
        self.history_ = None
        if image_size is not None and in_channels is not None and num_classes is not None:
            self.classes_ = np.arange(num_classes) if num_classes else None
            self._build()

    # ---- construction -------------------------------------------------------------------------

    def _build(self) -> None:
        config = dict(self._settings)
        if self.classes_ is not None:
            config["class_names"] = [str(c) for c in self.classes_]
        self._handle = _engine.diffusion_create(dumps(config))

    @property
    def config(self) -> dict:
        """The engine's configuration (architecture, schedule, data range, parameters, steps trained)."""
        self._require_built()
        return json.loads(_engine.diffusion_config(self._handle))

    @property
    def n_parameters(self) -> int:
        return int(self.config["state"]["parameters"])

    @property
    def trained_steps(self) -> int:
        return int(self.config["state"]["trained_steps"])

    @property
    def conditional(self) -> bool:
        return self.config["num_classes"] > 0

    def _require_built(self) -> None:
        if self._handle is None:
            raise RuntimeError("this diffusion model has not been fitted or loaded yet; call fit() or DiffusionModel.load()")

    # ---- training -----------------------------------------------------------------------------

    @documented("diffusion_training", keys=_FIT_OPTIONS)
    def fit(self, X, y=None, *, steps: Optional[int] = None, batch_size: Optional[int] = None, lr: Optional[float] = None,
            weight_decay: Optional[float] = None, warmup_steps: Optional[int] = None, lr_schedule: Optional[str] = None,
            ema_decay: Optional[float] = None, p_uncond: Optional[float] = None, min_snr_gamma: Optional[float] = None,
            grad_clip: Optional[float] = None, hflip: Optional[bool] = None, vflip: Optional[bool] = None,
            translate: Optional[float] = None, rotate: Optional[float] = None, checkpoint: Optional[str] = None,
            checkpoint_every: Optional[int] = None, resume: Optional[bool] = None, seed: Optional[int] = None,
            progress: bool = True, callback: Optional[Callable[[dict], object]] = None,
            data_format: str = "auto") -> "DiffusionModel":
        """Trains for ``steps`` optimiser steps on images X (and labels y for a class-conditional model).

        The first fit takes the image size, channels and classes from the data (unless given), and
        records the images' dtype: samples come back in it, and integer images map [0, 1] (after
        the usual 1/255 or 1/65535 scaling) onto the model's [-1, 1].
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
            if self._settings.get("image_size", size) != size:
                raise ValueError(f"images are {size}x{size} but image_size is {self._settings['image_size']}")
            self._settings["image_size"] = size
            self._settings.setdefault("in_channels", x.shape[1])
            if y is not None:
                self.classes_ = np.unique(np.asarray(y))
                if self._settings.get("num_classes", len(self.classes_)) != len(self.classes_):
                    raise ValueError(f"num_classes is {self._settings['num_classes']} but y has {len(self.classes_)} classes")
                self._settings["num_classes"] = len(self.classes_)
            else:
                self._settings["num_classes"] = 0
            self._build()
        if self.conditional:
            if y is None:
                raise ValueError("this model is class-conditional: pass the labels y")
            labels = _encode(self.classes_, np.asarray(y), "y")
            if len(labels) != x.shape[0]:
                raise ValueError(f"y has {len(labels)} labels for {x.shape[0]} images")
        elif y is not None:
            raise ValueError("this model is unconditional: it takes no labels y (build it with num_classes=0 "
                             "only for unlabelled images)")
        data_dtype = dtype.name if dtype.name in ("uint8", "uint16", "float64") else "float32"
        options = collect(steps=steps, batch_size=batch_size, lr=lr, weight_decay=weight_decay, warmup_steps=warmup_steps,
                          lr_schedule=lr_schedule, ema_decay=ema_decay, p_uncond=p_uncond, min_snr_gamma=min_snr_gamma,
                          grad_clip=grad_clip, hflip=hflip, vflip=vflip, translate=translate, rotate=rotate,
                          checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume, seed=seed,
                          data_dtype=data_dtype)
        reporter = ProgressReporter(progress, "training diffusion model", callback)
        try:
            _engine.diffusion_fit(self._handle, x, labels, dumps(options), reporter)
        finally:
            reporter.close()
        self.history_ = json.loads(_engine.diffusion_result(self._handle))
        return self

    # ---- sampling -----------------------------------------------------------------------------

    @documented("sampling")
    def sample(self, n_per_class: Union[int, Mapping, None] = None, *, labels=None, n: Optional[int] = None,
               sampler: Optional[str] = None, steps: Optional[int] = None, eta: Optional[float] = None,
               guidance_scale: Optional[float] = None, seed: Optional[int] = None, batch_size: Optional[int] = None,
               use_ema: Optional[bool] = None, clip: Optional[bool] = None, spacing: Optional[str] = None,
               output: str = "auto", progress: bool = True, callback: Optional[Callable[[dict], object]] = None):
        """Generates labelled images. Returns ``(images, labels)``.

        Ask with ``n_per_class`` (a number, or a dict {class: count}), or explicit ``labels``, or
        ``n`` for an unconditional model. Images come back as (n, H, W) or (n, H, W, C) in the
        training data's range and dtype (``output="auto"``), or as float32 (``"float"``), uint8 or
        uint16. The same seed gives the same images bit for bit at the same batch size, and up to
        float rounding at another.
        """
        self._require_built()
        if sampler is not None and sampler not in SAMPLERS:
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
        options = collect(sampler=sampler, steps=steps, eta=eta, guidance_scale=guidance_scale, seed=seed,
                          batch_size=batch_size, use_ema=use_ema, clip=clip, spacing=spacing)
        reporter = ProgressReporter(progress, f"sampling ({sampler or defaults('sampling')['sampler']})", callback)
        try:
            _engine.diffusion_sample(self._handle, index, count, dumps(options), out, reporter)
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
                f"{c['state']['parameters']:,} parameters, {c['state']['trained_steps']} steps trained)")


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
             sampler: Optional[str] = None, steps: Optional[int] = None, guidance_scale: Optional[float] = None,
             eta: Optional[float] = None, seed: Optional[int] = None, batch_size: Optional[int] = None,
             progress: bool = True, data_format: str = "auto"):
    """Turns a small labelled image set into a larger labelled synthetic set (the paper's recipe).

    data : (X, y) arrays, an ImageFolder path (root/<class>/<image>.png), or a dataset whose items
        are (image, label) (a torchvision ImageFolder works).
    n_per_class : images per class (the paper generates 1000-1700), or {class: count}.
    checkpoint : a diffusion checkpoint. If the file exists the model is loaded and not trained;
        otherwise the trained model is written there.
    out_dir : if given, the images are also written as an ImageFolder of PNGs.
    model : keyword arguments for ``DiffusionModel`` (architecture, schedule, seed).
    train : keyword arguments for ``DiffusionModel.fit`` (its defaults otherwise).
    sampler, steps, guidance_scale, eta, seed, batch_size : sampling (see ``DiffusionModel.sample``;
        None takes the engine's defaults).
    Returns ``(images, labels)`` as numpy arrays.
    """
    if checkpoint is not None and Path(checkpoint).exists():
        diffusion = DiffusionModel.load(checkpoint)
    else:
        x, y = _as_labelled_arrays(data)
        diffusion = DiffusionModel(**(model or {}))
        options = {"progress": progress, "data_format": data_format}
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
