"""Benchmark: images/s of ``tfforensics prepare`` against the original's per-image writer.

All three runs encode the same 128x128 RGB PNGs as colour log-DCT, in one process run:

(a) baseline: what the original ``prepare_dataset.py`` does per image, in one process:
    PIL load, SciPy fftpack DCT, log, ``tolist()`` into a FloatList ``tf.train.Example``,
    written as the original writes it (``tf.data.Dataset.from_generator`` into
    ``tf.data.experimental.TFRecordWriter``);
(a') the same per-image work written with a plain ``tf.io.TFRecordWriter`` (a leaner
    baseline than the original, reported too);
(b) floor: one process doing only decode + DCT + log + raw bytes to a file;
(c) tfforensics ``prepare`` with all cores (default settings, GANDCTAnalysis record layout).

Usage: python benchmarks/prepare.py [--images 2000] [--workers N]
Prints images/s for each and the ratios (c)/(a) and (c)/(b). Target: (c)/(a) >= 8 on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from PIL import Image
from scipy import fftpack


def make_images(directory: Path, count: int, size: int = 128, classes: int = 2) -> list[Path]:
    from tfforensics.benchmark.photos import load_photos, random_crops

    crops, _ = random_crops(load_photos(), count, size, seed=0)
    paths = []
    for i, crop in enumerate(crops):
        folder = directory / f"class_{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{i:06d}.png"
        Image.fromarray(crop).save(path)
        paths.append(path)
    return paths


def _original_examples(paths):
    """Per image: PIL, fftpack DCT on axis 0 then 1, log, tolist() into a FloatList Example."""
    import tensorflow as tf

    for label, path in enumerate(paths):
        image = np.asarray(Image.open(path))
        image = fftpack.dct(image, type=2, norm="ortho", axis=0)
        image = fftpack.dct(image, type=2, norm="ortho", axis=1)
        image = np.log(np.abs(image) + 1e-12)
        feature = {
            "image": tf.train.Feature(float_list=tf.train.FloatList(value=image.flatten().tolist())),
            "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label % 2])),
            "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=image.shape)),
        }
        yield tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def baseline_original(paths, out: Path) -> None:
    """(a) The original's writer: a generator dataset into tf.data's TFRecordWriter."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_generator(lambda: _original_examples(paths), output_types=tf.string,
                                             output_shapes=())
    tf.data.experimental.TFRecordWriter(str(out)).write(dataset)


def baseline_lean(paths, out: Path) -> None:
    """(a') The same examples through a plain tf.io.TFRecordWriter."""
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(out)) as writer:
        for example in _original_examples(paths):
            writer.write(example)


def floor(paths, out: Path) -> None:
    """(b) Single process: decode + DCT + log + raw float32 bytes, nothing else."""
    with open(out, "wb") as handle:
        for path in paths:
            image = np.asarray(Image.open(path))
            image = fftpack.dct(image, type=2, norm="ortho", axis=0)
            image = fftpack.dct(image, type=2, norm="ortho", axis=1)
            handle.write(np.log(np.abs(image) + 1e-12).astype(np.float32).tobytes())


def timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000, help="number of 128x128 PNGs (default 2000)")
    parser.add_argument("--workers", type=int, default=None, help="prepare workers (default: all cores)")
    args = parser.parse_args()

    from tfforensics.data import Encoding, prepare

    root = Path(tempfile.mkdtemp(prefix="tff-bench-"))
    try:
        paths = make_images(root / "src", args.images)
        n = len(paths)
        for path in paths:  # warm the page cache for every contender alike
            path.read_bytes()
        # prepare runs first, as in a fresh `tfforensics prepare` process (no TensorFlow loaded,
        # so its pool forks); TensorFlow is then imported before the baselines are timed.
        ours = timed(lambda: prepare(root / "src", root / "ours", Encoding(log=True, color=True),
                                     workers=args.workers, progress=False))
        import tensorflow as tf  # noqa: F401

        seconds = {
            "(a) original per-image FloatList writer": timed(baseline_original, paths, root / "a.tfrecords"),
            "(a') per-image FloatList, tf.io.TFRecordWriter": timed(baseline_lean, paths, root / "a2.tfrecords"),
            "(b) floor: decode + DCT + log + raw write": timed(floor, paths, root / "b.bin"),
            "(c) tfforensics prepare": ours,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{n} images, 128x128 RGB PNG -> colour log-DCT records, {os.cpu_count()} cores")
    for name, value in seconds.items():
        print(f"  {name:48s} {n / value:8.0f} images/s  ({value:.2f} s)")
    names = list(seconds)
    ours = seconds[names[-1]]
    print(f"ratio prepare / (a) original writer:         {seconds[names[0]] / ours:5.1f}x")
    print(f"ratio prepare / (a') lean per-image writer:  {seconds[names[1]] / ours:5.1f}x")
    print(f"ratio prepare / (b) single-process floor:    {seconds[names[2]] / ours:5.2f}x")

if __name__ == "__main__":
    main()
