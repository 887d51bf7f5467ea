"""Diffusion models: training, sampling, persistence, resume, errors. The learning test judges
generated images with a classifier trained on real ones."""
import numpy as np
import pytest

import medsynth

TINY = dict(base_channels=16, channel_multipliers=(1, 2), attention_resolutions=(8,), seed=0)


@pytest.fixture(scope="module")
def two_shapes():
    """Discs and squares, 16x16, as uint8 (the dtype samples should come back in)."""
    X, y = medsynth.datasets.make_shapes(n_per_class=96, num_classes=2, size=16, seed=3)
    return np.rint(X * 255).astype(np.uint8), y


@pytest.fixture(scope="module")
def trained(two_shapes):
    X, y = two_shapes
    model = medsynth.DiffusionModel(**TINY)
    model.fit(X, y, steps=700, batch_size=32, lr=1e-3, ema_decay=0.995, progress=False)
    return model


def test_generates_the_requested_classes_not_copies(two_shapes, trained):
    X, y = two_shapes
    # a judge trained on real images only
    judge = medsynth.Classifier("simple_cnn", seed=0).fit(X, y, epochs=8, batch_size=32, lr=3e-3, progress=False)
    real_test, real_labels = medsynth.datasets.make_shapes(n_per_class=50, num_classes=2, size=16, seed=11)
    assert judge.score(real_test, real_labels) >= 0.9

    # DDPM's ancestral sampler: the few-step deterministic samplers need a longer-trained model
    images, labels = trained.sample(n_per_class=24, sampler="ddpm", guidance_scale=2.0, seed=1, batch_size=48,
                                    progress=False)
    assert images.dtype == np.uint8 and images.shape == (48, 16, 16)
    assert list(labels) == [0] * 24 + [1] * 24
    accuracy = judge.score(images, labels)
    assert accuracy >= 0.8, f"judge accuracy on generated images {accuracy:.2f} (chance 0.5)"

    # not copies: every sample is farther from its nearest training image than the closest pair
    # of distinct training images of the same class usually are
    flat_train = X.reshape(len(X), -1).astype(np.float32)
    flat_gen = images.reshape(len(images), -1).astype(np.float32)
    nearest = np.sqrt(((flat_gen[:, None, :] - flat_train[None, :, :]) ** 2).sum(-1)).min(axis=1)
    train_pairs = np.sqrt(((flat_train[:40, None, :] - flat_train[None, 40:, :]) ** 2).sum(-1)).min(axis=1)
    assert nearest.min() > 0.5 * np.median(train_pairs), (nearest.min(), np.median(train_pairs))
    # and not all alike: samples of one class differ from each other
    assert images[:24].std(axis=0).mean() > 5


def test_all_samplers_and_guidance(trained):
    for sampler, steps in (("ddim", 10), ("dpm_solver++", 10), ("ddpm", None)):
        kw = {} if steps is None else {"steps": steps}
        images, labels = trained.sample(labels=[0, 1], sampler=sampler, progress=False, output="float", **kw)
        assert images.shape == (2, 16, 16) and images.dtype == np.float32
        assert 0 <= images.min() and images.max() <= 1
    a, _ = trained.sample(n_per_class={0: 2}, steps=5, guidance_scale=1.0, progress=False)
    b, _ = trained.sample(n_per_class={0: 2}, steps=5, guidance_scale=3.0, progress=False)
    assert not np.array_equal(a, b)


def test_same_seed_same_samples_whatever_the_batch_size(trained):
    kw = dict(n_per_class=3, steps=8, output="float", progress=False)
    a, _ = trained.sample(seed=5, batch_size=6, **kw)
    a2, _ = trained.sample(seed=5, batch_size=6, **kw)
    b, _ = trained.sample(seed=5, batch_size=2, **kw)
    c, _ = trained.sample(seed=6, batch_size=6, **kw)
    np.testing.assert_array_equal(a, a2)                  # bit for bit at the same batch size
    np.testing.assert_allclose(a, b, atol=2e-3)           # the same images at another batch size
    assert np.abs(a - c).max() > 0.1                      # another seed, other images


def test_save_load_round_trip(trained, tmp_path):
    path = tmp_path / "diffusion.safetensors"
    trained.save(path)
    again = medsynth.DiffusionModel.load(path)
    assert again.config["state"]["trained_steps"] == trained.config["state"]["trained_steps"]
    assert list(again.classes_) == [0, 1]
    a, _ = trained.sample(labels=[1, 0], steps=6, seed=2, progress=False)
    b, _ = again.sample(labels=[1, 0], steps=6, seed=2, progress=False)
    np.testing.assert_array_equal(a, b)
    # EMA and raw weights are both kept
    c, _ = again.sample(labels=[1, 0], steps=6, seed=2, use_ema=False, progress=False)
    assert not np.array_equal(b, c)


