"""Batch normalization that trains with TensorFlow's fused kernel.

Keras 3 normalizes a training batch with separate ops (``moments``, then ``x * inv + shift``),
and autodiff differentiates each of them: on a CPU that costs as much as the convolutions
around it (NPR's step: 13.4 ms an image with Keras' layer, 7.1 ms with this one, one thread,
64x64 inputs). :class:`FusedBatchNormalization` is Keras' layer with the same weights, the
same config and the same inference path; only a training batch goes through
``FusedBatchNormV3`` and its fused gradient, which compute the same function (outputs,
gradients and moving statistics equal to float32 rounding: tests/layers/test_normalization.py).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfforensics.layers.preprocessing import PACKAGE

#: cuDNN's smallest batch-norm epsilon: below it a GPU's fused kernel would not compute the same
#: function, so such layers keep Keras' ops where a GPU is visible.
CUDNN_MIN_EPSILON = 1.001e-5


@keras.saving.register_keras_serializable(package=PACKAGE)
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """:class:`keras.layers.BatchNormalization` whose training batches use the fused kernel.

    The fused kernel applies to channels-last float32 inputs of rank 4 without a mask,
    renormalization or cross-replica synchronization; anything else (and inference, always)
    runs Keras' own code. The moving variance is updated with the batch's biased variance,
    as Keras does (the kernel returns the Bessel-corrected one, which is converted back).

    Examples:
        >>> import numpy as np
        >>> x = np.arange(32, dtype="float32").reshape(2, 2, 2, 4)
        >>> layer = FusedBatchNormalization(momentum=0.0)
        >>> y = layer(x, training=True).numpy()
        >>> bool(np.allclose(y.mean(axis=(0, 1, 2)), 0.0, atol=1e-6))
        True
        >>> layer.moving_mean.numpy().tolist()
        [14.0, 15.0, 16.0, 17.0]
    """

    def _fused(self, inputs, training, mask) -> bool:
        return bool(training and self.trainable and mask is None and not self.renorm and not self.synchronized
                    and len(inputs.shape) == 4 and self.axis in (-1, 3) and inputs.dtype == tf.float32
                    and self.compute_dtype == "float32"
                    and (self.epsilon >= CUDNN_MIN_EPSILON or not tf.config.list_logical_devices("GPU")))

    def call(self, inputs, training=None, mask=None):
        if not self._fused(inputs, training, mask):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        gamma = self.gamma if self.scale else tf.ones((channels,), tf.float32)
        beta = self.beta if self.center else tf.zeros((channels,), tf.float32)
        outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=gamma, offset=beta, mean=tf.zeros((0,)), variance=tf.zeros((0,)), epsilon=self.epsilon,
            exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
        count = tf.cast(tf.size(inputs) // channels, tf.float32)
        biased = tf.where(count > 1.0, variance * ((count - 1.0) / tf.maximum(count, 1.0)), tf.zeros_like(variance))
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + biased * (1.0 - self.momentum))
        return outputs
