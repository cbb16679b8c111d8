"""What a regularised generator is scored by: detection rates, a quality proxy, spectra, the band sweep.

- **Detection rate**: the share of generated images that a detector flags as fake. Detectors
  are the project's own: a saved classifier (``tfforensics train``; it takes raw 0..255 images
  and carries its DCT preprocessing and class names; "fake" = any class but the real one) and
  an LGrad detector (``tfforensics lgrad train``) on the gradients of a StyleGAN discriminator
  (by default the mini benchmark's).
- **Quality proxy**: the kernel inception distance (KID: unbiased squared MMD with the cubic
  polynomial kernel ``(x.y / d + 1) ** 3``, Binkowski et al. 2018) between generated and real
  images, computed on the penultimate features (``4x4.Dense0``) of the StyleGAN discriminator
  that was trained with the generator, instead of Inception features (no downloaded weights).
  That network was trained to tell these real photos from this generator's samples, so its
  features hold what separates the two; KID is unbiased at a few hundred images, unlike FID.
  It is a proxy: fine-tuning with an adversarial term optimises against the same network, so
  compare runs with the same adversarial weight, and read it with the spectral distance
  (mean |difference| of the mean log|DCT| spectra to the real images) and the sample grids.
- **Band sweep**: the spectral gap between real and generated images per band threshold ``t``,
  as the original's ``a_priori`` sweep (``1..127`` at 256 px; ``1..S/2-1`` at side ``S``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from tfforensics.errors import UserError

KID_LAYER = "4x4.Dense0"


@dataclasses.dataclass
class Detector:
    """A named function uint8 images (N, S, S, 3) -> fake probability per image (N,)."""

    name: str
    score: object  # callable
    source: str = ""

    def fake_rate(self, images: np.ndarray, batch_size: int = 128) -> float:
        scores = np.concatenate([np.asarray(self.score(images[i:i + batch_size]))
                                 for i in range(0, len(images), batch_size)])
        return float(np.mean(scores > 0.5))


def dct_detector(path, real_class=None) -> Detector:
    """A classifier saved by ``tfforensics train`` (raw 0..255 in); fake = 1 - P(real class)."""
    from tfforensics.evaluation.metrics import as_probabilities, resolve_real_class
    from tfforensics.models.wrapped import class_names_of, load_model

    model = load_model(path)
    names = class_names_of(model)
    real = resolve_real_class(names, real_class)
    gray = model.input_shape[-1] == 1

    def score(images):
        x = np.asarray(images, np.float32)
        if gray:  # PIL's convert("L"), as load_image(grayscale=True)
            x = np.floor((x @ np.array([19595.0, 38470.0, 7471.0]) + 32768.0) / 65536.0)[..., None].astype(np.float32)
        return 1.0 - as_probabilities(model.predict_on_batch(x))[:, real]

    return Detector("dct", score, str(path))


def lgrad_detector(path, discriminator=None) -> Detector:
    """An LGrad detector (``tfforensics lgrad train``) on the gradients of ``discriminator``
    (a ``.keras`` path or model; default the mini benchmark's StyleGAN discriminator)."""
    from tfforensics.benchmark.gans import WEIGHTS_DIR
    from tfforensics.evaluation.metrics import as_probabilities
    from tfforensics.models import lgrad

    model = lgrad.load_detector(path)
    if discriminator is None or isinstance(discriminator, (str, Path)):
        discriminator = lgrad.load_discriminator(weights=discriminator or WEIGHTS_DIR / "stylegan_discriminator.keras")

    def score(images):
        gradients = lgrad.compute_gradients(discriminator, np.asarray(images, np.uint8))
        return as_probabilities(model.predict_on_batch(gradients.astype(np.float32)))[:, 1]  # P(fake)

    return Detector("lgrad", score, str(path))


# ----------------------------------------------------------------------------- quality proxy

def kid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Unbiased squared MMD with the kernel ``(x.y / d + 1) ** 3`` (KID), on (N, d) and (M, d) features."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if len(a) < 2 or len(b) < 2:
        raise UserError("KID needs at least two images on each side.")
    d = a.shape[1]
    kernel = lambda x, y: (x @ y.T / d + 1.0) ** 3
    kaa, kbb, kab = kernel(a, a), kernel(b, b), kernel(a, b)
    n, m = len(a), len(b)
    return float((kaa.sum() - np.trace(kaa)) / (n * (n - 1)) + (kbb.sum() - np.trace(kbb)) / (m * (m - 1))
                 - 2 * kab.mean())


class QualityProxy:
    """KID on a discriminator's ``4x4.Dense0`` features and the mean log|DCT| distance, against ``real``."""

    def __init__(self, real: np.ndarray, discriminator=None, layer: str = KID_LAYER):
        import keras

        from tfforensics.benchmark.gans import load_gan_discriminator

        discriminator = discriminator if discriminator is not None else load_gan_discriminator("stylegan")
        for item in discriminator.layers:  # per-image minibatch stddev: features independent of the batch
            if hasattr(item, "group_size"):
                item.group_size = 1
        self.features = keras.Model(discriminator.input, discriminator.get_layer(layer).output)
        self.real_features = self._features(real)
        self.real_spectrum = mean_log_dct(real)

    def _features(self, images, batch_size: int = 128):
        return np.concatenate([np.asarray(self.features(np.asarray(images[i:i + batch_size], np.float32) / 127.5 - 1.0,
                                                        training=False)).reshape(len(images[i:i + batch_size]), -1)
                               for i in range(0, len(images), batch_size)])

    def __call__(self, images) -> dict:
        spectrum = mean_log_dct(images)
        return {"kid": kid(self._features(images), self.real_features),
                "spectral_distance": float(np.abs(spectrum - self.real_spectrum).mean())}


# ----------------------------------------------------------------------------- spectra

def mean_log_dct(images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Mean over images and channels of ``log(|DCT-II| + 1e-12)`` of uint8 (N, S, S, 3) images, (S, S)."""
    from tfforensics.data.encodings import dct2, log_scale

    total = None
    for i in range(0, len(images), batch_size):
        part = log_scale(dct2(np.asarray(images[i:i + batch_size], np.float64))).mean(axis=-1).sum(axis=0)
        total = part if total is None else total + part
    return total / len(images)


def mean_log_dft(images: np.ndarray) -> np.ndarray:
    """Mean ``log |FFT|`` of the BT.601 gray images, centred (``fftshift``), (S, S)."""
    from tfforensics.losses import BT601

    gray = np.asarray(images, np.float64) / 127.5 - 1.0
    gray = gray @ np.asarray(BT601)
    return np.fft.fftshift(np.log(np.abs(np.fft.fft2(gray)) + 1e-12).mean(axis=0))


def band_sweep(real: np.ndarray, fake: np.ndarray, thresholds=None, kinds=("frobenius", "cos"),
               spectrum: str = "dft") -> dict:
    """Mean Fourier dissimilarity between paired uint8 ``real`` and ``fake`` images per band threshold.

    As the original's sweep, the Frobenius values are reported without the ``2e-4`` factor.
    Returns ``{"thresholds": [...], "<kind>": [...], ...}``; the default thresholds are every
    ``t`` the image side allows (``1 .. S/2 - 1``).
    """
    from tfforensics.losses import fourier_dissimilarity_numpy

    real, fake = np.asarray(real), np.asarray(fake)
    if real.shape != fake.shape:
        raise UserError(f"the sweep compares paired images; got {real.shape} and {fake.shape}.")
    size = real.shape[1]
    thresholds = list(range(1, size // 2)) if thresholds is None else [int(t) for t in thresholds]
    x, y = fake.astype(np.float64) / 127.5 - 1.0, real.astype(np.float64) / 127.5 - 1.0
    out = {"thresholds": thresholds, "spectrum": spectrum}
    for kind in kinds:
        scale = 1.0 if kind in ("l1", "frobenius", "l2") else None
        out[kind] = [float(np.mean(fourier_dissimilarity_numpy(x, y, kind, t, spectrum_kind=spectrum, scale=scale)))
                     for t in thresholds]
    return out


__all__ = ["Detector", "QualityProxy", "band_sweep", "dct_detector", "kid", "lgrad_detector", "mean_log_dct",
           "mean_log_dft"]
