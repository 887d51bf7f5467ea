"""How many LIME samples make an explanation stable: the README's table.

A ResNet-18 is trained briefly on brain-MRI phantoms at each image size; for a few held-out
images, each explained with 3 seeds on the same quickshift superpixels, Spearman's rank
correlation of the superpixel weights between seeds (medsynth.lime.seed_stability) is averaged
for each number of samples.

    python python/tools/lime_stability.py [--sizes 64 128] [--samples 250 500 1000 2000 4000]
"""
from __future__ import annotations

import argparse
import json

import numpy as np

import medsynth
from medsynth.model_selection import stratified_split


def stability_table(size: int, samples, images: int = 4, per_class: int = 150, epochs: int = 3, seed: int = 0) -> dict:
    X, y, _ = medsynth.datasets.phantom("brain_mri", per_class, size, seed=seed)
    train, test = stratified_split(y, train_size=0.8, seed=seed)
    model = medsynth.Classifier("resnet18", seed=seed)
    model.fit(X[train], y[train], epochs=epochs, batch_size=32, lr=1e-3, progress=False)
    accuracy = float(np.mean(model.predict(X[test]) == y[test]))
    chosen = test[:: max(1, len(test) // images)][:images]
    row = {"image_size": size, "held_out_accuracy": round(accuracy, 3), "images": len(chosen), "spearman": {}}
    for n in samples:
        rhos = [medsynth.lime.seed_stability(model, X[i], seeds=(0, 1, 2), num_samples=n)["mean"] for i in chosen]
        row["spearman"][n] = round(float(np.nanmean(rhos)), 3)
        print(json.dumps({"image_size": size, "num_samples": n, "spearman": row["spearman"][n]}), flush=True)
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--samples", type=int, nargs="+", default=[250, 500, 1000, 2000, 4000])
    parser.add_argument("--images", type=int, default=4)
    args = parser.parse_args(argv)
    for size in args.sizes:
        print(json.dumps(stability_table(size, args.samples, images=args.images)), flush=True)


if __name__ == "__main__":
    main()
