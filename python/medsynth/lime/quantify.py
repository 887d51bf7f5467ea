"""Numbers from LIME explanations, the future work the paper names: how concentrated the
importance is, whether it points at the lesion, and whether explanations of real and synthetic
images differ.

Per explanation (of its first explained label):
  * top-k weight share  Σ_{k largest |w|} |w| / Σ |w|   (1 = all importance in k superpixels)
  * top-k area          pixels of those k superpixels / all pixels
  * score               the surrogate's weighted R² (how well the linear model fits the model)
With a lesion mask (bool (H, W)) and the true label:
  * pointing game       hit if the superpixel with the largest positive weight overlaps the
                        lesion; scored over correctly classified images whose mask is not empty
                        (Zhang et al., "Top-down neural attention by excitation backprop", 2016)
  * inside share        Σ_{p in lesion} h⁺(p) / Σ_p h⁺(p), h⁺ the positive part of the pixel
                        heatmap (the "energy-based pointing game" of Wang et al., Score-CAM, 2020)
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from ..stats import mann_whitney_u
from ._explanation import Explanation


def concentration(explanation: Explanation, k: int = 5, label: Optional[int] = None) -> Dict[str, float]:
    """{"weight_share", "area"} of the k superpixels with the largest |weight|."""
    w = np.abs(explanation.weights(label))
    top = np.argsort(-w, kind="stable")[:k]
    total = w.sum()
    sizes = np.bincount(explanation.segments.ravel(), minlength=w.size)
    return {"weight_share": float(w[top].sum() / total) if total > 0 else float("nan"),
            "area": float(sizes[top].sum() / explanation.segments.size)}


def _mask(mask, explanation: Explanation) -> np.ndarray:
    m = np.asarray(mask).astype(bool)
    if m.shape != explanation.segments.shape:
        raise ValueError(f"the mask has shape {m.shape} but the image is {explanation.segments.shape}")
    return m


def points_at(explanation: Explanation, mask, label: Optional[int] = None) -> bool:
    """Whether the superpixel with the largest positive weight overlaps the mask."""
    w = explanation.weights(label)
    if not (w > 0).any():
        return False
    return bool(_mask(mask, explanation)[explanation.segments == int(np.argmax(w))].any())


def inside_share(explanation: Explanation, mask, label: Optional[int] = None) -> float:
    """Share of the positive heatmap inside the mask (NaN when no weight is positive)."""
    heat = np.maximum(explanation.heatmap(label), 0)
    total = heat.sum()
    return float(heat[_mask(mask, explanation)].sum() / total) if total > 0 else float("nan")


def pointing_game(explanations: Sequence[Explanation], masks, true_labels) -> Dict[str, object]:
    """The pointing game over a set: among images whose mask is not empty and whose predicted
    label (the model's top output for the image) equals the true label, the share whose top
    positive superpixel overlaps the lesion. Returns {"score", "hits", "n", "eligible"}."""
    eligible, hits = [], []
    for e, m, t in zip(explanations, masks, true_labels):
        ok = bool(np.asarray(m).any()) and e.predicted_label == int(t)
        eligible.append(ok)
        hits.append(points_at(e, m, e.predicted_label if e.predicted_label in e.local_exp else None) if ok else False)
    n = int(np.sum(eligible))
    return {"score": float(np.sum(hits) / n) if n else float("nan"), "hits": np.array(hits), "n": n,
            "eligible": np.array(eligible)}


def summarize(explanations: Sequence[Explanation], masks=None, true_labels=None, k: int = 5) -> Dict[str, object]:
    """Per-image statistics of a set of explanations and their means.

    Returns {"per_image": {name: array}, "mean": {name: float}, "n": count} with names
    "top_k_weight_share", "top_k_area", "score", and with masks "inside_share" (NaN where the
    mask is empty) and, with true labels too, "pointing_hit" (NaN where not eligible) and
    "pointing_game". The set's seed stability is included when it has one.
    """
    per: Dict[str, List[float]] = {"top_k_weight_share": [], "top_k_area": [], "score": []}
    for e in explanations:
        c = concentration(e, k)
        per["top_k_weight_share"].append(c["weight_share"])
        per["top_k_area"].append(c["area"])
        per["score"].append(e.score[e.top_labels[0]])
    out: Dict[str, object] = {"n": len(explanations), "k": k}
    if masks is not None:
        per["inside_share"] = [inside_share(e, m) if np.asarray(m).any() else float("nan") for e, m in zip(explanations, masks)]
        if true_labels is not None:
            game = pointing_game(explanations, masks, true_labels)
            per["pointing_hit"] = [float(h) if ok else float("nan") for h, ok in zip(game["hits"], game["eligible"])]
            out["pointing_game"] = game["score"]
            out["pointing_game_n"] = game["n"]
    stability = getattr(explanations, "stability", None)
    if stability is not None:
        per["stability_spearman"] = list(stability["spearman"])
    arrays = {name: np.asarray(v, dtype=np.float64) for name, v in per.items()}
    out["per_image"] = arrays
    out["mean"] = {name: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for name, v in arrays.items()}
    return out


class Comparison(dict):
    """Real versus synthetic: per statistic, the two means, the Mann-Whitney U statistic and its
    two-sided p-value. ``str()`` gives a table."""

    def __str__(self) -> str:
        rows = [f"{'statistic':<22}{'real':>10}{'synthetic':>11}{'U':>10}{'p':>10}"]
        for name, r in self.items():
            rows.append(f"{name:<22}{r['real']:>10.4f}{r['synthetic']:>11.4f}{r['U']:>10.1f}{r['p']:>10.4f}")
        return "\n".join(rows)


def compare(real: Sequence[Explanation], synthetic: Sequence[Explanation], *, masks_real=None, masks_synthetic=None,
            true_real=None, true_synthetic=None, k: int = 5) -> Comparison:
    """Explanations of one model on real and on synthetic test images, side by side: each
    per-image statistic of ``summarize`` (where both sets have it) with its mean on either side
    and a two-sided Mann-Whitney U test of whether the two distributions differ (normal
    approximation with tie and continuity correction, as scipy's method='asymptotic')."""
    a = summarize(real, masks=masks_real, true_labels=true_real, k=k)
    b = summarize(synthetic, masks=masks_synthetic, true_labels=true_synthetic, k=k)
    result = Comparison()
    for name, x in a["per_image"].items():
        if name not in b["per_image"]:
            continue
        y = b["per_image"][name]
        x, y = x[np.isfinite(x)], y[np.isfinite(y)]
        if x.size == 0 or y.size == 0:
            continue
        test = mann_whitney_u(x, y)
        result[name] = {"real": float(x.mean()), "synthetic": float(y.mean()), "U": test.statistic, "p": test.pvalue,
                        "n_real": int(x.size), "n_synthetic": int(y.size)}
    return result
