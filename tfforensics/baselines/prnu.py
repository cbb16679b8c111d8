"""PRNU (sensor noise) attribution: noise residuals, one fingerprint per source, NCC.

The residual follows the Binghamton / Politecnico di Milano procedure (Lukáš, Fridrich
and Goljan; the polimi ``prnu-python`` package that Frank et al. use as a baseline):

1. four-level (``levels``) ``db4`` wavelet decomposition of every colour channel;
2. each detail sub-band is Wiener filtered with a local variance estimated over
   3, 5, 7 and 9 pixel windows (the minimum is kept), the approximation is dropped, and
   the inverse transform gives the noise (image minus its denoised version);
3. RGB to luma, zero mean over the rows and columns of each 2x2 polyphase sub-lattice;
4. a second adaptive Wiener filter on the magnitude of the 2-D DFT removes the
   periodic, non-unique artefacts (JPEG blocks, demosaicing).

Every function here works on a whole batch ``(N, H, W, C)`` at once: PyWavelets
transforms over ``axes=(1, 2)``, SciPy's uniform filters run over the image axes only
(window 1 along the batch and channel axes) and the FFTs are batched, so the hot path
has no Python loop over images or pixels.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import pywt
import scipy.fft
from scipy import ndimage
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    def validate_data(estimator, X, y="no_validation", **kwargs):
        return estimator._validate_data(X, y, **kwargs)

#: Window sides of the local variance estimate (the minimum over them is used).
WINDOWS = (3, 5, 7, 9)
#: Luma weights of the Binghamton toolbox (MATLAB's ``rgb2gray``).
GRAY_WEIGHTS = np.array([0.29893602, 0.58704307, 0.11402090], dtype=np.float32)
WAVELET = "db4"
#: Values (N*H*W*C) transformed together: large enough to amortise call overheads, small
#: enough to stay in cache (on 128x128 RGB, chunks of 4-8 images are ~1.7x faster than 128).
CHUNK_VALUES = 2**18


def _chunks(images: np.ndarray):
    """Slices of the batch axis holding about CHUNK_VALUES values each."""
    step = max(1, CHUNK_VALUES // max(1, int(np.prod(images.shape[1:]))))
    return (slice(start, start + step) for start in range(0, len(images), step))


def wiener_adaptive(x: np.ndarray, noise_var, axes=(-2, -1), windows=WINDOWS) -> np.ndarray:
    """The noise part of ``x`` under a locally adaptive Wiener filter.

    The local signal variance is the mean energy over each window minus the noise
    variance (clipped at 0), and the smallest over ``windows`` is used: a small window
    follows edges, a large one is steadier in flat areas. ``noise_var`` may be an array
    that broadcasts against ``x`` (one variance per image).
    """
    energy = np.square(x)
    size = [1] * x.ndim
    local = None
    for window in windows:
        for axis in axes:
            size[axis] = window
        mean = ndimage.uniform_filter(energy, size=size, mode="constant")
        local = mean if local is None else np.minimum(local, mean, out=local)
    variance = np.maximum(local - noise_var, 0)
    denominator = variance + noise_var
    return np.divide(x * noise_var, denominator, out=np.zeros(np.broadcast_shapes(x.shape, np.shape(denominator)),
                                                              dtype=np.result_type(x, denominator)),
                     where=denominator > 0)


def noise_extract(images, levels: int = 4, sigma: float = 5.0) -> np.ndarray:
    """Wavelet-domain noise of a batch ``(N, H, W, C)`` in pixel units (0..255): float32.

    Detail coefficients are replaced by their Wiener-estimated noise part and the
    approximation by zeros, so the inverse transform is the image minus its denoised
    version. A ``levels`` above what the image size supports only warns in PyWavelets,
    as in the reference implementation, and is kept.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"`images` must have shape (N, H, W, C). Received: shape={images.shape}")
    out = np.empty(images.shape, dtype=np.float32)
    for part in _chunks(images):
        out[part] = _noise_extract(images[part], levels, sigma)
    return out


