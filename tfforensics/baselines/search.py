"""Grid search, training and testing of the baselines on prepared datasets.

The grid search fits on the train split and scores on the val split through
scikit-learn's ``PredefinedSplit`` and ``cross_validate``; grid points run in
``joblib.Parallel``, so any joblib backend (loky by default, Dask or Ray via
``joblib.parallel_backend``) can spread them. The parent process writes the results JSON
atomically after every finished point, and a re-run skips the points already there: an
interrupted search continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import time
import uuid
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from tfforensics.baselines.eigenfaces import C_GRID, PCA_FIT_SIZE, VARIANCE_GRID, make_eigenfaces
from tfforensics.baselines.knn import K_GRID, knn_grid, make_knn
from tfforensics.baselines.persist import load_model, save_model
from tfforensics.baselines.prnu import PRNUClassifier
from tfforensics.data.manifest import Manifest
from tfforensics.io.atomic import atomic_write_json

logger = logging.getLogger(__name__)

#: PRNU grid of the original: 1..4 levels x sigma 0.05 ... 0.95.
LEVELS_GRID = (1, 2, 3, 4)
SIGMA_GRID = tuple(float(s) for s in np.round(np.arange(1, 20) * 0.05, 2))
RESULTS_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Method:
    """One baseline: how to build it, its default grid, and what input it needs."""

    name: str
    build: Callable  # (params: dict, image_shape, n_jobs) -> estimator
    grid: Callable  # (n_train) -> {param: values}
    defaults: dict
    needs_pixels: bool = False


def _build_prnu(params, image_shape, n_jobs=None):
    return PRNUClassifier(image_shape=tuple(image_shape)).set_params(**params)


def _build_eigenfaces(params, image_shape, n_jobs=None):
    return make_eigenfaces(pca_fit_size=PCA_FIT_SIZE).set_params(**params)


def _build_knn(params, image_shape, n_jobs=None):
    return make_knn(n_jobs=n_jobs).set_params(**params)


METHODS = {
    "prnu": Method("prnu", _build_prnu, lambda n: {"levels": list(LEVELS_GRID), "sigma": list(SIGMA_GRID)},
                   {"levels": 4, "sigma": 0.5}, needs_pixels=True),
    "eigenfaces": Method("eigenfaces", _build_eigenfaces,
                         lambda n: {"pca__n_components": list(VARIANCE_GRID), "svm__C": list(C_GRID)},
                         {"pca__n_components": 0.95, "svm__C": 1e-2}),
    "knn": Method("knn", _build_knn, lambda n: knn_grid(n, K_GRID), {"n_neighbors": 1}),
}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown baseline {name!r}; choose one of {sorted(METHODS)}.")
    return METHODS[name]


# ## Data

def to_pixels(X: np.ndarray, manifest) -> np.ndarray:
    """Undo a raw encoding (statistics, then ``x / 127.5 - 1``): pixel values 0..255."""
    encoding = manifest.encoding
    if encoding.transform != "raw":
        raise ValueError(
            f"{manifest.root}: PRNU works on pixels but this dataset holds {encoding.describe()} values; "
            "prepare the images with `tfforensics prepare --raw` for PRNU."
        )
    X = X.astype(np.float64)
    if encoding.needs_statistics:
        statistics = manifest.load_statistics()
        if encoding.normalize:
            X = X * statistics["std"] + statistics["mean"]
        if encoding.abs_scale:
            X = X * statistics["max_abs"]
    return ((X + 1.0) * 127.5).astype(np.float32)


def load_split(dataset, split: str, method: Method):
    """``(X flattened, y, manifest)`` of one split, in the form ``method`` consumes."""
    from tfforensics.data.reader import as_numpy

    manifest = Manifest.load(dataset)
    if manifest.count(split) == 0:
        raise ValueError(f"{manifest.root}: the {split} split is empty; prepare the dataset with a non-empty {split} split.")
    X, y = as_numpy(manifest, split)
    if method.needs_pixels:
        X = to_pixels(X, manifest)
    return X.reshape(len(X), -1), y, manifest


def dataset_name(dataset) -> str:
    return Manifest.load(dataset).root.resolve().name


# ## Results file

def results_path(out, method: str) -> Path:
    return Path(out) / f"grid_search_{method}.json"


def model_path(out, method: str, dataset) -> Path:
    return Path(out) / f"{method}_{dataset_name(dataset)}.npz"


def point_key(params: dict) -> str:
    """Stable text key of a grid point (sorted JSON)."""
    return json.dumps({k: (v.item() if isinstance(v, np.generic) else v) for k, v in params.items()}, sort_keys=True)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def load_results(path) -> dict:
    path = Path(path)
    if not path.is_file():
        return {"version": RESULTS_VERSION, "runs": [], "datasets": {}}
    from tfforensics.errors import UserError

    try:
        with open(path, encoding="utf-8") as handle:
            results = json.load(handle)
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: cannot be read as a tfforensics results file ({error}); move it away or use "
                        "another --out.") from None
    if not isinstance(results, dict) or not isinstance(results.get("version", 0), int):
        raise UserError(f"{path}: is not a tfforensics results file; move it away or use another --out.")
    if results.get("version", 0) > RESULTS_VERSION:
        raise UserError(f"{path}: written by a newer tfforensics; upgrade or use another --out.")
    for key, kind in (("runs", list), ("datasets", dict)):
        if not isinstance(results.setdefault(key, kind()), kind):
            raise UserError(f"{path}: field {key!r} must be a JSON {'list' if kind is list else 'object'}; the file "
                            "was edited or is not a tfforensics results file: move it away or use another --out.")
    return results


def best_point(entry: dict, keys=None):
    """``(params, val_accuracy)`` of the best finished point (first in grid order on ties)."""
    points = entry.get("points", {})
    keys = [k for k in (keys if keys is not None else points) if k in points]
    if not keys:
        return None, None
    best = max(keys, key=lambda k: points[k]["val_accuracy"])  # max keeps the first maximum
    return points[best]["params"], points[best]["val_accuracy"]


# ## Grid search

def _evaluate(estimator, params: dict, X, y, cv) -> dict:
    """Fit ``estimator`` with ``params`` on the train fold, score on the val fold."""
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import cross_validate

    model = clone(estimator).set_params(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_validate(model, X, y, cv=cv, n_jobs=1, error_score="raise")
    return {"params": params, "val_accuracy": float(scores["test_score"][0]),
            "fit_time": float(scores["fit_time"][0]), "score_time": float(scores["score_time"][0])}


def grid_search(method: str, dataset, out, *, grid: dict | None = None, n_jobs: int | None = 1,
                refit: bool = True, progress: bool = True) -> dict:
    """Search ``grid`` (default: the original's) on ``dataset``; returns the summary row.

    Results go to ``out/grid_search_<method>.json``, rewritten after every point. Points
    already there for the same dataset (same manifest fingerprint) are not recomputed.
    With ``refit``, the best point is trained on the train split, saved as
    ``out/<method>_<dataset>.npz`` and tested on the test split.
    """
    import joblib
    from sklearn.model_selection import ParameterGrid, PredefinedSplit
    from tqdm.auto import tqdm

    spec = get_method(method)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    X_train, y_train, manifest = load_split(dataset, "train", spec)
    X_val, y_val, _ = load_split(dataset, "val", spec)
    param_grid = spec.grid(len(X_train))
    if grid:
        param_grid.update({k: list(v) for k, v in grid.items()})
    points = [dict(p) for p in ParameterGrid(param_grid)]
    keys = [point_key(p) for p in points]

    path = results_path(out, method)
    results = load_results(path)
    fingerprint = manifest.source.get("sha256", "")
    dataset_key = str(manifest.root.resolve())
    entry = results["datasets"].get(dataset_key)
    if entry is not None and entry.get("fingerprint") != fingerprint:
        logger.warning("%s: the dataset changed since the last search; its old results are discarded.", dataset_key)
        entry = None
    if entry is None:
        entry = results["datasets"][dataset_key] = {
            "name": manifest.root.name, "fingerprint": fingerprint, "encoding": manifest.encoding.describe(),
            "image_shape": list(manifest.image_shape), "n_train": len(X_train), "n_val": len(X_val), "points": {},
        }
    todo = [(k, p) for k, p in zip(keys, points) if k not in entry["points"]]
    run = {"id": uuid.uuid4().hex[:12], "dataset": dataset_key, "started_at": _now(), "pid": os.getpid(),
           "n_jobs": n_jobs, "planned": len(todo), "computed": 0, "reused": len(points) - len(todo)}
    results["runs"].append(run)
    atomic_write_json(path, results)
    if run["reused"]:
        logger.info("%s: %d of %d grid points already done; computing %d.", manifest.root.name, run["reused"],
                    len(points), len(todo))

    estimator = spec.build({}, manifest.image_shape)
    X = np.concatenate([X_train, X_val])
    y = np.concatenate([y_train, y_val])
    cv = PredefinedSplit(np.r_[np.full(len(X_train), -1), np.zeros(len(X_val), dtype=int)])
    by_key = dict(todo)
    jobs = (joblib.delayed(_evaluate)(estimator, params, X, y, cv) for params in by_key.values())
    bar = tqdm(total=len(points), initial=len(points) - len(todo), desc=f"{method} grid ({manifest.root.name})",
               unit="point", disable=not progress, dynamic_ncols=True)
    try:
        for result in joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered")(jobs):
            key = point_key(result["params"])
            entry["points"][key] = dict(result, run=run["id"], finished_at=_now())
            run["computed"] += 1
            atomic_write_json(path, results)
            bar.update(1)
    finally:
        bar.close()

    params, val_accuracy = best_point(entry, keys)
    entry["best"] = {"params": params, "val_accuracy": val_accuracy}
    run["finished_at"] = _now()
    atomic_write_json(path, results)
    row = {"dataset": manifest.root.name, "method": method, "params": params, "val_accuracy": val_accuracy,
           "test_accuracy": None, "model": None}
    if refit:
        trained = train(method, dataset, out, params=params, n_jobs=n_jobs)
        row.update(test_accuracy=trained["test_accuracy"], model=trained["model"])
        entry["best"].update(test_accuracy=trained["test_accuracy"], model=trained["model"])
        atomic_write_json(path, results)
    return row


# ## Train and test

def resolve_params(method: str, dataset, out, params: dict | None) -> dict:
    """Given params, else the best of a finished grid search in ``out``, else the defaults."""
    spec = get_method(method)
    chosen = dict(spec.defaults)
    if not params:
        results = load_results(results_path(out, method))
    
        entry = results["datasets"].get(str(Manifest.load(dataset).root.resolve()))
        best, _ = best_point(entry or {})
        if best:
            logger.info("Using the best grid-search point for %s: %s", dataset_name(dataset), best)
            chosen.update(best)
    else:
        chosen.update(params)
    return chosen


def train(method: str, dataset, out, *, params: dict | None = None, n_jobs: int | None = None,
          test_split: str = "test") -> dict:
    """Fit ``method`` on the train split, save it to ``out``, and test it; returns the row."""
    spec = get_method(method)
    params = resolve_params(method, dataset, out, params)
    X_train, y_train, manifest = load_split(dataset, "train", spec)
    estimator = spec.build(params, manifest.image_shape, n_jobs)
    start = time.perf_counter()
    with warnings.catch_warnings():
        from sklearn.exceptions import ConvergenceWarning

        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X_train, y_train)
    fit_time = time.perf_counter() - start
    path = save_model(model_path(out, method, dataset), estimator, {
        "method": method, "params": params, "dataset": str(manifest.root.resolve()),
        "dataset_fingerprint": manifest.source.get("sha256", ""), "encoding": dataclasses.asdict(manifest.encoding),
        "image_shape": list(manifest.image_shape), "class_names": list(manifest.class_names),
        "n_train": len(X_train), "fit_time": fit_time, "trained_at": _now(),
    })
    logger.info("Saved %s", path)
    row = test(method, dataset, out, model=path, split=test_split)
    return row


def test(method: str, dataset, out, *, model=None, split: str = "test") -> dict:
    """Score a saved baseline on ``split`` of ``dataset``; appends to ``out/test_<method>.json``."""
    spec = get_method(method)
    model = Path(model) if model else model_path(out, method, dataset)
    estimator, info = load_model(model)
    if info.get("method", method) != method:
        raise ValueError(f"{model}: holds a {info.get('method')} baseline, not {method}; pass the matching method.")
    X, y, manifest = load_split(dataset, split, spec)
    if info.get("encoding") and info["encoding"] != dataclasses.asdict(manifest.encoding):
        logger.warning("%s: encoded as %s, but %s was trained on another encoding.", manifest.root.name,
                       manifest.encoding.describe(), model.name)
    if info.get("class_names") and info["class_names"] != list(manifest.class_names):
        logger.warning("%s: classes %s differ from the %s that %s was trained on; labels are compared by index.",
                       manifest.root.name, manifest.class_names, info["class_names"], model.name)
    n_features = estimator.n_features_in_  # a Pipeline reports its first step's
    if X.shape[1] != n_features:
        raise ValueError(
            f"{manifest.root}: images of shape {manifest.image_shape} ({X.shape[1]} values) but {model.name} was "
            f"trained on {n_features} values; test on a dataset prepared like the training one."
        )
    accuracy = float(estimator.score(X, y))
    row = {"dataset": manifest.root.name, "method": method, "params": info.get("params"),
           "val_accuracy": None, "test_accuracy": accuracy, "model": str(model), "split": split,
           "n_test": len(X), "tested_at": _now()}
    path = Path(out) / f"test_{method}.json"
    previous = json.loads(path.read_text()) if path.is_file() else []
    atomic_write_json(path, previous + [row])
    return row


def format_table(rows) -> str:
    """Plain-text table of result rows (dataset, method, params, val and test accuracy)."""
    def cell(value):
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.4f}"
        if isinstance(value, dict):
            return " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items())
        return str(value)

    header = ["dataset", "method", "params", "val acc", "test acc"]
    body = [[cell(r.get("dataset")), cell(r.get("method")), cell(r.get("params")), cell(r.get("val_accuracy")),
             cell(r.get("test_accuracy"))] for r in rows]
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    lines = ["  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip() for line in [header] + body]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