def test_resume_equals_an_uninterrupted_run(two_shapes, tmp_path):
    X, y = two_shapes
    options = dict(steps=12, batch_size=8, lr=1e-3, checkpoint_every=5, progress=False)
    full = medsynth.DiffusionModel(**TINY).fit(X[:40], y[:40], **options)
    ckpt = tmp_path / "run.safetensors"
    stopped = medsynth.DiffusionModel(**TINY)
    seen = []

    def stop_after_seven(info):
        seen.append(info["step"])
        if info["step"] == 7:
            raise KeyboardInterrupt("stopped by the test at step 7")

    with pytest.raises(KeyboardInterrupt, match="stopped by the test at step 7"):
        stopped.fit(X[:40], y[:40], checkpoint=ckpt, callback=stop_after_seven, **options)
    assert ckpt.exists() and seen[-1] == 7          # the step-5 checkpoint survived the interruption
    resumed = medsynth.DiffusionModel(**TINY).fit(X[:40], y[:40], checkpoint=ckpt, resume=True, **options)
    a, _ = full.sample(labels=[0, 1], steps=4, progress=False)
    b, _ = resumed.sample(labels=[0, 1], steps=4, progress=False)
    np.testing.assert_array_equal(a, b)
    # the interrupted model is still usable
    stopped.sample(labels=[0], steps=2, progress=False)


def _rewrite_config(src, dst, edit):
    """Copies the safetensors file src to dst with its "config" metadata passed through edit."""
    import json, struct
    raw = open(src, "rb").read()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + size])
    config = json.loads(header["__metadata__"]["config"])
    header["__metadata__"]["config"] = json.dumps(edit(config), separators=(",", ":"))
    text = json.dumps(header, separators=(",", ":")).encode()
    open(dst, "wb").write(struct.pack("<Q", len(text)) + text + raw[8 + size:])


def test_prediction_of_older_files_and_checkpoints(two_shapes, tmp_path):
    X, y = two_shapes
    eps = medsynth.DiffusionModel(**TINY, prediction="epsilon").fit(X[:16], y[:16], steps=2, batch_size=8, progress=False)
    assert medsynth.DiffusionModel(16, in_channels=1, num_classes=2, **TINY).config["prediction"] == "v"   # the default
    eps.save(tmp_path / "eps.safetensors")
    # a file without the key (none is written so, but older formats may be read): epsilon, its old meaning
    _rewrite_config(tmp_path / "eps.safetensors", tmp_path / "old.safetensors",
                    lambda c: {k: v for k, v in c.items() if k != "prediction"})
    old = medsynth.DiffusionModel.load(tmp_path / "old.safetensors")
    assert old.config["prediction"] == "epsilon"
    x = np.random.default_rng(0).standard_normal((2, 1, 16, 16)).astype(np.float32)
    np.testing.assert_array_equal(old.model_output(x, 500, labels=[0, 1]), eps.model_output(x, 500, labels=[0, 1]))
    # resuming an epsilon checkpoint into a model of the new default is refused, naming both
    options = dict(steps=4, batch_size=8, checkpoint_every=2, progress=False)
    ckpt = tmp_path / "eps_run.safetensors"
    medsynth.DiffusionModel(**TINY, prediction="epsilon").fit(X[:16], y[:16], checkpoint=ckpt, **options)
    with pytest.raises(Exception, match="prediction 'epsilon', this model predicts 'v'"):
        medsynth.DiffusionModel(**TINY).fit(X[:16], y[:16], checkpoint=ckpt, resume=True, **options)
    medsynth.DiffusionModel(**TINY, prediction="epsilon").fit(X[:16], y[:16], checkpoint=ckpt, resume=True, **options)


def test_unconditional_model(two_shapes):
    X, _ = two_shapes
    model = medsynth.DiffusionModel(**TINY).fit(X[:32], steps=3, batch_size=8, progress=False)
    assert not model.conditional
    images, labels = model.sample(n=3, steps=2, progress=False)
    assert images.shape == (3, 16, 16) and labels is None
    with pytest.raises(ValueError, match="this model is unconditional: ask for n images"):
        model.sample(n_per_class=2, progress=False)


