"""End-to-end demo on generated data: train a classifier natively, evaluate it on images it never
saw, save it, reload it, and check the reloaded model predicts the same.

Run with ``python -m medsynth.demo`` (``make demo``).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

import medsynth
from medsynth.classifier import stratified_split


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-per-class", type=int, default=300)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--out", default=None, help="folder for the model and sample images (default: a temp dir)")
    args = parser.parse_args(argv)

    out = args.out or tempfile.mkdtemp(prefix="medsynth-demo-")
    os.makedirs(out, exist_ok=True)
    print(f"medsynth {medsynth.__version__}, {medsynth.get_num_threads()} threads; output in {out}")

    X, y = medsynth.datasets.make_shapes(n_per_class=args.n_per_class, num_classes=4, size=args.size, seed=0)
    names = list(medsynth.datasets.SHAPE_CLASSES[:4])
    train, test = stratified_split(y, 0.5, seed=0)
    print(f"data: {len(y)} generated {args.size}x{args.size} images of {names}; {len(train)} to train, {len(test)} held out")
    medsynth.datasets.save_image_folder(os.path.join(out, "samples"), X[test[:8]], y[test[:8]], names)

    clf = medsynth.Classifier("simple_cnn", seed=0)
    t0 = time.perf_counter()
    clf.fit(X[train], y[train], epochs=args.epochs, batch_size=32, lr=2e-3, validation_split=0.1,
            schedule="cosine", checkpoint=os.path.join(out, "checkpoint.safetensors"))
    seconds = time.perf_counter() - t0
    accuracy = clf.score(X[test], y[test])
    last = clf.history_["epochs"][-1]
    print(f"trained {clf.n_parameters:,} parameters in {seconds:.1f} s; last epoch: train loss "
          f"{last['train_loss']:.3f}, validation accuracy {last['val_accuracy']:.3f}")
    print(f"held-out accuracy: {accuracy:.3f} (chance 0.25)")

    path = os.path.join(out, "simple_cnn.safetensors")
    clf.save(path)
    again = medsynth.Classifier.load(path)
    same = np.array_equal(again.predict(X[test]), clf.predict(X[test]))
    print(f"saved to {path} and reloaded: predictions identical = {same}")
    if accuracy < 0.8 or not same:
        print("demo FAILED")
        return 1
    print("demo OK")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
