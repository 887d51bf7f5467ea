"""medsynth.experiment: configuration errors name their key; stages are skipped when rerun and
rerun downstream of a changed setting only; an interrupted run resumes to the same result; the
tables have the paper's columns; the local and Ray backends give the same tables."""
import csv
import shutil

import numpy as np
import pytest

import medsynth
import medsynth.experiment as ex
from medsynth.experiment import ConfigError, tables
from medsynth.experiment._schema import merge

# one two-class domain at 16 px, a few images, a few steps: seconds per stage
TINY = {"name": "tiny", "data": {"domains": ["covid_ct"], "image_size": 16, "count_scale": 0.02},
        "diffusion": {"model": {"base_channels": 8}, "train": {"steps": 12, "batch_size": 8, "checkpoint_every": 4, "ema_decay": 0.9},
                      "sample": {"steps": 3}},
        "synthetic": {"n_per_class": 12, "scale": 1.0, "write_png": False},
        "classifiers": {"folds": 2, "fit": {"epochs": 2, "batch_size": 8}, "grid": {"weight_decay": [0.01, 0.05]}},
        "baselines": {"learning_curve": [6]},
        "fidelity": {"fit": {"epochs": 1}, "kid_subsets": 2, "kid_subset_size": 8},
        "privacy": {"pairs": 3},
        "runtime": {"backend": "serial", "threads_per_worker": 1}}


def run(out, **overrides):
    return ex.run(merge(TINY, overrides), out_dir=out, progress=False, verbose=False)


def messages(result, word):
    return [m for m in result.log if word in m]


# ---- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize("config, key, message", [
    ({"bogus": 1}, "bogus", "unknown key"),
    ({"data": {"image_sise": 32}}, "data.image_sise", "unknown key"),
    ({"data": {"image_size": "32"}}, "data.image_size", "must be an integer"),
    ({"data": {"image_size": 4}}, "data.image_size", "must be >= 8"),
    ({"data": {"train_fraction": 1.5}}, "data.train_fraction", "must be <= 0.9"),
    ({"data": {"domains": ["brain"]}}, "data.domains[0]", "unknown phantom domain 'brain'"),
    ({"data": {"domains": [], "folders": {}}}, "data.domains", "no data"),
    ({"seed": -1}, "seed", "must be >= 0"),
    ({"preset": "fast"}, "preset", "must be one of"),
    ({"diffusion": {"train": {"stepz": 10}}}, "diffusion.train.stepz", "unknown option"),
    ({"diffusion": {"train": {"seed": 3}}}, "diffusion.train.seed", "set by the experiment"),
    ({"diffusion": {"train": {"steps": "many"}}}, "diffusion.train.steps", "must be a number"),
    ({"diffusion": {"model": {"image_size": 64}}}, "diffusion.model.image_size", "set by the experiment"),
    ({"diffusion": {"sample": {"guidance_scale": True}}}, "diffusion.sample.guidance_scale", "must be a number"),
    ({"synthetic": {"n_per_class": 0}}, "synthetic.n_per_class", "positive integer"),
    ({"synthetic": {"n_per_class": {"covid": -2}}}, "synthetic.n_per_class.covid", "positive integer"),
    ({"classifiers": {"architectures": ["resnet1000"]}}, "classifiers.architectures[0]", "unknown architecture"),
    ({"classifiers": {"folds": 1}}, "classifiers.folds", "must be >= 2"),
    ({"classifiers": {"scoring": "auc"}}, "classifiers.scoring", "must be one of"),
    ({"classifiers": {"fit": {"checkpoint": "x"}}}, "classifiers.fit.checkpoint", "set by the experiment"),
    ({"classifiers": {"grid": {"lr": 0.1}}}, "classifiers.grid.lr", "non-empty list"),
    ({"classifiers": {"grid": {"learning_rate": [0.1]}}}, "classifiers.grid.learning_rate", "not a Classifier.fit option"),
    ({"baselines": {"learning_curve": [50, 25]}}, "baselines.learning_curve", "increasing order"),
    ({"baselines": {"augmentation": {"rotate": "10"}}}, "baselines.augmentation.rotate", "must be a number"),
    ({"baselines": {"architectures": ["simple_cnn"]}, "classifiers": {"architectures": ["simple_cnn"]},
      "privacy": {"threshold": 2}}, "privacy.threshold", "must be <= 1"),
    ({"runtime": {"backend": "dask"}}, "runtime.backend", "must be one of"),
    ({"lime": {"images_per_class": 0}}, "lime.images_per_class", "must be >= 1"),
])
def test_configuration_errors_name_the_key(config, key, message):
    with pytest.raises(ConfigError, match=message) as info:
        ex.resolve(config)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")


