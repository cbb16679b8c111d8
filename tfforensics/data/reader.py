"""The one reader of prepared data: a batched, prefetched ``tf.data.Dataset``.

Every consumer (Keras trainers, baselines, attribution, LGrad) reads through
:func:`load_dataset` or :func:`as_numpy`. Records are parsed a batch at a time with
``tf.io.parse_example`` (much cheaper than one ``parse_single_example`` per record) and
shards are read in parallel.

What is read is checked against the manifest, so a damaged dataset is never half-read:

* before reading, :func:`check_shards` walks the record framing of every uncompressed
  shard (12 bytes per record, no payload read), checks each length CRC and counts the
  records against the manifest, and decodes the first record of each shard to check its
  layout, shape and label (GZIP shards: the first record only);
* while reading, the pipeline asserts the split's record count, the label range and
  the stored shape of every record (no extra pass);
* consumers iterate inside :func:`read_errors`, which turns TensorFlow's errors about
  the data (a CRC mismatch, a truncated stream, a failed check) into one
  :class:`~tfforensics.errors.UserError` that names the shard and the fix; to name the
  shard it then verifies the split's shards in full (:func:`verify_shards`), which costs a
  pass only when something is already wrong.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import mmap
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from tfforensics.data.manifest import MANIFEST_NAME, Manifest
from tfforensics.data.records import DTYPES, IMAGE_KEYS, _masked_crc, feature_spec
from tfforensics.errors import MissingInputError, UserError

_GZIP_MAGIC = b"\x1f\x8b"
_FIX = "the file is damaged: run `tfforensics prepare` again with --overwrite (or restore the dataset from a copy)"


class ShardError(UserError):
    """A record file that is truncated, corrupt or disagrees with its manifest."""

    def __init__(self, path, problem: str, fix: str = _FIX):
        self.path = str(path)
        super().__init__(f"{os.fsdecode(path)}: {problem}; {fix}.")


# --- checks outside TensorFlow ---------------------------------------------------------------

def _read_exact(handle, size: int, path, what: str) -> bytes:
    """``size`` bytes, read in chunks so that a corrupt length never allocates more than the file holds."""
    parts, left = [], size
    while left:
        part = handle.read(min(left, 1 << 26))
        if not part:
            raise ShardError(path, f"is truncated inside {what}")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def _records(handle, path):
    """Yield the framed records of a stream; :class:`ShardError` for truncation or a failing CRC."""
    for index in itertools.count():
        header = handle.read(12)
        if not header:
            return
        record = f"record {index + 1}"
        if len(header) < 12:
            raise ShardError(path, f"is truncated inside {record} (the file ends in its header)")
        (length,), (crc,) = struct.unpack("<Q", header[:8]), struct.unpack("<I", header[8:])
        if _masked_crc(header[:8]) != crc:
            raise ShardError(path, f"is corrupt: the length of {record} fails its CRC"
                                   + (" (is it a TFRecord file?)" if index == 0 else " (a changed byte)"))
        data = _read_exact(handle, length, path, record)
        (data_crc,) = struct.unpack("<I", _read_exact(handle, 4, path, record))
        if _masked_crc(data) != data_crc:
            raise ShardError(path, f"is corrupt: the data of {record} fails its CRC (a changed byte)")
        yield data


def _check_example(data: bytes, path, manifest: Manifest, index: int) -> None:
    """The layout, stored shape and label of one serialised record agree with the manifest."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    try:
        features = tf.train.Example.FromString(data).features.feature
    except DecodeError as error:
        raise ShardError(path, f"record {index + 1} is not a tf.train.Example ({error})") from None
    key = IMAGE_KEYS[manifest.layout]
    if key not in features:
        found = next((layout for layout, name in IMAGE_KEYS.items() if name in features), "unknown")
        raise ShardError(path, f"holds {found}-layout records but {manifest.path} says layout "
                               f"{manifest.layout!r}", f"restore field 'layout' of {manifest.path} or prepare again")
    stored = list(features["shape"].int64_list.value) if "shape" in features else None
    if stored != list(manifest.image_shape):
        raise ShardError(path, f"holds images of shape {stored} but {manifest.path} says image_shape "
                               f"{list(manifest.image_shape)}", f"restore field 'image_shape' of {manifest.path} "
                               "or prepare again")
    if manifest.layout != "original":  # raw bytes: their length must be the shape's
        payload = features[key].bytes_list.value
        expected = int(np.prod(stored)) * DTYPES[manifest.layout].itemsize
        if len(payload) != 1 or len(payload[0]) != expected:
            raise ShardError(path, f"record {index + 1} holds {sum(len(v) for v in payload)} image bytes, not the "
                                   f"{expected} of a {manifest.layout} image of shape {stored}")
    values = features["label"].int64_list.value if "label" in features else []
    if len(values) != 1 or not 0 <= values[0] < manifest.num_classes:
        raise ShardError(path, f"record {index + 1} has label {list(values)}, outside the {manifest.num_classes} "
                               f"classes that field 'class_names' of {manifest.path} lists",
                         f"restore field 'class_names' of {manifest.path} or prepare again")


