"""LIME explanations of image classifiers, computed natively, and their quantification.

    >>> e = medsynth.lime.explain(clf, image)                 # lime's algorithm and defaults
    >>> e.get_image_and_mask(e.top_labels[0])                  # as lime's ImageExplanation
    >>> e.save_png("explanation.png"); e.plot()
    >>> real = medsynth.lime.explain_many(clf, X_real)         # with seed stability
    >>> synthetic = medsynth.lime.explain_many(clf, X_synthetic)
    >>> print(medsynth.lime.compare(real, synthetic, masks_real=M_real, masks_synthetic=M_syn,
    ...                             true_real=y_real, true_synthetic=y_syn))

The algorithm is the lime package's (Ribeiro et al. 2016; lime 0.2.0.1): quickshift superpixels
(kernel_size 4, max_dist 200, ratio 0.2), 1000 samples with the image itself first, hidden
superpixels filled with their mean colour, cosine distance in the binary space with the
exponential kernel of width 0.25, weighted Ridge(alpha=1) with intercept, lime's feature
selection. Differences: samples come from a seeded Philox generator (same seed, same explanation,
bit for bit); ``labels`` is honoured when given and ``top_labels`` defaults to 1; gray images stay
gray for the model; batches of 100.
"""
from ._explain import DEFAULTS, ExplanationSet, explain, explain_many, fit_surrogate, seed_stability
from ._explanation import Explanation
from .quantify import Comparison, compare, concentration, inside_share, pointing_game, points_at, summarize

__all__ = ["explain", "explain_many", "fit_surrogate", "seed_stability", "Explanation", "ExplanationSet", "DEFAULTS",
           "concentration", "inside_share", "pointing_game", "points_at", "summarize", "compare",
           "Comparison"]
