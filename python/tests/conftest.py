import numpy as np
import pytest

import medsynth


@pytest.fixture(scope="session")
def shapes_small():
    """A small generated 3-class set, 24x24 gray, split into train and held-out halves."""
    X, y = medsynth.datasets.make_shapes(n_per_class=120, num_classes=3, size=24, seed=1)
    return X, y
