"""Class-conditional diffusion models: ``medsynth.DiffusionModel`` and ``medsynth.generate``.

The model is the DDPM U-Net (Ho et al. 2020) with sinusoidal time embedding, a class embedding
with a null class for classifier-free guidance (Ho & Salimans 2021), GroupNorm, SiLU and
self-attention; trained on L_simple (ε or v prediction, optional min-SNR-γ weighting) with AdamW,
warmup and cosine decay, gradient clipping and an EMA of the weights; sampled by default with
DPM-Solver++(2M) SDE (Lu et al. 2022) in 20 Karras-spaced steps, which stays as clean as DDPM's 1000
steps on short-trained models where the deterministic DDIM (Song et al. 2021) and DPM-Solver++(2M)
give grainy images (docs/sampling.md); those and DDPM are options. Everything runs in the native
engine; the quality gate (medsynth.quality) checks what sample() and generate() return.
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

#: Training images fit() keeps (a random subset) for the quality gate sample() runs.
QUALITY_REFERENCE = 512
#: sample() runs the gate only from this many images on: below it one unusual image moves the
#: noisy share past the gate's 5 % limit.
QUALITY_MIN_IMAGES = 50

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
        self.quality_report_ = None
        self._quality_reference = None
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
        # a random subset of the training images, which sample() compares its images with
        keep = np.sort(np.random.default_rng(0).permutation(len(x))[:QUALITY_REFERENCE])
        self._quality_reference = (x[keep].copy(), None if y is None else np.asarray(y)[keep])
        return self

    # ---- sampling -----------------------------------------------------------------------------

    @documented("sampling")
    def sample(self, n_per_class: Union[int, Mapping, None] = None, *, labels=None, n: Optional[int] = None,
               sampler: Optional[str] = None, steps: Optional[int] = None, eta: Optional[float] = None,
               guidance_scale: Optional[float] = None, seed: Optional[int] = None, batch_size: Optional[int] = None,
               use_ema: Optional[bool] = None, clip: Optional[bool] = None, clamp_output: Optional[bool] = None,
               spacing: Optional[str] = None, ddim_target: Optional[str] = None, noise=None, step_noise=None,
               output: str = "auto", progress: bool = True, callback: Optional[Callable[[dict], object]] = None,
               data_format: str = "auto", quality: str = "warn"):
        """Generates labelled images. Returns ``(images, labels)``.

        ``quality``: after sampling at least 50 images from a model fitted in this session, the
        quality gate (``medsynth.quality.check``) compares them with up to 512 of the training images
        and warns ("warn", the default) or raises RuntimeError ("raise") naming the statistic and the
        remedy when they are noisier, smoother or otherwise off; its report is kept in
        ``quality_report_``. "off" skips it.

        Ask with ``n_per_class`` (a number, or a dict {class: count}), or explicit ``labels``, or
        ``n`` for an unconditional model. Images come back as (n, H, W) or (n, H, W, C) in the
        training data's range and dtype (``output="auto"``), or as float32 (``"float"``), uint8 or
        uint16. The same seed gives the same images bit for bit at the same batch size, and up to
        float rounding at another.

        ``noise`` is the initial x_T of every image in the model's space (unit normal, as diffusers'
        ``latents=``): (n, H, W), (n, H, W, C) or (n, C, H, W) float. ``step_noise`` is the z of
        every step, (steps, n, ...) with ``steps = len(self.timesteps(...))``, read by the steps
        that add noise (DDPM at t > 0, DDIM with eta > 0); without it they draw from ``seed``.
        With the same weights, x_T and z, another implementation of the same sampler (diffusers'
        schedulers with the same timesteps) gives the same images up to float rounding.
        """
        self._require_built()
        if quality not in ("warn", "raise", "off"):
            raise ValueError(f"quality must be 'warn', 'raise' or 'off', got {quality!r}")
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
                          batch_size=batch_size, use_ema=use_ema, clip=clip, clamp_output=clamp_output, spacing=spacing,
                          ddim_target=ddim_target)
        initial = None if noise is None else _model_space(noise, "noise", data_format)[0]
        if initial is not None and initial.shape != out.shape:
            raise ValueError(f"noise must hold {count} images of {c}x{size}x{size}, got {initial.shape} (as N, C, H, W)")
        per_step = None
        if step_noise is not None:
            z = np.asarray(step_noise.detach().cpu().numpy() if hasattr(step_noise, "detach") else step_noise)
            if z.ndim < 4:
                raise ValueError(f"step_noise must be (steps, n, ...) images, got shape {z.shape}")
            per_step = _model_space(z.reshape((-1,) + z.shape[2:]), "step_noise", data_format)[0].reshape(
                (z.shape[0], z.shape[1], c, size, size))
        reporter = ProgressReporter(progress, f"sampling ({sampler or defaults('sampling')['sampler']})", callback)
        try:
            _engine.diffusion_sample(self._handle, index, count, dumps(options), out, reporter, initial, per_step)
        finally:
            reporter.close()
        result = json.loads(_engine.diffusion_result(self._handle))
        for message in result.get("warnings", []):
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        images = out[:, 0] if c == 1 else out.transpose(0, 2, 3, 1)
        images = _convert_output(np.ascontiguousarray(images), output, config["data_dtype"])
        if quality != "off" and self._quality_reference is not None and count >= QUALITY_MIN_IMAGES:
            from . import quality as gate
            real, real_labels = self._quality_reference
            self.quality_report_ = gate.check(real, images, real_labels, label_values, data_range=config["data_range"],
                                              warn=quality == "warn")
            if quality == "raise" and not self.quality_report_["ok"]:
                raise RuntimeError("the synthetic images failed the quality check: " + "; ".join(self.quality_report_["warnings"]))
        return images, label_values

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

    # ---- the raw forward and the timesteps -------------------------------------------------------

    @documented("diffusion_forward")
    def model_output(self, x_t, t, labels=None, guidance_scale: Optional[float] = None, *, output: Optional[str] = None,
                     use_ema: Optional[bool] = None, batch_size: Optional[int] = None, data_format: str = "auto",
                     progress: bool = False) -> np.ndarray:
        """The network's output on ``x_t`` at timesteps ``t``: numpy in, numpy out.

        x_t : noisy images in the model's [-1, 1] space, float, as (n, H, W), (n, H, W, C) or
            (n, C, H, W) (PyTorch order); the result comes back in the same layout.
        t : one timestep for every image or one per image, integers in [0, T).
        labels : one class per image (the classes the model was fitted on) or one for all; None
            gives the unconditional output (the null class of a class-conditional model), which with
            the conditional one makes classifier-free guidance by hand.
        guidance_scale : out_u + s (out_c - out_u) on the network's output (needs labels).
        output : "model" (epsilon or v, as the model predicts: diffusers' ``unet(x_t, t).sample``),
            "epsilon", "v" or "x0".
        """
        self._require_built()
        if output is not None and output not in ("model", "epsilon", "v", "x0"):
            raise ValueError(f"output must be 'model', 'epsilon', 'v' or 'x0', got {output!r}")
        x, restore = _model_space(x_t, "x_t", data_format)
        n = x.shape[0]
        steps = np.asarray(t)
        if steps.ndim > 1 or (steps.ndim == 1 and len(steps) not in (1, n)):
            raise ValueError(f"t must be one timestep or one per image ({n}), got shape {steps.shape}")
        if not (np.issubdtype(steps.dtype, np.integer) or (np.issubdtype(steps.dtype, np.floating)
                                                            and np.all(np.isfinite(steps)) and np.all(steps == np.round(steps)))):
            raise TypeError(f"t must hold integer timesteps, got {steps.dtype} values {steps.ravel()[:3]}")
        steps = np.ascontiguousarray(steps.reshape(-1), dtype=np.int64)
        index = None
        if labels is not None:
            if not self.conditional:
                raise ValueError("this model is unconditional: it takes no labels")
            values = np.asarray(labels)
            values = np.repeat(values.reshape(1), n) if values.ndim == 0 else values
            index = _encode(self.classes_, values, "labels")
            if len(index) != n:
                raise ValueError(f"labels has {len(index)} values for {n} images")
        out = np.empty_like(x)
        options = collect(output=output, guidance_scale=guidance_scale, use_ema=use_ema, batch_size=batch_size)
        reporter = ProgressReporter(progress, "forward", None, unit="batch")
        try:
            _engine.diffusion_forward(self._handle, x, steps, index, dumps(options), out, reporter)
        finally:
            reporter.close()
        return restore(out)

    def predict_noise(self, x_t, t, labels=None, guidance_scale: Optional[float] = None, **kwargs) -> np.ndarray:
        """The predicted noise epsilon for ``x_t`` at ``t`` (converted from v for a v-prediction
        model); ``model_output(..., output="epsilon")``, which documents the arguments."""
        return self.model_output(x_t, t, labels, guidance_scale, output="epsilon", **kwargs)

    def timesteps(self, sampler: Optional[str] = None, steps: Optional[int] = None, spacing: Optional[str] = None,
                  ddim_target: Optional[str] = None, with_targets: bool = False):
        """The timesteps ``sample`` evaluates with these options, in order (as a diffusers
        scheduler's ``timesteps`` after ``set_timesteps(steps)``); with ``with_targets`` also where
        each step lands (-1: the clean image)."""
        self._require_built()
        options = collect(sampler=sampler, steps=steps, spacing=spacing, ddim_target=ddim_target)
        plan = json.loads(_engine.diffusion_timesteps(self._handle, dumps(options)))
        timesteps = np.array(plan["timesteps"], dtype=np.int64)
        return (timesteps, np.array(plan["targets"], dtype=np.int64)) if with_targets else timesteps

    def check_quality(self, X, y=None, n_per_class: int = 16, *, warn: bool = True, data_format: str = "auto",
                      **sample_options) -> dict:
        """The quality gate after training: samples ``n_per_class`` images per class (``n_per_class``
        images for an unconditional model) with ``sample_options`` (the defaults otherwise) and
        compares them with the training images X (and labels y) by ``medsynth.quality.check``,
        which warns naming the statistic and the remedy. Returns its report."""
        from . import quality as gate
        sample_options.setdefault("progress", False)
        sample_options.setdefault("quality", "off")
        if self.conditional:
            images, labels = self.sample(n_per_class=n_per_class, **sample_options)
        else:
            images, labels = self.sample(n=n_per_class, **sample_options)
        real = np.asarray(X.detach().cpu().numpy() if hasattr(X, "detach") else X)
        floats = real.dtype.kind == "f"
        return gate.check(to_nchw(real, data_format=data_format, name="X") if floats else real, images,
                          None if labels is None else y, labels,
                          data_range=self.config["data_range"] if floats else None, warn=warn)

    # ---- persistence --------------------------------------------------------------------------

    @documented("diffusion_save")
    def save(self, path, weights: Optional[str] = None) -> None:
        """Writes the weights (torch_ref.py's key names) and the configuration (in the metadata) as
        safetensors, atomically. ``weights="ema"`` writes the EMA weights under the plain names: a
        PyTorch module of the same layout loads the file with ``load_state_dict(strict=True)``."""
        self._require_built()
        if weights is not None and weights not in ("both", "ema", "raw"):
            raise ValueError(f"weights must be 'both', 'ema' or 'raw', got {weights!r}")
        _engine.diffusion_save(self._handle, os.fspath(path), dumps(collect(weights=weights)))

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


def _model_space(x, name: str, data_format: str):
    """An array in the model's space (x_t, noise) as float32 NCHW, and the function that puts a
    result of that shape back into the caller's layout."""
    if hasattr(x, "detach") and hasattr(x, "numpy"):  # a torch tensor
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must hold floating-point values in the model's space, got dtype {x.dtype}")
    nchw = to_nchw(x, data_format=data_format, name=name)
    if x.ndim == 3:
        return nchw, lambda a: a[:, 0]
    if x.shape == nchw.shape:
        return nchw, lambda a: a
    return nchw, lambda a: np.ascontiguousarray(a.transpose(0, 2, 3, 1))


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
             progress: bool = True, data_format: str = "auto", quality: str = "warn", return_report: bool = False):
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
    quality : "warn" (default): compare the synthetic images with the real ones
        (``medsynth.quality.check``: noise, intensity histogram, per-class mean and spread) and warn
        naming the statistic and the remedy; "raise": raise RuntimeError instead; "off": skip
        (also skipped when ``data`` is None and the model comes from ``checkpoint``).
    return_report : also return the quality report (a dict; None when skipped).
    Returns ``(images, labels)`` as numpy arrays, or ``(images, labels, report)``.
    """
    if quality not in ("warn", "raise", "off"):
        raise ValueError(f"quality must be 'warn', 'raise' or 'off', got {quality!r}")
    x = y = None
    if data is not None:
        x, y = _as_labelled_arrays(data)
    if checkpoint is not None and Path(checkpoint).exists():
        diffusion = DiffusionModel.load(checkpoint)
    else:
        if x is None:
            raise ValueError("pass data to train on (no checkpoint to load)")
        diffusion = DiffusionModel(**(model or {}))
        options = {"progress": progress, "data_format": data_format}
        options.update(train or {})
        if checkpoint is not None:
            options.setdefault("checkpoint", os.fspath(checkpoint) + ".training")
        diffusion.fit(x, y, **options)
        if checkpoint is not None:
            diffusion.save(checkpoint)
    images, labels = diffusion.sample(n_per_class, sampler=sampler, steps=steps, guidance_scale=guidance_scale,
                                      eta=eta, seed=seed, batch_size=batch_size, progress=progress,
                                      quality="off")
    report = None
    if quality != "off" and x is not None:
        from . import quality as gate
        real = np.asarray(x)
        floats = real.dtype.kind == "f"
        report = gate.check(to_nchw(real, data_format=data_format, name="data") if floats else real, images, y, labels,
                            data_range=diffusion.config["data_range"] if floats else None, warn=quality == "warn")
        if quality == "raise" and not report["ok"]:
            raise RuntimeError("the synthetic images failed the quality check: " + "; ".join(report["warnings"]))
    if out_dir is not None:
        from .datasets import save_image_folder
        index = np.searchsorted(diffusion.classes_, labels)
        save_image_folder(out_dir, images, index, [str(c) for c in diffusion.classes_], bit_depth=16 if images.dtype == np.uint16 else 8,
                          prefix="synthetic")
    return (images, labels, report) if return_report else (images, labels)
