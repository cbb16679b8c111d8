"""Keras layers of the StyleGAN (v1) port.

Each layer computes what one scope of the official TF1 graph
(``training/networks_stylegan.py``) computes, in NHWC instead of NCHW. Weights are
stored exactly as the TF1 variables are (same shapes, same raw values, e.g. a
constant input of shape ``[1, C, 4, 4]`` or a noise map of ``[1, 1, R, R]``), and the
equalised-learning-rate coefficient is applied at run time, so loading an official
``.pkl`` copies arrays without any rearrangement.

Every layer has a ``scope`` (the TF1 variable scope, e.g. ``"8x8/Conv0_up"``); the
TF1 name of a weight is ``f"{scope}/{weight.name}"`` (see :func:`tf1_variables` of
:mod:`tfforensics.models.stylegan.networks`).
"""

from __future__ import annotations

import numpy as np
import keras
import tensorflow as tf

PACKAGE = "tfforensics.stylegan"
ACTIVATIONS = ("linear", "lrelu", "relu")
LRELU_ALPHA = 0.2


def _activate(x, activation: str):
    if activation == "lrelu":
        # The values of max(x, 0.2 x), in one op and one gradient op (VisNet's double-backprop
        # step trains 1.7x faster than with max and a product). The gradient at exactly 0 is
        # 0.2, as ProGAN's / GANFingerprints' tf.maximum(0.2 x, x); StyleGAN's custom gradient
        # takes 1 there. Only a pre-activation of exactly 0 tells them apart.
        return tf.nn.leaky_relu(x, LRELU_ALPHA)
    if activation == "relu":
        return tf.nn.relu(x)
    return x


def _check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"`activation` must be one of {ACTIVATIONS}. Received: activation={activation!r}")


def weight_coefficients(fan_in: int, gain: float, use_wscale: bool, lrmul: float) -> tuple[float, float]:
    """``(init_std, runtime_coef)`` of TF1 ``get_weight``: He init with equalised learning rate."""
    he_std = float(gain / np.sqrt(fan_in))
    if use_wscale:
        return 1.0 / lrmul, he_std * lrmul
    return he_std / lrmul, float(lrmul)


class ScopedLayer(keras.layers.Layer):
    """Base: stores the TF1 scope; maps its weights to TF1 variable names."""

    def __init__(self, scope: str = "", **kwargs):
        super().__init__(**kwargs)
        self.scope = scope

    def tf1_variables(self) -> dict:
        """``{tf1_local_name: keras.Variable}`` for the weights of this layer."""
        prefix = f"{self.scope}/" if self.scope else ""
        return {prefix + w.name: w for w in self.weights}

    def get_config(self):
        return {**super().get_config(), "scope": self.scope}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Bias(ScopedLayer):
    """TF1 ``apply_bias`` (times ``lrmul``) followed by an activation.

    Args:
        lrmul: learning-rate multiplier applied to the stored bias at run time.
        activation: ``"linear"``, ``"lrelu"`` (slope 0.2) or ``"relu"``.
    """

    def __init__(self, lrmul: float = 1.0, activation: str = "linear", **kwargs):
        super().__init__(**kwargs)
        _check_activation(activation)
        self.lrmul = float(lrmul)
        self.activation = activation

    def build(self, input_shape):
        self.bias = self.add_weight(name="bias", shape=(int(input_shape[-1]),), initializer="zeros")

    def call(self, x):
        return _activate(x + self.bias * self.lrmul, self.activation)

    def get_config(self):
        return {**super().get_config(), "lrmul": self.lrmul, "activation": self.activation}


