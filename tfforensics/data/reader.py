"""The one reader of prepared data: a batched, prefetched ``tf.data.Dataset``.

Every consumer (Keras trainers, baselines, attribution, LGrad) reads through
:func:`load_dataset` or :func:`as_numpy`. Records are parsed a batch at a time with
``tf.io.parse_example`` (much cheaper than one ``parse_single_example`` per record) and
shards are read in parallel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfforensics.data.manifest import MANIFEST_NAME, Manifest
from tfforensics.data.records import COMPACT_DTYPE, feature_spec


def _peek_original(files, compression) -> tuple[str, list[int]]:
    """Layout and shape of record files that have no manifest (e.g. from the original tools)."""
    import tensorflow as tf

    for raw in tf.data.TFRecordDataset([str(f) for f in files], compression_type=compression or "").take(1):
        example = tf.train.Example.FromString(raw.numpy())
        features = example.features.feature
        shape = list(features["shape"].int64_list.value)
        return ("compact" if "image_raw" in features else "original"), shape
    raise ValueError(f"{files[0]}: contains no records.")


def resolve(source, split: str = "train"):
    """``(manifest or None, files, layout, shape, compression, split)`` for any accepted source."""
    if isinstance(source, Manifest):
        manifest = source
    else:
        paths = [Path(p) for p in ([source] if isinstance(source, (str, Path)) else source)]
        first = paths[0]
        if len(paths) == 1 and (first.is_dir() or first.name == MANIFEST_NAME):
            manifest = Manifest.load(first)
            if first.is_dir() and first.name in manifest.splits and not (first / MANIFEST_NAME).exists():
                split = first.name  # a split directory was given
        else:  # bare record files, e.g. the original data.tfrecords
            missing = [p for p in paths if not p.is_file()]
            if missing:
                raise FileNotFoundError(f"{missing[0]}: record file not found.")
            compression = "GZIP" if first.suffix == ".gz" else None
            layout, shape = _peek_original(paths, compression)
            return None, paths, layout, shape, compression, split
    if manifest.format == "npy":
        return manifest, [], "npy", list(manifest.image_shape), None, split
    return manifest, manifest.files(split), manifest.layout, list(manifest.image_shape), manifest.compression, split


def _npy_dataset(manifest: Manifest, split: str):
    import tensorflow as tf

    directory = manifest.root / manifest.splits[split].get("directory", split)
    labels = np.load(directory / "labels.npy")
    paths = [str(directory / f"{i:06d}.npy") for i in range(len(labels))]
    shape = list(manifest.image_shape)

    def load(path):
        image = tf.numpy_function(lambda p: np.load(p.decode()).astype(np.float32), [path], tf.float32)
        return tf.ensure_shape(image, shape)

    images = tf.data.Dataset.from_tensor_slices(paths).map(load, num_parallel_calls=tf.data.AUTOTUNE)
    return tf.data.Dataset.zip((images, tf.data.Dataset.from_tensor_slices(labels))), len(labels)


def load_dataset(
    source,
    split: str = "train",
    *,
    batch_size: int = 32,
    shuffle: bool | None = None,
    shuffle_buffer: int = 10_000,
    seed: int | None = 0,
    repeat: bool = False,
    drop_remainder: bool = False,
    cache: bool = False,
):
    """A ``tf.data.Dataset`` of ``(images, labels)`` batches.

    Args:
        source: a :class:`Manifest`, a dataset directory written by ``prepare`` (or its
            ``manifest.json`` or one split directory), or record file(s) without a
            manifest, such as the original GANDCTAnalysis ``data.tfrecords``.
        split: ``"train"``, ``"val"`` or ``"test"`` (ignored for bare record files).
        batch_size: images per batch; images are float32 ``(B, H, W, C)``, labels int64.
        shuffle: shuffle files and records; default: only for the train split of a dataset
            with a manifest.
        seed: seed of the shuffles, for repeatable runs.
        repeat: repeat forever (for ``steps_per_epoch`` training).
        cache: keep the parsed split in memory after the first pass.

    Example:
        >>> ds = load_dataset("datasets/mini_dct", "train", batch_size=64)  # doctest: +SKIP
        >>> images, labels = next(iter(ds))                                 # doctest: +SKIP
    """
    import tensorflow as tf

    manifest, files, layout, shape, compression, split = resolve(source, split)
    if shuffle is None:  # the train split of a prepared dataset; never bare record files
        shuffle = manifest is not None and split == "train"
    def cache_shuffle_repeat(dataset):
        # Per element, before batching: the same for both storage formats.
        if cache:
            dataset = dataset.cache()
        if shuffle:
            dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        return dataset.repeat() if repeat else dataset

    if manifest is not None and manifest.format == "npy":
        dataset = cache_shuffle_repeat(_npy_dataset(manifest, split)[0])
        return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)

    file_names = [str(f) for f in files]
    if shuffle and len(file_names) > 1:
        order = np.random.default_rng(seed).permutation(len(file_names))
        file_names = [file_names[i] for i in order]
    dataset = cache_shuffle_repeat(tf.data.TFRecordDataset(
        file_names, compression_type=compression or "", num_parallel_reads=min(len(file_names), 8) or None
    ))
    spec = feature_spec(layout, shape)

    def parse(serialized):
        example = tf.io.parse_example(serialized, spec)
        if layout == "original":
            images = example["image"]
        else:
            images = tf.cast(tf.io.decode_raw(example["image_raw"], tf.as_dtype(COMPACT_DTYPE)), tf.float32)
        return tf.reshape(images, [-1, *shape]), example["label"]

    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=not shuffle or seed is not None)
    return dataset.prefetch(tf.data.AUTOTUNE)


def as_numpy(source, split: str = "train", *, limit: int | None = None, batch_size: int = 256):
    """``(X, y)`` NumPy arrays of a split, in stored order, for scikit-learn consumers."""
    dataset = load_dataset(source, split, batch_size=batch_size, shuffle=False)
    images, labels, seen = [], [], 0
    for batch_images, batch_labels in dataset.as_numpy_iterator():
        images.append(batch_images)
        labels.append(batch_labels)
        seen += len(batch_labels)
        if limit is not None and seen >= limit:
            break
    if not images:
        return np.empty((0,)), np.empty((0,), dtype=np.int64)
    x, y = np.concatenate(images), np.concatenate(labels)
    return (x[:limit], y[:limit]) if limit is not None else (x, y)
