"""NPR, the neighbouring-pixel residual of Tan et al. (CVPR 2024), as a Keras layer."""

from __future__ import annotations

import keras
import tensorflow as tf

from tfforensics.layers.preprocessing import PACKAGE, _check_rank4


@keras.saving.register_keras_serializable(package=PACKAGE)
class NeighbourResidual(keras.layers.Layer):
    """``scale * (x - up(down(x)))`` with nearest-neighbour resampling by ``factor``.

    ``down`` keeps every ``factor``-th pixel (the top-left one of each block), ``up``
    repeats it over the block, as ``F.interpolate(..., mode="nearest")`` does in the
    original, so the output is zero where a block is flat and carries the up-sampling
    traces elsewhere. The original feeds ``NPR * 2/3`` to its first convolution.

    Args:
        factor: block size (the original: 2).
        scale: factor on the residual (the original: 2/3).

    Input shape:
        ``(batch, height, width, channels)``; sides that are not multiples of ``factor``
        (where the original fails) repeat their last kept pixel.

    Examples:
        >>> import numpy as np
        >>> x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
        >>> NeighbourResidual(scale=1.0)(x).numpy()[0, :2, :2, 0].tolist()
        [[0.0, 1.0], [4.0, 5.0]]
    """

    def __init__(self, factor: int = 2, scale: float = 2.0 / 3.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(factor, int) or isinstance(factor, bool) or factor < 2:
            raise ValueError(f"`factor` must be an int >= 2. Received: factor={factor!r}")
        self.factor = factor
        self.scale = float(scale)

    def build(self, input_shape):
        _check_rank4(self, input_shape)

    def call(self, inputs):
        f = self.factor
        height, width = tf.shape(inputs)[1], tf.shape(inputs)[2]
        down = inputs[:, ::f, ::f, :]
        up = tf.repeat(tf.repeat(down, f, axis=1), f, axis=2)[:, :height, :width, :]
        return (inputs - up) * self.scale

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "scale": self.scale}
