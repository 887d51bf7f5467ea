"""Synthetic-data quality and privacy of each domain (stage quality/<domain>): FID, KID,
precision/recall and diversity per class in the feature space of a classifier trained on the real
sample, and the memorisation audit of the synthetic images against the diffusion model's
training images, with held-out real images as the reference level."""
from __future__ import annotations

import numpy as np

from .. import fidelity, privacy
from ..classifier import Classifier
from ._stages import Stage, load_array, save_array, write_json
from .config import derive_seed, digest


def _cap(y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of at most ``per_class`` images of each class (a seeded random choice), sorted."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        keep.append(members if len(members) <= per_class else np.sort(rng.choice(members, per_class, replace=False)))
    return np.sort(np.concatenate(keep))


def quality_stage(run, domain: str, d: dict, extractor) -> dict:
    cfg = run.config
    f, p = cfg["fidelity"], cfg["privacy"]
    if not (f["enabled"] or p["enabled"]):
        return None
    stage = Stage(run.out, f"quality/{domain}", digest("quality", d["data"]["key"], d["synthetic"]["key"], extractor.key,
                                                      f, p, cfg["seed"]))
    if stage.done:
        run.log(f"[{domain}] quality and privacy: done, skipped")
        return {"dir": stage.dir, "key": stage.key, **stage.record["summary"]}
    run.log(f"[{domain}] quality and privacy audit")
    stage.begin()
    data, syn = d["data"], d["synthetic"]
    real = load_array(data["dir"] / "images.npy", mmap=True)
    real_y = load_array(data["dir"] / "labels.npy")
    X_syn, y_syn = load_array(syn["dir"] / "images.npy", mmap=True), syn["labels"]
    names = data["class_names"]
    seed = derive_seed(cfg["seed"], "quality", domain)
    # the synthetic set of the main run (the first main_counts of each class)
    main = np.concatenate([np.flatnonzero(y_syn == c)[:n] for c, n in enumerate(syn["main_counts"])])
    syn_idx = main[_cap(y_syn[main], f["max_per_class"], seed)]
    test_idx = data["test"][_cap(real_y[data["test"]], f["max_per_class"], seed + 1)]
    train_idx = data["train"]
    clf = Classifier.load(extractor.dir / "model.safetensors")
    feats = {name: clf.features(np.asarray(x), batch_size=128) for name, x in
             (("synthetic", X_syn[syn_idx]), ("test", real[test_idx]), ("train", real[train_idx]))}
    summary = {"feature_extractor": {"architecture": clf.architecture, "feature_size": clf.feature_size,
                                     "trained_on": "the real sample (the diffusion model's training images)"},
               "n": {"synthetic": int(len(syn_idx)), "test": int(len(test_idx)), "train": int(len(train_idx))}}
    if f["enabled"]:
        options = {"class_names": names, "k": f["k"], "kid_subsets": f["kid_subsets"], "kid_subset_size": f["kid_subset_size"],
                   "seed": seed}
        summary["fidelity"] = fidelity.evaluate(feats["test"], real_y[test_idx], feats["synthetic"], y_syn[syn_idx], **options)
        # the level two real sets reach: the real sample against the held-out real images
        summary["fidelity_real_reference"] = fidelity.evaluate(feats["test"], real_y[test_idx], feats["train"],
                                                               real_y[train_idx], **options)
    if p["enabled"]:
        audit = privacy.memorisation_audit(X_syn[syn_idx], real[train_idx], synthetic_labels=y_syn[syn_idx],
                                           training_labels=real_y[train_idx], synthetic_features=feats["synthetic"],
                                           training_features=feats["train"], reference=real[test_idx],
                                           reference_labels=real_y[test_idx], reference_features=feats["test"],
                                           threshold=p["threshold"], same_class=p["same_class"])
        pairs = privacy.closest_pairs(audit, p["pairs"])
        save_array(stage.dir / "correlation.npy", audit["correlation"])
        save_array(stage.dir / "reference_correlation.npy", audit["reference_correlation"])
        save_array(stage.dir / "nearest.npy", train_idx[audit["nearest"]])
        summary["privacy"] = {
            "threshold": audit["threshold"], "same_class": p["same_class"], "near_copy_share": audit["near_copy_share"],
            "near_copies": int(audit["near_copy"].sum()), "per_class_share": {names[int(k)]: v for k, v in audit["per_class_share"].items()},
            "summary": audit["summary"], "reference_summary": audit["reference_summary"],
            "reference_share": audit["reference_share"],
            "feature_distance_median": float(np.median(audit["feature_distance"])),
            "reference_feature_distance_median": float(np.median(audit["reference_feature_distance"])),
            # closest pairs: synthetic image (index into synthetic/images.npy), its nearest real training image
            "closest_pairs": [{"synthetic": int(syn_idx[s]), "training": int(train_idx[t]), "correlation": r,
                               "class": names[int(y_syn[syn_idx[s]])],
                               "training_class": names[int(real_y[train_idx[t]])]} for s, t, r in pairs]}
    write_json(stage.dir / "quality.json", summary)
    stage.finish(summary)
    return {"dir": stage.dir, "key": stage.key, **summary}
