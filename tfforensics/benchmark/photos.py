"""Real photographs that ship inside installed packages, and crops of them.

The real data sets of the field (CelebA, LSUN, FFHQ) cannot be downloaded everywhere,
so tests and the mini benchmark crop photos bundled with scikit-image, scikit-learn and
matplotlib. Real diversity is the number of photos, not crops: callers that split into
train and test should split by photo (each crop records its source).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfforensics.errors import MissingInputError
from tfforensics.io.images import load_image, resize_image

#: (package, path inside the package) of bundled colour photographs.
BUNDLED_PHOTOS = (
    ("skimage", "data/astronaut.png"),
    ("skimage", "data/chelsea.png"),
    ("skimage", "data/coffee.png"),
    ("skimage", "data/rocket.jpg"),
    ("skimage", "data/motorcycle_left.png"),
    ("skimage", "data/motorcycle_right.png"),
    ("skimage", "data/hubble_deep_field.jpg"),
    ("skimage", "data/retina.jpg"),
    ("sklearn", "datasets/images/china.jpg"),
    ("sklearn", "datasets/images/flower.jpg"),
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
)


def bundled_photo_paths() -> list[Path]:
    """Paths of the bundled photos that exist in this environment (at least the scikit-image ones)."""
    import importlib

    paths = []
    for package, relative in BUNDLED_PHOTOS:
        try:
            module = importlib.import_module(package)
        except ImportError:
            continue
        path = Path(module.__file__).parent / relative
        if path.is_file():
            paths.append(path)
    if not paths:
        raise MissingInputError("no bundled photos found; install scikit-image (it ships the test photos).")
    return paths


def load_photos(min_side: int = 128) -> list[tuple[str, np.ndarray]]:
    """``[(name, RGB uint8 array)]`` of the bundled colour photos at least ``min_side`` pixels."""
    photos = []
    for path in bundled_photo_paths():
        image = load_image(path)
        if min(image.shape[:2]) >= min_side and image.std() > 1:
            photos.append((path.stem, image))
    return photos


def random_crops(photos, count: int, size: int, *, scales=(1.0, 0.75, 0.5), seed: int = 0):
    """``count`` crops of ``size`` x ``size`` at several scales and positions.

    A crop of side ``size / scale`` is cut and shrunk to ``size`` with an anti-aliasing
    filter (PIL's Lanczos), so every crop passes through the same resampling. Returns
    ``(crops uint8 (count, size, size, 3), source photo index per crop)``.
    """
    rng = np.random.default_rng(seed)
    crops = np.empty((count, size, size, 3), dtype=np.uint8)
    sources = rng.integers(0, len(photos), size=count)
    for i, source in enumerate(sources):
        image = photos[source][1]
        height, width = image.shape[:2]
        scale = scales[rng.integers(len(scales))]
        side = min(int(round(size / scale)), height, width)
        top = rng.integers(0, height - side + 1)
        left = rng.integers(0, width - side + 1)
        crops[i] = resize_image(image[top:top + side, left:left + side], size, "lanczos")
    return crops, sources


def upsampled(crops: np.ndarray, method: str, factor: int = 2) -> np.ndarray:
    """Down-sample by ``factor`` (box filter), then up-sample with ``method``.

    A stand-in for a generator's last up-sampling layer (Frank et al.'s up-sampling
    experiment): ``"nearest"`` leaves the periodic DCT peaks of nearest-neighbour
    up-sampling, ``"bilinear"`` / ``"bicubic"`` the smoother ones of interpolation.
    """
    filters = ("nearest", "bilinear", "bicubic")
    if method not in filters:
        raise ValueError(f"`method` must be one of {sorted(filters)}. Received: method={method!r}")
    out = np.empty_like(crops)
    size = crops.shape[1]
    for i, crop in enumerate(crops):
        out[i] = resize_image(resize_image(crop, size // factor, "box"), size, method)
    return out