@contextlib.contextmanager
def _open_shard(path, compression, manifest: Manifest | None = None):
    """The decompressed stream of a shard; :class:`ShardError` for a missing or mislabelled file."""
    where = manifest.path if manifest is not None else "its manifest"
    if not path.is_file():
        raise MissingInputError(f"{os.fsdecode(path)}: record file listed by {where} is missing; {_FIX}.")
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        if compression == "GZIP":
            if not gzipped:
                raise ShardError(path, f"is not GZIP-compressed but {where} says compression 'GZIP'",
                                 f"restore field 'compression' of {where} (null) or prepare again")
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                try:
                    yield stream
                except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
                    raise ShardError(path, f"is truncated or corrupt (gzip: {error or type(error).__name__})") from error
        else:
            try:
                yield raw
            except ShardError as error:
                if gzipped:
                    raise ShardError(path, f"is GZIP-compressed but {where} says compression null",
                                     f"restore field 'compression' of {where} ('GZIP') or prepare again"
                                     ) from error
                raise


def _walk_framing(handle, path) -> int:
    """Count the records of an uncompressed file from their headers alone (memory-mapped, no payload read)."""
    size = os.fstat(handle.fileno()).st_size
    if size == 0:
        return 0
    with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
        return _walk(view, size, path)


def _walk(view, size: int, path) -> int:
    offset = count = 0
    while offset < size:
        header = view[offset:offset + 12]
        if len(header) < 12:
            raise ShardError(path, f"is truncated inside record {count + 1} (the file ends in its header)")
        if _masked_crc(header[:8]) != int.from_bytes(header[8:], "little"):
            raise ShardError(path, f"is corrupt: the length of record {count + 1} fails its CRC"
                                   + (" (is it a TFRecord file?)" if count == 0 else " (a changed byte)"))
        offset += 16 + int.from_bytes(header[:8], "little")
        count += 1
    if offset > size:
        raise ShardError(path, f"is truncated inside record {count} (the file ends in its data)")
    return count


def check_shards(manifest: Manifest, split: str) -> None:
    """Cheap checks of ``split``'s shards before reading (see the module docstring).

    Uncompressed shards: the framing is walked through a memory map (the 12 header bytes of
    each record; payloads are skipped), so truncation anywhere, a corrupt length and a record
    count that differs from the manifest are found without reading the data (about 7 us per
    record). The first record of every shard is
    read (its CRC checked) and compared with the manifest's layout, image shape and classes.
    """
    for shard in manifest.splits[split]["shards"]:
        path = manifest.root / shard["file"]
        with _open_shard(path, manifest.compression, manifest) as stream:
            if manifest.compression is None:
                _check_count(path, _walk_framing(stream, path), shard["count"], manifest)
            first = next(_records(stream, path), None)
        if first is None:
            raise ShardError(path, f"holds no records but {manifest.path} says {shard['count']}")
        _check_example(first, path, manifest, 0)


def _check_count(path, count: int, expected: int, manifest: Manifest | None) -> None:
    if count != expected:
        where = manifest.path if manifest is not None else "its manifest"
        raise ShardError(path, f"holds {count} records but {where} says {expected}"
                               + (" (the file was truncated)" if count < expected else ""))


