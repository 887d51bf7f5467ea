"""The experiment's data: the paper's three domains (phantoms drawn by medsynth, with the counts of
the paper's Table 1) or the user's image folders, and the synthetic counts per class.

Adapters: ``load_domain`` uses ``medsynth.datasets.phantom`` and ``medsynth.datasets.load_folder``
where this build has them. Without phantoms, a stand-in with the domain's classes, channels and
counts is drawn with ``medsynth.datasets.make_shapes`` and the report says so.
"""
from __future__ import annotations

import numpy as np

from .. import datasets

#: The paper's Table 1 ("Total Images" per class; the 20 % sample follows by rounding).
#: Brain tumour MRI (Nickparvar), acute lymphoblastic leukaemia smears (Aria et al.), SARS-CoV-2
#: CT (Soares et al.).
PAPER_DOMAINS = {
    "brain_mri": {"title": "Brain tumour MRI", "classes": ("glioma", "meningioma", "notumor", "pituitary"),
                  "counts": (1621, 1645, 2000, 1757), "channels": 1},
    "all": {"title": "Acute lymphoblastic leukaemia", "classes": ("benign", "early", "pre", "pro"),
            "counts": (504, 985, 963, 804), "channels": 3},
    "covid_ct": {"title": "SARS-CoV-2 CT", "classes": ("covid", "non_covid"), "counts": (1252, 1229), "channels": 1},
}

#: The paper generates "1000-1700" images per class; its per-class 'Generated Images' column was
#: not available to us, so the default is each class's real total clamped to that range (the
#: synthetic set stands in for a real set of the same size).
GENERATED_RANGE = (1000, 1700)


def phantoms_available() -> bool:
    return hasattr(datasets, "phantom") and hasattr(datasets, "PHANTOM_DOMAINS")


def available_domains() -> tuple:
    if phantoms_available():
        return tuple(datasets.PHANTOM_DOMAINS)
    return tuple(PAPER_DOMAINS)


def domain_info(name: str) -> dict:
    """Title, classes, Table 1 counts and channels of a phantom domain."""
    info = dict(PAPER_DOMAINS.get(name, {"title": name}))
    if phantoms_available() and name in datasets.PHANTOM_DOMAINS:
        registry = datasets.PHANTOM_DOMAINS[name]
        info.update(classes=tuple(registry["classes"]), counts=tuple(int(c) for c in registry["default_counts"]),
                    channels=int(registry["channels"]))
    return info


def generated_counts(real_totals, scale: float = 1.0, requested=None, class_names=()) -> list:
    """Synthetic images per class: ``requested`` (an int, or {class: count}) or the default rule
    (``GENERATED_RANGE``), times ``scale``, at least 1."""
    if requested is None:
        base = [min(max(int(n), GENERATED_RANGE[0]), GENERATED_RANGE[1]) for n in real_totals]
    elif isinstance(requested, dict):
        unknown = set(requested) - set(class_names)
        if unknown:
            raise ValueError(f"synthetic.n_per_class names unknown classes {sorted(unknown)}; the classes are "
                             f"{list(class_names)}")
        base = [int(requested.get(name, GENERATED_RANGE[0])) for name in class_names]
    else:
        base = [int(requested)] * len(real_totals)
    return [max(1, int(round(n * scale))) for n in base]


def _subsample(y: np.ndarray, per_class, scale: float, seed: int) -> np.ndarray:
    """Indices keeping at most ``per_class`` images of each class, then ``scale`` of them."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        n = len(members) if per_class is None else min(len(members), int(per_class))
        n = max(2, int(round(n * scale)))
        keep.append(np.sort(rng.choice(members, size=min(n, len(members)), replace=False)))
    return np.sort(np.concatenate(keep))


def load_domain(name: str, config: dict, seed: int) -> dict:
    """The real images of one domain: {"X", "y", "class_names", "masks" (or None), "source",
    "title", "stand_in" (a note when a stand-in replaces the data, else None)}."""
    data = config["data"]
    size = data["image_size"]
    if name in data["folders"]:
        kwargs = {"image_size": size} if size else {}
        if data["channels"]:
            kwargs["channels"] = data["channels"]
        loader = getattr(datasets, "load_folder", None)
        if loader is not None:
            X, y, names = loader(data["folders"][name], **kwargs)
        else:
            if size or data["channels"]:
                raise ValueError(f"data.folders.{name}: resizing and channel conversion need medsynth.datasets.load_folder, "
                                 f"which this build does not have; give images of one size")
            X, y, names = datasets.load_image_folder(data["folders"][name])
        keep = _subsample(y, data["n_per_class"], data["count_scale"], seed)
        return {"X": X[keep], "y": y[keep], "class_names": list(names), "masks": None, "source": data["folders"][name],
                "title": name, "stand_in": None}

    info = domain_info(name)
    counts = [int(data["n_per_class"])] * len(info["classes"]) if data["n_per_class"] else list(info["counts"])
    counts = [max(2, int(round(c * data["count_scale"]))) for c in counts]
    if phantoms_available():
        kwargs = {"image_size": size} if size else {}
        X, y, names, masks = datasets.phantom(name, n_per_class=counts, seed=seed, return_masks=True, **kwargs)
        return {"X": X, "y": y, "class_names": list(names), "masks": masks, "source": f"medsynth.datasets.phantom('{name}')",
                "title": info["title"], "stand_in": None}
    return _shapes_stand_in(name, info, counts, size or 64, seed)


def _shapes_stand_in(name: str, info: dict, counts, size: int, seed: int) -> dict:
    """Generated shapes with the domain's classes, counts and channels, while the phantoms are
    not in this build (make_shapes draws equal counts; each class is cut to its count)."""
    k, channels = len(info["classes"]), info["channels"]
    X, y = datasets.make_shapes(n_per_class=max(counts), num_classes=k, size=size, channels=channels, seed=seed)
    keep = np.concatenate([np.flatnonzero(y == c)[:counts[c]] for c in range(k)])
    keep.sort()
    return {"X": X[keep], "y": y[keep], "class_names": list(info["classes"]), "masks": None,
            "source": f"medsynth.datasets.make_shapes (stand-in for '{name}')", "title": info["title"],
            "stand_in": "medsynth.datasets.phantom is not in this build: generated shapes with the domain's classes, "
                        "channels and Table 1 counts stand in for the phantoms"}
