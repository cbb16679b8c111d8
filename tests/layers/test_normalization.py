"""FusedBatchNormalization against Keras' own layer: the same function, trained by the fused kernel."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfforensics.layers import FusedBatchNormalization


def _pair(shape, rng, **options):
    """Keras' layer and ours, built on ``shape`` with the same random gamma and beta."""
    ours, theirs = FusedBatchNormalization(**options), keras.layers.BatchNormalization(**options)
    for layer in (ours, theirs):
        layer.build(shape)
    gamma = rng.normal(1.0, 0.3, shape[-1]).astype("float32")
    beta = rng.normal(0.0, 0.3, shape[-1]).astype("float32")
    for layer in (ours, theirs):
        if layer.scale:
            layer.gamma.assign(gamma)
        if layer.center:
            layer.beta.assign(beta)
    return ours, theirs


def _step(layer, x, weights):
    """Outputs, the gradients of ``sum(y * weights)`` and the moving statistics after one training call."""
    variables = [v for v in (getattr(layer, "gamma", None), getattr(layer, "beta", None)) if v is not None]
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(y * weights)
    gradients = tape.gradient(loss, [x, *variables])
    return [np.asarray(t) for t in (y, *gradients, layer.moving_mean, layer.moving_variance)]


@pytest.mark.parametrize("options", [
    {"epsilon": 1e-5, "momentum": 0.9},  # the torch ports' settings
    {},  # Keras' defaults (epsilon 1e-3, momentum 0.99)
    {"scale": False, "center": False, "momentum": 0.5},
])
def test_a_training_call_equals_keras_layer(options):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(2.0, 3.0, (8, 12, 10, 16)).astype("float32"))
    weights = tf.constant(rng.normal(size=x.shape).astype("float32"))
    ours, theirs = _pair(x.shape, rng, **options)
    for mine, reference in zip(_step(ours, x, weights), _step(theirs, x, weights)):
        scale = max(1.0, float(np.abs(reference).max()))
        np.testing.assert_allclose(mine, reference, rtol=0, atol=2e-6 * scale)
    # the fused kernel ran: its outputs are not bit-equal to Keras' ops (a fallback would be)
    assert not np.array_equal(ours(x, training=True).numpy(), theirs(x, training=True).numpy())


def test_the_moving_variance_is_the_biased_batch_variance():
    x = np.random.default_rng(1).normal(0.0, 2.0, (4, 3, 3, 5)).astype("float32")
    layer = FusedBatchNormalization(momentum=0.0)
    layer(x, training=True)
    np.testing.assert_allclose(layer.moving_variance.numpy(), x.reshape(-1, 5).var(axis=0), rtol=1e-5)
    np.testing.assert_allclose(layer.moving_mean.numpy(), x.reshape(-1, 5).mean(axis=0), rtol=1e-5, atol=1e-6)


def test_a_single_value_per_channel_updates_like_keras():
    x = np.random.default_rng(2).normal(size=(1, 1, 1, 3)).astype("float32")
    ours, theirs = _pair(x.shape, np.random.default_rng(3), momentum=0.5)
    ours(x, training=True), theirs(x, training=True)
    np.testing.assert_allclose(ours.moving_variance.numpy(), theirs.moving_variance.numpy())
    assert np.isfinite(ours.moving_variance.numpy()).all()


@pytest.mark.parametrize("shape,training", [((8, 12, 10, 16), False), ((16, 6), True), ((4, 5, 7), True)])
def test_other_calls_are_keras_own(shape, training):
    rng = np.random.default_rng(4)
    x = rng.normal(size=shape).astype("float32")
    ours, theirs = _pair(shape, rng)
    for layer in (ours, theirs):
        layer(x, training=True)  # moving statistics away from their start
    np.testing.assert_array_equal(ours(x, training=training).numpy(), theirs(x, training=training).numpy())


def test_it_trains_inside_a_model_and_survives_saving(tmp_path):
    keras.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = FusedBatchNormalization(name="bn")(x)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = rng.normal(size=(32, 8, 8, 3)).astype("float32"), rng.integers(0, 2, 32)
    history = model.fit(x, y, epochs=3, batch_size=8, verbose=0).history["loss"]
    assert np.isfinite(history).all() and history[-1] < history[0]
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert type(loaded.get_layer("bn")) is FusedBatchNormalization
    np.testing.assert_array_equal(loaded.predict_on_batch(x), model.predict_on_batch(x))
