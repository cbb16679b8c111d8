"""Benchmark: images/s of the record reader against the original's ``parse_single_example`` reader.

Both read the same prepared split (colour log-DCT records in the GANDCTAnalysis layout)
in one process, alternately, best of ``--repeats`` passes each:

(a) baseline: the original's reading, one record at a time: ``TFRecordDataset`` ->
    ``map(parse_single_example)`` with its feature description (``image`` FloatList,
    ``label``, ``shape``) -> reshape -> ``batch``;
(b) tfforensics ``load_dataset``: batches of serialized records parsed together by
    ``parse_example`` (one call per batch), the stored shape and label range checked.

Usage: python benchmarks/reader.py [--images 2000] [--size 64] [--batch-size 32] [--repeats 3]
Prints images/s of each and the ratio (b)/(a); both must yield the same records (checked, in any order:
load_dataset interleaves the shards).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def original_reader(files, shape, batch_size: int):
    """GANDCTAnalysis' ``deserialize_data`` per record, then batches."""
    import tensorflow as tf

    description = {"image": tf.io.FixedLenFeature(shape, tf.float32), "label": tf.io.FixedLenFeature((), tf.int64),
                   "shape": tf.io.FixedLenFeature((3,), tf.int64)}

    def deserialize(raw):
        example = tf.io.parse_single_example(raw, description)
        return tf.reshape(example["image"], example["shape"]), example["label"]

    dataset = tf.data.TFRecordDataset([str(f) for f in files]).map(deserialize, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def one_pass(dataset) -> tuple[float, np.ndarray, np.ndarray]:
    start = time.perf_counter()
    images, labels = [], []
    for x, y in dataset:
        images.append(x.numpy()[:, 0, 0, 0])  # a fingerprint of each image, to compare the readers
        labels.append(y.numpy())
    return time.perf_counter() - start, np.concatenate(images), np.concatenate(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000, help="images to prepare (default 2000)")
    parser.add_argument("--size", type=int, default=64, help="image side (default 64)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="passes of each reader (best counts)")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from prepare import make_images

    from tfforensics.data import Encoding, load_dataset, prepare

    root = Path(tempfile.mkdtemp(prefix="tff-reader-"))
    try:
        make_images(root / "src", args.images, size=args.size)
        manifest = prepare(root / "src", root / "records", Encoding(log=True, color=True), progress=False)
        shape, files, n = list(manifest.image_shape), manifest.files("train"), manifest.count("train")
        best = {"(a) original parse_single_example": np.inf, "(b) tfforensics load_dataset": np.inf}
        outputs = {}
        for _ in range(args.repeats):
            for name, dataset in (("(a) original parse_single_example", original_reader(files, shape, args.batch_size)),
                                  ("(b) tfforensics load_dataset", load_dataset(manifest, "train", shuffle=False,
                                                                                 batch_size=args.batch_size))):
                seconds, x, y = one_pass(dataset)
                best[name] = min(best[name], seconds)
                outputs[name] = (x, y)
        (xa, ya), (xb, yb) = outputs.values()
        # load_dataset reads the shards interleaved (parallel reads), so compare as sets of (label, value)
        same = np.array_equal(np.lexsort((xa, ya)).size, len(xb)) and np.array_equal(
            np.stack([ya, xa])[:, np.lexsort((xa, ya))], np.stack([yb, xb])[:, np.lexsort((xb, yb))])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{n} train records of {shape[0]}x{shape[1]}x{shape[2]} float32 (colour log-DCT), batch {args.batch_size}, "
          f"{os.cpu_count()} cores; best of {args.repeats} passes")
    for name, seconds in best.items():
        print(f"  {name:40s} {n / seconds:8.0f} images/s  ({seconds:.2f} s)")
    a, b = best.values()
    print(f"ratio load_dataset / original reader:  {a / b:5.2f}x   (same arrays and labels: {same})")
    if not same:
        raise SystemExit("the two readers disagree")


if __name__ == "__main__":
    main()