def test_presets_and_toml_round_trip(tmp_path):
    quick = ex.resolve()
    assert quick["preset"] == "quick" and quick["classifiers"]["folds"] == 3
    assert set(quick["data"]["domains"]) == {"brain_mri", "all", "covid_ct"}
    paper = ex.resolve(preset="paper")
    assert paper["classifiers"]["folds"] == 5 and paper["classifiers"]["fit"]["epochs"] == 50
    assert all(a in ex.PAPER_ARCHITECTURES or a == "simple_cnn" for a in paper["classifiers"]["architectures"])
    # a preset sets only what it must: the rest is the library's defaults (left out, None)
    assert "sampler" not in quick["diffusion"]["sample"] and "prediction" not in quick["diffusion"]["model"]
    # except the paper's long runs, which keep torch_ref.py's lr (the default, 1e-3, is for short runs)
    assert paper["diffusion"]["train"]["lr"] == 2e-4 and "prediction" not in paper["diffusion"]["model"]
    assert ex.resolve(preset="none")["diffusion"] == {"model": {}, "train": {}, "sample": {}}
    path = tmp_path / "config.toml"
    path.write_text(ex.to_toml(quick))
    assert ex.resolve(path) == quick
    path.write_text('[data]\nimage_size = 48\n[classifiers.fit]\nepochs = 3\n')
    mine = ex.resolve(path)
    assert mine["data"]["image_size"] == 48 and mine["classifiers"]["fit"]["epochs"] == 3
    # the rest from the quick preset, tables merged key by key
    assert mine["classifiers"]["folds"] == 3
    assert mine["classifiers"]["fit"]["early_stopping_patience"] == ex.PRESETS["quick"]["classifiers"]["fit"]["early_stopping_patience"]
    path.write_text("[data\nimage_size = 48\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        ex.resolve(path)


def test_describe_documents_every_key():
    text = ex.describe()
    for key, _ in ex.schema().describe():
        assert f"\n{key} (" in "\n" + text


# ---- caching, resumption, tables -----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    return out, run(out)


def test_tables_have_the_papers_columns(tiny_run):
    out, result = tiny_run
    with open(out / "tables" / "table2.csv") as f:
        header = next(csv.reader(f))
    assert tuple(header[:len(tables.TABLE2_COLUMNS)]) == tables.TABLE2_COLUMNS
    assert tables.TABLE2_COLUMNS == ("Domain", "Model", "Train Loss", "Val Loss", "Test Loss", "Train Acc", "Val Acc",
                                     "Test Acc", "Precision", "Recall", "F1")
    table1 = result.tables["table1"]
    assert [r["Class"] for r in table1] == ["covid", "non_covid"]
    for r in table1:
        assert r["Total Images"] == r["Sampled Images"] + r["Test Images"]
        assert r["Sampled Images"] == round(0.2 * r["Total Images"]) and r["Generated Images"] == 12
    row = result.tables["table2"][0]
    for column in tables.TABLE2_COLUMNS[2:]:
        assert 0 <= row[column] < 10
    sets = {r["Training set"] for r in result.tables["baselines"]}
    assert sets == {"synthetic only", "real 20 % only", "real 20 % + augmentation", "real 20 % + synthetic"}
    assert [r["Synthetic per class"] for r in result.tables["learning_curve"]] == [6, 12]
    quality = result.tables["quality"]
    assert [r["Class"] for r in quality] == ["covid", "non_covid", "all classes"]
    assert all(np.isfinite(r["FID"]) and r["FID"] >= 0 for r in quality)
    html = (out / "report.html").read_text()
    for needle in ("Table 1", "Table 2", "Baselines", "Memorisation audit", "figures/covid_ct_real_vs_synthetic.png",
                   "figures/covid_ct_closest_pairs.png", "Inception", "config.toml"):
        assert needle in html
    assert (out / "figures" / "covid_ct_confusion.png").stat().st_size > 1000
    assert (out / "train" / "covid_ct" / "synthetic" / "simple_cnn" / "refit" / "model.safetensors").is_file()


def test_a_rerun_skips_every_stage_and_a_change_reruns_only_what_follows(tiny_run, tmp_path):
    out, first = tiny_run
    work = tmp_path / "run"
    shutil.copytree(out, work)
    again = run(work)
    assert messages(again, "to run") and all(", 0 to run" in m for m in messages(again, "to run"))
    for stage in ("data: done, skipped", "diffusion model: done, skipped", "synthetic images: done, skipped",
                  "quality and privacy: done, skipped", "report: done, skipped"):
        assert messages(again, stage), stage
    assert again.tables["table2"] == first.tables["table2"]

    # a classifier setting: the grid and the report rerun, nothing before them
    changed = run(work, classifiers={"fit": {"epochs": 3}})
    for stage in ("data: done", "diffusion model: done", "synthetic images: done", "quality and privacy: done"):
        assert messages(changed, stage), stage
    assert messages(changed, "cross-validation: 5 tasks, 1 done before, 4 to run")   # the feature extractor is kept
    assert not messages(changed, "report: done")

    # a sampling setting: synthetic images and everything after them rerun, not the diffusion model
    resampled = run(work, classifiers={"fit": {"epochs": 3}}, diffusion={"sample": {"steps": 4}})
    assert messages(resampled, "diffusion model: done") and not messages(resampled, "synthetic images: done")
    assert not messages(resampled, "quality and privacy: done")


def test_an_interrupted_run_resumes_to_the_uninterrupted_result(tiny_run, tmp_path, monkeypatch):
    out, first = tiny_run
    original_fit = medsynth.DiffusionModel.fit

    def interrupted_fit(self, *args, **kwargs):
        def stop(info):
            if info.get("step") == 6:
                raise KeyboardInterrupt("interrupted by the test")
        return original_fit(self, *args, callback=stop, **kwargs)

    monkeypatch.setattr(medsynth.DiffusionModel, "fit", interrupted_fit)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path)
    assert (tmp_path / "diffusion" / "covid_ct" / "training.safetensors").is_file()
    monkeypatch.setattr(medsynth.DiffusionModel, "fit", original_fit)

    # the classifier grid is interrupted after two tasks
    from medsynth.experiment import tasks
    original_execute, calls = tasks.execute, []

    def interrupted_execute(spec, arrays):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("interrupted by the test")
        return original_execute(spec, arrays)

    monkeypatch.setattr(tasks, "execute", interrupted_execute)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path)
    monkeypatch.setattr(tasks, "execute", original_execute)

    resumed = run(tmp_path)
    assert messages(resumed, "diffusion model: done")
    assert messages(resumed, "cross-validation: 5 tasks, 2 done before, 3 to run")
    np.testing.assert_array_equal(np.load(tmp_path / "synthetic" / "covid_ct" / "images.npy"),
                                  np.load(out / "synthetic" / "covid_ct" / "images.npy"))
    assert resumed.tables["table2"] == first.tables["table2"]


def test_local_and_ray_backends_give_the_same_tables(tiny_run, tmp_path):
    out, first = tiny_run
    results = {}
    for backend in ("local", "ray"):
        work = tmp_path / backend
        shutil.copytree(out, work, ignore=shutil.ignore_patterns("train", "tables"))
        result = ex.run(merge(TINY, {"runtime": {"workers": 2}}), out_dir=work, backend=backend, progress=False,
                        verbose=False)
        assert messages(result, f"on the {backend} backend")
        assert not messages(result, ", 0 to run")
        results[backend] = result.tables
    for name in ("table2", "baselines", "learning_curve"):
        assert results["local"][name] == results["ray"][name] == first.tables[name], name