def _noise_extract(images, levels: int, sigma: float) -> np.ndarray:
    images = np.asarray(images, dtype=np.float32)
    height, width = images.shape[1:3]
    noise_var = float(sigma) ** 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Level value of N is too high"
        coefficients = pywt.wavedec2(images, WAVELET, level=levels, axes=(1, 2))
        filtered = [np.zeros_like(coefficients[0])]
        filtered += [tuple(wiener_adaptive(band, noise_var, axes=(1, 2)) for band in detail)
                     for detail in coefficients[1:]]
        noise = pywt.waverec2(filtered, WAVELET, axes=(1, 2))
    return noise[:, :height, :width].astype(np.float32)


def rgb2gray(images: np.ndarray) -> np.ndarray:
    """``(N, H, W, C)`` to ``(N, H, W)`` float32 with the toolbox's luma weights (C = 1 or 3)."""
    channels = images.shape[-1]
    if channels == 1:
        return images[..., 0].astype(np.float32)
    if channels == 3:
        return (images.astype(np.float32) @ GRAY_WEIGHTS).astype(np.float32)
    raise ValueError(f"images must have 1 or 3 channels. Received: channels={channels}")


def zero_mean_total(residuals: np.ndarray) -> np.ndarray:
    """Zero mean over rows and columns of each 2x2 polyphase sub-lattice of ``(N, H, W)``.

    Removes the linear patterns (row/column read-out) shared by every image of a sensor
    and the colour filter array's 2x2 periodicity.
    """
    out = np.array(residuals, dtype=np.float32, copy=True)
    for row in (0, 1):
        for col in (0, 1):
            part = out[:, row::2, col::2]
            if part.size == 0:  # images one pixel high or wide
                continue
            part -= part.mean(axis=(1, 2), keepdims=True)
            rows = part.mean(axis=2, keepdims=True)
            cols = part.mean(axis=1, keepdims=True)
            part -= rows
            part -= cols
    return out


def _std(values: np.ndarray) -> np.ndarray:
    """Per-image sample standard deviation (ddof=1) of ``(N, H, W)``; 0 where undefined."""
    count = values[0].size
    if count < 2:
        return np.zeros(len(values))
    return values.reshape(len(values), -1).std(axis=1, ddof=1)


def wiener_dft(residuals: np.ndarray, sigma=None) -> np.ndarray:
    """Adaptive Wiener filtering of ``(N, H, W)`` in the DFT domain (per image).

    ``sigma`` is the noise level of each image; by default the residual's own standard
    deviation, as the toolbox does. Returns float32.
    """
    residuals = np.asarray(residuals, dtype=np.float32)
    height, width = residuals.shape[1:]
    sigma = _std(residuals) if sigma is None else np.broadcast_to(np.asarray(sigma, dtype=np.float64), (len(residuals),))
    spectrum = scipy.fft.fft2(residuals, axes=(1, 2))
    magnitude = np.abs(spectrum) / np.sqrt(height * width)
    noise = wiener_adaptive(magnitude, (sigma ** 2)[:, None, None], axes=(1, 2))
    gain = np.divide(noise, magnitude, out=np.zeros_like(magnitude), where=magnitude != 0)
    return np.real(scipy.fft.ifft2(spectrum * gain, axes=(1, 2))).astype(np.float32)