def verify_file(path, compression=None, expected: int | None = None, manifest: Manifest | None = None) -> int:
    """Read a record file in full, checking framing and both CRCs; returns its record count."""
    path = Path(path)
    with _open_shard(path, compression, manifest) as stream:
        count = sum(1 for _ in _records(stream, path))
    if expected is not None:
        _check_count(path, count, expected, manifest)
    return count


def verify_shards(manifest: Manifest, splits=None) -> None:
    """Full check of every shard of ``splits`` (default: all): framing, CRCs, counts, first record.

    Raises :class:`ShardError` naming the first bad shard; reads every byte once.
    """
    for split in splits or list(manifest.splits):
        if manifest.format != "tfrecords" or split not in manifest.splits:
            continue
        for shard in manifest.splits[split]["shards"]:
            verify_file(manifest.root / shard["file"], manifest.compression, shard["count"], manifest)
        check_shards(manifest, split)


# --- checks inside the pipeline, and the boundary where TF errors become user errors ----------

#: Messages of in-pipeline checks by key; TensorFlow errors carry the key, :func:`read_errors`
#: maps it back to the message.
_CHECKS: dict[str, str] = {}


def _check_key(message: str) -> str:
    key = f"[tfforensics-check-{zlib.crc32(message.encode()):08x}]"
    _CHECKS[key] = message
    return key


def _describe(source) -> tuple[Manifest | None, str]:
    if isinstance(source, Manifest):
        return source, str(source.path)
    paths = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    return None, ", ".join(os.fsdecode(p) for p in paths)


@contextlib.contextmanager
def read_errors(source, splits=("train",)):
    """Turn TensorFlow's errors about damaged records into one :class:`UserError`.

    Wrap the loop that iterates a dataset from :func:`load_dataset` (``model.fit``, a
    ``for`` loop): a CRC mismatch, a truncated stream, a record count that differs from
    the manifest, or a label outside the classes then fails with one line naming the shard
    (found by :func:`verify_shards`) and the fix. Any other error passes unchanged.
    """
    import tensorflow as tf

    try:
        yield
    except tf.errors.OpError as error:
        message = error.message or str(error)
        checked = next((text for key, text in _CHECKS.items() if key in message), None)
        about_data = isinstance(error, tf.errors.DataLossError) or checked is not None or (
            isinstance(error, tf.errors.FailedPreconditionError) and "expected to contain" in message) or (
            isinstance(error, tf.errors.InvalidArgumentError) and ("parse" in message.lower() or "Key:" in message))
        if not about_data:
            raise
        manifest, name = _describe(source)
        if manifest is not None and manifest.format == "tfrecords":
            verify_shards(manifest, [s for s in splits if s in manifest.splits])  # raises naming the shard
        if checked is not None:
            raise UserError(checked) from error
        reason = message.strip().splitlines()[-1] if message.strip() else type(error).__name__
        raise UserError(f"{name}: the records of split(s) {', '.join(splits)} cannot be read ({reason[:200]}); "
                        f"{_FIX}.") from error


def _peek_original(files, compression) -> tuple[str, list[int]]:
    """Layout and shape of record files that have no manifest (e.g. from the original tools)."""
    import tensorflow as tf

    with read_errors(files):
        for raw in tf.data.TFRecordDataset([str(f) for f in files], compression_type=compression or "").take(1):
            try:
                example = tf.train.Example.FromString(raw.numpy())
            except Exception as error:  # noqa: BLE001 - protobuf's DecodeError
                raise UserError(f"{os.fsdecode(files[0])}: its first record is not a tf.train.Example ({error}); "
                                "pass TFRecord files written by tfforensics or GANDCTAnalysis.") from error
            features = example.features.feature
            shape = list(features["shape"].int64_list.value)
            if len(shape) != 3 or min(shape) < 1:
                raise UserError(f"{os.fsdecode(files[0])}: records have no valid 'shape' feature (found {shape}); "
                                "pass TFRecord files written by tfforensics or GANDCTAnalysis.")
            if IMAGE_KEYS["pixels"] in features:
                raise UserError(f"{os.fsdecode(files[0])}: holds pixel records, whose encoding is in the dataset's "
                                f"{MANIFEST_NAME}; pass the dataset directory written by `tfforensics prepare`.")
            return ("compact" if "image_raw" in features else "original"), shape
    raise UserError(f"{os.fsdecode(files[0])}: contains no records.")


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
                raise MissingInputError(f"{os.fsdecode(missing[0])}: record file not found.")
            compression = "GZIP" if first.suffix == ".gz" else None
            layout, shape = _peek_original(paths, compression)
            return None, paths, layout, shape, compression, split
    if manifest.format == "npy":
        return manifest, [], "npy", list(manifest.image_shape), None, split
    return manifest, manifest.files(split), manifest.layout, list(manifest.image_shape), manifest.compression, split


