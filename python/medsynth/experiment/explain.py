"""LIME on the best model of each domain (stage lime/<domain>): explanations of real test images
and of synthetic images of every class, their overlays, and the real-versus-synthetic statistics
of medsynth.lime (where the explanations concentrate, whether they point at the lesion, and a
Mann-Whitney test of each statistic between the two sets)."""
from __future__ import annotations

import numpy as np

from ..classifier import Classifier
from ._stages import Stage, load_array, write_json
from .config import derive_seed, digest


def lime_module():
    """medsynth.lime when this build has it (else None: the stage is reported as not run)."""
    try:
        from .. import lime
    except ImportError:
        return None
    return lime if hasattr(lime, "explain_many") and hasattr(lime, "compare") else None


def _first_per_class(y: np.ndarray, n: int) -> np.ndarray:
    return np.concatenate([np.flatnonzero(y == c)[:n] for c in np.unique(y)])


def lime_stage(run, domain: str, d: dict, model_task, arch: str) -> dict:
    cfg = run.config
    options = cfg["lime"]
    if not options["enabled"]:
        return None
    lime = lime_module()
    if lime is None:
        run.log(f"[{domain}] LIME: medsynth.lime is not in this build, not run")
        return {"skipped": "medsynth.lime is not in this build of medsynth"}
    stage = Stage(run.out, f"lime/{domain}", digest("lime", model_task.key, d["synthetic"]["key"], options, cfg["seed"]))
    if stage.done:
        run.log(f"[{domain}] LIME: done, skipped")
        return {"dir": stage.dir, "key": stage.key, **stage.record["summary"]}
    run.log(f"[{domain}] LIME on {arch}")
    stage.begin()
    data, syn = d["data"], d["synthetic"]
    real = load_array(data["dir"] / "images.npy", mmap=True)
    real_y = load_array(data["dir"] / "labels.npy")
    masks = load_array(data["dir"] / "masks.npy", mmap=True) if (data["dir"] / "masks.npy").exists() else None
    test = data["test"]
    rng = np.random.default_rng(derive_seed(cfg["seed"], "lime", domain))
    shuffled = test[rng.permutation(len(test))]
    real_idx = shuffled[_first_per_class(real_y[shuffled], options["images_per_class"])]
    syn_idx = _first_per_class(syn["labels"], options["images_per_class"])
    clf = Classifier.load(model_task.dir / "model.safetensors")
    explain = {"seed": derive_seed(cfg["seed"], "lime", domain), "progress": run.progress, **options["options"]}
    X_real, y_real = np.asarray(real[real_idx]), real_y[real_idx]
    X_syn, y_syn = np.asarray(load_array(syn["dir"] / "images.npy", mmap=True)[syn_idx]), syn["labels"][syn_idx]
    real_set = lime.explain_many(clf, X_real, labels=[[int(c)] for c in y_real], **explain)
    syn_set = lime.explain_many(clf, X_syn, labels=[[int(c)] for c in y_syn], **explain)
    m_real = None if masks is None else np.asarray(masks[real_idx])
    comparison = lime.compare(real_set, syn_set, masks_real=m_real, true_real=y_real, true_synthetic=y_syn)
    names = data["class_names"]
    overlays = []
    for kind, es, ys in (("real", real_set, y_real), ("synthetic", syn_set, y_syn)):
        for i, (e, c) in enumerate(zip(es, ys)):
            path = stage.dir / f"{kind}_{i:02d}_{names[int(c)]}.png"
            e.save_png(path, int(c))
            overlays.append({"kind": kind, "class": names[int(c)], "path": path.name,
                             "predicted": names[int(e.predicted_label)] if hasattr(e, "predicted_label") else None})
    summary = {"architecture": arch, "model": str(model_task.dir / "model.safetensors"), "comparison": dict(comparison),
               "overlays": overlays, "n_real": int(len(real_idx)), "n_synthetic": int(len(syn_idx)),
               "stability": {k: getattr(s, "stability", None) and {kk: vv for kk, vv in s.stability.items() if kk != "spearman"}
                             for k, s in (("real", real_set), ("synthetic", syn_set))}}
    write_json(stage.dir / "lime.json", summary)
    stage.finish(summary)
    return {"dir": stage.dir, "key": stage.key, **summary}
