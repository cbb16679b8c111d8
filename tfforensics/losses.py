"""Fourier dissimilarities between generated and real images, as Keras losses.

The artifact regularisation of a generator (Holzem, Hadzic, Schaller et al.'s
``artifact_regularization_for_gans``) adds to the adversarial loss a dissimilarity between the
spectrum of each generated image and the spectrum of the real image it was inverted from.
Their spectrum is the magnitude of the 2-D real FFT of the gray image (ITU-R BT.601 weights
0.299, 0.587, 0.114) restricted to a band that drops the lowest frequencies: rows ``[t:-t]``
and columns ``[t:]`` of the unshifted ``rfft2`` output (``t = 20``; 40 in their training
configuration). The dissimilarities:

- ``"l1"``: ``sum |F(fake) - F(real)|`` over the band, times ``1e-8``;
- ``"frobenius"`` (alias ``"l2"``): ``sqrt(sum (F(fake) - F(real))**2)``, times ``2e-4``;
- ``"cos"``: ``1 - cos(F(fake), F(real))`` of the band as one vector;
- ``"azimuthal"``: Durall et al. (CVPR 2020, "Watch your up-convolution")'s loss on the 1-D
  azimuthally averaged log spectrum, min-max scaled per image, compared by binary
  cross-entropy. Here the cross-entropy is taken minus the target's own entropy (the binary
  KL divergence): the gradient with respect to the generated image is the same, and
  identical spectra score exactly 0.

Besides the original's DFT magnitude (``spectrum="dft"``), ``spectrum="dct"`` compares the
log-DCT spectrum the project's detectors look at: ``log(|DCT-II(x)| + 1e-12)`` of pixels in
0..255 (Frank et al.), computed with the same Keras layers the saved detectors carry
(:class:`~tfforensics.layers.DCT2D`, :class:`~tfforensics.layers.LogScale`).

Images are NHWC in [-1, 1] (what the generators output); ``color=True`` compares each RGB
channel's spectrum instead of the gray one. A band (:class:`Band`) is the original's
threshold ``t``, a low- or high-pass cut, or a radial range of the normalised frequency
(``0`` = DC, ``1`` = the Nyquist frequency along an axis).

Besides the per-pair comparison, :class:`MeanSpectrumLoss` pulls the *mean* spectrum of a batch
of generated images towards the mean spectrum of a reference set of real images, in the domain
the DCT detectors read: the log-DCT of each colour channel, standardised per coefficient by the
reference's mean and standard deviation (as ``prepare --normalize`` does). The logarithm is
softened, ``0.5 * log(DCT**2 + delta**2)`` (``delta = 1`` on 0..255 pixels), so that the
gradient stays bounded where a coefficient is near 0. This is not the original's loss: a single
image's log spectrum is dominated by its content, so comparing it to one real image (or to the
real mean) mostly fits content or shrinks the spread of the spectra, while the difference of
batch means is the generator's systematic spectral artifact (docs/regularize.md, measured).

Every loss has a NumPy/SciPy reference (:func:`fourier_dissimilarity_numpy`) that the tests
hold it to.
"""

from __future__ import annotations

import dataclasses
import re

import keras
import numpy as np

from tfforensics.data.encodings import LOG_EPSILON, from_unit, to_unit  # log|DCT| as the records
from tfforensics.errors import UserError

#: Dissimilarity types (``"l2"`` is an alias of ``"frobenius"``).
TYPES = ("l1", "frobenius", "l2", "cos", "azimuthal")
SPECTRA = ("dft", "dct")
#: The original's scale factors (``1`` for the others).
DEFAULT_SCALES = {"l1": 1e-8, "frobenius": 2e-4, "l2": 2e-4, "cos": 1.0, "azimuthal": 1.0}
#: ITU-R BT.601 luma weights, in floating point (the original's ``rgb2gray``).
BT601 = (0.299, 0.587, 0.114)
#: Added under the square root of |F|^2 so that the gradient stays finite where a coefficient is 0.
MAGNITUDE_EPSILON = 1e-12
#: Clip of the min-max scaled profiles before the logarithms of the azimuthal loss.
AZIMUTHAL_EPSILON = 1e-6


