"""The experiment's configuration: its schema (every key documented, typed and range-checked;
unknown keys are errors naming the key), the presets, TOML loading and stage hashing.

Settings handed to medsynth's own functions (``diffusion.model`` to ``DiffusionModel``,
``diffusion.train`` to ``DiffusionModel.fit``, ``diffusion.sample`` to ``sample``,
``classifiers.fit`` to ``Classifier.fit``, ``lime.options`` to ``lime.explain_many``) are passed
through as they are: omitted keys take the library's defaults, which are not repeated here. The
presets set only what they must to fit a laptop (``quick``) or to reproduce the paper (``paper``).
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Optional, Union

from .._options import table as engine_table
from ..classifier import ARCHITECTURES
from ..model_selection import FOLD_SCORES, PAPER_TRAIN_SIZE
from ._schema import ConfigError, Section, Spec, merge, passthrough, types_from_table
from .data import PAPER_DOMAINS, available_domains

#: The paper's eight CNNs (Nafi et al. 2024, section 3.3), in its order.
PAPER_ARCHITECTURES = ("resnet18", "resnet50", "vgg16", "vgg19", "alexnet", "densenet121", "mobilenet_v2", "googlenet")

_ENGINE_SET = ("image_size", "in_channels", "num_classes", "class_names", "data_dtype", "data_range", "seed")
_RUN_SET = ("checkpoint", "resume", "seed", "data_dtype")
_AUGMENTATION_KEYS = ("hflip", "vflip", "translate", "rotate", "crop_scale", "brightness", "contrast")


def _engine_keys(topic: str, exclude=()) -> tuple:
    return tuple(o["key"] for o in engine_table(topic) if o["key"] not in exclude)


def _classifier_fit_spec() -> Spec:
    keys = _engine_keys("classifier_training") + ("validation_split",)
    types = {**types_from_table(engine_table("classifier_training")), "validation_split": "float"}
    return passthrough(keys, types=types, forbidden=_RUN_SET + ("validation_split",),
                       why="checkpoints, resumption, seeds and validation sets are managed per stage",
                       doc="Classifier.fit options (omitted: the library's defaults).")


def _grid_check(key, grid):
    fit_keys = set(_engine_keys("classifier_training", exclude=_RUN_SET))
    for name, values in grid.items():
        if name not in fit_keys:
            raise ConfigError(f"{key}.{name}", f"is not a Classifier.fit option; the grid takes {', '.join(sorted(fit_keys))}")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{key}.{name}", f"must be a non-empty list of candidate values, got {values!r}")


def _architectures_check(key, names):
    if not names:
        raise ConfigError(key, "must name at least one architecture")
    for i, name in enumerate(names):
        if name not in ARCHITECTURES:
            raise ConfigError(f"{key}[{i}]", f"unknown architecture {name!r}; this build has {', '.join(ARCHITECTURES)}")
    if len(set(names)) != len(names):
        raise ConfigError(key, "lists an architecture twice")


def _domains_check(key, names):
    known = available_domains()
    for i, name in enumerate(names):
        if name not in known:
            raise ConfigError(f"{key}[{i}]", f"unknown phantom domain {name!r}; choose from {', '.join(known)} "
                                             f"(or name an image folder under data.folders)")
    if len(set(names)) != len(names):
        raise ConfigError(key, "lists a domain twice")


def _folders_check(key, folders):
    for name, path in folders.items():
        if not isinstance(path, str) or not path:
            raise ConfigError(f"{key}.{name}", f"must be the path of an image folder (root/<class>/<image>), got {path!r}")
        if name in PAPER_DOMAINS:
            raise ConfigError(f"{key}.{name}", "is the name of a phantom domain; name the folder differently")


def _counts_check(key, value):
    if isinstance(value, bool) or not (isinstance(value, int) or isinstance(value, dict)):
        raise ConfigError(key, f"must be an integer (every class) or a table {{class = count}}, got {value!r}")
    items = value.items() if isinstance(value, dict) else [("", value)]
    for name, count in items:
        where = f"{key}.{name}" if name else key
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigError(where, f"must be a positive integer, got {count!r}")


def _learning_curve_check(key, sizes):
    if sorted(set(sizes)) != list(sizes):
        raise ConfigError(key, f"must list distinct sizes in increasing order, got {sizes}")


def schema() -> Section:
    """The configuration schema (built on demand: parts come from the engine's registries)."""
    diffusion_train_types = types_from_table(engine_table("diffusion_training"))
    return Section({
        "name": Spec("str", "experiment", "Name shown in the report."),
        "preset": Spec("str", "quick", "Base settings the rest is laid over: 'quick' (minutes on a laptop), "
                                       "'paper' (the paper's scale, for a cluster) or 'none' (library defaults).",
                       choices=("quick", "paper", "none"), nullable=False),
        "seed": Spec("int", 0, "Every random choice of the run derives from it (splits, models, sampling, folds).",
                     minimum=0, nullable=False),
        "data": Section({
            "domains": Spec("list", list(PAPER_DOMAINS), "Phantom domains of the paper (medsynth.datasets.phantom).",
                            item=Spec("str", nullable=False), check=_domains_check, nullable=False),
            "folders": Spec("table", {}, "Your own labelled image folders: {name = 'path'} (ImageFolder layout).",
                            check=_folders_check, nullable=False),
            "image_size": Spec("int", None, "Side of the square images every stage uses (None: the data's own; "
                                            "phantoms default to medsynth.datasets.phantom's).", minimum=8, maximum=1024),
            "channels": Spec("int", None, "Image folders: 1 or 3 channels (None: as the images are).", choices=(1, 3)),
            "n_per_class": Spec("int", None, "Real images per class (None: Table 1's totals for phantoms, every image "
                                             "of a folder).", minimum=2),
            "count_scale": Spec("float", 1.0, "Fraction of the real images used (after n_per_class).", minimum=0,
                                exclusive_minimum=True, maximum=1, nullable=False),
            "train_fraction": Spec("float", PAPER_TRAIN_SIZE, "Share of each class that trains the diffusion model "
                                                              "(the paper: 20 %); the rest is the untouched test set.",
                                   minimum=0, exclusive_minimum=True, maximum=0.9, nullable=False),
        }),
        "diffusion": Section({
            "model": passthrough(_engine_keys("diffusion_config"), types=types_from_table(engine_table("diffusion_config")),
                                 forbidden=_ENGINE_SET, why="taken from the data and the experiment's seed",
                                 doc="medsynth.DiffusionModel options (omitted: the library's defaults)."),
            "train": passthrough(_engine_keys("diffusion_training"), types=diffusion_train_types, forbidden=_RUN_SET,
                                 why="checkpoints, resumption and seeds are managed by the stage",
                                 doc="DiffusionModel.fit options (omitted: the library's defaults)."),
            "sample": passthrough(_engine_keys("sampling"), types=types_from_table(engine_table("sampling")),
                                  forbidden=("seed",), why="each class and chunk gets a seed derived from the experiment's",
                                  doc="DiffusionModel.sample options (omitted: the library's defaults)."),
        }),
        "synthetic": Section({
            "n_per_class": Spec("any", None, "Synthetic images per class: an integer, a table {class = count}, or None "
                                             "for Table 1's 'Generated Images' rule.", check=_counts_check),
            "scale": Spec("float", 1.0, "Multiplies the counts (presets scale the paper's down).", minimum=0,
                          exclusive_minimum=True, maximum=100, nullable=False),
            "write_png": Spec("bool", True, "Also write the synthetic set as an ImageFolder of PNGs.", nullable=False),
        }),
        "classifiers": Section({
            "architectures": Spec("list", None, "CNNs trained on the synthetic images (None: the paper's eight where "
                                                "this build has them).", item=Spec("str", nullable=False),
                                  check=_architectures_check),
            "folds": Spec("int", 5, "Stratified folds of the cross-validation (the paper: 5).", minimum=2, maximum=20,
                          nullable=False),
            "scoring": Spec("str", "accuracy", "Mean fold score that picks the hyperparameters and the best model.",
                            choices=FOLD_SCORES, nullable=False),
            "fit": _classifier_fit_spec(),
            "grid": Spec("table", {}, "Hyperparameter grid {fit option = [values]} searched by cross-validation.",
                         check=_grid_check, nullable=False),
            "refit_validation_split": Spec("float", 0.1, "Share of the training set the final model holds out for early "
                                                         "stopping.", minimum=0, maximum=0.5, nullable=False),
            "keep_fold_models": Spec("bool", False, "Keep every fold's model (otherwise only the results).",
                                     nullable=False),
        }),
        "baselines": Section({
            "real": Spec("bool", True, "The CNN trained on the real 20 % only.", nullable=False),
            "real_augmented": Spec("bool", True, "... with traditional augmentation (baselines.augmentation).",
                                   nullable=False),
            "real_plus_synthetic": Spec("bool", True, "... on the real 20 % plus the synthetic set.", nullable=False),
            "learning_curve": Spec("list", [], "Synthetic images per class of the learning curve (the full set is "
                                               "always a point).", item=Spec("int", minimum=1, nullable=False),
                                   check=_learning_curve_check, nullable=False),
            "architectures": Spec("list", None, "Architectures of the baselines (None: all of classifiers).",
                                  item=Spec("str", nullable=False), check=_architectures_check),
            "augmentation": passthrough(_AUGMENTATION_KEYS, types=types_from_table(engine_table("classifier_training")),
                                        doc="Classifier.fit augmentation of the real-augmented baseline, laid over "
                                            "BASELINE_AUGMENTATION (flips, 10 degree rotations, crops, intensity jitter)."),
        }),
        "fidelity": Section({
            "enabled": Spec("bool", True, "FID, KID, precision/recall and diversity per class.", nullable=False),
            "architecture": Spec("str", "simple_cnn", "Feature extractor, trained on the real sample.",
                                 check=lambda k, v: _architectures_check(k, [v])),
            "fit": _classifier_fit_spec(),
            "k": Spec("int", 3, "Neighbour of the precision/recall radii (Kynkäänniemi et al.: 3).", minimum=1,
                      nullable=False),
            "kid_subsets": Spec("int", 100, "KID subsets.", minimum=1, nullable=False),
            "kid_subset_size": Spec("int", 1000, "KID subset size.", minimum=2, nullable=False),
            "max_per_class": Spec("int", 2000, "Images per class and side the metrics use at most.", minimum=4,
                                  nullable=False),
        }),
        "privacy": Section({
            "enabled": Spec("bool", True, "Memorisation audit against the diffusion model's training images.",
                            nullable=False),
            "threshold": Spec("float", 0.95, "Pixel correlation from which a synthetic image is a near-copy.",
                              minimum=-1, maximum=1, nullable=False),
            "same_class": Spec("bool", False, "Search only the synthetic image's class.", nullable=False),
            "pairs": Spec("int", 8, "Closest pairs shown side by side.", minimum=1, maximum=64, nullable=False),
        }),
        "lime": Section({
            "enabled": Spec("bool", True, "Explain the best model of each domain on real and synthetic images.",
                            nullable=False),
            "images_per_class": Spec("int", 2, "Real test and synthetic images explained per class.", minimum=1,
                                     nullable=False),
            "options": Spec("table", {}, "Keyword arguments of medsynth.lime.explain_many (num_samples, "
                                         "segmentation, ...).", nullable=False),
        }),
        "runtime": Section({
            "backend": Spec("str", "local", "'local' (process pool), 'ray' or 'serial'.",
                            choices=("local", "ray", "serial"), nullable=False),
            "workers": Spec("int", None, "Parallel training tasks (None: the number of cores).", minimum=1),
            "threads_per_worker": Spec("int", None, "Engine threads of each task (None: cores / workers, at least 1).",
                                       minimum=1),
            "ray_address": Spec("str", None, "An existing Ray cluster ('auto' or 'ray://host:port'); None starts a "
                                             "local Ray."),
        }),
    })


# ---- presets ------------------------------------------------------------------------------------

#: What each preset sets; everything else is the library's default.
PRESETS = {
    "none": {},
    # All three phantom domains end to end in minutes on a 2-core laptop: small images, a small
    # U-Net trained briefly and sampled in few steps, a quarter of the paper's synthetic counts,
    # small CNNs, 3 folds of up to 30 epochs (early stopping on validation accuracy, steadier than
    # the loss on these small validation sets).
    "quick": {
        "data": {"image_size": 32, "count_scale": 0.5},
        "diffusion": {"model": {"base_channels": 16},
                      "train": {"steps": 1000, "batch_size": 32, "ema_decay": 0.995},
                      "sample": {"steps": 20, "guidance_scale": 2.0}},
        "synthetic": {"scale": 0.25},
        "classifiers": {"architectures": ["simple_cnn"], "folds": 3,
                        "fit": {"epochs": 30, "early_stopping_patience": 6, "early_stopping_monitor": "val_accuracy",
                                "lr": 2e-3},
                        "grid": {"weight_decay": [0.01, 0.05]}},
        "baselines": {"learning_curve": [25, 50]},
        "fidelity": {"fit": {"epochs": 6}, "kid_subsets": 20, "kid_subset_size": 200},
        "lime": {"images_per_class": 2, "options": {"num_samples": 300, "stability": False}},
    },
    # The paper's scale (Nafi et al. 2024): Table 1's counts, the eight CNNs, 5-fold
    # cross-validation, at most 50 epochs with early stopping, a grid over learning rate and
    # weight decay. Meant for a cluster (backend = "ray").
    "paper": {
        "data": {"image_size": 128},
        "diffusion": {"train": {"steps": 20000, "lr": 2e-4}},   # torch_ref.py's rate for long runs
        "classifiers": {"architectures": list(PAPER_ARCHITECTURES), "folds": 5,
                        "fit": {"epochs": 50, "early_stopping_patience": 5},
                        "grid": {"lr": [1e-3, 1e-4], "weight_decay": [0.01, 0.05]}},
        "baselines": {"learning_curve": [250, 500, 1000]},
        "lime": {"images_per_class": 10},
    },
}

#: Traditional augmentation of the real-augmented baseline: flips, small rotations, crops and
#: intensity jitter (the experiment's definition of the baseline, applied by the engine).
BASELINE_AUGMENTATION = {"hflip": True, "rotate": 10.0, "crop_scale": 0.8, "brightness": 0.1, "contrast": 0.1}


# ---- loading ------------------------------------------------------------------------------------


def read_toml(path) -> dict:
    """A TOML file as a dict (tomllib on Python 3.11+, the tomli package on 3.10)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        try:
            import tomli as tomllib
        except ImportError as e:
            raise ImportError("reading TOML on Python 3.10 needs the tomli package: pip install tomli") from e
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"configuration file '{path}' does not exist")
    with open(path, "rb") as f:
        try:
            return tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError("", f"'{path}' is not valid TOML: {e}") from e


def resolve(config: Union[None, str, os.PathLike, dict] = None, *, preset: Optional[str] = None,
            overrides: Optional[dict] = None) -> dict:
    """The validated configuration: the preset (``preset`` argument, else the config's "preset",
    else "quick") with the config and then ``overrides`` laid over it. Raises ConfigError naming
    the key of the first problem."""
    if config is None:
        user = {}
    elif isinstance(config, dict):
        user = copy.deepcopy(config)
    else:
        user = read_toml(config)
    if overrides:
        user = merge(user, overrides)
    name = preset or user.get("preset") or "quick"
    if name not in PRESETS:
        raise ConfigError("preset", f"must be one of {', '.join(map(repr, PRESETS))}, got {name!r}")
    user["preset"] = name
    layered = merge(copy.deepcopy(PRESETS[name]), user)
    # the preset's architectures may name CNNs this build does not have yet: keep those it has
    if "architectures" not in user.get("classifiers", {}):
        wanted = layered.get("classifiers", {}).get("architectures") or list(PAPER_ARCHITECTURES)
        present = [a for a in wanted if a in ARCHITECTURES]
        layered.setdefault("classifiers", {})["architectures"] = present or ["simple_cnn"]
    resolved = schema().validate("", layered)
    if not resolved["data"]["domains"] and not resolved["data"]["folders"]:
        raise ConfigError("data.domains", "no data: name phantom domains or image folders (data.folders)")
    for arch in resolved["baselines"]["architectures"] or []:
        if arch not in resolved["classifiers"]["architectures"]:
            raise ConfigError("baselines.architectures", f"{arch!r} is not among classifiers.architectures")
    return resolved


def domain_names(config: dict) -> list:
    return list(config["data"]["domains"]) + list(config["data"]["folders"])


# ---- hashing ------------------------------------------------------------------------------------


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str)


def digest(*parts) -> str:
    """A stage's key: SHA-256 of its inputs and settings in canonical JSON."""
    return hashlib.sha256(canonical(parts).encode()).hexdigest()


def derive_seed(seed: int, *names) -> int:
    """An independent seed for one purpose (e.g. ("split", "brain_mri")), in [0, 2^31)."""
    return int(hashlib.sha256(canonical([int(seed), *names]).encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def to_toml(config: dict) -> str:
    """The resolved configuration as TOML (None values are left out: they mean "the default")."""
    lines, tables = [], []

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{json.dumps(k) if not k.isidentifier() else k} = {value(x)}" for k, x in v.items()
                                   if x is not None) + "}"
        raise TypeError(type(v))

    def emit(prefix, table, out):
        scalars = [(k, v) for k, v in table.items() if v is not None and not (isinstance(v, dict) and _is_section(k, prefix))]
        for k, v in scalars:
            out.append(f"{k if k.isidentifier() else json.dumps(k)} = {value(v)}")
        for k, v in table.items():
            if isinstance(v, dict) and _is_section(k, prefix):
                name = f"{prefix}.{k}" if prefix else k
                tables.append((name, v))

    def _is_section(k, prefix):
        return prefix in ("", "diffusion") and k in ("data", "diffusion", "synthetic", "classifiers", "baselines",
                                                     "fidelity", "privacy", "lime", "runtime", "model", "train", "sample")

    emit("", config, lines)
    while tables:
        name, table = tables.pop(0)
        lines.append(f"\n[{name}]")
        emit(name, table, lines)
    return "\n".join(lines) + "\n"
