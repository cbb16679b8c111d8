"""Split a folder into train/dev/test folders (70/20/10, seeded), optionally resizing.

The 004 project's build_dataset: images of one folder are shuffled with a fixed seed and
written to ``OUT/train``, ``OUT/dev`` and ``OUT/test``. Here a source with class
sub-folders is split per class (``OUT/train/<class>/...``) so every class keeps the
proportions; the counts follow :func:`tfforensics.data.splits.split_counts`.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np

from tfforensics.data.splits import split_counts
from tfforensics.io.images import load_image
from tfforensics.io.outputs import staged_output
from tfforensics.preprocess._folder import (
    FolderResult, check_unique, log_skipped, png_name, run_jobs, source_images, write_png,
)
from tfforensics.preprocess.resize import FILTERS, resize_image

SPLIT_NAMES = ("train", "dev", "test")
DEFAULT_FRACTIONS = (0.7, 0.2, 0.1)


def _split_job(job):
    source, destination, size, filter = job
    image = load_image(source)  # validates the file even when it is only copied
    if size is None:
        shutil.copyfile(source, destination)
    else:
        write_png(resize_image(image, size, filter), destination)
    return destination


def assign_splits(files, fractions=DEFAULT_FRACTIONS, seed: int = 0, names=SPLIT_NAMES) -> dict:
    """``{relative path: split name}``: a seeded permutation per folder, cut by ``fractions``."""
    by_folder = defaultdict(list)
    for relative in files:
        by_folder[relative.parent].append(relative)
    assignment = {}
    for index, folder in enumerate(sorted(by_folder)):
        members = sorted(by_folder[folder])
        counts = split_counts(len(members), fractions, name=str(folder))
        order = np.random.default_rng([seed, index]).permutation(len(members))
        start = 0
        for name, count in zip(names, counts):
            for i in order[start:start + count]:
                assignment[members[i]] = name
            start += count
    return assignment


def split_folder(source, output, *, fractions=DEFAULT_FRACTIONS, size: int | None = None,
                 filter: str = "bilinear", seed: int = 0, names=SPLIT_NAMES, workers: int | None = None,
                 skip_bad: bool = False, overwrite: bool = False, progress: bool = True) -> FolderResult:
    """Write ``output/<split>/<relative path>`` for every image under ``source``.

    Args:
        fractions: train, dev, test shares of each folder (default 0.7 0.2 0.1).
        size: resize to ``size`` x ``size`` PNG first; None copies the files unchanged.
        names: the three split folder names (default ``train dev test`` as the 004 project).
    """
    if size is not None and size < 1:
        raise ValueError(f"`size` must be a positive number of pixels. Received: size={size}")
    if filter not in FILTERS:
        raise ValueError(f"`filter` must be one of {sorted(FILTERS)}. Received: filter={filter!r}")
    if len(names) != 3 or len(set(names)) != 3:
        raise ValueError(f"`names` must be three different folder names. Received: names={names}")
    files = source_images(source)
    relatives = [relative for _, relative in files]
    assignment = assign_splits(relatives, fractions, seed, names)
    outputs = [(relative, Path(assignment[relative]) / (png_name(relative) if size else relative))
               for relative in relatives if relative in assignment]
    check_unique(outputs, source)
    targets = dict(outputs)
    with staged_output(output, overwrite=overwrite, sources=[source], command="split") as work:
        for name in names:
            (work / name).mkdir()
        jobs = [(str(path), str(work / targets[relative]), size, filter)
                for path, relative in files if relative in targets]
        for target in {Path(job[1]).parent for job in jobs}:
            target.mkdir(parents=True, exist_ok=True)
        written, skipped = run_jobs(_split_job, jobs, workers=workers, skip_bad=skip_bad,
                                    progress=progress, description="split" + (f" + resize {size}" if size else ""))
    log_skipped(skipped)
    bad = {entry["path"] for entry in skipped}
    counts = {name: 0 for name in names}
    for path, relative in files:
        if relative in targets and str(path) not in bad:
            counts[assignment[relative]] += 1
    return FolderResult(Path(output).resolve(), len(written), skipped,
                        {"counts": counts, "fractions": list(fractions), "size": size, "seed": seed})