def canonical_type(kind: str) -> str:
    if kind not in TYPES:
        raise UserError(f"unknown Fourier dissimilarity {kind!r}; choose one of {', '.join(TYPES)}.")
    return "frobenius" if kind == "l2" else kind


# ----------------------------------------------------------------------------- bands

@dataclasses.dataclass(frozen=True)
class Band:
    """Which coefficients of a spectrum enter a loss.

    ``kind``:

    - ``"threshold"``: the original's ``[t:-t, t:]`` of the unshifted ``rfft2`` spectrum
      (rows ``t .. H-t-1``, columns ``>= t``); on the DCT, rows and columns ``>= t``. ``t = 0``
      keeps everything.
    - ``"low"`` / ``"high"``: normalised radial frequency ``< high`` / ``>= low``.
    - ``"radial"``: ``low <= r < high``.
    - ``"all"``: every coefficient.

    Parse one from text with :meth:`parse`: ``"20"`` or ``"threshold:20"``, ``"low:0.5"`` (keep
    below 0.5), ``"high:0.25"`` (keep from 0.25), ``"radial:0.25-0.75"``, ``"all"``.
    """

    kind: str = "threshold"
    threshold: int = 20
    low: float = 0.0
    high: float = float("inf")

    def __post_init__(self):
        if self.kind not in ("threshold", "low", "high", "radial", "all"):
            raise UserError(f"band kind {self.kind!r} is not threshold, low, high, radial or all.")
        if self.kind == "threshold" and (int(self.threshold) != self.threshold or self.threshold < 0):
            raise UserError(f"--band threshold must be an integer >= 0. Received: {self.threshold!r}")
        if not (0 <= self.low < self.high):
            raise UserError(f"--band needs 0 <= low < high. Received: low={self.low}, high={self.high}")

    @classmethod
    def parse(cls, text) -> "Band":
        if isinstance(text, Band):
            return text
        if isinstance(text, (int, np.integer)):
            return cls("threshold", int(text))
        text = str(text).strip().lower()
        try:
            if text == "all":
                return cls("all")
            if re.fullmatch(r"\d+", text):
                return cls("threshold", int(text))
            kind, _, value = text.partition(":")
            if kind == "threshold":
                return cls("threshold", int(value))
            if kind == "low":
                return cls("low", high=float(value))
            if kind == "high":
                return cls("high", low=float(value))
            if kind == "radial":
                low, high = value.split("-")
                return cls("radial", low=float(low), high=float(high))
        except ValueError as error:
            if isinstance(error, UserError):
                raise
        raise UserError(f"--band {text!r} is not understood; give a threshold (20), low:R, high:R, radial:R1-R2 "
                        f"(R = frequency / Nyquist) or all.")

    def describe(self) -> str:
        if self.kind == "threshold":
            return f"threshold:{self.threshold}"
        if self.kind == "low":
            return f"low:{self.high:g}"
        if self.kind == "high":
            return f"high:{self.low:g}"
        if self.kind == "radial":
            return f"radial:{self.low:g}-{self.high:g}"
        return "all"

    def mask(self, height: int, width: int, spectrum: str = "dft") -> np.ndarray:
        """Boolean mask over the spectrum grid: ``(H, W // 2 + 1)`` for the DFT, ``(H, W)`` for the DCT."""
        rows, columns, radius = frequency_grid(height, width, spectrum)
        if self.kind == "all":
            mask = np.ones(radius.shape, bool)
        elif self.kind == "threshold":
            t = int(self.threshold)
            if t == 0:
                mask = np.ones(radius.shape, bool)
            elif spectrum == "dft":
                mask = (rows >= t) & (rows < height - t) & (columns >= t)
            else:
                mask = (rows >= t) & (columns >= t)
        else:
            low = self.low if self.kind in ("high", "radial") else 0.0
            high = self.high if self.kind in ("low", "radial") else np.inf
            mask = (radius >= low) & (radius < high)
        if not mask.any():
            raise UserError(f"--band {self.describe()} keeps no frequency of a {height}x{width} {spectrum.upper()} "
                            f"spectrum; choose a smaller threshold or a wider range.")
        return mask


