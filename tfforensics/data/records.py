"""The TFRecord contract: one writer, one set of feature specs.

Three record layouts exist:

``original``
    ``image`` (FloatList, the flattened H x W x C array), ``label`` (Int64List) and
    ``shape`` (Int64List x 3): the layout of GANDCTAnalysis, readable by its
    ``deserialize_data``.
``compact``
    ``image_raw`` (the array as little-endian float16 bytes), ``label`` and ``shape``:
    half the size, decoded with ``tf.io.decode_raw``.
``pixels``
    ``pixels`` (the cropped/resized uint8 image as H x W x C bytes: RGB for a color
    encoding, PIL's luma for a gray one), ``label`` and ``shape``: a quarter of the
    original's bytes. The encoding the manifest names is applied when the records are
    read (:func:`tfforensics.data.reader.load_dataset`) or, in training, by the model's own
    preprocessing layers, so augmentation can work on the pixels first.

Examples are encoded straight to protobuf wire format with NumPy (a packed float list
is exactly the little-endian float32 bytes) and framed as TFRecords here, so that
``prepare`` workers never build a Python list of floats and never import TensorFlow.
``tf.train.Example.FromString`` parses the result; tests check it byte for byte.
"""

from __future__ import annotations

import functools
import gzip
import os
import struct

import google_crc32c
import numpy as np

LAYOUTS = ("original", "compact", "pixels")
#: dtype of ``image_raw`` in the compact layout.
COMPACT_DTYPE = np.dtype("<f2")
#: dtype of the stored values and the name of the image feature, per layout.
DTYPES = {"original": np.dtype("<f4"), "compact": COMPACT_DTYPE, "pixels": np.dtype("u1")}
IMAGE_KEYS = {"original": "image", "compact": "image_raw", "pixels": "pixels"}


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"`layout` must be one of {LAYOUTS}. Received: layout={layout!r}")


def bytes_per_example(layout: str, shape) -> int:
    """About the bytes of one serialised example (the payload plus framing), for sizing shards."""
    _check_layout(layout)
    return int(np.prod(shape)) * DTYPES[layout].itemsize + 64


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _header(number: int, length: int) -> bytes:
    """Tag and length of a length-delimited protobuf field (wire type 2)."""
    return _varint((number << 3) | 2) + _varint(length)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _header(number, len(payload)) + payload


def _int64_feature(values) -> bytes:
    packed = b"".join(_varint(int(v)) for v in values)  # labels and shapes are >= 0
    return _field(3, _field(1, packed))  # Feature.int64_list -> Int64List.value (packed)


def _float_feature(array: np.ndarray) -> bytes:
    return _field(2, _field(1, np.ascontiguousarray(array, dtype="<f4").tobytes()))


def _bytes_feature(data: bytes) -> bytes:
    return _field(1, _field(1, data))


def _entry(key: str, feature: bytes) -> bytes:
    return _field(1, _field(1, key.encode()) + _field(2, feature))  # map<string, Feature>


@functools.lru_cache(maxsize=1024)
def _example_parts(shape: tuple, label: int, layout: str) -> tuple[bytes, bytes]:
    """Protobuf bytes before and after the image payload; constant for a shape and label.

    Map entries are written in the order image, label, shape, so an example is
    ``head + payload + tail`` and the per-image cost is one concatenation.
    """
    _check_layout(layout)
    size = int(np.prod(shape))
    # Feature.float_list -> FloatList.value (packed) for original, Feature.bytes_list otherwise
    key, number, inner = IMAGE_KEYS[layout], 2 if layout == "original" else 1, DTYPES[layout].itemsize * size
    value_head = _header(1, inner)  # FloatList.value / BytesList.value
    feature_head = _header(number, len(value_head) + inner) + value_head
    value_in_entry = _header(2, len(feature_head) + inner) + feature_head  # entry.value = Feature
    entry_head = _field(1, key.encode()) + value_in_entry  # entry.key, then the value header
    entry_head = _header(1, len(entry_head) + inner) + entry_head  # Features.feature (map entry)
    tail = _entry("label", _int64_feature([label])) + _entry("shape", _int64_feature(shape))
    return _header(1, len(entry_head) + inner + len(tail)) + entry_head, tail  # Example.features