def residuals(images, levels: int = 4, sigma: float = 5.0) -> np.ndarray:
    """Noise residuals ``(N, H, W)`` float32 of a batch ``(N, H, W, C)`` in pixel units (0..255)."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"`images` must have shape (N, H, W, C). Received: shape={images.shape}")
    out = np.empty(images.shape[:3], dtype=np.float32)
    for part in _chunks(images):
        noise = rgb2gray(_noise_extract(images[part], levels, sigma))
        out[part] = wiener_dft(zero_mean_total(noise))
    return out


def intensity_weights(images: np.ndarray) -> np.ndarray:
    """Squared intensity x saturation mask of uint8 ``(N, H, W, C)``, as the toolbox's MLE uses.

    Dark pixels carry little PRNU (the signal is multiplicative) and saturated ones
    none; the weights ``(I / 252)^2`` (decaying above 252) and a mask of flat maximal
    areas take this into account.
    """
    images = np.asarray(images)
    threshold, spread = 252, 6
    values = images.astype(np.float32)
    scale = np.where(images < threshold, values / threshold, np.exp(-np.square(values - threshold) / spread))
    changes_h = images != np.roll(images, 1, axis=2)
    changes_v = images != np.roll(images, 1, axis=1)
    saturated = ~(changes_h & changes_v & np.roll(changes_h, -1, axis=2) & np.roll(changes_v, -1, axis=1))
    channel_max = images.max(axis=(1, 2), keepdims=True)
    saturated = np.where(channel_max > 250, ~((images == channel_max) & saturated), saturated)
    saturated |= (images.max(axis=(1, 2, 3)) < 250)[:, None, None, None]
    return np.square(scale * saturated).astype(np.float32)


def _as_uint8(images: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def fingerprint(images, levels: int = 4, sigma: float = 5.0, *, method: str = "mle", batch_size: int = 256) -> np.ndarray:
    """The PRNU fingerprint ``(H, W)`` float32 of images ``(N, H, W, C)`` from one source.

    ``method="mle"``: the toolbox's maximum-likelihood estimate
    ``K = sum(W_i I_i) / (sum(I_i^2) + 1)`` (``I`` intensity weighted, saturation masked),
    then luma, zero mean and DFT Wiener filtering, as the original baseline does.
    ``method="mean"``: the mean of the images' residuals (:func:`residuals`).
    """
    images = np.asarray(images)
    height, width, channels = images.shape[1:]
    if method == "mean":
        total = np.zeros((height, width), dtype=np.float64)
        for start in range(0, len(images), batch_size):
            total += residuals(images[start:start + batch_size], levels, sigma).sum(axis=0)
        return (total / max(len(images), 1)).astype(np.float32)
    weighted = np.zeros((height, width, channels), dtype=np.float64)
    power = np.zeros((height, width, channels), dtype=np.float64)
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].astype(np.float32)
        weighted += (noise_extract(batch, levels, sigma) * batch / 255.0).sum(axis=0)
        power += intensity_weights(_as_uint8(batch)).sum(axis=0)
    estimate = (weighted / (power + 1)).astype(np.float32)[None]
    return wiener_dft(zero_mean_total(rgb2gray(estimate)))[0]


def normalized_cross_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` cosine similarity of flattened arrays; 0 where a norm is 0."""
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    norms = np.linalg.norm(a, axis=1)[:, None] * np.linalg.norm(b, axis=1)[None, :]
    products = a @ b.T
    return np.divide(products, norms, out=np.zeros_like(products), where=norms > 0)