def _npy_dataset(manifest: Manifest, split: str):
    import tensorflow as tf

    directory = manifest.root / manifest.splits[split].get("directory", split)
    labels_path = directory / "labels.npy"
    try:
        labels = np.load(labels_path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ShardError(labels_path, f"cannot be read ({error})") from error
    expected = manifest.count(split)
    if labels.shape != (expected,) or labels.dtype.kind not in "iu":
        raise ShardError(labels_path, f"holds {labels.dtype} labels of shape {labels.shape} but {manifest.path} "
                                      f"says {expected} integer labels")
    if expected and (labels.min() < 0 or labels.max() >= manifest.num_classes):
        raise ShardError(labels_path, f"holds labels {int(labels.min())}..{int(labels.max())}, outside the "
                                      f"{manifest.num_classes} classes that field 'class_names' of {manifest.path} "
                                      "lists", f"restore field 'class_names' of {manifest.path} or prepare again")
    paths = [str(directory / f"{i:06d}.npy") for i in range(len(labels))]
    missing = next((p for p in paths if not os.path.isfile(p)), None)
    if missing is not None:
        raise MissingInputError(f"{missing}: listed by {manifest.path} but missing; {_FIX}.")
    shape = list(manifest.image_shape)

    def read(path):
        path = path.decode()
        try:
            image = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise ValueError(_check_key(f"{path}: cannot be read ({error}); {_FIX}.")) from None
        if list(image.shape) != shape:
            raise ValueError(_check_key(f"{path}: holds an array of shape {list(image.shape)} but {manifest.path} "
                                        f"says image_shape {shape}; {_FIX}."))
        return image.astype(np.float32)

    def load(path):
        image = tf.numpy_function(read, [path], tf.float32)
        return tf.ensure_shape(image, shape)

    images = tf.data.Dataset.from_tensor_slices(paths).map(load, num_parallel_calls=tf.data.AUTOTUNE)
    return tf.data.Dataset.zip((images, tf.data.Dataset.from_tensor_slices(labels))), len(labels)


def _shard_records(manifest, files, split: str, compression, shuffle: bool, seed):
    """The serialized records of ``files`` (in a seeded file order when shuffled); with a
    manifest, its shards are checked first and the record count is asserted while reading."""
    import tensorflow as tf

    if manifest is not None:
        check_shards(manifest, split)
    file_names = [str(f) for f in files]
    if shuffle and len(file_names) > 1:
        order = np.random.default_rng(seed).permutation(len(file_names))
        file_names = [file_names[i] for i in order]
    records = tf.data.TFRecordDataset(
        file_names, compression_type=compression or "", num_parallel_reads=min(len(file_names), 8) or None
    )
    if manifest is not None:
        # Counted while reading: a split with fewer or more records than its manifest fails
        # at the end of the pass (or at the first extra record), not silently.
        records = records.apply(tf.data.experimental.assert_cardinality(manifest.count(split)))
    return records


def _parser(manifest, source, split: str, layout: str, shape):
    """A batch parser ``serialized -> (images, labels)`` that asserts each record's shape, byte
    length and (with a manifest) label range, with one-line messages naming the file."""
    import tensorflow as tf

    checks = []
    if manifest is not None:
        checks.append((_check_key(
            f"{manifest.path}: split {split!r} has a record with a label outside 0..{manifest.num_classes - 1} "
            f"(field 'class_names' lists {manifest.num_classes} classes); restore field 'class_names' of "
            f"{manifest.path} or prepare the dataset again."), manifest.num_classes))
    shape_key = _check_key(
        f"{_describe(source if manifest is None else manifest)[1]}: a record of split {split!r} has a stored shape "
        f"other than {list(shape)}; {_FIX}.")
    spec = feature_spec(layout, shape)

    def parse(serialized):
        example = tf.io.parse_example(serialized, spec)
        asserts = [tf.debugging.assert_equal(example["shape"], tf.constant([shape], tf.int64), message=shape_key)]
        if layout == "original":
            images = example["image"]
        else:
            raw = example[IMAGE_KEYS[layout]]
            asserts.append(tf.debugging.assert_equal(
                tf.strings.length(raw), int(np.prod(shape)) * DTYPES[layout].itemsize, message=shape_key))
            images = tf.io.decode_raw(raw, tf.as_dtype(DTYPES[layout]))
            images = images if layout == "pixels" else tf.cast(images, tf.float32)
        labels = example["label"]
        for key, num_classes in checks:
            asserts += [tf.debugging.assert_non_negative(labels, message=key),
                        tf.debugging.assert_less(labels, tf.constant(num_classes, tf.int64), message=key)]
        with tf.control_dependencies(asserts):
            return tf.reshape(images, [-1, *shape]), tf.identity(labels)

    return parse


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
    encoded: bool = True,
):
    """A ``tf.data.Dataset`` of ``(images, labels)`` batches.

    Args:
        source: a :class:`Manifest`, a dataset directory written by ``prepare`` (or its
            ``manifest.json`` or one split directory), or record file(s) without a
            manifest, such as the original GANDCTAnalysis ``data.tfrecords``.
        split: ``"train"``, ``"val"`` or ``"test"`` (ignored for bare record files).
        batch_size: images per batch; images are float32 ``(B, H, W, C)`` (uint8 with
            ``encoded=False``), labels int64.
        shuffle: shuffle files and records; default: only for the train split of a dataset
            with a manifest.
        seed: seed of the shuffles, for repeatable runs.
        repeat: repeat forever (for ``steps_per_epoch`` training).
        cache: keep the parsed split in memory after the first pass.
        encoded: images as the classifier sees them, float32: records of the ``pixels``
            layout are encoded on the fly as the manifest says, with the NumPy functions
            that ``prepare`` uses for the other layouts (:func:`tfforensics.data.encodings.encode`),
            so every consumer sees the same values whatever the layout. ``False``: the uint8
            pixels as stored (``pixels`` layout only), for training through the model's own
            preprocessing and for augmentation.

    Example:
        >>> ds = load_dataset("datasets/mini_dct", "train", batch_size=64)  # doctest: +SKIP
        >>> images, labels = next(iter(ds))                                 # doctest: +SKIP
    """
    import tensorflow as tf

    manifest, files, layout, shape, compression, split = resolve(source, split)
    if not encoded and layout != "pixels":
        raise UserError(f"{_describe(source if manifest is None else manifest)[1]}: holds {layout}-layout records "
                        "(encoded values, not pixels); prepare the dataset again with `--layout pixels`.")
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

    dataset = cache_shuffle_repeat(_shard_records(manifest, files, split, compression, shuffle, seed))
    parse = _parser(manifest, source, split, layout, shape)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    deterministic = not shuffle or seed is not None
    dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if layout == "pixels" and encoded:
        dataset = dataset.map(_encoder(manifest, shape), num_parallel_calls=tf.data.AUTOTUNE,
                              deterministic=deterministic)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _encoder(manifest: Manifest, shape):
    """``(uint8 batch, labels) -> (encoded float32 batch, labels)`` by the manifest's encoding (NumPy)."""
    import tensorflow as tf

    from tfforensics.data.encodings import encode

    encoding, statistics = manifest.encoding, manifest.load_statistics()

    def apply(images, labels):
        values = tf.numpy_function(lambda x: encode(x, encoding, statistics), [images], tf.float32, stateful=False)
        return tf.ensure_shape(values, [None, *shape]), labels

    return apply


def as_numpy(source, split: str = "train", *, limit: int | None = None, batch_size: int = 256,
             encoded: bool = True):
    """``(X, y)`` NumPy arrays of a split, in stored order, for scikit-learn consumers.

    ``encoded`` as :func:`load_dataset`: pixel records come back encoded by the manifest's
    encoding (the values the other layouts store), or as uint8 pixels with ``encoded=False``.
    """
    dataset = load_dataset(source, split, batch_size=batch_size, shuffle=False, encoded=encoded)
    images, labels, seen = [], [], 0
    with read_errors(source, (split,)):
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