def serialize_example(image: np.ndarray, label: int, layout: str = "original") -> bytes:
    """Serialise one ``(H, W, C)`` array and its label as a ``tf.train.Example``.

    The ``pixels`` layout takes uint8 images only (a float array would be truncated silently).
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"`image` must have shape (H, W, C). Received: shape={image.shape}")
    if layout == "pixels" and image.dtype != np.uint8:
        raise ValueError(f"the pixels layout stores uint8 images. Received: dtype={image.dtype}")
    head, tail = _example_parts(tuple(int(d) for d in image.shape), int(label), layout)
    return b"".join((head, np.ascontiguousarray(image, dtype=DTYPES[layout]).tobytes(), tail))


def _serialize_reference(image: np.ndarray, label: int, layout: str = "original") -> bytes:
    """Field-by-field encoding; the cached fast path must give the same bytes."""
    image = np.asarray(image)
    shape = _entry("shape", _int64_feature(image.shape))
    label_entry = _entry("label", _int64_feature([label]))
    if layout == "original":
        image_entry = _entry("image", _float_feature(image.ravel()))
    else:
        data = np.ascontiguousarray(image, dtype=DTYPES[layout]).tobytes()
        image_entry = _entry(IMAGE_KEYS[layout], _bytes_feature(data))
    return _field(1, image_entry + label_entry + shape)  # Example.features


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame_record(data: bytes) -> bytes:
    """TFRecord framing: length, masked CRC32C of the length, data, masked CRC32C of the data."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", _masked_crc(length)) + data + struct.pack("<I", _masked_crc(data))


class RecordWriter:
    """Append framed records to a file, optionally GZIP-compressed (TF's ``"GZIP"``)."""

    def __init__(self, target, compression: str | None = None):
        if compression not in (None, "GZIP"):
            raise ValueError(f"`compression` must be None or 'GZIP'. Received: compression={compression!r}")
        self._owned = open(target, "wb") if isinstance(target, (str, os.PathLike)) else None
        raw = self._owned or target
        self._gzip = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) if compression else None
        self._handle = self._gzip or raw

    def write(self, data: bytes) -> None:
        self._handle.write(frame_record(data))

    def close(self) -> None:
        """Finish the stream; a file object passed in stays open for its owner."""
        if self._gzip is not None:
            self._gzip.close()
        if self._owned is not None:
            self._owned.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def feature_spec(layout: str, shape) -> dict:
    """``tf.io.parse_example`` features for ``layout`` and an image ``shape`` (H, W, C)."""
    import tensorflow as tf

    size = int(np.prod(shape))
    spec = {
        "label": tf.io.FixedLenFeature([], tf.int64),
        "shape": tf.io.FixedLenFeature([3], tf.int64),
    }
    _check_layout(layout)
    if layout == "original":
        spec["image"] = tf.io.FixedLenFeature([size], tf.float32)
    else:
        spec[IMAGE_KEYS[layout]] = tf.io.FixedLenFeature([], tf.string)
    return spec


#: Target size of one shard; TFDS aims at shards of this order.
SHARD_BYTES = 128 * 2**20


def shard_name(split: str, index: int, count: int, compression: str | None = None) -> str:
    """``{split}-{index:05d}-of-{count:05d}.tfrecord`` (``.tfrecord.gz`` with GZIP)."""
    return f"{split}-{index:05d}-of-{count:05d}" + (".tfrecord.gz" if compression else ".tfrecord")


def shard_count(n: int, bytes_per_example: int, shards: int | None = None) -> int:
    """Shards for ``n`` examples: ``shards`` if given (at most ``n``), else about 128 MiB each,
    at least one per 256 examples up to eight."""
    import math

    if n == 0:
        return 0
    if shards is not None:
        return min(shards, n)
    by_size = math.ceil(n * bytes_per_example / SHARD_BYTES)
    return max(1, by_size, min(8, math.ceil(n / 256)))


def write_shard(path, batches, *, layout: str = "original", compression: str | None = None) -> dict:
    """Write one shard atomically from ``batches`` of ``(encoded arrays, labels)``.

    Returns ``{"count", "per_class": {label: n}, "num_bytes"}`` for the manifest. The file
    appears under its final name only when complete (see :func:`tfforensics.io.atomic.atomic_open`).
    """
    import collections
    from pathlib import Path

    from tfforensics.io.atomic import atomic_open

    path = Path(path)
    count, per_class = 0, collections.Counter()
    with atomic_open(path, "wb") as handle:
        writer = RecordWriter(handle, compression)
        for values, labels in batches:
            for value, label in zip(values, labels):
                writer.write(serialize_example(value, label, layout))
            count += len(labels)
            per_class.update(int(label) for label in labels)
        writer.close()
    return {"count": count, "per_class": dict(sorted(per_class.items())), "num_bytes": path.stat().st_size}
