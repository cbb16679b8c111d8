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
import os
import zipfile
from pathlib import Path

import numpy as np
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from tfforensics.baselines.eigenfaces import SubsetPCA
from tfforensics.baselines.prnu import PRNUClassifier
from tfforensics.baselines.svm import NewtonLinearSVC
from tfforensics.errors import MissingInputError, UserError
from tfforensics.io.atomic import atomic_open

FORMAT = "tfforensics-baseline"
FORMAT_VERSION = 2
#: Up to this many distinct values, kNN rows are stored as uint8 codes into a table.
TABLE_SIZE = 256
CLASSES = {cls.__name__: cls for cls in (PRNUClassifier, SubsetPCA, LinearSVC, NewtonLinearSVC, KNeighborsClassifier)}
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
    if X.dtype.kind == "f":
        sample = X.ravel()[:: max(1, X.size // 100_000)]
        table = np.unique(sample)
        if len(table) <= TABLE_SIZE:
            codes = _codes_in(table, X)
            if codes is None:  # values the sample missed: the whole array's table (a sort)
                table, codes = np.unique(X, return_inverse=True)
                codes = codes.reshape(X.shape).astype(np.uint8) if len(table) <= TABLE_SIZE else None
            if codes is not None:
                arrays[key], arrays[key + ".table"] = codes, table
                return dict(entry, encoding="table", table=key + ".table")
    if X.dtype.kind == "f" and X.dtype.itemsize > 2 and np.isfinite(X).all() and np.abs(X).max() <= np.finfo(np.float16).max:
        arrays[key] = X.astype(np.float16)
        return dict(entry, encoding="float16")
    arrays[key] = X
    return entry


def _codes_in(table: np.ndarray, X: np.ndarray, chunk: int = 1 << 20):
    """uint8 indices of ``X``'s values into the sorted ``table``, or None if one is not in it.

    A binary search per value, a million at a time: linear in ``X`` where ``np.unique(X)``
    would sort it (~10 s for the benchmark's 43 M pixel values).
    """
    flat, codes = X.reshape(-1), np.empty(X.size, np.uint8)
    for start in range(0, flat.size, chunk):
        part = flat[start:start + chunk]
        index = np.minimum(np.searchsorted(table, part), len(table) - 1)
        if not np.array_equal(table[index], part):
            return None
        codes[start:start + chunk] = index
    return codes.reshape(X.shape)


def _decode_rows(entry: dict, arrays) -> np.ndarray:
    """The kNN rows of ``entry``, back in their stored dtype (every field checked first)."""
    X = arrays[entry["array"]]
    try:
        dtype = np.dtype(entry["dtype"])
    except (TypeError, ValueError):
        dtype = None
    if dtype is None or dtype.kind not in "fiu" or dtype.itemsize > 8:
        raise _NotOurs(f"the kNN rows declare dtype {entry['dtype']!r}")
    encoding = entry.get("encoding")
    if encoding == "table":
        table = arrays.get(entry.get("table")) if isinstance(entry.get("table"), str) else None
        if (table is None or table.ndim != 1 or not 0 < len(table) <= TABLE_SIZE or X.dtype != np.uint8
                or (X.size and int(X.max()) >= len(table))):
            raise _NotOurs("the kNN rows' value table is missing or does not match their codes")
        return table.astype(dtype, copy=False)[X]
    if encoding == "float16":
        if X.dtype != np.float16:
            raise _NotOurs(f"the kNN rows are marked float16 but stored as {X.dtype}")
        return X.astype(dtype)
    if encoding is not None or "table" in entry:
        raise _NotOurs(f"the kNN rows have an unknown encoding {encoding!r}")
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


class _NotOurs(Exception):
    """Raised inside :func:`load_estimator` with the reason; becomes one :class:`UserError` there."""


#: Pipelines nest at most this deep (ours: one level).
MAX_DEPTH = 3


def _build(description, arrays, depth: int = 0):
    """Rebuild an estimator from its header entry, checking every field the header may hold."""
    if not isinstance(description, dict) or depth > MAX_DEPTH:
        raise _NotOurs("an estimator entry is not an object")
    if description.get("class") == "Pipeline":
        steps = description.get("steps")
        if set(description) != {"class", "steps"} or not isinstance(steps, list) or not steps or not all(
                isinstance(step, list) and len(step) == 2 and isinstance(step[0], str) for step in steps):
            raise _NotOurs("a Pipeline entry has no valid steps")
        return Pipeline([(name, _build(step, arrays, depth + 1)) for name, step in steps])
    cls = CLASSES.get(description.get("class")) if isinstance(description.get("class"), str) else None
    if cls is None:
        raise _NotOurs(f"unknown estimator class {description.get('class')!r} (supported: {sorted(CLASSES)})")
    if set(description) != {"class", "params", "state"}:
        raise _NotOurs(f"the {cls.__name__} entry has keys {sorted(description)}, expected class, params, state")
    params, state = description["params"], description["state"]
    allowed = set(cls._get_param_names())
    if not isinstance(params, dict) or set(params) - allowed:
        raise _NotOurs(f"{cls.__name__} has no parameter(s) {sorted(set(params) - allowed) if isinstance(params, dict) else params!r}")
    if not isinstance(state, dict):
        raise _NotOurs(f"the {cls.__name__} state is not an object")
    values = {}
    for key, entry in state.items():
        fitted = key in ("fit_X", "fit_y") if cls is KNeighborsClassifier else (
            key.endswith("_") and not key.startswith("_") and key.isidentifier())
        if not fitted or not isinstance(entry, dict):
            raise _NotOurs(f"{cls.__name__} state {key!r} is not a fitted attribute")
        if "array" in entry:
            if entry["array"] not in arrays:
                raise _NotOurs(f"{cls.__name__} state {key!r} names a missing array {entry['array']!r}")
            if set(entry) == {"array"}:
                values[key] = arrays[entry["array"]]
            elif key == "fit_X" and set(entry) in ({"array", "dtype"}, {"array", "dtype", "encoding"},
                                                   {"array", "dtype", "encoding", "table"}):
                values[key] = _decode_rows(entry, arrays)
            else:
                raise _NotOurs(f"{cls.__name__} state {key!r} has keys {sorted(entry)}")
        elif set(entry) == {"value", "tuple"}:
            values[key] = tuple(entry["value"]) if entry["tuple"] and isinstance(entry["value"], list) else entry["value"]
        else:
            raise _NotOurs(f"{cls.__name__} state {key!r} is neither an array nor a value")
    estimator = cls(**params)
    if hasattr(estimator, "_validate_params"):
        try:
            estimator._validate_params()  # scikit-learn's declared parameter constraints
        except (ValueError, TypeError) as error:
            raise _NotOurs(f"{cls.__name__} parameters are invalid ({error})") from error
    if cls is KNeighborsClassifier:
        if set(values) != {"fit_X", "fit_y"}:
            raise _NotOurs("the kNN state needs fit_X and fit_y")
        return estimator.fit(values["fit_X"], values["fit_y"])
    for key, value in values.items():
        setattr(estimator, key, value)
    return estimator


def save_estimator(path, estimator, info: dict | None = None) -> Path:
    """Write a fitted ``estimator`` (and JSON-ready ``info``) to ``path`` (.npz) atomically."""
    path = Path(path)
    arrays: dict = {}
    header = {"format": FORMAT, "format_version": FORMAT_VERSION,
              "estimator": _describe(estimator, "", arrays), "info": _plain(info or {})}
    with atomic_open(path, "wb") as handle:
        np.savez(handle, **{_HEADER: np.array(json.dumps(header))}, **arrays)
    return path


def load_estimator(path):
    """``(estimator, info)`` from a file written by :func:`save_estimator`.

    Nothing in the file is unpickled or executed; a file that is not such a model (a
    pickled ``.npz``, another archive, an edited header) raises one :class:`UserError`.
    """
    path = Path(path)
    name = os.fsdecode(path)
    if not path.is_file():
        raise MissingInputError(f"{name}: baseline model not found; run `tfforensics baselines train` first.")
    try:
        try:
            data = np.load(path, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise _NotOurs("it is a single .npy array, not an .npz archive")
            with data:
                if _HEADER not in data.files:
                    raise _NotOurs("it has no tfforensics header")
                arrays = {key: data[key] for key in data.files}
            try:
                header = json.loads(str(arrays.pop(_HEADER)))
            except json.JSONDecodeError:
                raise _NotOurs("its header is not valid JSON") from None
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
            if "pickle" in str(error):
                raise _NotOurs("it holds pickled Python objects, which tfforensics never loads") from None
            raise _NotOurs(f"it is not a readable .npz archive ({type(error).__name__})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT or set(header) != {
                "format", "format_version", "estimator", "info"}:
            raise _NotOurs("its header is not a tfforensics baseline header")
        version = header["format_version"]
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise _NotOurs(f"its format_version is {version!r}")
        if version > FORMAT_VERSION:
            raise UserError(f"{name}: baseline format {version} is newer than this tfforensics reads "
                            f"({FORMAT_VERSION}); upgrade tfforensics.")
        if any(a.dtype.kind not in "biufUS" for a in arrays.values()):
            raise _NotOurs("it holds arrays that are not numbers or strings")
        if not isinstance(header["info"], dict):
            raise _NotOurs("its info is not an object")
        return _build(header["estimator"], arrays), header["info"]
    except _NotOurs as reason:
        raise UserError(f"{name}: is not a tfforensics baselines model: {reason}; train one with "
                        "`tfforensics baselines train`.") from None
