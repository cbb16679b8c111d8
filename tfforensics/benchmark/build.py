"""Build the embedded mini benchmark: real photo crops and GAN samples, split by photo.

The tree follows ``prepare --presplit``: ``root/{train,val,test}/<source>/NNNNNN.png``.
The real crops are the shipped crops of a few hundred photographs
(:func:`tfforensics.benchmark.photos.draw_shipped`), and the train, val and test splits take
them from the disjoint photos of the shipped split, so a detector cannot pass by recognising
a photo it has seen; the benchmark's GANs were trained on the train photos only. Every
shipped crop was cut after an anti-aliased shrink by at least 2, which removes the JPEG
block grid of the originals, so a detector has to find the generator's traces, not the
photo's compression.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from tfforensics.errors import UserError
from tfforensics.benchmark.photos import draw_shipped, photo_name, shipped_provenance, shipped_split
from tfforensics.io.atomic import atomic_write_json
from tfforensics.io.outputs import OVERWRITE_HINT, claim_output, mark_output, remove_output
from tfforensics.io.images import save_image

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
FRACTIONS = (0.7, 0.2, 0.1)
REAL_NAME = "a_real"


def split_counts(total: int, fractions=FRACTIONS) -> list[int]:
    train = int(round(total * fractions[0]))
    val = int(round(total * fractions[1]))
    return [train, val, total - train - val]


def check_per_source(per_source: int) -> list[int]:
    """The images per split of ``per_source``, refused when a split has fewer real crops than that."""
    counts = split_counts(per_source)
    for split, count in zip(SPLITS, counts):
        available = len(shipped_split(split)[0])
        if count > available:
            limit = min(int(len(shipped_split(name)[0]) / fraction) for name, fraction in zip(SPLITS, FRACTIONS))
            raise UserError(f"a benchmark of {per_source} images per source needs {count} real crops in its "
                            f"{split} split, but the shipped photos give {available}; choose a per-source "
                            f"count of at most about {limit}.")
    return counts


def build_benchmark(root, fake_sources: dict, *, per_source: int = 300, size: int = 64, seed: int = 0,
                    overwrite: bool = False, progress: bool = True) -> dict:
    """Write the benchmark tree and return its description (also saved as ``root/benchmark.json``).

    Args:
        root: output directory (``prepare --presplit`` layout).
        fake_sources: ``{folder name: sample(count, seed) -> uint8 (N, size, size, 3)}``,
            e.g. one per GAN family; folder names sort after ``a_real`` so real is label 0.
        per_source: images per source over all splits (70/20/10); at most about 2 100 (the
            shipped crops of the train photos, see :func:`check_per_source`).
        size: side of the square images.
    """
    from tqdm.auto import tqdm

    root = Path(root)
    info_path = root / "benchmark.json"
    counts = check_per_source(per_source)
    config = {"per_source": per_source, "size": size, "seed": seed, "sources": [REAL_NAME, *sorted(fake_sources)],
              "real": f"shipped photo crops {shipped_provenance()['crops_sha256'][:16]}"}
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
    used = {}
    bar = tqdm(total=per_source * (1 + len(fake_sources)), desc="benchmark images", unit="img",
               disable=not progress, dynamic_ncols=True)
    for index, split in enumerate(SPLITS):
        images, photo = draw_shipped(split, counts[index], size, seed=1000 * seed + 17 * index)
        used[split] = sorted(set(photo.tolist()))
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
        "real_photos": {split: [photo_name(i) for i in ids] for split, ids in used.items()},
        "real_photo_ids": used,
        "counts_per_source": dict(zip(SPLITS, counts)),
    }
    atomic_write_json(info_path, info)
    mark_output(root, "benchmark")
    return info


def _write_pngs(directory: Path, images) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        save_image(image, directory / f"{i:06d}.png", compress_level=1)
