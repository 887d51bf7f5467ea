"""The classifier grid: domains x training sets x architectures x hyperparameters x folds.

Phase 1 cross-validates every hyperparameter setting of every architecture on the synthetic set
(stratified folds, early stopping on each fold's validation loss, as the paper) and trains the
feature extractor of the fidelity audit on the real sample. The best setting of each architecture
(highest mean fold score) is then refitted on the whole training set (phase 2), as scikit-learn's
GridSearchCV does, and tested on the untouched real 80 %. The baselines and the learning curve are
refitted with the same setting, so they differ from the main run only in their training images.

Each task is saved under train/<domain>/<training set>/<architecture>/<task>/ with the key of its
inputs; a rerun skips the tasks whose key is unchanged.
"""
from __future__ import annotations

import numpy as np

from ..model_selection import StratifiedKFold, parameter_grid
from ._stages import read_json, write_bytes, write_json
from .config import BASELINE_AUGMENTATION, derive_seed, digest

MAIN = "synthetic"
FOLD_SCORE_KEYS = {"accuracy": "accuracy", "balanced_accuracy": "balanced_accuracy", "precision_macro": "precision_macro",
                   "recall_macro": "recall_macro", "f1_macro": "f1_macro", "val_loss": "loss"}


def _params_list(cfg) -> list:
    grid = cfg["classifiers"]["grid"]
    return parameter_grid(grid) if grid else [{}]


def _params_tag(params: dict) -> str:
    return "p-" + digest(params)[:8] if params else "p-default"


class Task:
    """A task's spec, where it is saved, and its key."""

    def __init__(self, run, domain, variant, arch, tag, spec, sources, keep_model: bool, meta: dict):
        self.domain, self.variant, self.arch, self.tag, self.meta = domain, variant, arch, tag, meta
        spec = dict(spec, keep_model=keep_model)
        self.key = digest("task", {k: v for k, v in spec.items() if k != "threads"}, sources, run.version)
        self.spec = spec
        self.dir = run.out / "train" / domain / variant / arch / tag

    @property
    def cached(self):
        path = self.dir / "result.json"
        if not path.is_file():
            return None
        try:
            record = read_json(path)
        except (OSError, ValueError):
            return None
        if record.get("key") != self.key:
            return None
        if self.spec["keep_model"] and not (self.dir / "model.safetensors").is_file():
            return None
        return record["result"]

    def save(self, result: dict) -> dict:
        model = result.pop("model", None)
        if model is not None:
            write_bytes(self.dir / "model.safetensors", model)
        record = {"key": self.key, "domain": self.domain, "variant": self.variant, "architecture": self.arch,
                  "task": self.tag, "meta": self.meta, "result": result}
        write_json(self.dir / "result.json", record)
        return result


def _part(domain, source, index=None) -> dict:
    return {"images": f"{domain}/{source}", "labels": f"{domain}/{source}_labels",
            "index": None if index is None else [int(i) for i in index]}


def _fit_options(cfg, params) -> dict:
    return {**cfg["classifiers"]["fit"], **params}


def _training_parts(domain, variant, data, synthetic) -> list:
    """Training images of each training set (indices into the real or synthetic arrays)."""
    real = _part(domain, "real", data["train"])
    if variant in (MAIN,):
        return [_part(domain, "synthetic")]
    if variant in ("real", "real_augmented"):
        return [real]
    if variant == "real_plus_synthetic":
        return [real, _part(domain, "synthetic")]
    if variant.startswith("synthetic_n"):
        per_class = int(variant[len("synthetic_n"):])
        y = synthetic["labels"]
        keep = np.concatenate([np.flatnonzero(y == c)[:per_class] for c in np.unique(y)])
        return [_part(domain, "synthetic", np.sort(keep))]
    raise ValueError(f"unknown training set {variant!r}")


def phase_one(run, domains: dict) -> list:
    """Cross-validation tasks of the main training set, and the fidelity feature extractors."""
    cfg = run.config
    c = cfg["classifiers"]
    tasks = []
    for domain, d in domains.items():
        y = d["synthetic"]["labels"]
        folds_seed = derive_seed(cfg["seed"], "folds", domain)
        splits = list(StratifiedKFold(c["folds"], shuffle=True, seed=folds_seed).split(np.empty(len(y)), y))
        sources = [d["data"]["key"], d["synthetic"]["key"]]
        for arch in c["architectures"]:
            seed = derive_seed(cfg["seed"], "classifier", domain, arch)
            for params in _params_list(cfg):
                for k, (train, val) in enumerate(splits):
                    spec = {"architecture": arch, "seed": seed, "fit": _fit_options(cfg, params), "threads": run.threads,
                            "train": [_part(domain, "synthetic", train)], "val": _part(domain, "synthetic", val),
                            "test": None, "pretrained": None}
                    tasks.append(Task(run, domain, MAIN, arch, f"cv-{_params_tag(params)}-fold{k + 1}", spec, sources,
                                      c["keep_fold_models"], {"params": params, "fold": k + 1}))
        if cfg["fidelity"]["enabled"] or cfg["privacy"]["enabled"]:
            f = cfg["fidelity"]
            spec = {"architecture": f["architecture"], "seed": derive_seed(cfg["seed"], "features", domain),
                    "fit": dict(f["fit"]), "threads": run.threads, "train": [_part(domain, "real", d["data"]["train"])],
                    "val": None, "test": None, "pretrained": None}
            tasks.append(Task(run, domain, "features", f["architecture"], "real-sample", spec, [d["data"]["key"]], True,
                              {"purpose": "feature extractor of the fidelity and privacy audit"}))
    return tasks


