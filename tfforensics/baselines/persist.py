"""Saving fitted baselines without pickles: one ``.npz`` of arrays plus a JSON header.

Only the estimator classes listed in :data:`CLASSES` can be stored or rebuilt, so loading
a file never runs code it names. Fitted state is the public ``*_`` attributes of each
estimator (arrays and plain values); a kNN keeps its training rows and is refitted on
load (fitting a kNN only indexes them).

A kNN's training rows are most of such a file, so they are stored compactly
(format version 2), whichever is the smallest that the rows allow:

* ``uint8`` codes into a table of at most 256 distinct values: lossless, and what rows
  encoded from 8-bit pixels (raw, not normalised per pixel) come down to; a quarter of
  the float32 bytes;
* ``float16`` where every value fits it (``|x| <= 65504``): half the bytes, values
  rounded to 11 significant bits (relative error <= 2**-11), so a prediction can
  change only where two neighbours' distances differ by less than that rounding;
* otherwise the rows as they are.

Loading decodes the rows back to their original dtype and refits the index.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from tfforensics.baselines.eigenfaces import SubsetPCA
from tfforensics.baselines.prnu import PRNUClassifier
from tfforensics.io.atomic import atomic_open

FORMAT = "tfforensics-baseline"
FORMAT_VERSION = 2
#: Up to this many distinct values, kNN rows are stored as uint8 codes into a table.
TABLE_SIZE = 256
CLASSES = {cls.__name__: cls for cls in (PRNUClassifier, SubsetPCA, LinearSVC, KNeighborsClassifier)}
_HEADER = "__header__"


def _plain(value):
    """JSON-ready copy of parameter / attribute values (tuples become lists)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store a value of type {type(value).__name__} in a baseline file")


def _compact_rows(X: np.ndarray, key: str, arrays: dict) -> dict:
    """Store kNN rows ``X`` under ``key`` in the smallest form they allow (module docstring)."""
    entry = {"array": key, "dtype": X.dtype.str}
    sample = X.ravel()[:: max(1, X.size // 100_000)]
    if X.dtype.kind == "f" and len(np.unique(sample)) <= TABLE_SIZE:
        table, codes = np.unique(X, return_inverse=True)
        if len(table) <= TABLE_SIZE:
            arrays[key] = codes.reshape(X.shape).astype(np.uint8)
            arrays[key + ".table"] = table
            return dict(entry, encoding="table", table=key + ".table")
    if X.dtype.kind == "f" and X.dtype.itemsize > 2 and np.isfinite(X).all() and np.abs(X).max() <= np.finfo(np.float16).max:
        arrays[key] = X.astype(np.float16)
        return dict(entry, encoding="float16")
    arrays[key] = X
    return entry


def _decode_rows(entry: dict, arrays) -> np.ndarray:
    """The kNN rows of ``entry``, back in their stored dtype."""
    X = arrays[entry["array"]]
    if entry.get("encoding") == "table":
        return arrays[entry["table"]][X]
    if entry.get("encoding") == "float16":
        return X.astype(np.dtype(entry["dtype"]))
    return X


def _describe(estimator, prefix: str, arrays: dict) -> dict:
    if isinstance(estimator, Pipeline):
        return {"class": "Pipeline",
                "steps": [[name, _describe(step, f"{prefix}{name}.", arrays)] for name, step in estimator.steps]}
    name = type(estimator).__name__
    if CLASSES.get(name) is not type(estimator):
        raise TypeError(f"{name} cannot be saved as a baseline; supported: {sorted(CLASSES)} and Pipelines of them")
    if isinstance(estimator, KNeighborsClassifier):
        fitted = {"fit_X": estimator._fit_X, "fit_y": estimator.classes_[estimator._y]}
    else:
        fitted = {k: v for k, v in vars(estimator).items() if k.endswith("_") and not k.startswith("_")}
    state = {}
    for key, value in fitted.items():
        if key == "fit_X":
            state[key] = _compact_rows(np.asarray(value), prefix + key, arrays)
        elif isinstance(value, np.ndarray):
            if value.dtype == object:
                raise TypeError(f"{name}.{key} holds Python objects; it cannot be stored without pickle")
            arrays[prefix + key] = value
            state[key] = {"array": prefix + key}
        else:
            state[key] = {"value": _plain(value), "tuple": isinstance(value, tuple)}
    return {"class": name, "params": _plain(estimator.get_params(deep=False)), "state": state}


def _build(description: dict, arrays):
    if description["class"] == "Pipeline":
        return Pipeline([(name, _build(step, arrays)) for name, step in description["steps"]])
    cls = CLASSES.get(description["class"])
    if cls is None:
        raise ValueError(f"unknown estimator class {description['class']!r} in baseline file; supported: {sorted(CLASSES)}")
    estimator = cls(**description["params"])
    values = {}
    for key, entry in description["state"].items():
        if "array" in entry:
            values[key] = _decode_rows(entry, arrays) if "encoding" in entry else arrays[entry["array"]]
        else:
            values[key] = tuple(entry["value"]) if entry.get("tuple") else entry["value"]
    if cls is KNeighborsClassifier:
        return estimator.fit(values["fit_X"], values["fit_y"])
    for key, value in values.items():
        setattr(estimator, key, value)
    return estimator


def save_model(path, estimator, info: dict | None = None) -> Path:
    """Write a fitted ``estimator`` (and JSON-ready ``info``) to ``path`` (.npz) atomically."""
    path = Path(path)
    arrays: dict = {}
    header = {"format": FORMAT, "format_version": FORMAT_VERSION,
              "estimator": _describe(estimator, "", arrays), "info": _plain(info or {})}
    with atomic_open(path, "wb") as handle:
        np.savez(handle, **{_HEADER: np.array(json.dumps(header))}, **arrays)
    return path


def load_model(path):
    """``(estimator, info)`` from a file written by :func:`save_model`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: baseline model not found; run `tfforensics baselines train` first.")
    with np.load(path, allow_pickle=False) as data:
        if _HEADER not in data.files:
            raise ValueError(f"{path}: not a tfforensics baseline file (no header).")
        header = json.loads(str(data[_HEADER]))
        if header.get("format") != FORMAT or header.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(f"{path}: baseline format {header.get('format_version')} is not supported by this tfforensics.")
        arrays = {key: data[key] for key in data.files if key != _HEADER}
    return _build(header["estimator"], arrays), header["info"]
