"""The small GANs of the mini benchmark: architectures, training steps, shipped weights, spectra."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tfforensics.benchmark.gans import load_gan_discriminator, load_generator, sample_images, shipped_weights, training_crops
from tfforensics.training.gan import GanConfig, train_gan
from tfforensics.cli.main import launch
from tfforensics.data.encodings import dct2, log_scale
from tfforensics.io.images import list_images, load_image
from tfforensics.models.gans import GAN_FAMILIES, build_discriminator, build_generator

FAMILIES = list(GAN_FAMILIES)


def gray_log_dct(images):
    """Log-magnitude DCT of the luma, flattened: Frank et al.'s features."""
    luma = np.asarray(images, dtype=np.float64) @ np.array([0.299, 0.587, 0.114])
    return log_scale(dct2(luma[..., None]))[..., 0].reshape(len(images), -1)


@pytest.fixture(scope="module")
def shipped_samples():
    return {name: sample_images(load_generator(name), 256, seed=7) for name in FAMILIES}


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_builds_and_samples_uint8(name):
    generator = build_generator(name, 64)
    images = sample_images(generator, 3, seed=0)
    assert images.shape == (3, 64, 64, 3) and images.dtype == np.uint8
    assert build_discriminator(name, 64)(images.astype("float32") / 127.5 - 1).shape == (3, 1)
    assert build_generator(name, 16).output_shape == (None, 16, 16, 3)


def test_bad_family_and_size_are_refused():
    with pytest.raises(ValueError, match="unknown GAN family"):
        build_generator("vae")
    with pytest.raises(ValueError, match="power of two"):
        build_generator("nearest", 48)


@pytest.mark.parametrize("name", ["transposed", "stylegan"])
def test_training_steps_update_weights_and_discriminator_learns(name, tmp_path):
    crops = training_crops(64, 16, seed=1)
    config = GanConfig(steps=12, batch_size=8, seed=3, checkpoint_every=6)
    trainer = train_gan(name, crops, config=config, output=tmp_path / "run", progress=False)
    assert int(trainer.step.numpy()) == 12
    keras.utils.set_random_seed(3)
    initial = [w.numpy() for w in build_generator(name, 16).trainable_weights]  # the run's initial weights
    assert all(np.isfinite(h[k]) for h in trainer.history for k in h)
    metrics = trainer.last_metrics
    # After a few steps D scores reals above fakes, and its loss is below chance (2 log 2).
    assert metrics["real_score"] > metrics["fake_score"]
    assert metrics["d_loss"] < 2 * np.log(2)
    trained = [w.numpy() for w in trainer.generator.trainable_weights]
    assert len(initial) == len(trained)
    moved = [not np.allclose(a, b) for a, b in zip(initial, trained)]
    assert sum(moved) >= len(moved) - 2, "training should move (almost) every weight"
    changed = [not np.allclose(a, w.numpy()) for a, w in zip(trained, trainer.ema.trainable_weights)]
    assert any(changed), "the EMA generator should lag the trained one"
    run = tmp_path / "run"
    assert (run / "generator.keras").is_file() and (run / "discriminator.keras").is_file()
    reloaded = load_generator(name, run)
    latents = np.random.default_rng(0).standard_normal((4, reloaded.input_shape[-1])).astype("float32")
    if name != "stylegan":  # the StyleGAN family adds random noise per call
        np.testing.assert_allclose(reloaded(latents), trainer.ema(latents), atol=1e-5)
    # Continuing the run: a larger step count resumes from the checkpoint.
    resumed = train_gan(name, crops, config=GanConfig(steps=14, batch_size=8, seed=3, checkpoint_every=6),
                        output=run, progress=False)
    assert int(resumed.step.numpy()) == 14


def test_train_refuses_too_few_crops():
    with pytest.raises(ValueError, match="fewer than one batch"):
        train_gan("nearest", training_crops(4, 16), config=GanConfig(steps=1, batch_size=8))


def test_shipped_weights_exist_and_are_small():
    total = 0
    for name in FAMILIES:
        path = shipped_weights(name)
        total += path.stat().st_size
        assert (path.parent / "README.md").is_file()
    assert total < 8 * 2 ** 20
    assert load_gan_discriminator("stylegan").output_shape == (None, 1)


