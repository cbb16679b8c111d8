"""A straightforward, one-image-at-a-time PRNU residual: the yardstick for the batched one.

Written step by step as the Binghamton / Politecnico di Milano procedure is described
(per channel, per wavelet level, per sub-band, per window), on 2-D arrays only. The
tests hold :mod:`tfforensics.baselines.prnu` to it and ``benchmarks/prnu.py`` times
both. It shares no code with the batched implementation on purpose.
"""

from __future__ import annotations

import warnings

import numpy as np
import pywt
from scipy.ndimage import uniform_filter


def _wiener(coefficients: np.ndarray, noise_var: float) -> np.ndarray:
    """Noise part of a 2-D array: minimum local variance over 3/5/7/9 windows, then Wiener."""
    energy = coefficients ** 2
    variances = []
    for window in (3, 5, 7, 9):
        local = uniform_filter(energy, window, mode="constant") - noise_var
        variances.append((local + np.abs(local)) / 2)  # max(local, 0)
    variance = np.min(np.stack(variances, axis=-1), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):  # a flat image has no noise: 0 / 0
        return coefficients * noise_var / (variance + noise_var)


def noise_extract_single(image: np.ndarray, levels: int, sigma: float) -> np.ndarray:
    """Wavelet-domain noise of one ``(H, W, C)`` image, channel by channel."""
    image = image.astype(np.float32)
    height, width, channels = image.shape
    noise = np.zeros(image.shape, dtype=np.float32)
    for channel in range(channels):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            coefficients = pywt.wavedec2(image[:, :, channel], "db4", level=levels)
            details = []
            for level in coefficients[1:]:
                details.append(tuple(_wiener(band, sigma ** 2) for band in level))
            approximation = np.zeros_like(coefficients[0])
            reconstructed = pywt.waverec2([approximation] + details, "db4")
        noise[:, :, channel] = reconstructed[:height, :width]
    return noise


def gray_single(image: np.ndarray) -> np.ndarray:
    if image.shape[2] == 1:
        return image[:, :, 0].copy()
    r, g, b = image[:, :, 0], image[:, :, 1], image[:, :, 2]
    return (0.29893602 * r + 0.58704307 * g + 0.11402090 * b).astype(np.float32)


def zero_mean_single(residual: np.ndarray) -> np.ndarray:
    out = residual.astype(np.float64)
    for i in (0, 1):
        for j in (0, 1):
            sub = out[i::2, j::2]
            sub = sub - sub.mean()
            sub = sub - sub.mean(axis=1)[:, None]
            sub = sub - sub.mean(axis=0)[None, :]
            out[i::2, j::2] = sub
    return out


def wiener_dft_single(residual: np.ndarray, sigma: float) -> np.ndarray:
    height, width = residual.shape
    spectrum = np.fft.fft2(residual)
    magnitude = np.abs(spectrum / np.sqrt(height * width))
    filtered = _wiener(magnitude, sigma ** 2)
    zero = magnitude == 0
    magnitude[zero] = 1
    filtered[zero] = 0
    return np.real(np.fft.ifft2(spectrum * filtered / magnitude)).astype(np.float32)


def residual_single(image: np.ndarray, levels: int = 4, sigma: float = 5.0) -> np.ndarray:
    """Noise residual ``(H, W)`` of one ``(H, W, C)`` image in pixel units (0..255)."""
    residual = zero_mean_single(gray_single(noise_extract_single(image, levels, sigma)))
    return wiener_dft_single(residual, residual.std(ddof=1))


def residuals_loop(images: np.ndarray, levels: int = 4, sigma: float = 5.0) -> np.ndarray:
    """:func:`residual_single` over a batch, one image after the other."""
    return np.stack([residual_single(image, levels, sigma) for image in images])


def intensity_single(image: np.ndarray) -> np.ndarray:
    """Intensity weight of one uint8 image: I / 252 below 252, a Gaussian fall-off above."""
    values = image.astype(np.float64)
    out = np.exp(-((values - 252) ** 2) / 6)
    out[image < 252] = values[image < 252] / 252
    return out


def saturation_single(image: np.ndarray) -> np.ndarray:
    """False where a channel sits at its maximum (> 250) in a flat neighbourhood."""
    if image.max() < 250:
        return np.ones(image.shape, dtype=bool)
    pixels = image.astype(np.int16)
    horizontal = pixels - np.roll(pixels, 1, axis=1)
    vertical = pixels - np.roll(pixels, 1, axis=0)
    varies = (horizontal != 0) & (vertical != 0) & (np.roll(horizontal, -1, axis=1) != 0) & (np.roll(vertical, -1, axis=0) != 0)
    mask = ~varies
    for channel in range(image.shape[2]):
        peak = image[:, :, channel].max()
        if peak > 250:
            mask[:, :, channel] = ~((image[:, :, channel] == peak) & mask[:, :, channel])
    return mask


def fingerprint_loop(images: np.ndarray, levels: int = 4, sigma: float = 5.0) -> np.ndarray:
    """Maximum-likelihood PRNU of uint8 images of one source, accumulated image by image."""
    weighted = np.zeros(images.shape[1:], dtype=np.float64)
    power = np.zeros(images.shape[1:], dtype=np.float64)
    for image in images:
        weighted += noise_extract_single(image, levels, sigma) * image / 255.0
        power += (intensity_single(image) * saturation_single(image)) ** 2
    estimate = zero_mean_single(gray_single((weighted / (power + 1)).astype(np.float32)))
    return wiener_dft_single(estimate, estimate.std(ddof=1))
