"""Resize a folder of images to N x N (the 004 project's build_dataset, resize part).

The 004 project resized every image of a folder to a square with PIL's bilinear filter
(which anti-aliases when shrinking) before splitting it. ``--is_testing`` there meant
"resize only, do not split"; here that is ``tfforensics resize``.
"""

from __future__ import annotations

from pathlib import Path

from tfforensics.io.images import RESIZE_FILTERS, load_image, resize_image
from tfforensics.io.outputs import staged_output
from tfforensics.preprocess._folder import (
    FolderResult, log_skipped, planned_pngs, run_jobs, write_png,
)

#: The filter vocabulary and resize function are :mod:`tfforensics.io.images`' (one of each).
FILTERS = RESIZE_FILTERS


def _resize_job(job):
    source, destination, size, filter = job
    write_png(resize_image(load_image(source), size, filter), destination)
    return destination


def resize_folder(source, output, size: int, *, filter: str = "bilinear", workers: int | None = None,
                  skip_bad: bool = False, overwrite: bool = False, progress: bool = True) -> FolderResult:
    """Resize every image under ``source`` to ``size`` x ``size`` PNGs in ``output`` (same names)."""
    if size < 1:
        raise ValueError(f"`size` must be a positive number of pixels. Received: size={size}")
    if filter not in FILTERS:
        raise ValueError(f"`filter` must be one of {sorted(FILTERS)}. Received: filter={filter!r}")
    planned = planned_pngs(source)
    with staged_output(output, overwrite=overwrite, sources=[source], command="resize") as work:
        jobs = [(str(path), str(work / name), size, filter) for path, _, name in planned]
        written, skipped = run_jobs(_resize_job, jobs, workers=workers, skip_bad=skip_bad,
                                    progress=progress, description=f"resize {size}x{size}")
    log_skipped(skipped)
    return FolderResult(Path(output).resolve(), len(written), skipped, {"size": size, "filter": filter})
