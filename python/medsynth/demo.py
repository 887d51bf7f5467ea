"""The paper's pipeline end to end, on images medsynth generates itself (``make demo``).

1. a labelled "real" set (generated shapes standing in for a medical image set),
2. a stratified 20 % sample of it trains a class-conditional diffusion model,
3. the model generates a larger labelled synthetic set (written as an ImageFolder of PNGs),
4. a CNN trained on the synthetic images only is tested on the untouched 80 % of the real
   images, next to the same CNN trained on the 20 % real sample,
5. models are saved, reloaded and checked to predict the same.

Run with ``python -m medsynth.demo`` (``--help`` for sizes).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

import medsynth
from medsynth import metrics
from medsynth.model_selection import stratified_split


def macro_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Accuracy and macro precision, recall, F1 (scikit-learn's definitions, zero_division=0)."""
    precision, recall, f1, _ = metrics.precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
    return {"accuracy": metrics.accuracy_score(y_true, y_pred), "precision": precision, "recall": recall, "f1": f1}


def grid(images: np.ndarray, labels: np.ndarray, per_class: int) -> np.ndarray:
    rows = []
    for c in np.unique(labels):
        chosen = images[labels == c][:per_class]
        rows.append(np.concatenate(list(chosen), axis=1))
    return np.concatenate(rows, axis=0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--n-per-class", type=int, default=300, help="real images per class (20%% train the diffusion model)")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--diffusion-steps", type=int, default=1500)
    parser.add_argument("--synthetic-per-class", type=int, default=200)
    parser.add_argument("--out", default=None, help="output folder (default: a new temporary folder)")
    args = parser.parse_args(argv)

    out = args.out or tempfile.mkdtemp(prefix="medsynth-demo-")
    os.makedirs(out, exist_ok=True)
    k = args.classes
    names = list(medsynth.datasets.SHAPE_CLASSES[:k])
    print(f"medsynth {medsynth.__version__} on {medsynth.get_num_threads()} threads; output in {out}")

    # 1-2. real data, stratified 20 % / 80 %
    X, y = medsynth.datasets.make_shapes(n_per_class=args.n_per_class, num_classes=k, size=args.size, seed=0)
    X = np.rint(X * 255).astype(np.uint8)                        # like 8-bit PNG scans
    sample, held_out = stratified_split(y, train_size=0.2, seed=0)   # the paper's split
    print(f"real data: {len(y)} {args.size}x{args.size} images of {names}; {len(sample)} (20 %) to learn from, "
          f"{len(held_out)} held out")

    t0 = time.perf_counter()
    diffusion = medsynth.DiffusionModel(seed=0)
    diffusion.fit(X[sample], y[sample], steps=args.diffusion_steps, batch_size=32, lr=1e-3, ema_decay=0.995,
                  checkpoint=os.path.join(out, "diffusion-training.safetensors"))
    print(f"diffusion model: {diffusion.n_parameters:,} parameters, {args.diffusion_steps} steps in "
          f"{time.perf_counter() - t0:.0f} s, final loss {diffusion.history_['final_loss']:.4f}")

    # 3. the synthetic set
    t0 = time.perf_counter()
    synthetic, synthetic_labels = diffusion.sample(n_per_class=args.synthetic_per_class, sampler="dpm_solver++", steps=20,
                                                   guidance_scale=2.0, seed=0)
    print(f"generated {len(synthetic)} labelled images in {time.perf_counter() - t0:.0f} s")
    medsynth.datasets.save_image_folder(os.path.join(out, "synthetic"), synthetic, synthetic_labels, names, prefix="synthetic")
    medsynth.io.write_png(os.path.join(out, "real_vs_synthetic.png"),
                          np.concatenate([grid(X[sample], y[sample], 8), grid(synthetic, synthetic_labels, 8)], axis=1))

    # 4. train on synthetic, test on real; and the baseline on the 20 % real sample
    results = {}
    for name, (train_x, train_y) in {"synthetic only": (synthetic, synthetic_labels),
                                     "20 % real sample": (X[sample], y[sample])}.items():
        clf = medsynth.Classifier("simple_cnn", seed=0)
        clf.fit(train_x, train_y, epochs=10, batch_size=32, lr=2e-3, schedule="cosine", validation_split=0.1,
                early_stopping_patience=3, progress=False)
        results[name] = (clf, macro_scores(y[held_out], clf.predict(X[held_out])))
    print(f"\ntested on the {len(held_out)} held-out real images:")
    print(f"  {'trained on':<20} {'accuracy':>9} {'precision':>10} {'recall':>8} {'F1':>7}")
    for name, (_, s) in results.items():
        print(f"  {name:<20} {s['accuracy']:>9.3f} {s['precision']:>10.3f} {s['recall']:>8.3f} {s['f1']:>7.3f}")

    # 5. save, reload, same predictions
    clf = results["synthetic only"][0]
    clf.save(os.path.join(out, "classifier.safetensors"))
    diffusion.save(os.path.join(out, "diffusion.safetensors"))
    same = np.array_equal(medsynth.Classifier.load(os.path.join(out, "classifier.safetensors")).predict(X[held_out]),
                          clf.predict(X[held_out]))
    again, _ = medsynth.DiffusionModel.load(os.path.join(out, "diffusion.safetensors")).sample(
        labels=synthetic_labels[:4], sampler="dpm_solver++", steps=20, guidance_scale=2.0, seed=0, progress=False)
    same_images = np.array_equal(again, synthetic[:4])
    print(f"\nsaved and reloaded: classifier predictions identical = {same}, diffusion samples identical = {same_images}")
    accuracy = results["synthetic only"][1]["accuracy"]
    ok = same and same_images and accuracy >= 0.8
    print("demo OK" if ok else "demo FAILED (synthetic-trained accuracy below 0.8 or reload mismatch)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