@keras.saving.register_keras_serializable(package=PACKAGE)
class EqualizedDense(ScopedLayer):
    """Fully connected layer with equalised learning rate (TF1 ``dense`` + ``apply_bias``).

    A 4-D NHWC input is flattened in NCHW order, as the TF1 graph flattens it, so the
    official ``[C*H*W, units]`` weight applies unchanged.

    Args:
        units: output features.
        gain: He-init gain (sqrt(2) for hidden layers, 1 for outputs).
        use_wscale: equalised learning rate (scale the weight at run time).
        lrmul: learning-rate multiplier of weight and bias (0.01 in the mapping network).
        use_bias / activation: bias then activation after the product.
    """

    def __init__(self, units: int, gain: float = float(np.sqrt(2)), use_wscale: bool = True, lrmul: float = 1.0,
                 use_bias: bool = True, activation: str = "linear", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units <= 0:
            raise ValueError(f"`units` must be a positive int. Received: units={units!r}")
        _check_activation(activation)
        self.units, self.gain, self.use_wscale, self.lrmul = units, float(gain), bool(use_wscale), float(lrmul)
        self.use_bias, self.activation = bool(use_bias), activation

    def build(self, input_shape):
        fan_in = int(np.prod([int(d) for d in input_shape[1:]]))
        init_std, self.coef = weight_coefficients(fan_in, self.gain, self.use_wscale, self.lrmul)
        self.weight = self.add_weight(name="weight", shape=(fan_in, self.units),
                                      initializer=keras.initializers.RandomNormal(0.0, init_std))
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, x):
        if len(x.shape) == 4:
            x = tf.transpose(x, [0, 3, 1, 2])  # flatten in the TF1 (NCHW) order
        if len(x.shape) > 2:
            x = tf.reshape(x, [tf.shape(x)[0], -1])
        y = tf.matmul(x, self.weight * self.coef)
        if self.use_bias:
            y = y + self.bias * self.lrmul
        return _activate(y, self.activation)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "gain": self.gain, "use_wscale": self.use_wscale,
                "lrmul": self.lrmul, "use_bias": self.use_bias, "activation": self.activation}


def upscale2d(x, factor: int = 2):
    """Nearest-neighbour up-sampling of NHWC ``x`` (TF1 ``_upscale2d``)."""
    if factor == 1:
        return x
    shape = tf.shape(x)
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    x = tf.reshape(x, [shape[0], h, 1, w, 1, c])
    x = tf.tile(x, [1, 1, factor, 1, factor, 1])
    return tf.reshape(x, [shape[0], h * factor, w * factor, c])


def downscale2d(x, factor: int = 2):
    """Box average over ``factor`` x ``factor`` blocks (TF1 ``_downscale2d``)."""
    if factor == 1:
        return x
    return tf.nn.avg_pool2d(x, ksize=factor, strides=factor, padding="VALID")


def blur_kernel(taps) -> np.ndarray:
    """Normalised separable 2-D kernel from 1-D ``taps`` (``[1, 2, 1]`` -> 3x3 / 16)."""
    f = np.asarray(taps, dtype=np.float32)
    if f.ndim == 1:
        f = f[:, None] * f[None, :]
    return f / np.sum(f)


