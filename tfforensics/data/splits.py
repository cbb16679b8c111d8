"""Class folders and seeded train/val/test splits.

Labels follow the sorted sub-folder names of the source directory (label = index),
as GANDCTAnalysis and Yu et al. do. Splits are drawn per class with a seeded
permutation, so every class is split in the same proportions and a run repeats.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from tfforensics.errors import UserError
from tfforensics.io.images import list_images

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.7, 0.2, 0.1)


def scan_classes(source) -> dict[str, list[Path]]:
    """``{class_name: sorted image paths}`` for the sub-folders of ``source`` in sorted order."""
    source = Path(source)
    if not source.is_dir():
        raise UserError(f"{source}: source directory not found." if not source.exists()
                        else f"{source}: is a file, not a folder of class sub-folders.")
    _check_readable(source)
    folders = sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise UserError(
            f"{source}: has no class sub-folders; put the images of each source in its own "
            f"sub-folder (e.g. {source}/real, {source}/progan)."
        )
    classes = {}
    for folder in folders:
        _check_readable(folder)
        files = list_images(folder)
        if not files:
            raise UserError(
                f"{folder}: class folder has no images; add images or remove the folder "
                "(labels follow the sorted folder names, so an empty class cannot be skipped)."
            )
        classes[folder.name] = files
    return classes


def _check_readable(folder: Path) -> None:
    if not os.access(folder, os.R_OK | os.X_OK):
        raise UserError(f"{folder}: cannot be read (permission denied); fix its permissions (chmod u+rx) "
                        "or move it out of the source.")


def split_counts(n: int, fractions=None, sizes=None, *, name: str = "") -> tuple[int, int, int]:
    """Number of (train, val, test) items out of ``n`` for fractions or fixed sizes."""
    if sizes is not None:
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) != 3 or min(sizes) < 0:
            raise UserError(f"`sizes` must be three counts >= 0. Received: sizes={sizes}")
        if sum(sizes) > n:
            raise UserError(
                f"class {name!r} has {n} images but --sizes asks for {sum(sizes)} "
                f"({sizes[0]}+{sizes[1]}+{sizes[2]}); lower the sizes or add images."
            )
        return sizes
    fractions = tuple(float(f) for f in (fractions or DEFAULT_FRACTIONS))
    if (len(fractions) != 3 or not all(math.isfinite(f) for f in fractions) or min(fractions) < 0
            or sum(fractions) > 1 + 1e-9 or sum(fractions) == 0):
        raise UserError(f"--split: the fractions must be three numbers >= 0 summing to at most 1 (and not all "
                        f"0). Received: {' '.join(str(f) for f in fractions)}")
    n_train = int(round(n * fractions[0]))
    n_val = min(int(round(n * fractions[1])), n - n_train)
    if abs(sum(fractions) - 1) < 1e-9:
        n_test = n - n_train - n_val
    else:
        n_test = min(int(round(n * fractions[2])), n - n_train - n_val)
    return n_train, n_val, n_test


#: How the files of a class are dealt to the splits: a seeded permutation, or the first ones in
#: sorted file-name order (train, then val, then test), as the original prepare_dataset.py.
SPLIT_ORDERS = ("shuffled", "sorted")


def split_classes(classes: dict[str, list], *, fractions=None, sizes=None, seed: int = 0,
                  order: str = "shuffled") -> dict[str, list[tuple[str, int]]]:
    """``{split: [(path, label), ...]}``: per-class split (``order``), then a seeded shuffle per split."""
    if order not in SPLIT_ORDERS:
        raise ValueError(f"`order` must be one of {SPLIT_ORDERS}. Received: order={order!r}")
    out = {split: [] for split in SPLITS}
    for label, (name, files) in enumerate(classes.items()):
        counts = split_counts(len(files), fractions, sizes, name=name)
        if order == "sorted":
            files = sorted(files, key=str)
            order_of_class = np.arange(len(files))
        else:
            order_of_class = np.random.default_rng([seed, label]).permutation(len(files))
        start = 0
        for split, count in zip(SPLITS, counts):
            out[split].extend((str(files[i]), label) for i in order_of_class[start:start + count])
            start += count
    for index, split in enumerate(SPLITS):
        items = out[split]
        order = np.random.default_rng([seed, 1000 + index]).permutation(len(items))
        out[split] = [items[i] for i in order]
    return out


def presplit_classes(source, *, seed: int = 0) -> tuple[list[str], dict[str, list[tuple[str, int]]]]:
    """Class names and ``{split: [(path, label), ...]}`` for a tree already split by the user.

    ``source/train/<class>/``, ``source/val/<class>/`` (or ``dev/``, as ``tfforensics split``
    writes it) and ``source/test/<class>/`` (val and test may be missing); every split must
    hold the same class folders. Use it when the
    split must follow something the files do not show, e.g. which photo a crop came from.
    """
    source = Path(source)
    if not (source / "train").is_dir():
        raise UserError(f"{source / 'train'}: not found; a pre-split source needs train/[val/][test/] sub-folders.")
    folders = {p.name for p in source.iterdir() if p.is_dir() and not p.name.startswith(".")}
    unknown = folders - {*SPLITS, "dev"}
    if unknown or {"val", "dev"} <= folders:
        raise UserError(
            f"{source}: a pre-split source holds only train/, val/ (or dev/) and test/; found {sorted(folders)}."
        )
    names_on_disk = {"val": "dev" if "dev" in folders else "val"}
    per_split = {split: scan_classes(source / names_on_disk.get(split, split)) for split in SPLITS
                 if (source / names_on_disk.get(split, split)).is_dir()}
    names = list(per_split["train"])
    for split, classes in per_split.items():
        if list(classes) != names:
            raise UserError(
                f"{source / split}: has classes {list(classes)} but train has {names}; "
                "every split needs the same class folders."
            )
    out = {}
    for index, split in enumerate(SPLITS):
        items = [(str(path), label) for label, files in enumerate(per_split.get(split, {}).values()) for path in files]
        order = np.random.default_rng([seed, 1000 + index]).permutation(len(items))
        out[split] = [items[i] for i in order]
    return names, out
