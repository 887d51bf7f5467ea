"""Figures: the class grid with lesion outlines, real next to synthetic."""
import builtins

import numpy as np
import pytest

import medsynth
from medsynth.io import read_png

pytest.importorskip("matplotlib")


def test_grid_writes_a_png_with_a_row_per_class(tmp_path):
    X, y, names, masks = medsynth.datasets.phantom("brain_mri", 3, 32, return_masks=True)
    fig = medsynth.plot.grid(X, y, names, masks=masks, per_class=4, path=tmp_path / "out" / "grid.png")
    assert len(fig.axes) == 4 * 4
    assert [ax.get_ylabel() for ax in fig.axes[::4]] == names
    image = read_png(tmp_path / "out" / "grid.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 10
    # outlines are drawn for the lesion classes only (notumor has no mask)
    contours = [len(ax.collections) for ax in fig.axes]
    assert sum(contours[8:12]) == 0 and sum(contours[:4]) > 0
    # RGB images, channels-first input, no masks, labels without names
    X, y, names = medsynth.datasets.phantom("all", 2, 24)
    fig = medsynth.plot.grid(X.transpose(0, 3, 1, 2), y, per_class=2)
    assert [ax.get_ylabel() for ax in fig.axes[::2]] == ["0", "1", "2", "3"]
    with pytest.raises(ValueError, match="masks"):
        medsynth.plot.grid(X, y, masks=np.zeros((2, 24, 24)))
    with pytest.raises(ValueError, match="one label per image"):
        medsynth.plot.grid(X, y[:3])


def test_real_vs_synthetic(tmp_path):
    real, y, names = medsynth.datasets.phantom("covid_ct", 3, 32, seed=0)
    fake, y2, _ = medsynth.datasets.phantom("covid_ct", 3, 32, seed=1)
    fig = medsynth.plot.real_vs_synthetic(real, fake, y, y2, names, per_class=3, path=tmp_path / "rs.png")
    assert len(fig.axes) == 2 * 7
    assert read_png(tmp_path / "rs.png").shape[0] > 100
    fig = medsynth.plot.real_vs_synthetic(real, fake, per_class=5)
    assert len(fig.axes) == 11
    with pytest.raises(ValueError, match="both"):
        medsynth.plot.real_vs_synthetic(real, fake, y)


def test_missing_matplotlib_says_how_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r"pip install 'medsynth\[plot\]'"):
        medsynth.plot.grid(np.zeros((1, 8, 8), np.float32), [0])