def test_generate_end_to_end(two_shapes, tmp_path):
    X, y = two_shapes
    ckpt = tmp_path / "gen.safetensors"
    images, labels = medsynth.generate((X[:48], np.array(["disc", "square"])[y[:48]]), n_per_class={"disc": 2, "square": 3},
                                       checkpoint=ckpt, out_dir=tmp_path / "synthetic", model=TINY,
                                       train={"steps": 4, "batch_size": 8}, steps=3, progress=False)
    assert images.shape == (5, 16, 16) and list(labels) == ["disc"] * 2 + ["square"] * 3
    assert ckpt.exists()
    X2, y2, names = medsynth.datasets.load_image_folder(tmp_path / "synthetic", dtype=None)
    assert names == ["disc", "square"] and X2.shape == (5, 16, 16) and X2.dtype == np.uint8
    # a second call loads the checkpoint instead of training
    again, _ = medsynth.generate(None, n_per_class=1, checkpoint=ckpt, steps=3, progress=False)
    assert again.shape == (2, 16, 16)
    # from an ImageFolder path
    folder_images, folder_labels = medsynth.generate(tmp_path / "synthetic", n_per_class=1, model=TINY,
                                                     train={"steps": 2, "batch_size": 4}, steps=2, progress=False)
    assert sorted(folder_labels) == ["disc", "square"]


def test_warns_about_untrained_and_young_ema(two_shapes):
    X, y = two_shapes
    model = medsynth.DiffusionModel(**TINY)
    model.fit(X[:16], y[:16], steps=2, batch_size=8, progress=False)
    with pytest.warns(RuntimeWarning, match="EMA"):
        model.sample(labels=[0], steps=2, progress=False)


def test_bad_arguments_raise(two_shapes, trained, tmp_path):
    X, y = two_shapes
    with pytest.raises(ValueError, match="sampler"):
        trained.sample(labels=[0], sampler="euler", progress=False)
    with pytest.raises(ValueError, match="classes the model does not know"):
        trained.sample(labels=[7], progress=False)
    with pytest.raises(ValueError, match="n_per_class must be at least 1"):
        trained.sample(n_per_class=0, progress=False)
    with pytest.raises(ValueError, match="exactly one"):
        trained.sample(n_per_class=1, labels=[0], progress=False)
    with pytest.raises(ValueError, match="divisible"):
        medsynth.DiffusionModel(channel_multipliers=(1, 2, 2, 2, 2, 2), base_channels=16).fit(X[:4], y[:4], steps=1, progress=False)
    with pytest.raises(ValueError, match="steps"):
        medsynth.DiffusionModel(**TINY).fit(X[:8], y[:8], steps=0, progress=False)
    with pytest.raises(ValueError, match="16x16"):
        trained.fit(np.zeros((4, 32, 32), np.uint8), y[:4], steps=1, progress=False)
    with pytest.raises(ValueError, match="labels"):
        trained.fit(X[:4], None, steps=1, progress=False)
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(OSError, match="bad.safetensors' is not a valid safetensors file: header length 16 runs past"):
        medsynth.DiffusionModel.load(tmp_path / "bad.safetensors")


def _poison(path, key):
    """Overwrites tensor `key` of a checkpoint with the largest finite floats (a loadable model
    whose forward pass overflows to inf and NaN); NaN itself is refused at load."""
    from medsynth.io import read_safetensors, write_safetensors
    tensors, metadata = read_safetensors(path, with_metadata=True)
    tensors[key] = np.full_like(tensors[key], np.finfo(np.float32).max)
    write_safetensors(path, tensors, metadata, integrity_hash=True)


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_checkpoint(two_shapes, tmp_path):
    X, y = two_shapes
    ckpt = tmp_path / "run.safetensors"
    model = medsynth.DiffusionModel(**TINY).fit(X[:16], y[:16], steps=2, batch_size=8, checkpoint=ckpt, progress=False)
    good = ckpt.read_bytes()
    weights = tmp_path / "poisoned.safetensors"
    model.save(weights)
    _poison(weights, "inc.weight")
    poisoned = medsynth.DiffusionModel.load(weights)
    with pytest.raises(RuntimeError, match="loss became -?nan at step 1.*run.safetensors"):
        poisoned.fit(X[:16], y[:16], steps=5, batch_size=8, checkpoint=ckpt, checkpoint_every=1, progress=False)
    assert ckpt.read_bytes() == good          # the last good checkpoint is untouched
    medsynth.DiffusionModel.load(ckpt).sample(labels=[0], steps=2, progress=False)


class _TorchStyleDataset:
    """A map-style dataset like torchvision's ImageFolder: items are (C, H, W) float arrays and
    integer labels, with a `classes` list."""

    def __init__(self, X, y):
        self.X, self.y, self.classes = X, y, ["disc", "square"]

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return (self.X[i][None].astype(np.float32) / 255), int(self.y[i])


