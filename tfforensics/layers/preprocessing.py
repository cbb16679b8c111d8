"""Preprocessing as Keras layers, so a saved model takes raw 0..255 images.

The records that ``prepare`` writes are encoded with NumPy/SciPy
(:mod:`tfforensics.data.encodings`); these layers compute the same values with
TensorFlow ops inside the model. A model wrapped with
:func:`preprocessing_from_manifest` therefore needs no separate mean/var files, and
training and inference cannot drift apart. Tests hold both to 1e-4.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfforensics.data.encodings import LOG_EPSILON, to_unit

PACKAGE = "tfforensics"
PRECISIONS = ("float32", "float64")

#: PIL's fixed-point ITU-R 601-2 luma weights (``convert("L")``), scaled by 2**16.
_LUMA_WEIGHTS = (19595.0, 38470.0, 7471.0)


def _check_rank4(layer, input_shape) -> None:
    if len(input_shape) != 4:
        raise ValueError(
            f"{layer.__class__.__name__} expects images of shape (batch, height, width, channels). "
            f"Received: input_shape={tuple(input_shape)}"
        )


@keras.saving.register_keras_serializable(package=PACKAGE)
class DCT2D(keras.layers.Layer):
    """2-D type-II orthonormal DCT over height and width, per channel.

    Equals SciPy's ``dctn(x, type=2, norm="ortho", axes=(1, 2))``, the encoding of
    Frank et al. ``tf.signal.dct`` works on the last axis, so the channels are moved in
    front, the DCT runs over width, then (after a transpose) over height.

    Args:
        precision: ``"float64"`` (default) computes as SciPy does. In float32 the
            coefficients of a 0..255 image carry errors of ~1e-4, which the log scaling
            turns into errors of ~1e-3 on small coefficients; float64 keeps the whole
            stack within 1e-6 of the records.
        **kwargs: base layer keyword arguments (``name``, ``dtype``, ...).

    Input shape:
        ``(batch, height, width, channels)``.

    Output shape:
        Same as the input.

    Examples:
        >>> x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
        >>> float(DCT2D()(x)[0, 0, 0, 0])  # DC term: sum / sqrt(16)
        30.0
    """

    def __init__(self, precision: str = "float64", **kwargs):
        super().__init__(**kwargs)
        if precision not in PRECISIONS:
            raise ValueError(f"`precision` must be one of {PRECISIONS}. Received: precision={precision!r}")
        self.precision = precision

    def build(self, input_shape):
        _check_rank4(self, input_shape)
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: input_shape[-1]})

    def call(self, inputs):
        x = tf.cast(inputs, self.precision)
        x = tf.transpose(x, [0, 3, 1, 2])  # (B, C, H, W): DCT over width
        x = tf.signal.dct(x, type=2, norm="ortho")
        x = tf.transpose(x, [0, 1, 3, 2])  # (B, C, W, H): DCT over height
        x = tf.signal.dct(x, type=2, norm="ortho")
        x = tf.transpose(x, [0, 3, 2, 1])  # back to (B, H, W, C)
        return tf.cast(x, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "precision": self.precision}


@keras.saving.register_keras_serializable(package=PACKAGE)
class LogScale(keras.layers.Layer):
    """``log(|x| + epsilon)``: the log scaling of DCT coefficients of Frank et al.

    Args:
        epsilon: added before the logarithm so that zero coefficients stay finite
            (default ``1e-12``, as the records).
        **kwargs: base layer keyword arguments.

    Examples:
        >>> float(LogScale()(np.array([[-1.0]], "float32"))[0, 0])
        0.0
    """

    def __init__(self, epsilon: float = LOG_EPSILON, **kwargs):
        super().__init__(**kwargs)
        if not epsilon > 0:
            raise ValueError(f"`epsilon` must be > 0. Received: epsilon={epsilon}")
        self.epsilon = float(epsilon)

    def call(self, inputs):
        return tf.math.log(tf.abs(inputs) + self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PixelScale(keras.layers.Layer):
    """Pixels 0..255 to [-1, 1] (``x / 127.5 - 1``), the "raw" encoding.

    Examples:
        >>> PixelScale()(np.array([[0.0, 255.0]], "float32")).numpy().tolist()
        [[-1.0, 1.0]]
    """

    def call(self, inputs):
        return to_unit(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape


class _StatisticsLayer(keras.layers.Layer):
    """Base of layers whose arrays of train-split statistics are non-trainable weights.

    The arrays are weights, not config: ``get_config`` holds only their shape, and a
    saved ``.keras`` file restores the values with the other weights.
    """

    _arrays: tuple[str, ...] = ()

    def __init__(self, shape=None, arrays: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        arrays = {k: v for k, v in (arrays or {}).items() if v is not None}
        if arrays and len(arrays) != len(self._arrays):
            missing = sorted(set(self._arrays) - set(arrays))
            raise ValueError(f"{self.__class__.__name__} needs all of {self._arrays}; missing {missing}.")
        values = {k: np.asarray(v, dtype=np.float32) for k, v in arrays.items()}
        shapes = {k: v.shape for k, v in values.items()}
        if len(set(shapes.values())) > 1:
            raise ValueError(f"{self.__class__.__name__}: the statistics must have one shape. Received shapes: {shapes}")
        if shape is None and not values:
            raise ValueError(f"{self.__class__.__name__} needs the statistics arrays or their `shape`.")
        if shape is not None:
            shape = tuple(int(s) for s in shape)
            if values and next(iter(shapes.values())) != shape:
                raise ValueError(
                    f"{self.__class__.__name__}: `shape` {shape} does not match the statistics. "
                    f"Received shapes: {shapes}"
                )
        self.shape = shape if shape is not None else next(iter(shapes.values()))
        self._initial = values

    def build(self, input_shape):
        if tuple(input_shape[1:]) != self.shape:
            raise ValueError(
                f"{self.__class__.__name__}: inputs of shape {tuple(input_shape[1:])} do not match the "
                f"statistics of shape {self.shape}; the model and the dataset disagree on the image size "
                f"or channels. Received: input_shape={tuple(input_shape)}"
            )
        for name in self._arrays:
            weight = self.add_weight(name=name, shape=self.shape, initializer="zeros", trainable=False)
            if name in self._initial:
                weight.assign(self._initial[name])
            setattr(self, name, weight)
        self._initial = {}

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "shape": list(self.shape)}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Standardize(_StatisticsLayer):
    """``(x - mean) / std`` with per-coefficient train-split statistics.

    Args:
        mean: array of the per-coefficient mean, shape ``(height, width, channels)``.
        std: array of the same shape; zero spreads must already be replaced (``prepare``
            stores 1 there).
        shape: shape of the arrays, when they come from saved weights instead.
        **kwargs: base layer keyword arguments.

    Examples:
        >>> layer = Standardize(mean=np.full((1, 1, 1), 2.0), std=np.full((1, 1, 1), 4.0))
        >>> float(layer(np.full((1, 1, 1, 1), 10.0, "float32"))[0, 0, 0, 0])
        2.0
    """

    _arrays = ("mean", "std")

    def __init__(self, mean=None, std=None, shape=None, **kwargs):
        super().__init__(shape, {"mean": mean, "std": std}, **kwargs)
        if "std" in self._initial and not np.all(self._initial["std"] > 0):
            raise ValueError("Standardize: `std` must be > 0 everywhere (constant coefficients get std 1).")

    def call(self, inputs):
        return (inputs - self.mean) / self.std


@keras.saving.register_keras_serializable(package=PACKAGE)
class AbsScale(_StatisticsLayer):
    """``x / max_abs`` with the per-coefficient largest absolute value of the train split.

    Args:
        max_abs: array ``(height, width, channels)``, > 0 everywhere.
        shape: shape of the array, when it comes from saved weights instead.
        **kwargs: base layer keyword arguments.
    """

    _arrays = ("max_abs",)

    def __init__(self, max_abs=None, shape=None, **kwargs):
        super().__init__(shape, {"max_abs": max_abs}, **kwargs)
        if "max_abs" in self._initial and not np.all(self._initial["max_abs"] > 0):
            raise ValueError("AbsScale: `max_abs` must be > 0 everywhere.")

    def call(self, inputs):
        return inputs / self.max_abs


@keras.saving.register_keras_serializable(package=PACKAGE)
class Grayscale(keras.layers.Layer):
    """RGB 0..255 to one luma channel, exactly as PIL's ``convert("L")``.

    PIL computes ``(19595 R + 38470 G + 7471 B + 32768) >> 16`` on uint8 pixels (ITU-R
    601-2 luma, rounded to an integer); this layer does the same in floating point,
    which is exact for integer pixels (the sums stay below 2**24). Inputs are first
    rounded and clipped to 0..255, as a uint8 image would be.

    Input shape:
        ``(batch, height, width, 3)``.

    Output shape:
        ``(batch, height, width, 1)``.
    """

    def build(self, input_shape):
        _check_rank4(self, input_shape)
        if input_shape[-1] != 3:
            raise ValueError(f"Grayscale expects 3 (RGB) channels. Received: input_shape={tuple(input_shape)}")

    def call(self, inputs):
        x = tf.clip_by_value(tf.round(tf.cast(inputs, tf.float32)), 0.0, 255.0)
        weighted = tf.tensordot(x, tf.constant(_LUMA_WEIGHTS, tf.float32), axes=[[3], [0]])
        luma = tf.floor((weighted + 32768.0) / 65536.0)
        return tf.cast(luma[..., None], self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)


def preprocessing_layers(encoding, statistics: dict | None = None, shape=None, *, rgb_input: bool = False) -> list:
    """The layers that turn raw 0..255 images into what ``prepare`` writes for ``encoding``.

    Order as :func:`tfforensics.data.encodings.encode`: (luma), DCT or pixel scaling,
    log, division by max |x|, standardisation.

    Args:
        encoding: a :class:`tfforensics.data.Encoding`.
        statistics: ``{"mean", "std", "max_abs"}`` of the train split, when the encoding
            uses them.
        shape: encoded image shape ``(height, width, channels)``; checked against the
            statistics.
        rgb_input: prepend :class:`Grayscale` for a gray encoding, so the model accepts RGB.
    """
    layers = []
    if encoding.transform == "unknown":  # arrays of the original tools: the model takes them as stored
        return [keras.layers.Identity(name="as_stored")]
    if rgb_input and not encoding.color:
        layers.append(Grayscale(name="grayscale"))
    if encoding.transform == "raw":
        layers.append(PixelScale(name="pixel_scale"))
    elif encoding.transform == "raw255":  # 0..255 as stored
        layers.append(keras.layers.Identity(name="raw255"))
    else:
        layers.append(DCT2D(name="dct"))
        if encoding.log:
            layers.append(LogScale(name="log_scale"))
    if encoding.needs_statistics:
        if statistics is None:
            raise ValueError(f"encoding {encoding.describe()!r} needs the train-split statistics; none were given.")
        if shape is not None and tuple(np.shape(statistics["mean"])) != tuple(shape):
            raise ValueError(
                f"statistics of shape {np.shape(statistics['mean'])} do not match the image shape {tuple(shape)}."
            )
        if encoding.abs_scale:
            layers.append(AbsScale(max_abs=statistics["max_abs"], name="abs_scale"))
        if encoding.normalize:
            layers.append(Standardize(mean=statistics["mean"], std=statistics["std"], name="standardize"))
    return layers


def preprocessing_from_manifest(manifest, *, channels: int | None = None, name: str = "preprocessing") -> keras.Sequential:
    """A ``keras.Sequential`` equal to the encoding that ``prepare`` wrote for ``manifest``.

    Args:
        manifest: a :class:`tfforensics.data.Manifest` (or a path to one).
        channels: channels of the raw input; default: those of the encoding (3 for
            color, 1 for gray). ``channels=3`` on a gray dataset adds PIL's luma.
        name: name of the returned model.

    Returns:
        A model from ``(batch, H, W, channels)`` pixels in 0..255 to the encoded
        ``(batch, H, W, C)`` float32 arrays of the records.
    """
    from tfforensics.data.manifest import Manifest

    manifest = Manifest.load(manifest)
    encoding = manifest.encoding
    height, width, encoded_channels = manifest.image_shape
    channels = encoded_channels if channels is None else int(channels)
    if channels not in (1, 3) or (channels == 1 and encoding.color):
        raise ValueError(
            f"`channels` must be 3, or 1 for a gray dataset; this dataset is {encoding.describe()}. "
            f"Received: channels={channels}"
        )
    layers = preprocessing_layers(
        encoding, manifest.load_statistics(), manifest.image_shape, rgb_input=channels == 3
    )
    return keras.Sequential([keras.Input((height, width, channels), name="image"), *layers], name=name)
