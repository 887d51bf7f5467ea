"""medsynth: labelled synthetic medical images from diffusion models, and the CNN classifiers
that learn from them, on a native Swift engine (OpenBLAS, libpng) behind a C ABI.

The pipeline follows Nafi et al., "Diffusion-Based Approaches in Medical Image Generation and
Analysis" (arXiv 2412.16860). Everything runs natively; numpy arrays go in and come out.

    >>> import medsynth
    >>> X, y = medsynth.datasets.make_shapes(n_per_class=200, size=32)
    >>> clf = medsynth.Classifier("simple_cnn").fit(X, y, epochs=5)
    >>> clf.predict(X[:4])
"""
from ._cpu import select_openblas_kernels

select_openblas_kernels()   # before the engine (and OpenBLAS with it) is loaded

from . import _engine  # noqa: E402
from ._core import get_num_threads, set_num_threads, memory_stats
from .classifier import Classifier, ARCHITECTURES
from .diffusion import DiffusionModel, generate, SAMPLERS
from . import datasets, io, metrics, model_selection, ops, plot, segmentation, stats, lime

__version__ = _engine.version()

__all__ = ["Classifier", "ARCHITECTURES", "DiffusionModel", "generate", "SAMPLERS", "datasets", "io", "metrics", "model_selection", "ops",
           "plot", "segmentation", "stats", "lime", "get_num_threads", "set_num_threads",
           "memory_stats", "__version__"]
