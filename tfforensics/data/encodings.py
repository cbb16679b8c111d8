"""Image encodings: the one NumPy implementation of DCT, log scaling and pixel scaling.

These functions work on batches ``(N, H, W, C)`` so that a worker transforms many
images with one vectorised call. The Keras layers that models carry inside them
compute the same values with TensorFlow ops; tests hold both to the same numbers.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.fft

from tfforensics.errors import UserError

#: Added before the logarithm, as in Frank et al. (``log(|x| + 1e-12)``).
LOG_EPSILON = 1e-12


#: ``unknown`` only describes data read without a manifest; ``prepare`` writes dct, raw or
#: pixels (the last only for ``--compat gandct -r``, the original's unscaled pixels).
TRANSFORMS = ("dct", "raw", "raw255", "unknown")


@dataclasses.dataclass(frozen=True)
class Encoding:
    """How images become arrays; stored in every manifest.

    Attributes:
        transform: ``"dct"`` (2-D type-II orthonormal DCT per channel), ``"raw"``
            (pixels scaled to [-1, 1]) or ``"raw255"`` (0..255 as they are, what the original
            ``prepare_dataset.py -r`` stored); ``"unknown"`` for arrays written by the original
            tools without a manifest (:mod:`tfforensics.data.original`): models trained on
            them take the stored arrays, not images.
        log: ``log(|x| + 1e-12)`` after the DCT (DCT only).
        color: keep RGB; otherwise PIL's luma (one channel), as the original default.
        abs_scale: divide each coefficient by its largest absolute value on the train split.
        normalize: subtract the train-split mean and divide by its standard deviation.
    """

    transform: str = "dct"
    log: bool = False
    color: bool = False
    abs_scale: bool = False
    normalize: bool = False

    def __post_init__(self):
        if self.transform not in TRANSFORMS:
            raise ValueError(f"`transform` must be one of {TRANSFORMS}. Received: transform={self.transform!r}")
        if self.log and self.transform != "dct":
            raise UserError("`log` scaling applies to DCT coefficients only; drop --log or --raw.")

    @property
    def channels(self) -> int:
        return 3 if self.color else 1

    @property
    def needs_statistics(self) -> bool:
        return self.abs_scale or self.normalize

    def describe(self) -> str:
        parts = ["color" if self.color else "gray", self.transform]
        parts += [name for name, on in (("log", self.log), ("abs", self.abs_scale), ("normalized", self.normalize)) if on]
        return "_".join(parts)


def dct2(images: np.ndarray) -> np.ndarray:
    """2-D type-II orthonormal DCT over the two spatial axes of ``(..., H, W, C)``.

    Equals SciPy's ``dct(dct(x, axis=0), axis=1)`` with ``norm="ortho"`` per image and
    channel (the GANDCTAnalysis definition); computed in float64.
    """
    images = np.array(images, dtype=np.float64)  # a copy of our own, so the transform may work in place
    return scipy.fft.dctn(images, type=2, norm="ortho", axes=(-3, -2), overwrite_x=True)


def log_scale(coefficients: np.ndarray) -> np.ndarray:
    """``log(|x| + 1e-12)``: the log scaling of Frank et al. (float64 in, float64 out)."""
    out = np.abs(coefficients)
    out += LOG_EPSILON
    return np.log(out, out=out)


def to_unit(pixels):
    """Pixels 0..255 to [-1, 1]: ``x / 127.5 - 1``, the one pixel scaling (the "raw" encoding).

    Works on float NumPy arrays and on tensors alike, in their own dtype; :func:`from_unit`
    is its inverse.
    """
    return pixels / 127.5 - 1.0


def from_unit(values):
    """[-1, 1] back to 0..255 (as floats): ``(x + 1) * 127.5``, the inverse of :func:`to_unit`."""
    return (values + 1.0) * 127.5


def unit_to_uint8(values) -> np.ndarray:
    """[-1, 1] to uint8 pixels, rounded to the nearest integer and clipped (a generator's output as an image)."""
    return np.clip(np.rint(from_unit(np.asarray(values))), 0, 255).astype(np.uint8)


def scale_pixels(images: np.ndarray) -> np.ndarray:
    """uint8 pixels 0..255 to [-1, 1] (:func:`to_unit` in float64)."""
    return to_unit(np.asarray(images, dtype=np.float64))


def transform(images: np.ndarray, encoding: Encoding) -> np.ndarray:
    """The data-independent part of ``encoding`` (before abs scaling and normalisation)."""
    if encoding.transform == "raw":
        return scale_pixels(images)
    if encoding.transform == "raw255":
        return np.asarray(images, dtype=np.float64)
    coefficients = dct2(images)
    return log_scale(coefficients) if encoding.log else coefficients


def apply_statistics(values: np.ndarray, encoding: Encoding, statistics: dict | None) -> np.ndarray:
    """The data-dependent part: divide by max-abs, then standardise, as ``encoding`` asks."""
    if not encoding.needs_statistics:
        return values
    if statistics is None:
        raise ValueError(f"Encoding {encoding.describe()!r} needs train-split statistics; none were given.")
    if encoding.abs_scale:
        values = values / statistics["max_abs"]
    if encoding.normalize:
        values = (values - statistics["mean"]) / statistics["std"]
    return values


def encode(images: np.ndarray, encoding: Encoding, statistics: dict | None = None) -> np.ndarray:
    """Full encoding of a uint8 batch ``(N, H, W, C)`` to float32, as ``prepare`` writes it."""
    values = apply_statistics(transform(images, encoding), encoding, statistics)
    return values.astype(np.float32)