def test_generate_from_a_dataset_object(two_shapes):
    X, y = two_shapes
    images, labels = medsynth.generate(_TorchStyleDataset(X[:24], y[:24]), n_per_class=1, model=TINY,
                                       train={"steps": 2, "batch_size": 4}, steps=2, progress=False)
    assert images.shape == (2, 16, 16) and images.dtype == np.float32
    assert sorted(labels.tolist()) == [0, 1]


def test_augmentation_changes_training_and_stays_reproducible(two_shapes):
    X, y = two_shapes
    kw = dict(steps=3, batch_size=8, progress=False)
    plain = medsynth.DiffusionModel(**TINY).fit(X[:16], y[:16], **kw)
    augmented = [medsynth.DiffusionModel(**TINY).fit(X[:16], y[:16], hflip=True, translate=2, rotate=10, **kw)
                 for _ in range(2)]
    sample = lambda m: m.sample(labels=[0, 1], steps=2, use_ema=False, output="float", progress=False)[0]
    np.testing.assert_array_equal(sample(augmented[0]), sample(augmented[1]))
    assert not np.array_equal(sample(plain), sample(augmented[0]))
    with pytest.raises(ValueError, match="rotate"):
        medsynth.DiffusionModel(**TINY).fit(X[:16], y[:16], rotate=500, **kw)


def test_an_eagerly_built_model_learns_the_dtype_and_range_of_its_first_data(two_shapes):
    X, y = two_shapes                                   # uint8
    eager = medsynth.DiffusionModel(16, in_channels=1, num_classes=2, **TINY)
    assert eager.config["data_dtype"] == "float32" and eager.config["data_range"] is None
    eager.fit(X[:8], y[:8], steps=1, batch_size=8, progress=False)
    assert eager.config["data_dtype"] == "uint8" and eager.config["data_range"] == [0, 1]
    images, _ = eager.sample(labels=[0], steps=1, progress=False)
    assert images.dtype == np.uint8


def test_defaults_come_from_the_engine_and_output_only_keys_are_refused():
    from medsynth import _engine, _options
    table = {o["key"]: o for o in _options.table("diffusion_training")}
    assert table["steps"]["default"] == 2000 and "steps" in medsynth.DiffusionModel.fit.__doc__
    config = medsynth.DiffusionModel(32, in_channels=1, num_classes=2).config
    assert config["channel_multipliers"] == [1, 2, 2] and config["attention_resolutions"] == [16, 8]
    with pytest.raises(ValueError, match="unknown diffusion model config option 'state'"):
        _engine.diffusion_create('{"image_size": 16, "state": {"trained_steps": 5}}')
    with pytest.raises(ValueError, match="unknown diffusion model config option 'trained_steps'"):
        _engine.diffusion_create('{"image_size": 16, "trained_steps": 5}')


def test_resume_without_a_checkpoint_and_labels_for_an_unconditional_model_are_errors(two_shapes, tmp_path):
    X, y = two_shapes
    with pytest.raises(ValueError, match="does not exist"):
        medsynth.DiffusionModel(**TINY).fit(X[:8], y[:8], steps=1, batch_size=8, progress=False,
                                            checkpoint=tmp_path / "none.safetensors", resume=True)
    unconditional = medsynth.DiffusionModel(16, in_channels=1, num_classes=0, **TINY)
    with pytest.raises(ValueError, match="unconditional"):
        unconditional.fit(X[:8], y[:8], steps=1, batch_size=8, progress=False)
    with pytest.raises(ValueError, match="lr must be a finite number"):
        medsynth.DiffusionModel(**TINY).fit(X[:8], y[:8], steps=1, lr=float("nan"), progress=False)
    with pytest.raises(ValueError, match="min_snr_gamma must be non-negative"):
        medsynth.DiffusionModel(**TINY).fit(X[:8], y[:8], steps=1, min_snr_gamma=-1, progress=False)
    # 0 turns the default min-SNR-gamma weighting off: the same step, another loss
    loss = {g: medsynth.DiffusionModel(**TINY).fit(X[:8], y[:8], steps=1, batch_size=8, min_snr_gamma=g, progress=False)
            .history_["log"][0]["loss"] for g in (0, 5)}
    assert loss[0] != loss[5] and loss[5] == medsynth.DiffusionModel(**TINY).fit(
        X[:8], y[:8], steps=1, batch_size=8, progress=False).history_["log"][0]["loss"]