@keras.saving.register_keras_serializable(package=PACKAGE)
class Blur2D(keras.layers.Layer):
    """Depthwise low-pass filter, SAME padding (TF1 ``blur2d``, default ``[1, 2, 1]``)."""

    def __init__(self, taps=(1, 2, 1), **kwargs):
        super().__init__(**kwargs)
        self.taps = [float(t) for t in taps]

    def call(self, x):
        channels = x.shape[-1]
        f = np.tile(blur_kernel(self.taps)[:, :, None, None], [1, 1, channels, 1])
        return tf.nn.depthwise_conv2d(x, tf.constant(f, dtype=x.dtype), strides=[1, 1, 1, 1], padding="SAME")

    def get_config(self):
        return {**super().get_config(), "taps": self.taps}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Upscale2D(keras.layers.Layer):
    """Nearest-neighbour up-sampling by an integer ``factor``."""

    def __init__(self, factor: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, x):
        return upscale2d(x, self.factor)

    def compute_output_shape(self, s):
        return (s[0], None if s[1] is None else s[1] * self.factor, None if s[2] is None else s[2] * self.factor, s[3])

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Downscale2D(keras.layers.Layer):
    """Box down-sampling by an integer ``factor``."""

    def __init__(self, factor: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, x):
        return downscale2d(x, self.factor)

    def compute_output_shape(self, s):
        return (s[0], None if s[1] is None else s[1] // self.factor, None if s[2] is None else s[2] // self.factor, s[3])

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package=PACKAGE)
class EqualizedConv2D(ScopedLayer):
    """Square convolution with equalised learning rate, optionally with 2x re-sampling.

    ``resample=None``: plain SAME convolution (TF1 ``conv2d``). ``"up"``: TF1
    ``upscale2d_conv2d`` — nearest up-sampling then the conv, or, when ``fused``, one
    stride-2 transposed convolution with the kernel padded and summed over its four
    shifts. ``"down"``: TF1 ``conv2d_downscale2d`` — conv then 2x2 average, or, when
    ``fused``, one stride-2 conv with the shifted-average kernel.

    Args:
        filters, kernel_size: output channels and odd kernel size.
        gain, use_wscale, lrmul: as in :class:`EqualizedDense`.
        resample: None, ``"up"`` or ``"down"``.
        fused: fuse the re-sampling into the convolution.
        use_bias / activation: bias then activation after the conv.
        padding: ``"same"`` (zeros, as StyleGAN/ProGAN) or ``"reflect"`` (the
            GANFingerprints classifier's ``tf.pad(..., mode="REFLECT")`` before a VALID
            conv); a fused re-sampling conv always pads with zeros, as in TF1.
    """

    def __init__(self, filters: int, kernel_size: int = 3, gain: float = float(np.sqrt(2)), use_wscale: bool = True,
                 lrmul: float = 1.0, resample=None, fused: bool = False, use_bias: bool = True,
                 activation: str = "linear", padding: str = "same", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"`kernel_size` must be a positive odd int. Received: kernel_size={kernel_size!r}")
        if resample not in (None, "up", "down"):
            raise ValueError(f"`resample` must be None, 'up' or 'down'. Received: resample={resample!r}")
        if padding not in ("same", "reflect"):
            raise ValueError(f"`padding` must be 'same' or 'reflect'. Received: padding={padding!r}")
        _check_activation(activation)
        self.padding = padding
        self.filters, self.kernel_size = int(filters), kernel_size
        self.gain, self.use_wscale, self.lrmul = float(gain), bool(use_wscale), float(lrmul)
        self.resample, self.fused = resample, bool(fused)
        self.use_bias, self.activation = bool(use_bias), activation

    def build(self, input_shape):
        channels = int(input_shape[-1])
        fan_in = self.kernel_size * self.kernel_size * channels
        init_std, self.coef = weight_coefficients(fan_in, self.gain, self.use_wscale, self.lrmul)
        self.weight = self.add_weight(name="weight", shape=(self.kernel_size, self.kernel_size, channels, self.filters),
                                      initializer=keras.initializers.RandomNormal(0.0, init_std))
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    @staticmethod
    def _shift_sum(w):
        w = tf.pad(w, [[1, 1], [1, 1], [0, 0], [0, 0]])
        return w[1:, 1:] + w[:-1, 1:] + w[1:, :-1] + w[:-1, :-1]

    def call(self, x):
        w = self.weight * self.coef
        if self.resample == "up" and self.fused:
            wt = self._shift_sum(tf.transpose(w, [0, 1, 3, 2]))  # [k+1, k+1, out, in]
            shape = tf.shape(x)
            out_shape = tf.stack([shape[0], shape[1] * 2, shape[2] * 2, self.filters])
            y = tf.nn.conv2d_transpose(x, wt, out_shape, strides=[1, 2, 2, 1], padding="SAME")
            y = tf.ensure_shape(y, [None, None if x.shape[1] is None else x.shape[1] * 2,
                                    None if x.shape[2] is None else x.shape[2] * 2, self.filters])
        elif self.resample == "down" and self.fused:
            y = tf.nn.conv2d(x, self._shift_sum(w) * 0.25, strides=[1, 2, 2, 1], padding="SAME")
        else:
            if self.resample == "up":
                x = upscale2d(x)
            if self.padding == "reflect" and self.kernel_size > 1:
                half = self.kernel_size // 2
                x = tf.pad(x, [[0, 0], [half, half], [half, half], [0, 0]], mode="REFLECT")
                y = tf.nn.conv2d(x, w, strides=[1, 1, 1, 1], padding="VALID")
            else:
                y = tf.nn.conv2d(x, w, strides=[1, 1, 1, 1], padding="SAME")
            if self.resample == "down":
                y = downscale2d(y)
        if self.use_bias:
            y = y + self.bias * self.lrmul
        return _activate(y, self.activation)

    def compute_output_shape(self, s):
        scale = {None: 1.0, "up": 2.0, "down": 0.5}[self.resample]
        size = [None if d is None else int(d * scale) for d in s[1:3]]
        return (s[0], *size, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size, "gain": self.gain,
                "use_wscale": self.use_wscale, "lrmul": self.lrmul, "resample": self.resample, "fused": self.fused,
                "use_bias": self.use_bias, "activation": self.activation, "padding": self.padding}