def test_gan_sample_cli_writes_deterministic_pngs(tmp_path):
    for out, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        assert launch(["gan", "sample", "bilinear", str(tmp_path / out), "--count", "3", "--seed", seed, "-q"]) == 0
    files = list_images(tmp_path / "a")
    assert [p.name for p in files] == ["000000.png", "000001.png", "000002.png"]
    a, b, c = (np.stack([load_image(p) for p in list_images(tmp_path / d)]) for d in "abc")
    assert a.shape == (3, 64, 64, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert launch(["gan", "sample", "nearest", str(tmp_path / "x"), "--count", "2", "--weights",
                   str(tmp_path / "missing.keras"), "-q"]) == 2
    with pytest.raises(ValueError, match="not one of family 'nearest'"):
        load_generator("nearest", shipped_weights("bilinear"))


def test_shipped_stylegan_discriminator_feeds_img2grad(tmp_path):
    assert launch(["gan", "sample", "stylegan", str(tmp_path / "fake"), "--count", "2", "-q"]) == 0
    weights = shipped_weights("stylegan").parent / "stylegan_discriminator.keras"
    assert launch(["img2grad", str(tmp_path / "fake"), str(tmp_path / "grad"), "--weights", str(weights), "-q"]) == 0
    grads = np.stack([load_image(p) for p in list_images(tmp_path / "grad")])
    assert grads.shape[0] == 2 and grads.std() > 0


def test_samples_are_not_collapsed(shipped_samples):
    for name, images in shipped_samples.items():
        spread = images.astype(np.float64).std(axis=0).mean()
        assert spread > 10, f"{name}: samples barely vary across latents (std {spread:.1f})"


def test_mean_spectra_of_the_families_differ(shipped_samples):
    spectra = {name: gray_log_dct(images) for name, images in shipped_samples.items()}
    # Distance between two halves of one family's samples vs between families. The closest pair,
    # nearest / bilinear, is 1.45x the largest within-family distance on the weights retrained on
    # the shipped train photos (at least 1.5x on the earlier ones); identical families give about 1.
    within = max(np.abs(s[::2].mean(0) - s[1::2].mean(0)).mean() for s in spectra.values())
    for i, a in enumerate(FAMILIES):
        for b in FAMILIES[i + 1:]:
            between = np.abs(spectra[a].mean(0) - spectra[b].mean(0)).mean()
            assert between > 1.3 * within, (a, b, between, within)
    # The highest frequencies (last quarter of both axes): the transposed conv's checkerboard puts
    # the most energy there. (Nearest vs bilinear is up to training: the weights trained on the 11
    # bundled photos had nearest > bilinear, the ones retrained on the shipped train photos
    # 0.23 < 0.35, as the 3x3 convolutions after the up-sampling learned to smooth.)
    high = {name: s.reshape(-1, 64, 64)[:, 48:, 48:].mean() for name, s in spectra.items()}
    assert high["transposed"] > max(high["nearest"], high["bilinear"]) + 0.3, high


def test_log_dct_features_separate_the_families_and_real(shipped_samples):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    count = 128
    groups = [training_crops(count, 64, seed=11)] + [shipped_samples[name][:count] for name in FAMILIES]
    x = np.concatenate([gray_log_dct(g) for g in groups])
    y = np.repeat(np.arange(len(groups)), count)
    train = np.arange(len(y)) % 3 != 0
    linear = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=300))
    knn = make_pipeline(StandardScaler(), KNeighborsClassifier(5))
    # chance: 0.2; measured on the shipped weights with 300 per class (real: test-split crops): 0.918 and 0.818
    assert linear.fit(x[train], y[train]).score(x[~train], y[~train]) > 0.7
    assert knn.fit(x[train], y[train]).score(x[~train], y[~train]) > 0.6


def test_gan_train_cli_writes_a_run_continues_and_samples(tmp_path):
    run = tmp_path / "run"
    base = ["gan", "train", "bilinear", str(run), "--size", "16", "--batch-size", "8", "--crops", "32",
            "--checkpoint-every", "2", "--seed", "5", "-q"]
    assert launch(base + ["--steps", "4"]) == 0
    import json

    info = json.loads((run / "run.json").read_text())
    assert info["family"] == "bilinear" and info["step"] == 4 and info["config"]["seed"] == 5
    assert launch(base + ["--steps", "4"]) == 2  # already trained: refused, nothing overwritten
    assert launch(base + ["--steps", "6"]) == 0  # continues from the checkpoint
    assert json.loads((run / "run.json").read_text())["step"] == 6
    assert launch(["gan", "train", "nearest", str(run), "--size", "16", "-q"]) == 2  # another family's run
    assert launch(["gan", "sample", "bilinear", str(tmp_path / "png"), "--count", "2", "--weights", str(run),
                   "-q"]) == 0
    assert load_image(list_images(tmp_path / "png")[0]).shape == (16, 16, 3)