def select(run, results: dict) -> dict:
    """Best hyperparameters of each (domain, architecture): the highest mean fold score (the lowest
    for val_loss), the first on ties. Returns {(domain, arch): {"params", "mean", "std", "folds"}}."""
    scoring = run.config["classifiers"]["scoring"]
    key = FOLD_SCORE_KEYS[scoring]
    sign = -1 if scoring == "val_loss" else 1
    grouped = {}
    # results arrive in completion order, which differs between backends: folds are taken in
    # their own order so that every backend gives the same table
    for task, result in sorted(results.items(), key=lambda item: item[0].meta.get("fold", 0)):
        if task.variant != MAIN or not task.tag.startswith("cv-"):
            continue
        tag = _params_tag(task.meta["params"])
        grouped.setdefault((task.domain, task.arch), {}).setdefault(tag, {"params": task.meta["params"], "folds": []})
        grouped[(task.domain, task.arch)][tag]["folds"].append(result)
    best = {}
    order = {_params_tag(p): i for i, p in enumerate(_params_list(run.config))}
    for (domain, arch), settings in grouped.items():
        summaries = []
        for tag, entry in settings.items():
            folds = entry["folds"]
            metrics = {m: float(np.mean([f["val"][FOLD_SCORE_KEYS[m]] for f in folds])) for m in FOLD_SCORE_KEYS}
            spread = {m: float(np.std([f["val"][FOLD_SCORE_KEYS[m]] for f in folds])) for m in FOLD_SCORE_KEYS}
            train = {"loss": float(np.mean([f["train"]["loss"] for f in folds])),
                     "accuracy": float(np.mean([f["train"]["accuracy"] for f in folds]))}
            summaries.append({"params": entry["params"], "mean": metrics, "std": spread, "train": train,
                              "epochs": [f["best_epoch"] for f in folds], "order": order.get(tag, 0)})
        summaries.sort(key=lambda s: (-sign * s["mean"][scoring], s["order"]))
        best[(domain, arch)] = {**summaries[0], "all": summaries}
    return best


def phase_two(run, domains: dict, best: dict) -> list:
    """Refits of the best setting: the main training set, the baselines and the learning curve."""
    cfg = run.config
    c, b = cfg["classifiers"], cfg["baselines"]
    tasks = []
    for domain, d in domains.items():
        variants = [(MAIN, c["architectures"])]
        base_archs = b["architectures"] or c["architectures"]
        for name in ("real", "real_augmented", "real_plus_synthetic"):
            if b[name]:
                variants.append((name, base_archs))
        main_counts = d["synthetic"]["main_counts"]
        for size in b["learning_curve"]:
            if size < min(main_counts):
                variants.append((f"synthetic_n{size}", base_archs))
            else:
                run.log(f"[{domain}] learning curve: {size} per class is not below the synthetic set's "
                        f"{min(main_counts)} per class; left out")
        for variant, archs in variants:
            parts = _training_parts(domain, variant, d["data"], d["synthetic"])
            sources = [d["data"]["key"]] + ([d["synthetic"]["key"]] if variant != "real" and variant != "real_augmented" else [])
            for arch in archs:
                params = best[(domain, arch)]["params"]
                fit = _fit_options(cfg, params)
                if variant == "real_augmented":
                    fit.update({**BASELINE_AUGMENTATION, **b["augmentation"]})
                split = c["refit_validation_split"] if fit.get("early_stopping_patience") else 0.0
                spec = {"architecture": arch, "seed": derive_seed(cfg["seed"], "classifier", domain, arch), "fit": fit,
                        "threads": run.threads, "train": parts, "val": None, "validation_split": split,
                        "test": _part(domain, "real", d["data"]["test"]), "pretrained": None}
                tasks.append(Task(run, domain, variant, arch, "refit", spec, sources, variant == MAIN,
                                  {"params": params}))
    return tasks


def execute(run, tasks: list, label: str) -> dict:
    """Runs the tasks not cached yet on the run's backend; returns {task: result} for all."""
    results, todo = {}, []
    for task in tasks:
        cached = task.cached
        if cached is not None:
            results[task] = cached
        else:
            todo.append(task)
    run.log(f"{label}: {len(tasks)} tasks, {len(tasks) - len(todo)} done before, {len(todo)} to run "
            f"on the {run.backend.name} backend")
    if todo:
        bar = run.bar(total=len(todo), desc=label, unit="task")
        try:
            run.backend.run([t.spec for t in todo], run.array_paths,
                            lambda i, result: results.__setitem__(todo[i], todo[i].save(result)), progress=bar)
        finally:
            bar.close()
    return results
