"""Build the embedded mini benchmark: real photo crops and GAN samples, split by photo.

The tree follows ``prepare --presplit``: ``root/{train,val,test}/<source>/NNNNNN.png``.
Real crops of the train, val and test splits come from disjoint photos, so a detector
cannot pass by recognising a photo it has seen; every real crop is shrunk with an
anti-aliasing filter (scale < 1), which removes the JPEG block grid of the originals so
that a detector has to find the generator's traces, not the photo's compression.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from tfforensics.errors import UserError
from tfforensics.benchmark.photos import load_photos, random_crops
from tfforensics.io.atomic import atomic_write_json
from tfforensics.io.outputs import OVERWRITE_HINT, claim_output, mark_output, remove_output
from tfforensics.io.images import save_image

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
FRACTIONS = (0.7, 0.2, 0.1)
#: Real crops are always shrunk (never cut at scale 1), see the module docstring.
REAL_SCALES = (0.75, 0.6, 0.5)
REAL_NAME = "a_real"


def split_counts(total: int, fractions=FRACTIONS) -> list[int]:
    train = int(round(total * fractions[0]))
    val = int(round(total * fractions[1]))
    return [train, val, total - train - val]


def photo_group(name: str) -> str:
    """Photos of one scene share a group (the stereo pair motorcycle_left / _right)."""
    for suffix in ("_left", "_right"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def split_photos(names: list[str], seed: int) -> dict[str, list[int]]:
    """Photo indices per split, whole scenes at a time: about 60/20/20 of the scenes."""
    groups = sorted({photo_group(name) for name in names})
    if len(groups) < 3:
        raise UserError(f"the benchmark needs at least 3 distinct scenes; found {len(groups)}.")
    order = [groups[i] for i in np.random.default_rng(seed).permutation(len(groups))]
    n_test = n_val = max(1, int(round(0.2 * len(groups))))
    chosen = {"test": order[:n_test], "val": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}
    return {split: [i for i, name in enumerate(names) if photo_group(name) in scenes]
            for split, scenes in chosen.items()}


def real_crops(count: int, size: int, photo_indices, photos, seed: int) -> np.ndarray:
    """``count`` distinct crops of the given photos (duplicates removed by content hash)."""
    subset = [photos[i] for i in photo_indices]
    crops, seen, attempt = [], set(), 0
    while len(crops) < count:
        batch, _ = random_crops(subset, 2 * (count - len(crops)) + 8, size, scales=REAL_SCALES, seed=seed + attempt)
        for crop in batch:
            digest = hashlib.sha1(crop.tobytes()).digest()
            if digest not in seen:
                seen.add(digest)
                crops.append(crop)
                if len(crops) == count:
                    break
        attempt += 1
        if attempt > 20:
            raise UserError(f"could not draw {count} distinct {size}x{size} crops from {len(subset)} photos.")
    return np.stack(crops)


def build_benchmark(root, fake_sources: dict, *, per_source: int = 300, size: int = 64, seed: int = 0,
                    overwrite: bool = False, progress: bool = True) -> dict:
    """Write the benchmark tree and return its description (also saved as ``root/benchmark.json``).

    Args:
        root: output directory (``prepare --presplit`` layout).
        fake_sources: ``{folder name: sample(count, seed) -> uint8 (N, size, size, 3)}``,
            e.g. one per GAN family; folder names sort after ``a_real`` so real is label 0.
        per_source: images per source over all splits (70/20/10).
        size: side of the square images.
    """
    from tqdm.auto import tqdm

    root = Path(root)
    info_path = root / "benchmark.json"
    config = {"per_source": per_source, "size": size, "seed": seed, "sources": [REAL_NAME, *sorted(fake_sources)]}
    if info_path.exists():
        info = json.loads(info_path.read_text())
        if info.get("config") == config:
            logger.info("Reusing the benchmark in %s.", root)
            return info
        if not overwrite:
            raise UserError(f"{root}: holds a benchmark built with other settings; pass --overwrite "
                            f"({OVERWRITE_HINT}).")
    # a previous benchmark of ours is removed (refused when a user's file sits in it); nothing else is
    claim_output(root, overwrite=True, command="benchmark")
    if root.exists():
        remove_output(root)
    root.mkdir(parents=True)
    mark_output(root, "benchmark", files=[], dirs=["."], complete=False)  # being built
    photos = load_photos(min_side=2 * size)
    by_split = split_photos([name for name, _ in photos], seed)
    counts = split_counts(per_source)
    bar = tqdm(total=per_source * (1 + len(fake_sources)), desc="benchmark images", unit="img",
               disable=not progress, dynamic_ncols=True)
    for index, split in enumerate(SPLITS):
        images = real_crops(counts[index], size, by_split[split], photos, seed=1000 * seed + 17 * index)
        _write_pngs(root / split / REAL_NAME, images)
        bar.update(len(images))
    for offset, (name, sample) in enumerate(sorted(fake_sources.items())):
        if name <= REAL_NAME:
            raise ValueError(f"fake source {name!r} must sort after {REAL_NAME!r} so that real is label 0.")
        images = np.asarray(sample(per_source, seed + 101 * (offset + 1)), dtype=np.uint8)
        if images.shape != (per_source, size, size, 3):
            raise ValueError(f"source {name!r} gave images of shape {images.shape}; "
                             f"expected {(per_source, size, size, 3)}.")
        start = 0
        for split, count in zip(SPLITS, counts):
            _write_pngs(root / split / name, images[start:start + count])
            start += count
        bar.update(per_source)
    bar.close()
    info = {
        "config": config,
        "real_photos": {split: [photos[i][0] for i in by_split[split]] for split in SPLITS},
        "counts_per_source": dict(zip(SPLITS, counts)),
    }
    atomic_write_json(info_path, info)
    mark_output(root, "benchmark")
    return info


def _write_pngs(directory: Path, images) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        save_image(image, directory / f"{i:06d}.png", compress_level=1)
