"""PRNU residual extraction speed: batched (tfforensics) vs one image at a time.

Crops of the bundled photos go through ``tfforensics.baselines.prnu.residuals`` (whole
batch) and ``tests/prnu_reference.py`` ``residuals_loop`` (the straightforward
per-image procedure); prints images/s of each, their ratio, and the largest relative
difference between the two outputs.

    python benchmarks/prnu.py --sizes 32 64 128 --count 256
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the per-image reference (a test oracle)

from tfforensics.baselines.prnu import residuals  # noqa: E402
from tfforensics.benchmark.photos import load_photos, random_crops  # noqa: E402
from prnu_reference import residuals_loop  # noqa: E402


def images_per_second(function, images, repeats: int, **kwargs) -> tuple[float, np.ndarray]:
    """Best of ``repeats`` timed calls (the machine is shared, the best is the least disturbed)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = function(images, **kwargs)
        best = min(best, time.perf_counter() - start)
    return len(images) / best, out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128], help="crop sides (default: 32 64 128)")
    parser.add_argument("--count", type=int, default=256, help="images per size (default: 256)")
    parser.add_argument("--levels", type=int, default=4, help="wavelet levels (default: 4)")
    parser.add_argument("--sigma", type=float, default=0.5, help="noise std in pixel units (default: 0.5)")
    parser.add_argument("--gray", action="store_true", help="one channel instead of RGB")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs, best kept (default: 3)")
    args = parser.parse_args(argv)

    photos = load_photos()
    print(f"PRNU residual extraction, levels={args.levels} sigma={args.sigma}, {'gray' if args.gray else 'RGB'}, "
          f"{args.count} crops per size, best of {args.repeats}")
    print(f"{'size':>5} {'batched img/s':>14} {'per-image img/s':>16} {'ratio':>6} {'max rel. diff':>14}")
    for size in args.sizes:
        crops, _ = random_crops(photos, args.count, size, seed=0)
        if args.gray:
            crops = crops.mean(axis=-1, keepdims=True).round().astype(np.uint8)
        params = {"levels": args.levels, "sigma": args.sigma}
        batched, fast = images_per_second(residuals, crops, args.repeats, **params)
        looped, slow = images_per_second(residuals_loop, crops, args.repeats, **params)
        valid = np.isfinite(slow).all(axis=(1, 2)) & (np.abs(slow).max(axis=(1, 2)) > 0)  # flat crops: 0/0
        diff = np.linalg.norm((fast - slow)[valid].reshape(valid.sum(), -1), axis=1)
        rel = (diff / np.linalg.norm(slow[valid].reshape(valid.sum(), -1), axis=1)).max()
        print(f"{size:>5} {batched:>14.0f} {looped:>16.0f} {batched / looped:>5.1f}x {rel:>14.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
