"""Data written by GANDCTAnalysis' ``prepare_dataset.py``, read without a manifest.

The original writes ``<stem>_train_tf/data.tfrecords`` (and ``_val_tf``, ``_test_tf``) in
TFRecords mode, or ``<stem>_train/000000.npy ... labels.npy`` (and ``_val``, ``_test``)
otherwise. Given any one of these folders or files, :func:`infer_manifest` finds its
sibling splits and builds an in-memory :class:`~tfforensics.data.Manifest`: the image
shape from the first record (or ``.npy`` header), record counts from the TFRecord
framing, the number of classes from the labels of the smallest split. How the arrays were
encoded is not recorded by the original, so the encoding is ``unknown``: a model trained
on them takes the stored arrays, not images (warned once).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from tfforensics.data.encodings import Encoding
from tfforensics.data.manifest import Manifest
from tfforensics.errors import MissingInputError, UserError

logger = logging.getLogger(__name__)

RECORD_FILE = "data.tfrecords"
LABELS_FILE = "labels.npy"
#: Folder-name endings of the original's splits.
SPLIT_ENDINGS = {"tfrecords": "_{}_tf", "npy": "_{}"}
SPLITS = ("train", "val", "test")
_warned: set = set()


def looks_original(path) -> bool:
    """Whether ``path`` is a record file, or a folder holding ``data.tfrecords`` or ``labels.npy``."""
    path = Path(path)
    if path.is_file():
        return path.suffix in (".tfrecords", ".tfrecord") or path.name.endswith((".tfrecords.gz", ".tfrecord.gz"))
    return (path / RECORD_FILE).is_file() or (path / LABELS_FILE).is_file()


def _split_of(folder: Path, format: str) -> tuple[str | None, str]:
    """``(split, stem)`` of an original folder name (``celeba_dct_train_tf`` -> train, celeba_dct)."""
    for split in SPLITS:
        suffix = SPLIT_ENDINGS[format].format(split)
        if folder.name.endswith(suffix) and len(folder.name) > len(suffix):
            return split, folder.name[:-len(suffix)]
    return None, folder.name


def _siblings(path: Path, format: str) -> dict[str, Path]:
    """``{split: record file or .npy folder}`` of the original output that ``path`` belongs to."""
    folder = path.parent if path.is_file() else path
    split, stem = _split_of(folder, format)
    given = path if path.is_file() or format == "npy" else folder / RECORD_FILE
    if split is None:  # a folder or file of another name: one split, for training and for testing
        return {"train": given, "test": given}
    found = {}
    for name in SPLITS:
        sibling = folder.parent / (stem + SPLIT_ENDINGS[format].format(name))
        target = given if sibling == folder else sibling if format == "npy" else sibling / RECORD_FILE
        if target.exists():
            found[name] = target
    return found


def _labels_of_records(path: Path, compression) -> np.ndarray:
    import tensorflow as tf

    from tfforensics.data.reader import read_errors

    spec = {"label": tf.io.FixedLenFeature((), tf.int64)}
    dataset = tf.data.TFRecordDataset(str(path), compression_type=compression or "").batch(4096)
    dataset = dataset.map(lambda raw: tf.io.parse_example(raw, spec)["label"], num_parallel_calls=tf.data.AUTOTUNE)
    with read_errors([path]):
        return np.concatenate([batch.numpy() for batch in dataset] or [np.zeros(0, np.int64)])


def _npy_split(folder: Path) -> tuple[np.ndarray, list[int]]:
    try:
        labels = np.load(folder / LABELS_FILE, allow_pickle=False)
        first = np.load(folder / "000000.npy", mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise UserError(f"{folder}: not an .npy folder of prepare_dataset.py (000000.npy ... labels.npy): "
                        f"{error}") from error
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise UserError(f"{folder / LABELS_FILE}: holds {labels.dtype} of shape {labels.shape}, not one integer "
                        "label per image.")
    shape = list(first.shape) if first.ndim == 3 else list(first.shape) + [1]
    return labels, shape


def infer_manifest(path, *, val=None, class_names=None) -> Manifest:
    """A manifest for the original's output that ``path`` (a split folder or file) belongs to.

    Args:
        path: ``<stem>_train_tf`` (or its ``data.tfrecords``), ``<stem>_train``, or any
            ``_val``/``_test`` one; the other splits are found beside it.
        val: the validation split's folder or file, when it is not a sibling (the
            original's ``TRAIN_DATASET VAL_DATASET`` pair).
        class_names: names in label order (default: ``"0"``, ``"1"``, ...).
    """
    from tfforensics.data.reader import _peek_original, verify_file

    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"{os.fsdecode(path)}: not found; check the path.")
    format = "npy" if (path.is_dir() and (path / LABELS_FILE).is_file()) else "tfrecords"
    splits = _siblings(path, format)
    if val is not None:
        val = Path(val)
        if not looks_original(val):
            raise UserError(f"{os.fsdecode(val)}: VAL must be a record file or a folder of the original "
                            "prepare_dataset.py (data.tfrecords or 000000.npy ... labels.npy).")
        splits["val"] = val if format == "npy" or val.is_file() else val / RECORD_FILE
    compression = "GZIP" if format == "tfrecords" and str(splits[next(iter(splits))]).endswith(".gz") else None
    entries, labels_by_split, shape, layout = {}, {}, None, "npy"
    for split, target in splits.items():
        if format == "npy":
            labels, split_shape = _npy_split(target)
            labels_by_split[split] = labels
            entries[split] = {"count": len(labels), "per_class": {}, "num_bytes": 0, "directory": str(target.resolve()),
                              "shards": [{"file": str(target.resolve()), "count": None}]}
        else:
            layout, split_shape = _peek_original([target], compression)
            count = verify_file(target, compression)
            entries[split] = {"count": count, "per_class": {}, "num_bytes": target.stat().st_size,
                              "shards": [{"file": str(target.resolve()), "count": count}]}
        if shape is not None and split_shape != shape:
            raise UserError(f"{target}: holds arrays of shape {split_shape}, but {splits['train' if 'train' in splits else split]} "
                            f"holds {shape}; pass splits of one prepared dataset.")
        shape = split_shape
    smallest = min(entries, key=lambda s: entries[s]["count"])
    if format == "tfrecords":
        labels_by_split[smallest] = _labels_of_records(splits[smallest], compression)
    labels = labels_by_split[smallest]
    if labels.size and labels.min() < 0:
        raise UserError(f"{splits[smallest]}: holds a negative label ({int(labels.min())}).")
    num_classes = int(labels.max()) + 1 if labels.size else 0
    for split, split_labels in labels_by_split.items():
        num_classes = max(num_classes, int(split_labels.max()) + 1 if split_labels.size else 0)
    names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
    if len(names) < num_classes:
        raise UserError(f"--class-names lists {len(names)} names, but the labels of {splits[smallest]} run to "
                        f"{num_classes - 1}; give one name per class, in label order.")
    for split, split_labels in labels_by_split.items():
        counts = np.bincount(split_labels.astype(np.int64), minlength=len(names))
        entries[split]["per_class"] = {name: int(n) for name, n in zip(names, counts)}
    key = str(path.resolve())
    if key not in _warned:
        _warned.add(key)
        logger.warning("%s: no manifest (the original prepare_dataset.py output?): %s split(s) %s, shape %s, %d "
                       "classes from the labels of %s; the encoding is unknown, so a model trained on it takes the "
                       "stored arrays, not images.", path, format, ", ".join(entries), "x".join(map(str, shape)),
                       len(names), smallest)
    encoding = Encoding(transform="unknown", color=shape[-1] == 3)
    return Manifest(class_names=names, image_shape=shape, encoding=encoding, format=format, layout=layout,
                    compression=compression, splits=entries, command="prepare_dataset.py (original)",
                    root=(path.parent if path.is_file() else path).resolve())