def frequency_grid(height: int, width: int, spectrum: str = "dft"):
    """Row index, column index and normalised radial frequency (1 = Nyquist) of each coefficient."""
    if spectrum not in SPECTRA:
        raise UserError(f"unknown spectrum {spectrum!r}; choose dft or dct.")
    if spectrum == "dft":
        rows, columns = np.meshgrid(np.arange(height), np.arange(width // 2 + 1), indexing="ij")
        fy = np.minimum(rows, height - rows) / (height / 2)
        fx = columns / (width / 2)
    else:
        rows, columns = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
        fy, fx = rows / height, columns / width
    return rows, columns, np.sqrt(fy ** 2 + fx ** 2)


def azimuthal_matrix(mask: np.ndarray, radius: np.ndarray, bins: int | None = None) -> np.ndarray:
    """``(bins, K)`` averaging matrix: row ``b`` averages the masked coefficients (flattened,
    in mask order) whose radius falls in bin ``b`` of ``[0, max radius]``; empty bins dropped."""
    r = radius[mask]
    bins = bins or int(max(mask.shape[0], 2 * (mask.shape[1] - 1)) // 2)
    index = np.minimum((r / max(r.max(), 1e-12) * bins).astype(int), bins - 1)
    matrix = np.zeros((bins, r.size))
    matrix[index, np.arange(r.size)] = 1.0
    counts = matrix.sum(axis=1)
    matrix = matrix[counts > 0] / counts[counts > 0, None]
    if matrix.shape[0] < 2:
        raise UserError("the band leaves fewer than two radial bins for the azimuthal loss; widen it.")
    return matrix


# ----------------------------------------------------------------------------- TensorFlow

def _to_gray(x, tf):
    weights = tf.constant(BT601, dtype=x.dtype)
    return tf.tensordot(x, weights, axes=[[3], [0]])[..., None]


def spectrum(images, *, spectrum: str = "dft", color: bool = False):
    """``(N, C, H, W')`` spectra of NHWC images in [-1, 1] (C = 1 gray or 3): |rfft2| or log|DCT|."""
    import tensorflow as tf

    x = tf.convert_to_tensor(images)
    if not x.dtype.is_floating:
        x = tf.cast(x, "float32")
    if x.shape.rank != 4 or x.shape[-1] != 3:
        raise UserError(f"Fourier losses take RGB images (N, H, W, 3). Received shape: {tuple(x.shape)}")
    if not color:
        x = _to_gray(x, tf)
    if spectrum == "dft":
        f = tf.signal.rfft2d(tf.transpose(x, [0, 3, 1, 2]))
        return tf.sqrt(tf.square(tf.math.real(f)) + tf.square(tf.math.imag(f)) + MAGNITUDE_EPSILON)
    if spectrum == "dct":
        from tfforensics.layers.preprocessing import DCT2D, LogScale

        dtype = x.dtype.name
        pixels = from_unit(x)
        coefficients = DCT2D(precision="float64", dtype=dtype)(pixels)
        return tf.transpose(LogScale(LOG_EPSILON, dtype=dtype)(coefficients), [0, 3, 1, 2])
    raise UserError(f"unknown spectrum {spectrum!r}; choose dft or dct.")


def _safe_norm(values, axis, tf):
    """Euclidean norm with value 0 and gradient 0 at the zero vector."""
    squared = tf.reduce_sum(tf.square(values), axis=axis)
    positive = squared > 0
    return tf.where(positive, tf.sqrt(tf.where(positive, squared, tf.ones_like(squared))), tf.zeros_like(squared))


def fourier_dissimilarity(fake, real, kind: str = "cos", band="20", *, spectrum_kind: str = "dft",
                          color: bool = False, scale: float | None = None):
    """Per-image dissimilarity ``(N,)`` between the spectra of ``fake`` and ``real`` (NHWC, [-1, 1]).

    ``kind`` is one of :data:`TYPES`, ``band`` a :class:`Band` or its text, ``scale`` overrides
    the type's default factor (:data:`DEFAULT_SCALES`). Differentiable in both arguments.
    """
    import tensorflow as tf

    kind = canonical_type(kind)
    band = Band.parse(band)
    fake = tf.convert_to_tensor(fake)
    real = tf.cast(tf.convert_to_tensor(real), fake.dtype) if fake.dtype.is_floating else tf.convert_to_tensor(real)
    if fake.shape.rank != 4 or fake.shape[1:] != real.shape[1:]:
        raise UserError(f"generated and real images must have the same (H, W, 3) shape. "
                        f"Received: {tuple(fake.shape)} and {tuple(real.shape)}")
    height, width = int(fake.shape[1]), int(fake.shape[2])
    fake_s = spectrum(fake, spectrum=spectrum_kind, color=color)
    real_s = spectrum(real, spectrum=spectrum_kind, color=color)
    dtype = fake_s.dtype
    mask = band.mask(height, width, spectrum_kind)
    index = tf.constant(np.flatnonzero(mask.ravel()), tf.int32)
    channels = int(fake_s.shape[1])
    flat = lambda s: tf.gather(tf.reshape(s, [-1, channels, mask.size]), index, axis=2)  # (N, C, K)
    a, b = flat(fake_s), flat(real_s)
    factor = DEFAULT_SCALES[kind] if scale is None else float(scale)
    if kind == "l1":
        value = tf.reduce_sum(tf.abs(a - b), axis=[1, 2])
    elif kind == "frobenius":
        value = _safe_norm(a - b, [1, 2], tf)
    elif kind == "cos":
        a2, b2 = tf.reshape(a, [tf.shape(a)[0], -1]), tf.reshape(b, [tf.shape(b)[0], -1])
        unit_a = a2 / _safe_norm(a2, 1, tf)[:, None]
        unit_b = b2 / _safe_norm(b2, 1, tf)[:, None]
        value = 0.5 * tf.reduce_sum(tf.square(unit_a - unit_b), axis=1)  # = 1 - cos, exactly 0 when equal
    else:
        _, _, radius = frequency_grid(height, width, spectrum_kind)
        matrix = tf.constant(azimuthal_matrix(mask, radius), dtype)
        to_log = (lambda s: tf.math.log(s)) if spectrum_kind == "dft" else (lambda s: s)  # the DCT is log already
        profile_a = tf.reduce_mean(tf.einsum("bk,nck->ncb", matrix, to_log(a)), axis=1)
        profile_b = tf.reduce_mean(tf.einsum("bk,nck->ncb", matrix, to_log(b)), axis=1)
        value = _binary_kl(_minmax(profile_b, tf), _minmax(profile_a, tf), tf)
    return tf.constant(factor, dtype=dtype) * value


def _minmax(profile, tf):
    low = tf.reduce_min(profile, axis=1, keepdims=True)
    high = tf.reduce_max(profile, axis=1, keepdims=True)
    return (profile - low) / tf.maximum(high - low, tf.cast(1e-12, profile.dtype))


def _binary_kl(target, predicted, tf):
    eps = tf.cast(AZIMUTHAL_EPSILON, predicted.dtype)
    p = tf.clip_by_value(predicted, eps, 1 - eps)
    q = tf.clip_by_value(target, eps, 1 - eps)
    return tf.reduce_mean(q * (tf.math.log(q) - tf.math.log(p)) + (1 - q) * (tf.math.log(1 - q) - tf.math.log(1 - p)),
                          axis=1)


# ----------------------------------------------------------------------------- NumPy reference

def spectrum_numpy(images, *, spectrum: str = "dft", color: bool = False) -> np.ndarray:
    """NumPy/SciPy version of :func:`spectrum` (float64)."""
    from tfforensics.data.encodings import dct2, log_scale

    x = np.asarray(images, np.float64)
    if not color:
        x = (x @ np.asarray(BT601))[..., None]
    if spectrum == "dft":
        return np.abs(np.fft.rfft2(np.transpose(x, (0, 3, 1, 2))))
    return np.transpose(log_scale(dct2(from_unit(x))), (0, 3, 1, 2))


def fourier_dissimilarity_numpy(fake, real, kind: str = "cos", band="20", *, spectrum_kind: str = "dft",
                                color: bool = False, scale: float | None = None) -> np.ndarray:
    """Reference of :func:`fourier_dissimilarity` in NumPy, written from the definitions (slices,
    norms, the textbook cosine, BCE minus entropy)."""
    kind = canonical_type(kind)
    band = Band.parse(band)
    fake_s = spectrum_numpy(fake, spectrum=spectrum_kind, color=color)
    real_s = spectrum_numpy(real, spectrum=spectrum_kind, color=color)
    height, width = np.shape(fake)[1:3]
    factor = DEFAULT_SCALES[kind] if scale is None else float(scale)
    if band.kind == "threshold" and band.threshold > 0 and kind != "azimuthal":
        t = band.threshold
        rows = slice(t, -t) if spectrum_kind == "dft" else slice(t, None)
        a, b = fake_s[:, :, rows, t:], real_s[:, :, rows, t:]
    else:
        mask = band.mask(height, width, spectrum_kind)
        a, b = fake_s[:, :, mask], real_s[:, :, mask]
    a, b = a.reshape(len(a), a.shape[1], -1), b.reshape(len(b), b.shape[1], -1)
    if kind == "l1":
        return factor * np.abs(a - b).sum(axis=(1, 2))
    if kind == "frobenius":
        return factor * np.sqrt(((a - b) ** 2).sum(axis=(1, 2)))
    if kind == "cos":
        a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
        return factor * (1 - (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))
    mask = band.mask(height, width, spectrum_kind)
    _, _, radius = frequency_grid(height, width, spectrum_kind)
    matrix = azimuthal_matrix(mask, radius)
    to_log = np.log if spectrum_kind == "dft" else (lambda s: s)
    profiles = [np.einsum("bk,nck->ncb", matrix, to_log(s)).mean(axis=1) for s in (a, b)]
    p, q = [np.clip((v - v.min(1, keepdims=True)) / np.maximum(np.ptp(v, 1, keepdims=True), 1e-12),
                    AZIMUTHAL_EPSILON, 1 - AZIMUTHAL_EPSILON) for v in profiles]
    cross_entropy = -(q * np.log(p) + (1 - q) * np.log(1 - p)).mean(1)
    entropy = -(q * np.log(q) + (1 - q) * np.log(1 - q)).mean(1)
    return factor * (cross_entropy - entropy)


# ----------------------------------------------------------------------------- mean spectrum

#: ``delta`` of the softened logarithm ``0.5 * log(c**2 + delta**2)`` of :class:`MeanSpectrumLoss`.
SOFT_LOG_DELTA = 1.0
MEAN_KINDS = ("l1", "frobenius", "l2")


def soft_log_dct_numpy(images, *, color: bool = True, delta: float = SOFT_LOG_DELTA) -> np.ndarray:
    """``(N, H, W, C)`` ``0.5 * log(DCT**2 + delta**2)`` of NHWC images in [-1, 1] (float64)."""
    from tfforensics.data.encodings import dct2

    x = np.asarray(images, np.float64)
    if not color:
        x = (x @ np.asarray(BT601))[..., None]
    return 0.5 * np.log(dct2(from_unit(x)) ** 2 + delta ** 2)


class MeanSpectrumLoss:
    """Distance between the mean standardised soft-log DCT spectrum of a generated batch and the
    real mean (0 there): ``l1`` = mean ``|z|``, ``frobenius`` (``l2``) = root mean square of ``z``,
    ``z = (mean_batch(S(fake)) - mean_ref(S(real))) / std_ref(S(real))`` over the ``band``.

    ``reference`` are real uint8 (N, H, W, 3) images (at least 2). Call it on generated NHWC
    images in [-1, 1]; a batch of one is allowed but then holds the image's content, not the
    generator's artifact (see the module docstring).
    """

    def __init__(self, reference, kind: str = "frobenius", band="all", *, color: bool = True,
                 delta: float = SOFT_LOG_DELTA):
        import tensorflow as tf

        from tfforensics.layers.preprocessing import DCT2D

        kind = canonical_type(kind)
        if kind not in ("l1", "frobenius"):
            raise UserError(f"the mean-spectrum target compares with l1 or frobenius, not {kind!r}.")
        reference = np.asarray(reference)
        if reference.ndim != 4 or reference.shape[-1] != 3 or len(reference) < 2:
            raise UserError(f"the mean-spectrum target needs at least 2 real RGB images. Received shape: "
                            f"{reference.shape}")
        self.kind, self.band, self.color, self.delta = kind, Band.parse(band), bool(color), float(delta)
        spectra = soft_log_dct_numpy(to_unit(reference.astype(np.float64)), color=self.color, delta=self.delta)
        self.mean, self.std = spectra.mean(axis=0), np.maximum(spectra.std(axis=0), 1e-6)
        mask = self.band.mask(reference.shape[1], reference.shape[2], "dct")
        self._mask = np.broadcast_to(mask[..., None], self.mean.shape)
        self._dct = DCT2D(precision="float32")
        self._tf = tf
        self._index = tf.constant(np.flatnonzero(self._mask.ravel()), tf.int32)
        self._mean = tf.constant(self.mean.ravel()[self._index.numpy()], tf.float32)
        self._std = tf.constant(self.std.ravel()[self._index.numpy()], tf.float32)

    def __call__(self, fakes):
        tf = self._tf
        x = tf.cast(tf.convert_to_tensor(fakes), tf.float32)
        if not self.color:
            x = _to_gray(x, tf)
        c = self._dct(from_unit(x))
        s = 0.5 * tf.math.log(tf.square(c) + self.delta ** 2)
        flat = tf.gather(tf.reshape(tf.reduce_mean(s, axis=0), [-1]), self._index)
        z = (flat - self._mean) / self._std
        if self.kind == "l1":
            return tf.reduce_mean(tf.abs(z))
        return tf.sqrt(tf.reduce_mean(tf.square(z)))

    def numpy(self, fakes) -> float:
        """NumPy reference of :meth:`__call__` (float64)."""
        mean = soft_log_dct_numpy(fakes, color=self.color, delta=self.delta).mean(axis=0)
        z = ((mean - self.mean) / self.std)[self._mask]
        return float(np.mean(np.abs(z)) if self.kind == "l1" else np.sqrt(np.mean(z ** 2)))


# ----------------------------------------------------------------------------- Keras

@keras.saving.register_keras_serializable(package="tfforensics")
class FourierLoss(keras.losses.Loss):
    """Keras loss ``loss(real, generated)``: the mean over the batch of :func:`fourier_dissimilarity`.

    Args:
        kind: ``"l1"``, ``"frobenius"``/``"l2"``, ``"cos"`` or ``"azimuthal"``.
        band: a :class:`Band` or its text (default the original's threshold 20).
        spectrum: ``"dft"`` (the original's |rfft2| of the gray image) or ``"dct"`` (log|DCT|).
        color: compare the RGB channels' spectra instead of the gray one.
        scale: factor instead of the type's default (``1e-8`` for L1, ``2e-4`` for Frobenius).
        **kwargs: ``name``, ``reduction``, ``dtype`` of :class:`keras.losses.Loss` (pass
            ``dtype="float64"`` to compute in float64).

    Examples:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
        >>> float(FourierLoss("cos")(x, x))
        0.0
    """

    def __init__(self, kind: str = "cos", band="20", spectrum: str = "dft", color: bool = False,
                 scale: float | None = None, name: str | None = None, **kwargs):
        canonical_type(kind)
        if spectrum not in SPECTRA:
            raise UserError(f"unknown spectrum {spectrum!r}; choose dft or dct.")
        super().__init__(name=name or f"fourier_{kind}", **kwargs)
        self.kind, self.band, self.spectrum_kind = kind, Band.parse(band), spectrum
        self.color, self.scale = bool(color), scale

    def call(self, y_true, y_pred):
        return fourier_dissimilarity(y_pred, y_true, self.kind, self.band, spectrum_kind=self.spectrum_kind,
                                     color=self.color, scale=self.scale)

    def get_config(self):
        return {**super().get_config(), "dtype": self.dtype, "kind": self.kind, "band": self.band.describe(),
                "spectrum": self.spectrum_kind, "color": self.color, "scale": self.scale}


__all__ = ["Band", "DEFAULT_SCALES", "FourierLoss", "MeanSpectrumLoss", "SPECTRA", "TYPES", "fourier_dissimilarity",
           "fourier_dissimilarity_numpy", "frequency_grid", "spectrum", "spectrum_numpy"]
