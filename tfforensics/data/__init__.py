"""Prepared data: encodings, ``prepare`` (image folders → records), the manifest and the reader."""

from tfforensics.data.encodings import Encoding, dct2, encode, log_scale, scale_pixels
from tfforensics.data.manifest import Manifest
from tfforensics.data.prepare import prepare
from tfforensics.data.reader import as_numpy, load_dataset
from tfforensics.data.splits import scan_classes, split_classes

__all__ = [
    "Encoding",
    "Manifest",
    "as_numpy",
    "dct2",
    "encode",
    "load_dataset",
    "log_scale",
    "prepare",
    "scale_pixels",
    "scan_classes",
    "split_classes",
]
