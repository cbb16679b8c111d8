"""Fourier dissimilarities (tfforensics.losses): zero on identical batches, NumPy reference,
central finite differences of the gradient in float64, Keras loss behaviour, bands."""

import numpy as np
import pytest
import tensorflow as tf

from tfforensics.errors import UserError
from tfforensics.losses import (
    Band, FourierLoss, TYPES, fourier_dissimilarity, fourier_dissimilarity_numpy,
)

CASES = [(kind, spectrum) for kind in TYPES for spectrum in ("dft", "dct")]
BANDS = ["20", "all", "high:0.5", "low:0.5", "radial:0.2-0.8"]


def _images(seed, n=2, size=48):
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3))


@pytest.mark.parametrize("kind,spectrum", CASES)
def test_zero_for_identical_positive_otherwise_and_equal_to_numpy(kind, spectrum):
    fake, real = _images(0), _images(1)
    for band in BANDS:
        same = fourier_dissimilarity(tf.constant(real), tf.constant(real), kind, band, spectrum_kind=spectrum).numpy()
        np.testing.assert_array_equal(same, 0.0)
        value = fourier_dissimilarity(tf.constant(fake), tf.constant(real), kind, band, spectrum_kind=spectrum).numpy()
        reference = fourier_dissimilarity_numpy(fake, real, kind, band, spectrum_kind=spectrum)
        assert value.shape == (2,) and np.all(value > 0), (band, value)
        np.testing.assert_allclose(value, reference, rtol=1e-9, err_msg=band)


@pytest.mark.parametrize("kind,spectrum", CASES)
def test_gradient_matches_central_finite_differences(kind, spectrum):
    size = 16
    fake, real = _images(2, 1, size), _images(3, 1, size)
    band = "4" if kind != "azimuthal" else "all"
    x = tf.Variable(fake)
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(fourier_dissimilarity(x, tf.constant(real), kind, band, spectrum_kind=spectrum))
    gradient = tape.gradient(value, x).numpy()
    assert np.all(np.isfinite(gradient)) and np.abs(gradient).max() > 0
    rng = np.random.default_rng(4)
    step = 1e-6
    for flat in rng.choice(fake.size, 12, replace=False):
        index = np.unravel_index(flat, fake.shape)
        plus, minus = fake.copy(), fake.copy()
        plus[index] += step
        minus[index] -= step
        numeric = (fourier_dissimilarity_numpy(plus, real, kind, band, spectrum_kind=spectrum)
                   - fourier_dissimilarity_numpy(minus, real, kind, band, spectrum_kind=spectrum)).sum() / (2 * step)
        np.testing.assert_allclose(gradient[index], numeric, rtol=1e-4, atol=1e-9 * max(1.0, abs(numeric)) + 1e-12)


def test_original_band_is_rows_t_to_minus_t_and_columns_from_t():
    mask = Band.parse(20).mask(64, 64, "dft")
    assert mask.shape == (64, 33)
    expected = np.zeros((64, 33), bool)
    expected[20:-20, 20:] = True
    np.testing.assert_array_equal(mask, expected)
    # L1 on a hand-made pair: only the band differs by one coefficient's magnitude
    assert Band.parse("threshold:3") == Band("threshold", 3)
    assert Band.parse("radial:0.25-0.5").describe() == "radial:0.25-0.5"


def test_bad_bands_and_types_are_user_errors():
    with pytest.raises(UserError, match="keeps no frequency"):
        Band.parse(40).mask(64, 64)
    with pytest.raises(UserError, match="not understood"):
        Band.parse("middle")
    with pytest.raises(UserError, match="low < high"):
        Band.parse("radial:0.5-0.2")
    with pytest.raises(UserError, match="unknown Fourier dissimilarity"):
        FourierLoss("l3")


def test_keras_loss_batch_mean_dtype_and_config():
    fake, real = _images(5, 4, 32), _images(6, 4, 32)
    loss = FourierLoss("frobenius", band="8", dtype="float64")
    value = loss(real, fake)
    assert value.dtype == tf.float64
    per_image = fourier_dissimilarity_numpy(fake, real, "frobenius", "8")
    np.testing.assert_allclose(float(value), per_image.mean(), rtol=1e-9)
    # batch-safe: each image's value does not depend on the others in its batch
    single = [float(FourierLoss("cos", band="8")(real[i:i + 1], fake[i:i + 1])) for i in range(4)]
    np.testing.assert_allclose(single, fourier_dissimilarity_numpy(fake, real, "cos", "8"), rtol=1e-4)
    # float32 inputs give float32 values close to the float64 reference
    value32 = FourierLoss("l1", band="8")(real.astype("float32"), fake.astype("float32"))
    assert value32.dtype == tf.float32
    np.testing.assert_allclose(float(value32), fourier_dissimilarity_numpy(fake, real, "l1", "8").mean(), rtol=1e-4)
    clone = FourierLoss.from_config(loss.get_config())
    assert (clone.kind, clone.band, clone.spectrum_kind) == ("frobenius", Band("threshold", 8), "dft")
    np.testing.assert_allclose(float(clone(real, fake)), float(value), rtol=1e-12)


def test_color_compares_every_channel():
    real = _images(7, 1, 32)
    fake = real.copy()
    pattern = np.random.default_rng(8).choice([-0.2, 0.2], (32, 32))
    fake[0, ..., 0] += pattern  # red changes ...
    fake[0, ..., 1] -= pattern * 0.299 / 0.587  # ... and green cancels it in gray
    gray = fourier_dissimilarity_numpy(fake, real, "l1", "4")
    color = fourier_dissimilarity_numpy(fake, real, "l1", "4", color=True)
    np.testing.assert_allclose(gray, 0.0, atol=1e-18)
    assert color[0] > 1e-6
    np.testing.assert_allclose(fourier_dissimilarity(tf.constant(fake), tf.constant(real), "l1", "4", color=True),
                               color, rtol=1e-9)


def test_mean_spectrum_loss_is_zero_at_the_real_mean_equals_numpy_and_has_gradients():
    from tfforensics.benchmark.gans import training_crops
    from tfforensics.losses import MeanSpectrumLoss

    real = training_crops(24, 32, seed=1)
    for kind in ("l1", "frobenius"):
        for color, band in ((True, "all"), (False, "high:0.5")):
            loss = MeanSpectrumLoss(real, kind, band=band, color=color)
            assert float(loss(real / 127.5 - 1.0)) < 1e-3  # float32 DCT against the float64 mean
            fake = _images(5, 4, 32)
            value = float(loss(tf.constant(fake, tf.float32)))
            assert value > 0.5
            np.testing.assert_allclose(value, loss.numpy(fake), rtol=1e-4)
    x = tf.Variable(_images(6, 2, 32), dtype=tf.float32)
    with tf.GradientTape() as tape:
        value = MeanSpectrumLoss(real)(x)
    gradient = tape.gradient(value, x).numpy()
    assert np.all(np.isfinite(gradient)) and np.abs(gradient).max() > 0
    # one step down the gradient of the batch mean lowers it
    assert float(MeanSpectrumLoss(real)(x - 0.01 * gradient / np.abs(gradient).max())) < float(value)
    with pytest.raises(UserError, match="l1 or frobenius"):
        MeanSpectrumLoss(real, "cos")
    with pytest.raises(UserError, match="at least 2"):
        MeanSpectrumLoss(real[:1])