@keras.saving.register_keras_serializable(package=PACKAGE)
class NoiseInput(ScopedLayer):
    """Adds per-pixel Gaussian noise scaled by a learned per-channel weight (TF1 ``apply_noise``).

    The fixed noise map of the TF1 graph (``noise<i>``, shape ``[1, 1, R, R]``) is kept
    as a non-trainable weight and used when ``randomize_noise`` is False, so a loaded
    generator can be made deterministic exactly as ``Gs.run(..., randomize_noise=False)``.
    """

    def __init__(self, noise_name: str = "noise0", randomize_noise: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.noise_name = noise_name
        self.randomize_noise = bool(randomize_noise)

    def build(self, input_shape):
        h, w, c = (int(d) for d in input_shape[1:])
        self.weight = self.add_weight(name="weight", shape=(c,), initializer="zeros")
        self.noise = self.add_weight(name="noise", shape=(1, 1, h, w), initializer="random_normal", trainable=False)

    def tf1_variables(self) -> dict:
        return {f"{self.scope}/weight": self.weight, self.noise_name: self.noise}

    def call(self, x):
        if self.randomize_noise:
            shape = tf.shape(x)
            noise = tf.random.normal([shape[0], shape[1], shape[2], 1], dtype=x.dtype)
        else:
            noise = tf.transpose(tf.cast(self.noise, x.dtype), [0, 2, 3, 1])
        return x + noise * self.weight

    def get_config(self):
        return {**super().get_config(), "noise_name": self.noise_name, "randomize_noise": self.randomize_noise}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PixelNorm(keras.layers.Layer):
    """Each feature vector divided by its root mean square (last axis)."""

    def __init__(self, epsilon: float = 1e-8, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, x):
        return x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=-1, keepdims=True) + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package=PACKAGE)
class InstanceNorm(keras.layers.Layer):
    """Zero mean, unit variance per image and channel over the spatial axes (first half of AdaIN)."""

    def __init__(self, epsilon: float = 1e-8, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, x):
        x = x - tf.reduce_mean(x, axis=[1, 2], keepdims=True)
        return x * tf.math.rsqrt(tf.reduce_mean(tf.square(x), axis=[1, 2], keepdims=True) + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package=PACKAGE)
class StyleMod(ScopedLayer):
    """Second half of AdaIN: ``x * (scale + 1) + shift`` from an affine map of one style vector.

    Call arguments: ``[x, dlatents]`` with ``dlatents`` of shape ``(N, num_layers, D)``;
    the layer uses ``dlatents[:, layer_index]`` (TF1 ``style_mod``: dense with gain 1 + bias).
    """

    def __init__(self, layer_index: int = 0, use_wscale: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.layer_index = int(layer_index)
        self.use_wscale = bool(use_wscale)

    def build(self, input_shape):
        x_shape, d_shape = input_shape
        channels, dlatent_size = int(x_shape[-1]), int(d_shape[-1])
        init_std, self.coef = weight_coefficients(dlatent_size, 1.0, self.use_wscale, 1.0)
        self.weight = self.add_weight(name="weight", shape=(dlatent_size, 2 * channels),
                                      initializer=keras.initializers.RandomNormal(0.0, init_std))
        self.bias = self.add_weight(name="bias", shape=(2 * channels,), initializer="zeros")

    def call(self, inputs):
        x, dlatents = inputs
        style = tf.matmul(dlatents[:, self.layer_index], self.weight * self.coef) + self.bias
        scale, shift = tf.split(style, 2, axis=-1)  # TF1 reshapes to [N, 2, C]: first half scales
        return x * (scale[:, None, None, :] + 1.0) + shift[:, None, None, :]

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "layer_index": self.layer_index, "use_wscale": self.use_wscale}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConstInput(ScopedLayer):
    """The learned 4x4 constant that starts the synthesis network, repeated over the batch.

    Stored in the TF1 shape ``[1, C, 4, 4]``; the call takes the dlatents only for the batch size.
    """

    def __init__(self, channels: int = 512, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)

    def build(self, input_shape):
        self.const = self.add_weight(name="const", shape=(1, self.channels, 4, 4), initializer="ones")

    def call(self, dlatents):
        const = tf.transpose(self.const, [0, 2, 3, 1])
        return tf.tile(const, [tf.shape(dlatents)[0], 1, 1, 1])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 4, 4, self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


