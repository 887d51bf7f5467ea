"""Writes the README's phantom pictures: one class grid per domain (medsynth.plot.grid, lesion
masks as red outlines), docs/phantoms_<domain>.png.

    python python/tools/phantom_pictures.py [--out docs] [--per-class 5] [--size 128] [--seed 0]

(``make pictures`` runs it.) Each 128 px image is shown 100 px wide, and the grids are stored as
palette PNGs (Pillow, which matplotlib already needs) of under 150 KB each.
"""
from __future__ import annotations

import argparse
import io
import os
import sys

import medsynth
import medsynth.plot
from medsynth.datasets import PHANTOM_DOMAINS, phantom


def picture(domain: str, path: str, per_class: int, size: int, seed: int, side: int, colors: int) -> int:
    """Draws one domain's grid into `path`; returns the file's size in bytes."""
    from PIL import Image

    X, y, names, masks = phantom(domain, per_class, size, seed=seed, return_masks=True)
    buffer = io.BytesIO()
    # tile × dpi = the side each image is shown at, in picture pixels
    fig = medsynth.plot.grid(X, y, names, masks=masks, per_class=per_class, tile=side / 100, dpi=100)
    fig.savefig(buffer, dpi=100, format="png")
    image = Image.open(buffer).convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    staged = path + ".tmp"
    image.save(staged, format="png", optimize=True)
    os.replace(staged, path)
    return os.path.getsize(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="docs", help="folder of the pictures (default docs)")
    parser.add_argument("--per-class", type=int, default=5, help="images per class (default 5)")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    parser.add_argument("--seed", type=int, default=0, help="phantom seed (default 0)")
    parser.add_argument("--side", type=int, default=100, help="pixels each image is shown at (default 100)")
    parser.add_argument("--colors", type=int, default=96, help="palette colours (default 96)")
    args = parser.parse_args(argv)
    for domain in PHANTOM_DOMAINS:
        path = os.path.join(args.out, f"phantoms_{domain}.png")
        size = picture(domain, path, args.per_class, args.size, args.seed, args.side, args.colors)
        print(f"{path}: {size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
