"""The first three stages of each domain: the real data and its 20 % / 80 % split, the diffusion
model trained on the 20 %, and the synthetic set it generates (in resumable chunks)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from .. import datasets
from ..diffusion import DiffusionModel
from ..model_selection import stratified_split
from ._schema import ConfigError
from ._stages import Stage, load_array, read_json, save_array, write_json
from .config import derive_seed, digest
from .data import domain_info, generated_counts, load_domain


def _folder_fingerprint(path) -> str:
    """Names, sizes and times of every file under an image folder: a changed folder reruns."""
    h = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for name in sorted(files):
            p = os.path.join(folder, name)
            try:
                st = os.stat(p)
            except OSError:
                continue
            h.update(f"{os.path.relpath(p, path)}|{st.st_size}|{int(st.st_mtime)}\n".encode())
    return h.hexdigest()


def data_stage(run, domain: str) -> dict:
    """data/<domain>: images.npy, labels.npy, masks.npy (phantoms), split.json."""
    cfg = run.config
    settings = {k: cfg["data"][k] for k in ("image_size", "channels", "n_per_class", "count_scale", "train_fraction")}
    source = cfg["data"]["folders"].get(domain)
    fingerprint = _folder_fingerprint(source) if source else None
    stage = Stage(run.out, f"data/{domain}", digest("data", domain, settings, fingerprint, cfg["seed"], run.version))
    if not stage.done:
        run.log(f"[{domain}] data")
        stage.begin()
        d = load_domain(domain, cfg, derive_seed(cfg["seed"], "data", domain))
        train, test = stratified_split(d["y"], train_size=cfg["data"]["train_fraction"],
                                       seed=derive_seed(cfg["seed"], "split", domain))
        save_array(stage.dir / "images.npy", np.ascontiguousarray(d["X"], dtype=np.float32))
        save_array(stage.dir / "labels.npy", d["y"].astype(np.int64))
        if d["masks"] is not None:
            save_array(stage.dir / "masks.npy", d["masks"])
        k = len(d["class_names"])
        counts = {"total": np.bincount(d["y"], minlength=k).tolist(), "sampled": np.bincount(d["y"][train], minlength=k).tolist(),
                  "test": np.bincount(d["y"][test], minlength=k).tolist()}
        write_json(stage.dir / "split.json", {"train": train, "test": test})
        info = domain_info(domain) if not source else {}
        stage.finish({"class_names": d["class_names"], "counts": counts, "source": d["source"], "title": d["title"],
                      "stand_in": d["stand_in"], "shape": list(d["X"].shape[1:]), "masks": d["masks"] is not None,
                      "paper_counts": list(info.get("counts", [])) if "counts" in info else None})
    else:
        run.log(f"[{domain}] data: done, skipped")
    summary = stage.record["summary"]
    split = read_json(stage.dir / "split.json")
    return {"key": stage.key, "dir": stage.dir, "train": np.asarray(split["train"], np.int64),
            "test": np.asarray(split["test"], np.int64), **summary}


def diffusion_stage(run, domain: str, data: dict) -> dict:
    """diffusion/<domain>: the class-conditional DDPM trained on the 20 % sample (model.safetensors,
    history.json); an interrupted training continues from its checkpoint exactly."""
    cfg = run.config
    d = cfg["diffusion"]
    stage = Stage(run.out, f"diffusion/{domain}", digest("diffusion", data["key"], d["model"], d["train"], cfg["seed"]))
    if stage.done:
        run.log(f"[{domain}] diffusion model: done, skipped")
        return {"key": stage.key, "path": stage.dir / "model.safetensors", **stage.record["summary"]}
    resume = stage.resumable and (stage.dir / "training.safetensors").exists()
    stage.begin()
    images = load_array(data["dir"] / "images.npy", mmap=True)
    labels = load_array(data["dir"] / "labels.npy")
    X, y = np.asarray(images[data["train"]]), labels[data["train"]]
    seed = derive_seed(cfg["seed"], "diffusion", domain)
    run.log(f"[{domain}] diffusion model: training on {len(y)} images" + (" (resuming)" if resume else ""))
    try:
        model = DiffusionModel(seed=seed, **d["model"])
    except (TypeError, ValueError) as e:
        raise ConfigError("diffusion.model", str(e)) from e
    options = dict(d["train"])
    options.update(checkpoint=os.fspath(stage.dir / "training.safetensors"), progress=run.progress)
    if resume:
        options["resume"] = True
    try:
        model.fit(X, y, **options)
    except (TypeError, ValueError) as e:
        raise ConfigError("diffusion.train", str(e)) from e
    model.save(stage.dir / "model.safetensors")
    history = model.history_ or {}
    write_json(stage.dir / "history.json", history)
    (stage.dir / "training.safetensors").unlink(missing_ok=True)
    config = model.config
    summary = {"parameters": int(config["state"]["parameters"]), "steps": int(config["state"]["trained_steps"]),
               "final_loss": history.get("final_loss"), "config": {k: v for k, v in config.items() if k != "state"}}
    stage.finish(summary)
    return {"key": stage.key, "path": stage.dir / "model.safetensors", **summary}


def synthetic_stage(run, domain: str, data: dict, diffusion: dict) -> dict:
    """synthetic/<domain>: images.npy and labels.npy (class by class), and an ImageFolder of PNGs.
    Sampled in chunks with their own seeds, each saved as it is done, so an interrupted stage
    continues with the next chunk."""
    cfg = run.config
    names = data["class_names"]
    main = generated_counts(data["counts"]["total"], cfg["synthetic"]["scale"], cfg["synthetic"]["n_per_class"], names)
    counts = main
    sample = cfg["diffusion"]["sample"]
    chunk = int(sample.get("batch_size") or 64)
    stage = Stage(run.out, f"synthetic/{domain}", digest("synthetic", diffusion["key"], sample, counts, chunk,
                                                       cfg["synthetic"]["write_png"], cfg["seed"]))
    if stage.done:
        run.log(f"[{domain}] synthetic images: done, skipped")
        return {"key": stage.key, "dir": stage.dir, **stage.record["summary"]}
    resuming = stage.resumable
    stage.begin()
    run.log(f"[{domain}] synthetic images: sampling {sum(counts)}" + (" (resuming)" if resuming else ""))
    model = DiffusionModel.load(diffusion["path"])
    parts = Path(stage.dir / "chunks")
    parts.mkdir(exist_ok=True)
    jobs = [(c, j, min(chunk, counts[c] - j * chunk)) for c in range(len(names)) for j in range(-(-counts[c] // chunk))]
    bar = run.bar(total=sum(counts), desc=f"[{domain}] sampling", unit="image")
    images, labels = [], []
    try:
        for c, j, n in jobs:
            path = parts / f"class{c}_chunk{j}.npy"
            if path.exists():
                x = load_array(path)
            else:
                try:
                    x, _ = model.sample(labels=np.full(n, model.classes_[c]), seed=derive_seed(cfg["seed"], "sample", domain, c, j),
                                        output="float", progress=False, **sample)
                except (TypeError, ValueError) as e:
                    raise ConfigError("diffusion.sample", str(e)) from e
                save_array(path, x.astype(np.float32))
            images.append(x)
            labels.append(np.full(n, c, dtype=np.int64))
            bar.update(n)
    finally:
        bar.close()
    X, y = np.concatenate(images), np.concatenate(labels)
    save_array(stage.dir / "images.npy", X)
    save_array(stage.dir / "labels.npy", y)
    if cfg["synthetic"]["write_png"]:
        datasets.save_image_folder(stage.dir / "png", np.clip(X, 0, 1), y, names, prefix="synthetic")
    for path in parts.iterdir():
        path.unlink()
    parts.rmdir()
    summary = {"counts": counts, "main_counts": main, "sampling": sample}
    stage.finish(summary)
    return {"key": stage.key, "dir": stage.dir, **summary}
