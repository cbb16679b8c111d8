"""Saving fitted baselines without pickles: one ``.npz`` of arrays plus a JSON header.

Only the estimator classes listed in :data:`CLASSES` can be stored or rebuilt, so loading
a file never runs code it names. Fitted state is the public ``*_`` attributes of each
estimator (arrays and plain values); a kNN keeps its training rows and is refitted on
load (fitting a kNN only indexes them).
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
FORMAT_VERSION = 1
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
        if isinstance(value, np.ndarray):
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
            values[key] = arrays[entry["array"]]
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
