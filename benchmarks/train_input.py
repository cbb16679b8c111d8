"""Is the record reader the bottleneck of training? Samples/s of the input alone vs log2 training.

Builds a small two-class set (real photo crops and their nearest-neighbour up-sampled
copies), prepares it as log-DCT records, then measures in one run:

1. the input pipeline alone: ``load_dataset`` (batched ``parse_example``, parallel shard
   reads, prefetch) iterated to the end, per epoch;
2. the original GANDCTAnalysis way of reading, for reference: one ``parse_single_example``
   per record, parallel map, then batch;
3. ``log2`` training (``model.fit``) streaming from the records, from records parsed once
   and cached in memory (what ``tfforensics train`` does for splits below 1 GiB), and from
   NumPy arrays already in memory (no reader at all, the upper bound).

It prints samples/s of each and the ratio input alone / streaming training: above 1 the
reader alone is faster than training (on a small CPU both share the same cores).

    python benchmarks/train_input.py --images 2000 --size 64 --epochs 3
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def make_images(root: Path, count: int, size: int, seed: int) -> Path:
    from PIL import Image

    from tfforensics.benchmark.photos import load_photos, random_crops, upsampled

    crops, _ = random_crops(load_photos(), count, size, seed=seed)
    for name, images in (("a_real", crops), ("b_nearest", upsampled(crops[::-1], "nearest"))):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            Image.fromarray(image).save(root / name / f"{i:05d}.png", compress_level=1)
    return root


def time_epochs(run_epoch, epochs: int) -> float:
    """Seconds per epoch, median of ``epochs`` timed epochs after one warm-up epoch."""
    import statistics

    run_epoch()
    times = []
    for _ in range(epochs):
        started = time.perf_counter()
        run_epoch()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def original_style_reader(manifest, batch_size: int):
    """One ``parse_single_example`` per record (as GANDCTAnalysis' ``load_tfrecord``), then batch."""
    import tensorflow as tf

    shape = list(manifest.image_shape)
    spec = {
        "image": tf.io.FixedLenFeature([int(tf.reduce_prod(shape))], tf.float32),
        "label": tf.io.FixedLenFeature([1], tf.int64),
        "shape": tf.io.FixedLenFeature([3], tf.int64),
    }

    def parse(serialized):
        example = tf.io.parse_single_example(serialized, spec)
        return tf.reshape(example["image"], shape), example["label"][0]

    files = [str(f) for f in manifest.files("train")]
    dataset = tf.data.TFRecordDataset(files).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000, help="images per class (default: 2000)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default: 64)")
    parser.add_argument("--gray", action="store_true", help="grayscale records (default: color)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size, as the original (default: 32)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs after one warm-up (default: 3)")
    parser.add_argument("--workdir", default=None, help="keep images and records here (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    from tfforensics.data import Encoding, prepare
    from tfforensics.data.reader import as_numpy, load_dataset
    from tfforensics.training.fit import compile_classifier, records_dataset
    from tfforensics.models.classifiers import build_model

    work = Path(args.workdir or tempfile.mkdtemp(prefix="train_input-"))
    images = work / "images"
    if not images.exists():
        make_images(images, args.images, args.size, args.seed)
    encoding = Encoding("dct", log=True, color=not args.gray, normalize=True)
    manifest = prepare(images, work / "records", encoding, fractions=(1.0, 0.0, 0.0), seed=args.seed, progress=False)
    count = manifest.count("train")
    print(f"{count} train records of shape {manifest.image_shape} ({encoding.describe()}), batch {args.batch_size}, "
          f"{os.cpu_count()} cores, TensorFlow {tf.__version__}, devices: "
          f"{[d.device_type for d in tf.config.list_logical_devices()]}")

    def iterate(dataset):
        def run():
            for _ in dataset:
                pass
        return run

    reader = load_dataset(manifest, "train", batch_size=args.batch_size, shuffle=True, seed=args.seed)
    reader_rate = count / time_epochs(iterate(reader), args.epochs)
    original_rate = count / time_epochs(iterate(original_style_reader(manifest, args.batch_size)), args.epochs)

    def fit_rate(data):
        keras.utils.set_random_seed(args.seed)
        model = compile_classifier(build_model("log2", manifest.image_shape, 2), 2, 1e-3)
        return count / time_epochs(lambda: model.fit(data, epochs=1, verbose=0, shuffle=False), args.epochs)

    streaming = fit_rate(records_dataset(manifest, "train", batch_size=args.batch_size, binary=True, shuffle=True,
                                         seed=args.seed, cache=False))
    cached = fit_rate(records_dataset(manifest, "train", batch_size=args.batch_size, binary=True, shuffle=True,
                                      seed=args.seed, cache=True))
    x, y = as_numpy(manifest, "train")
    arrays = tf.data.Dataset.from_tensor_slices((x, y.reshape(-1, 1).astype("float32")))
    in_memory = fit_rate(arrays.shuffle(len(x), seed=args.seed).batch(args.batch_size).prefetch(tf.data.AUTOTUNE))

    print(f"input pipeline alone (load_dataset, streaming):  {reader_rate:9.0f} samples/s")
    print(f"original-style reader (parse_single_example):    {original_rate:9.0f} samples/s  "
          f"(load_dataset: {reader_rate / original_rate:.1f}x)")
    print(f"log2 training, streaming from the records:       {streaming:9.0f} samples/s  "
          f"(input alone / training: {reader_rate / streaming:.1f})")
    print(f"log2 training, records parsed once and cached:   {cached:9.0f} samples/s  "
          f"(train's default below 1 GiB)")
    print(f"log2 training from NumPy arrays (no reader):     {in_memory:9.0f} samples/s  "
          f"(cached records reach {cached / in_memory:.0%} of it)")
    print(f"data in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