@keras.saving.register_keras_serializable(package=PACKAGE)
class DlatentSlice(keras.layers.Layer):
    """``dlatents[:, index]``: the style vector of one synthesis layer."""

    def __init__(self, index: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.index = int(index)

    def call(self, dlatents):
        return dlatents[:, self.index]

    def compute_output_shape(self, s):
        return (s[0], s[2])

    def get_config(self):
        return {**super().get_config(), "index": self.index}


@keras.saving.register_keras_serializable(package=PACKAGE)
class FromNCHW(keras.layers.Layer):
    """Reshape flat features to ``[N, C, H, W]`` (TF1 order) and return them as NHWC."""

    def __init__(self, channels: int, height: int = 4, width: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.height, self.width = int(channels), int(height), int(width)

    def call(self, x):
        x = tf.reshape(x, [tf.shape(x)[0], self.channels, self.height, self.width])
        return tf.transpose(x, [0, 2, 3, 1])

    def compute_output_shape(self, s):
        return (s[0], self.height, self.width, self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "height": self.height, "width": self.width}


@keras.saving.register_keras_serializable(package=PACKAGE)
class MinibatchStddev(keras.layers.Layer):
    """Appends the average standard deviation over groups of the batch as extra feature maps.

    Groups are ``min(group_size, N)`` images, taken with stride ``N // group`` as in TF1
    (image ``g * M + m`` belongs to group ``m``); ``N`` must be divisible by the group size.
    With ``group_size=1`` every image is processed on its own (the feature is the constant
    ``sqrt(1e-8)``), which is what the original img2grad computes with its batch of one.
    """

    def __init__(self, group_size: int = 4, num_new_features: int = 1, **kwargs):
        super().__init__(**kwargs)
        if int(group_size) < 1:
            raise ValueError(f"`group_size` must be >= 1. Received: group_size={group_size!r}")
        self.group_size, self.num_new_features = int(group_size), int(num_new_features)

    def call(self, x):
        shape = tf.shape(x)
        h, w, c = x.shape[1], x.shape[2], x.shape[3]
        n = self.num_new_features
        group = tf.minimum(self.group_size, shape[0])
        tf.debugging.assert_equal(
            shape[0] % group, 0,
            message=f"MinibatchStddev: the batch size must be a multiple of the group size {self.group_size} "
                    "(or smaller than it)")
        y = tf.reshape(x, [group, -1, h, w, n, c // n])
        y = y - tf.reduce_mean(y, axis=0, keepdims=True)
        y = tf.reduce_mean(tf.square(y), axis=0)
        y = tf.sqrt(y + 1e-8)
        y = tf.reduce_mean(y, axis=[1, 2, 4])  # [M, n]
        y = tf.tile(y[:, None, None, :], [group, h, w, 1])
        return tf.concat([x, y], axis=-1)

    def compute_output_shape(self, s):
        return (*s[:3], s[3] + self.num_new_features)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size, "num_new_features": self.num_new_features}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Truncation(ScopedLayer):
    """Truncation trick: ``lerp(dlatent_avg, w, psi)`` for the first ``cutoff`` layers.

    Holds ``dlatent_avg`` (a non-trainable weight of the generator in TF1). ``psi=None``
    or ``cutoff=None`` disables it, as in TF1 ``G_style``.
    """

    def __init__(self, psi=0.7, cutoff=8, **kwargs):
        super().__init__(**kwargs)
        self.psi = None if psi is None else float(psi)
        self.cutoff = None if cutoff is None else int(cutoff)

    def build(self, input_shape):
        self.dlatent_avg = self.add_weight(name="dlatent_avg", shape=(int(input_shape[-1]),), initializer="zeros",
                                           trainable=False)

    def call(self, dlatents):
        if self.psi is None or self.cutoff is None or self.psi == 1 or self.cutoff <= 0:
            return dlatents
        num_layers = dlatents.shape[1]
        coefs = np.where(np.arange(num_layers) < self.cutoff, self.psi, 1.0).astype(np.float32)[None, :, None]
        return self.dlatent_avg + (dlatents - self.dlatent_avg) * coefs

    def get_config(self):
        return {**super().get_config(), "psi": self.psi, "cutoff": self.cutoff}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ChannelsFirstToLast(keras.layers.Layer):
    """NCHW input to NHWC, for callers that feed images as the TF1 graph did."""

    def call(self, x):
        return tf.transpose(x, [0, 2, 3, 1])

    def compute_output_shape(self, s):
        return (s[0], s[2], s[3], s[1])


@keras.saving.register_keras_serializable(package=PACKAGE)
class ChannelsLastToFirst(keras.layers.Layer):
    """NHWC output to NCHW."""

    def call(self, x):
        return tf.transpose(x, [0, 3, 1, 2])

    def compute_output_shape(self, s):
        return (s[0], s[3], s[1], s[2])