class PRNUClassifier(ClassifierMixin, BaseEstimator):
    """Attribute images to the source whose PRNU fingerprint correlates best.

    ``fit`` estimates one fingerprint per class from its training images; ``predict``
    extracts each image's noise residual and returns the class with the highest
    normalised cross-correlation. Inputs are pixel intensities on the 0..255 scale.

    Parameters
    ----------
    levels : int, default=4
        Wavelet decomposition levels of the denoiser.
    sigma : float, default=5.0
        Assumed standard deviation of the noise, in pixel units; the original grid
        searches 0.05 ... 0.95.
    image_shape : tuple of int, default=None
        ``(H, W)`` or ``(H, W, C)`` of flattened rows of ``X``. Without it a 2-D ``X``
        is taken as one-row images; a 4-D ``X`` ``(N, H, W, C)`` brings its own shape.
    fingerprint : {"mle", "mean"}, default="mle"
        The toolbox's maximum-likelihood estimate (as the original baseline) or the
        plain mean of the training residuals.
    batch_size : int, default=256
        Images transformed together; bounds the memory of ``fit`` and ``predict``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    fingerprints_ : ndarray of shape (n_classes, H, W)
        One luma fingerprint per class, in the order of ``classes_``.
    image_shape_ : tuple of int
        ``(H, W, C)`` of the images seen in ``fit``.
    n_features_in_ : int

    References
    ----------
    J. Lukáš, J. Fridrich, M. Goljan, "Digital camera identification from sensor pattern
    noise", IEEE TIFS 2006. M. Chen, J. Fridrich, M. Goljan, J. Lukáš, "Determining image
    origin and integrity using sensor noise", IEEE TIFS 2008.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 256, size=(8, 16, 16, 1)).astype(np.float32)
    >>> clf = PRNUClassifier(2, sigma=0.5).fit(X, [0, 1] * 4)
    >>> clf.fingerprints_.shape
    (2, 16, 16)
    """

    _parameter_constraints = {
        "levels": [Interval(Integral, 1, None, closed="left")],
        "sigma": [Interval(Real, 0, None, closed="neither")],
        "image_shape": ["array-like", None],
        "fingerprint": [StrOptions({"mle", "mean"})],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, levels=4, *, sigma=5.0, image_shape=None, fingerprint="mle", batch_size=256):
        self.levels = levels
        self.sigma = sigma
        self.image_shape = image_shape
        self.fingerprint = fingerprint
        self.batch_size = batch_size

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = True  # noise fingerprints, not a general-purpose classifier
        return tags

    def _more_tags(self):  # pragma: no cover - scikit-learn < 1.6
        return {"poor_score": True}

    def _shape_for(self, n_features: int) -> tuple[int, int, int]:
        if self.image_shape is None:
            return (1, n_features, 1)
        shape = tuple(int(s) for s in self.image_shape)
        if len(shape) == 2:
            shape += (1,)
        if len(shape) != 3 or int(np.prod(shape)) != n_features:
            raise ValueError(
                f"`image_shape` must be (H, W) or (H, W, C) with H*W*C equal to the {n_features} features of X. "
                f"Received: image_shape={self.image_shape}"
            )
        return shape

    def _flatten(self, X):
        """4-D image batches become rows; their shape is returned so it can be checked."""
        if hasattr(X, "ndim") and getattr(X, "ndim", 2) == 4:
            X = np.asarray(X)
            return X.reshape(len(X), -1), tuple(X.shape[1:])
        return X, None

    def _images(self, X: np.ndarray) -> np.ndarray:
        return X.reshape((len(X),) + tuple(self.image_shape_))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Estimate one fingerprint per class from ``X`` (pixels 0..255) and labels ``y``."""
        X, shape = self._flatten(X)
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64])
        check_classification_targets(y)
        self.image_shape_ = shape if shape is not None else self._shape_for(X.shape[1])
        self.classes_, labels = np.unique(y, return_inverse=True)
        images = self._images(X)
        self.fingerprints_ = np.stack([
            fingerprint(images[labels == index], self.levels, self.sigma,
                        method=self.fingerprint, batch_size=self.batch_size)
            for index in range(len(self.classes_))
        ])
        return self

    def correlations(self, X) -> np.ndarray:
        """``(n_samples, n_classes)`` normalised cross-correlation with each fingerprint."""
        check_is_fitted(self)
        X, shape = self._flatten(X)
        if shape is not None and shape != tuple(self.image_shape_):
            raise ValueError(f"X has images of shape {shape}, but {type(self).__name__} was fitted on {tuple(self.image_shape_)}.")
        X = validate_data(self, X, reset=False, dtype=[np.float32, np.float64])
        images = self._images(X)
        out = np.empty((len(X), len(self.classes_)))
        for start in range(0, len(X), self.batch_size):
            batch = residuals(images[start:start + self.batch_size], self.levels, self.sigma)
            out[start:start + len(batch)] = normalized_cross_correlation(batch, self.fingerprints_)
        return out

    def predict(self, X):
        """The class whose fingerprint has the highest normalised cross-correlation."""
        scores = self.correlations(X)
        return self.classes_[np.argmax(scores, axis=1)]
