"""Real photographs: crops shipped with tfforensics, and photos bundled with other packages.

The real data sets of the field (CelebA, LSUN, FFHQ) cannot be downloaded everywhere.
:func:`shipped_crops` gives 64x64 crops of a few hundred real photographs taken from Debian
packages (``tools/extract_photos.py``, provenance and licences in ``data/photo_crops.json``),
and :func:`shipped_split` a train / val / test split of them by photo. The older helpers
(:func:`load_photos`, :func:`random_crops`) crop the handful of photos bundled with
scikit-image, scikit-learn and matplotlib, which tests use for quick data. Real diversity is
the number of photos, not crops: callers that split into train and test should split by
photo (each crop records its source).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np

from tfforensics.errors import MissingInputError, UserError
from tfforensics.io.images import load_image, resize_image

DATA_DIR = Path(__file__).resolve().parent / "data"
SHIPPED_CROPS = "photo_crops.npz"
SHIPPED_PROVENANCE = "photo_crops.json"
SHIPPED_SPLITS = ("train", "val", "test")
#: Share of the photos in val and test (the rest is train), per source package.
SHIPPED_FRACTIONS = {"val": 0.2, "test": 0.2}

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


@functools.lru_cache(maxsize=1)
def shipped_provenance() -> dict:
    """The provenance of the shipped crops: ``photos`` (package, version, path, licence, ...) and checksums."""
    path = DATA_DIR / SHIPPED_PROVENANCE
    if not path.is_file():
        raise MissingInputError(f"{path}: the shipped photo crops are missing; reinstall tfforensics "
                                "(or rerun tools/extract_photos.py in a source checkout).")
    return json.loads(path.read_text())


@functools.lru_cache(maxsize=1)
def shipped_crops() -> tuple[np.ndarray, np.ndarray]:
    """``(crops uint8 (N, 64, 64, 3), photo id int (N,))`` of the real photos shipped in ``data/``.

    Photo ``i`` is ``shipped_provenance()["photos"][i]``. The crops are stored as lossless
    WebP; the decoded arrays are read-only and checked against the provenance file (count,
    shape, checksum) so a damaged install fails loudly.
    """
    import io

    from PIL import Image

    info = shipped_provenance()
    path = DATA_DIR / SHIPPED_CROPS
    if not path.is_file():
        raise MissingInputError(f"{path}: the shipped photo crops are missing; reinstall tfforensics.")
    damaged = UserError(f"{path}: does not match {SHIPPED_PROVENANCE} (damaged install); reinstall tfforensics.")
    try:
        with np.load(path, allow_pickle=False) as archive:
            blob, offsets, photo = archive["webp"], archive["offsets"], archive["photo"].astype(np.int64)
        crops = np.stack([np.asarray(Image.open(io.BytesIO(blob[start:end].tobytes())).convert("RGB"))
                          for start, end in zip(offsets[:-1], offsets[1:])])
    except (OSError, KeyError, ValueError) as error:
        raise damaged from error
    size = info["size"]
    if (crops.dtype != np.uint8 or crops.shape != (info["crops"], size, size, 3) or photo.shape != (len(crops),)
            or photo.min() < 0 or photo.max() >= len(info["photos"])
            or hashlib.sha256(crops.tobytes()).hexdigest() != info["crops_sha256"]):
        raise damaged
    crops.flags.writeable = False
    photo.flags.writeable = False
    return crops, photo


def split_shipped_photos(seed: int = 0) -> dict[str, np.ndarray]:
    """Photo ids per split (``train`` / ``val`` / ``test``), each photo in exactly one split.

    Within each source package (those of under 5 photos pooled) the photos are shuffled with
    ``seed`` and 20 % go to val, 20 % to test (at least one each), so every split sees every
    larger source; the same seed gives the same split on every machine.
    """
    photos = shipped_provenance()["photos"]
    sizes: dict[str, int] = {}
    for record in photos:
        sizes[record["package"]] = sizes.get(record["package"], 0) + 1
    by_package: dict[str, list[int]] = {}
    for index, record in enumerate(photos):  # packages of under 5 photos share one pool
        key = record["package"] if sizes[record["package"]] >= 5 else ""
        by_package.setdefault(key, []).append(index)
    rng = np.random.default_rng(seed)
    chosen = {split: [] for split in SHIPPED_SPLITS}
    for package in sorted(by_package):
        ids = np.asarray(by_package[package])[rng.permutation(len(by_package[package]))]
        counts = {split: max(1, int(round(fraction * len(ids)))) for split, fraction in SHIPPED_FRACTIONS.items()}
        chosen["test"].extend(ids[:counts["test"]])
        chosen["val"].extend(ids[counts["test"]:counts["test"] + counts["val"]])
        chosen["train"].extend(ids[counts["test"] + counts["val"]:])
    return {split: np.sort(np.asarray(ids, dtype=np.int64)) for split, ids in chosen.items()}


def shipped_split(split: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(crops, photo ids)`` of the shipped crops whose photo is in ``split`` of :func:`split_shipped_photos`."""
    if split not in SHIPPED_SPLITS:
        raise ValueError(f"`split` must be one of {SHIPPED_SPLITS}. Received: split={split!r}")
    crops, photo = shipped_crops()
    keep = np.isin(photo, split_shipped_photos(seed)[split])
    return crops[keep], photo[keep]


def photo_name(index: int) -> str:
    """A short name of shipped photo ``index``: ``package/file`` (the full record is in the provenance)."""
    record = shipped_provenance()["photos"][index]
    return f"{record['package']}/{Path(record.get('source_path') or record['path']).name}"


def draw_shipped(split: str, count: int | None = None, size: int = 64, *, seed: int = 0,
                 repeat: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(count crops uint8, photo id each)`` of ``split``, spread over as many photos as possible.

    The crops are dealt one photo at a time (every photo's first crop, then every photo's
    second, ... each round in a seeded order), so a small ``count`` still covers many photos.
    ``count=None`` takes them all; a ``count`` above the split's crops is refused unless
    ``repeat`` (then the deal starts again). A ``size`` under 64 shrinks the crops (Lanczos).
    """
    crops, photo = shipped_split(split)
    if size > crops.shape[1]:
        raise UserError(f"the shipped photo crops are {crops.shape[1]}x{crops.shape[1]}; "
                        f"choose a size <= {crops.shape[1]}. Received: size={size}")
    count = len(crops) if count is None else count
    if count > len(crops) and not repeat:
        raise UserError(f"the {split} split of the shipped photo crops holds {len(crops)} crops "
                        f"({len(np.unique(photo))} photos); ask for at most that many. Received: {count}")
    rng = np.random.default_rng(seed)
    order = np.concatenate([_deal(photo, rng) for _ in range(-(-count // len(crops)) if count else 0)]
                           or [np.empty(0, np.int64)])[:count]
    chosen = crops[order]
    if size != crops.shape[1]:
        chosen = np.stack([resize_image(crop, size, "lanczos") for crop in chosen]) if count else \
            np.empty((0, size, size, 3), np.uint8)
    return chosen, photo[order]


def _deal(photo: np.ndarray, rng) -> np.ndarray:
    """Indices of all crops, round by round: rank of the crop within its photo, then a random key."""
    shuffled = rng.permutation(len(photo))
    rank = np.empty(len(photo), np.int64)
    for ids in np.unique(photo):
        members = shuffled[photo[shuffled] == ids]
        rank[members] = np.arange(len(members))
    return np.lexsort((rng.permutation(len(photo)), rank))
