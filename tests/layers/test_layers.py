"""Preprocessing layers against the NumPy encodings and the records that ``prepare`` wrote."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from conftest import write_folder
from tfforensics.benchmark.photos import load_photos, random_crops
from tfforensics.data import Encoding, as_numpy, prepare
from tfforensics.data.encodings import dct2, encode, log_scale, scale_pixels
from tfforensics.data.splits import scan_classes, split_classes
from tfforensics.io.images import load_image
from tfforensics.layers import (
    DCT2D,
    AbsScale,
    ClassNames,
    Grayscale,
    LogScale,
    PixelScale,
    Standardize,
    preprocessing_from_manifest,
)

SPLIT = (0.6, 0.2, 0.2)


@pytest.fixture(scope="module")
def crops():
    """Real photo crops, RGB uint8 (12, 32, 32, 3)."""
    images, _ = random_crops(load_photos(), 12, 32, seed=3)
    return images


@pytest.fixture(scope="module")
def real_sources(tmp_path_factory):
    """Two classes of real photo crops (no up-sampling, so no structurally zero DCT terms)."""
    root = tmp_path_factory.mktemp("real_sources")
    for name, seed in (("photos_a", 1), ("photos_b", 2)):
        images, _ = random_crops(load_photos(), 20, 32, seed=seed)
        write_folder(root / name, images)
    return root


def _split_images(source, split, *, grayscale):
    items = split_classes(scan_classes(source), fractions=SPLIT, seed=0)[split]
    return np.stack([load_image(path, grayscale=grayscale) for path, _ in items])


def test_dct2d_matches_scipy(crops):
    got = DCT2D()(crops.astype("float32")).numpy()
    np.testing.assert_allclose(got, dct2(crops), rtol=1e-6, atol=1e-4)


def test_dct2d_float32_is_less_precise_but_close(crops):
    got = DCT2D(precision="float32")(crops.astype("float32")).numpy()
    np.testing.assert_allclose(got, dct2(crops), rtol=1e-5, atol=5e-3)


def test_log_and_pixel_scale_match_numpy(crops):
    coefficients = dct2(crops).astype("float32")
    np.testing.assert_allclose(LogScale()(coefficients).numpy(), log_scale(coefficients), atol=1e-5)
    np.testing.assert_allclose(PixelScale()(crops.astype("float32")).numpy(), scale_pixels(crops), atol=1e-6)


def test_grayscale_equals_pil_convert_L(crops, tmp_path):
    write_folder(tmp_path, crops)
    pil = np.stack([load_image(path, grayscale=True) for path in sorted(tmp_path.iterdir())])
    got = Grayscale()(crops.astype("float32")).numpy()
    assert got.shape == crops.shape[:3] + (1,)
    np.testing.assert_array_equal(got, pil.astype("float32"))


def test_standardize_and_abs_scale_match_numpy(rng):
    x = rng.normal(size=(4, 8, 8, 3)).astype("float32")
    mean, std, max_abs = rng.normal(size=(8, 8, 3)), rng.uniform(0.5, 2, (8, 8, 3)), rng.uniform(1, 3, (8, 8, 3))
    np.testing.assert_allclose(Standardize(mean=mean, std=std)(x).numpy(), (x - mean) / std, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(AbsScale(max_abs=max_abs)(x).numpy(), x / max_abs, rtol=1e-6)


def test_statistics_shapes_are_checked(rng):
    with pytest.raises(ValueError, match="one shape"):
        Standardize(mean=np.zeros((8, 8, 1)), std=np.ones((8, 8, 3)))
    with pytest.raises(ValueError, match="std` must be > 0"):
        Standardize(mean=np.zeros((2, 2, 1)), std=np.zeros((2, 2, 1)))
    with pytest.raises(ValueError, match="missing"):
        Standardize(mean=np.zeros((2, 2, 1)))
    layer = Standardize(mean=np.zeros((8, 8, 1)), std=np.ones((8, 8, 1)))
    with pytest.raises(ValueError, match="do not match the statistics"):
        layer(np.zeros((1, 16, 16, 1), "float32"))
    with pytest.raises(ValueError, match="precision"):
        DCT2D(precision="float16")
    with pytest.raises(ValueError, match="3 \\(RGB\\) channels"):
        Grayscale()(np.zeros((1, 4, 4, 1), "float32"))


def test_layers_survive_keras_save_and_safe_load(rng, tmp_path):
    mean, std, max_abs = rng.normal(size=(8, 8, 1)), rng.uniform(0.5, 2, (8, 8, 1)), rng.uniform(1, 3, (8, 8, 1))
    model = keras.Sequential([
        keras.Input((8, 8, 3)), Grayscale(), DCT2D(), LogScale(epsilon=1e-9), AbsScale(max_abs=max_abs),
        Standardize(mean=mean, std=std), ClassNames(["real", "fake"], {"note": "x"}),
    ])
    path = tmp_path / "pre.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = rng.integers(0, 256, (2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    assert loaded.layers[2].epsilon == 1e-9
    assert loaded.layers[-1].class_names == ["real", "fake"] and loaded.layers[-1].metadata == {"note": "x"}
    assert Standardize.from_config(loaded.layers[4].get_config()).shape == (8, 8, 1)


@pytest.mark.parametrize("encoding", [
    Encoding("dct", log=True, color=False, normalize=True),
    Encoding("dct", log=True, color=True, abs_scale=True, normalize=True),
    Encoding("dct", log=False, color=True),
    Encoding("raw", color=True, normalize=True),
    Encoding("raw", color=False),
], ids=lambda e: e.describe())
def test_stack_equals_records_on_real_images(real_sources, tmp_path, encoding):
    manifest = prepare(real_sources, tmp_path / "data", encoding, fractions=SPLIT, workers=1, progress=False)
    records, _ = as_numpy(manifest, "test")
    images = _split_images(real_sources, "test", grayscale=not encoding.color)
    got = preprocessing_from_manifest(manifest).predict(images.astype("float32"), verbose=0)
    scale = np.maximum(1.0, np.abs(records))  # raw DCT terms reach thousands: compare relatively there
    assert np.max(np.abs(got - records) / scale) < 1e-4
    np.testing.assert_allclose(encode(images, encoding, manifest.load_statistics()), records, atol=1e-6)


def test_rgb_input_on_gray_dataset(real_sources, tmp_path):
    encoding = Encoding("dct", log=True, normalize=True)
    manifest = prepare(real_sources, tmp_path / "data", encoding, fractions=SPLIT, workers=1, progress=False)
    records, _ = as_numpy(manifest, "test")
    rgb = _split_images(real_sources, "test", grayscale=False)
    stack = preprocessing_from_manifest(manifest, channels=3)
    assert stack.input_shape == (None, 32, 32, 3) and stack.layers[0].name == "grayscale"
    np.testing.assert_allclose(stack.predict(rgb.astype("float32"), verbose=0), records, atol=1e-4)
    color = prepare(real_sources, tmp_path / "color", Encoding("raw", color=True), fractions=SPLIT, workers=1,
                    progress=False)
    with pytest.raises(ValueError, match="channels"):
        preprocessing_from_manifest(color, channels=1)


def test_stack_equals_records_on_upsampled_images(three_sources, tmp_path):
    """Up-sampling makes some DCT terms exactly zero; there both pipelines log rounding noise.

    SciPy's FFT leaves e.g. 6e-13 where TensorFlow's leaves 3e-16: after ``log(|x| + 1e-12)``
    these differ by up to ~0.5 (before normalisation). Every other coefficient agrees to 1e-4.
    (Flat real crops, e.g. of the horse silhouette, have such zeros too.)
    """
    encoding = Encoding("dct", log=True, color=True, normalize=True)
    manifest = prepare(three_sources, tmp_path / "data", encoding, fractions=SPLIT, workers=1, progress=False)
    records, labels = as_numpy(manifest, "test")
    images = _split_images(three_sources, "test", grayscale=False)
    got = preprocessing_from_manifest(manifest).predict(images.astype("float32"), verbose=0)
    noise = np.abs(dct2(images)) < 1e-9
    assert noise[labels != 0].any()  # the up-sampled classes have them (flat real crops too)
    assert np.abs(got - records)[~noise].max() < 1e-4
    std = manifest.load_statistics()["std"]
    assert (np.abs(got - records)[noise] <= (0.7 / np.broadcast_to(std, got.shape))[noise]).all()
