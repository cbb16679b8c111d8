"""Grid search, training and testing of the baselines on prepared datasets.

The grid search fits on the train split and scores on the val split through
scikit-learn's ``PredefinedSplit`` and ``cross_validate``; grid points run in
``joblib.Parallel``, so any joblib backend (loky by default, Dask with ``backend="dask"``,
or any other via ``joblib.parallel_backend``) can spread them. The parent process writes the results JSON
atomically after every finished point, and a re-run skips the points already there: an
interrupted search continues where it stopped.

Eigenfaces points share their SVD: the PCA is fitted once per training fold with all
components and cut to each variance level (:meth:`SubsetPCA.truncate`), which gives the
same arrays, hence the same scores, as fitting the pipeline of every point from scratch;
only the linear SVMs run per point. Inside :func:`session` (``grid_search`` opens one),
every split is decoded once, and the refit of the best eigenfaces point reuses the fold's
SVD (the train fold is the train split).
"""

from __future__ import annotations

import contextlib
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
from tfforensics.baselines.persist import load_estimator, save_estimator
from tfforensics.baselines.prnu import PRNUClassifier
from tfforensics.data.manifest import Manifest
from tfforensics.errors import UserError
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
    #: ``(estimator, points, X, y, cv, shared) -> joblib jobs`` for methods whose points share
    #: work; ``None``: one :func:`_evaluate` job per point.
    jobs: Callable | None = None
    #: joblib's ``prefer`` for the point jobs ("threads" where they release the GIL).
    prefer: str | None = None


def _build_prnu(params, image_shape, n_jobs=None):
    return PRNUClassifier(image_shape=tuple(image_shape)).set_params(**params)


def _build_eigenfaces(params, image_shape, n_jobs=None):
    return make_eigenfaces(pca_fit_size=PCA_FIT_SIZE).set_params(**params)


def _build_knn(params, image_shape, n_jobs=None):
    return make_knn(n_jobs=n_jobs).set_params(**params)


def _one_split(cv, X, y, what: str):
    """``(train rows, val rows)`` of a one-split ``cv``, the only kind the shared-work jobs take."""
    if not hasattr(cv, "split") or cv.get_n_splits() != 1:
        raise ValueError(f"{what} over one train/val split (a PredefinedSplit).")
    (train_rows, val_rows), = cv.split(X, y)
    return train_rows, val_rows


def _eigenfaces_jobs(estimator, points, X, y, cv, shared: dict):
    """Jobs for eigenfaces points: one full SVD per group of points that differ only in
    ``pca__n_components`` and ``svm__*``, fitted here (in the dispatching process), then
    one linear-SVM job per path of growing C on each cut projection (:func:`_c_paths`).
    ``shared`` receives the fitted full PCAs, keyed by :func:`point_key` of the other PCA
    parameters."""
    import joblib
    from sklearn.base import clone

    train_rows, val_rows = _one_split(cv, X, y, "eigenfaces points share their SVD")
    X_train, y_train, X_val, y_val = X[train_rows], y[train_rows], X[val_rows], y[val_rows]
    groups: dict = {}
    for params in points:
        pca_params = {k.split("__", 1)[1]: v for k, v in params.items()
                      if k.startswith("pca__") and k != "pca__n_components"}
        if any(not k.startswith(("pca__", "svm__")) for k in params):
            raise ValueError(f"eigenfaces grid parameters must be pca__* or svm__*; received {sorted(params)}.")
        variance = params.get("pca__n_components", estimator.named_steps["pca"].n_components)
        group = groups.setdefault(point_key(pca_params), (pca_params, {}))
        group[1].setdefault(variance, []).append(params)
    for key, (pca_params, by_variance) in groups.items():
        start = time.perf_counter()
        pca = estimator.named_steps["pca"]
        solver = pca.svd_solver if pca.svd_solver in ("full", "gram") else "full"  # the two truncate can cut
        full = clone(pca).set_params(**pca_params, n_components=None, svd_solver=solver)
        full.fit(X_train, y_train)
        svd_time = time.perf_counter() - start
        shared[key] = full
        for variance, group in by_variance.items():
            start = time.perf_counter()
            cut = full.truncate(variance)
            Z_train, Z_val = cut.transform(X_train), cut.transform(X_val)
            project_time = time.perf_counter() - start
            extra = {"n_components": int(cut.n_components_), "shared_svd_time": svd_time,
                     "shared_projection_time": project_time}
            for path in _c_paths(estimator.named_steps["svm"], group):
                yield joblib.delayed(_fit_score_path)(estimator.named_steps["svm"], path, Z_train, y_train, Z_val,
                                                      y_val, extra)


def _c_paths(svm, points: list[dict]) -> list[list[dict]]:
    """The points of one PCA cut as paths of growing ``svm__C`` (the other SVM parameters equal),
    each fitted warm-started from the one before (:func:`_fit_score_path`), for an SVM that can
    (``warm_start``); one point per path otherwise."""
    if "warm_start" not in svm.get_params():
        return [[params] for params in points]
    paths: dict = {}
    for params in points:
        others = {k: v for k, v in params.items() if k != "svm__C"}
        paths.setdefault(point_key(others), []).append(params)
    return [sorted(path, key=lambda params: params.get("svm__C", svm.C)) for path in paths.values()]


def _fit_score_path(svm, path: list[dict], X_train, y_train, X_val, y_val, extra: dict) -> list[dict]:
    """:func:`_fit_score` of each point of ``path`` in turn, each SVM fit starting from the solution
    of the point before where the SVM can (``warm_start``: the same minimiser, reached in fewer
    Newton steps; see :class:`~tfforensics.baselines.svm.NewtonLinearSVC`). Each point keeps its
    own model, with the SVM's own ``warm_start`` setting."""
    import copy

    from sklearn.base import clone

    model = clone(svm)
    warm = "warm_start" in model.get_params()
    results = []
    for index, params in enumerate(path):
        settings = {k.split("__", 1)[1]: v for k, v in params.items() if k.startswith("svm__")}
        if warm:
            settings["warm_start"] = index > 0
        model.set_params(**settings)
        result = _fit_score(model, params, X_train, y_train, X_val, y_val, {**extra, "warm_started": warm and index > 0})
        if index + 1 < len(path):  # the next point fits `model` on: this one keeps a copy
            result[FITTED] = copy.deepcopy(model)
        if warm:
            result[FITTED].set_params(warm_start=svm.warm_start)
        results.append(result)
    return results


def _knn_jobs(estimator, points, X, y, cv, shared: dict):
    """Jobs for kNN points: the val split's neighbours are found once per group of points that
    differ only in ``n_neighbors`` (at the group's largest k, here in the dispatching process),
    then each point votes among its first k. With uniform weights that is the prediction of
    a ``KNeighborsClassifier`` fitted with that k: the same k nearest, and a tied vote goes
    to the first class, as scikit-learn's ``argmax`` of the class frequencies does. (Where
    training images lie at exactly the same distance, which of them is among the k nearest
    depends on k in scikit-learn itself; there the vote may count the other one.) Other
    weightings are scored point by point (:func:`_evaluate`)."""
    import joblib
    from sklearn.base import clone

    train_rows, val_rows = _one_split(cv, X, y, "kNN points share their neighbour search")
    groups: dict = {}
    for params in points:
        model = clone(estimator).set_params(**params)
        if model.weights != "uniform":
            yield joblib.delayed(_evaluate)(estimator, params, X, y, cv)
            continue
        others = {k: v for k, v in params.items() if k != "n_neighbors"}
        groups.setdefault(point_key(others), (others, []))[1].append((model.n_neighbors, params))
    for others, members in groups.values():
        largest = max(k for k, _ in members)
        start = time.perf_counter()
        model = clone(estimator).set_params(**others, n_neighbors=largest).fit(X[train_rows], y[train_rows])
        neighbours = model.kneighbors(X[val_rows], return_distance=False)  # nearest first
        votes = np.searchsorted(model.classes_, y[train_rows])[neighbours]
        search_time = time.perf_counter() - start
        for k, params in members:
            yield joblib.delayed(_vote_score)(votes[:, :k], model.classes_, y[val_rows], params,
                                              {"shared_neighbours_time": search_time, "shared_neighbours_k": largest})


def _vote_score(votes: np.ndarray, classes: np.ndarray, y_val: np.ndarray, params: dict, extra: dict) -> dict:
    """Val accuracy of the majority vote of ``votes`` (class indices of each sample's k nearest)."""
    start = time.perf_counter()
    counts = np.zeros((len(votes), len(classes)), dtype=np.int64)
    np.add.at(counts, (np.arange(len(votes))[:, None], votes), 1)
    predicted = classes[np.argmax(counts, axis=1)]  # ties: the first class
    return {"params": params, "val_accuracy": float(np.mean(predicted == y_val)), "fit_time": 0.0,
            "score_time": time.perf_counter() - start, **extra}


def _fit_score(model, params: dict, X_train, y_train, X_val, y_val, extra: dict) -> dict:
    """Fit ``model`` on the train fold, score it on the val fold (as ``cross_validate`` does)."""
    start = time.perf_counter()
    model.fit(X_train, y_train)  # grid_search silences ConvergenceWarning; `converged` records it
    fit_time = time.perf_counter() - start
    start = time.perf_counter()
    accuracy = float(model.score(X_val, y_val))
    return {"params": params, "val_accuracy": accuracy, "fit_time": fit_time,
            "score_time": time.perf_counter() - start, **extra, "converged": _converged(model), FITTED: model}


#: Key of a point result that carries its fitted model back to the search (not written to the results file).
FITTED = "_fitted"


def _converged(model) -> bool | None:
    """Whether a fitted liblinear model stopped before ``max_iter`` (None: not iterative)."""
    model = model.steps[-1][1] if hasattr(model, "steps") else model
    n_iter, max_iter = getattr(model, "n_iter_", None), getattr(model, "max_iter", None)
    if n_iter is None or max_iter is None:
        return None
    return bool(np.max(n_iter) < max_iter)


def _eigenfaces_from_shared(estimator, params: dict, X_train, y_train, shared: dict):
    """Fit the eigenfaces pipeline of ``params`` from a full PCA of the same train split in
    ``shared`` (None when there is none): the same model as ``estimator.fit``. The search's
    own fit of this point (same cut, same train split) is taken when ``shared`` has it,
    so the refit of the best point is not a second SVM fit (where the search warm-started
    it along its C path, the same minimiser to about 1e-15 of the weights' scale)."""
    pca_params = {k.split("__", 1)[1]: v for k, v in params.items()
                  if k.startswith("pca__") and k != "pca__n_components"}
    full = shared.pop(point_key(pca_params), None)
    if full is None:
        return None
    pca = full.truncate(estimator.named_steps["pca"].n_components)
    fitted = shared.pop(("svm", point_key(params)), None)  # the search fitted this point on the same cut
    if fitted is not None:
        estimator.steps[1] = ("svm", fitted)
    else:
        estimator.named_steps["svm"].fit(pca.transform(X_train), y_train)
    estimator.steps[0] = ("pca", pca)
    return estimator


METHODS = {
    "prnu": Method("prnu", _build_prnu, lambda n: {"levels": list(LEVELS_GRID), "sigma": list(SIGMA_GRID)},
                   {"levels": 4, "sigma": 0.5}, needs_pixels=True),
    "eigenfaces": Method("eigenfaces", _build_eigenfaces,
                         lambda n: {"pca__n_components": list(VARIANCE_GRID), "svm__C": list(C_GRID)},
                         {"pca__n_components": 0.95, "svm__C": 1e-2}, jobs=_eigenfaces_jobs, prefer="threads"),
    "knn": Method("knn", _build_knn, lambda n: knn_grid(n, K_GRID), {"n_neighbors": 1}, jobs=_knn_jobs),
}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise UserError(f"unknown baseline {name!r}; choose one of {sorted(METHODS)}.")
    return METHODS[name]


# ## Data

def to_pixels(X: np.ndarray, manifest) -> np.ndarray:
    """Undo a raw encoding (statistics, then ``x / 127.5 - 1``): pixel values 0..255."""
    from tfforensics.data.encodings import from_unit

    encoding = manifest.encoding
    if encoding.transform != "raw":
        raise UserError(
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
    return from_unit(X).astype(np.float32)


#: Stack of the open :func:`session` caches (the innermost is used).
_SESSIONS: list[dict] = []


@contextlib.contextmanager
def session():
    """Within this block every split is decoded once and shared, read-only, by all methods
    (and the refit of the best eigenfaces point reuses its SVD). Nested blocks share the
    outer one; the arrays are released when the outermost block ends."""
    if _SESSIONS:
        yield _SESSIONS[-1]
        return
    _SESSIONS.append({"splits": {}, "svd": {}})
    try:
        yield _SESSIONS[-1]
    finally:
        _SESSIONS.pop()


def _split_key(manifest, split: str, pixels: bool) -> tuple:
    return str(manifest.root.resolve()), manifest.source.get("sha256", ""), split, pixels


def load_split(dataset, split: str, method: Method):
    """``(X flattened, y, manifest)`` of one split, in the form ``method`` consumes.

    Inside :func:`session`, a split already decoded is returned again (read-only arrays).
    """
    from tfforensics.data.reader import as_numpy

    manifest = Manifest.load(dataset)
    if manifest.count(split) == 0:
        raise UserError(f"{manifest.root}: the {split} split is empty; prepare the dataset with a non-empty {split} split.")
    cache = _SESSIONS[-1]["splits"] if _SESSIONS else None
    key = _split_key(manifest, split, method.needs_pixels)
    if cache is not None and key in cache:
        X, y = cache[key]
        return X, y, manifest
    stored = cache.get(_split_key(manifest, split, False)) if cache is not None else None
    X, y = stored if stored is not None else as_numpy(manifest, split)
    if method.needs_pixels:
        X = to_pixels(X, manifest)
    X = X.reshape(len(X), -1)
    if cache is not None:
        X.flags.writeable = False
        y.flags.writeable = False
        cache[key] = (X, y)
    return X, y, manifest


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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        scores = cross_validate(model, X, y, cv=cv, n_jobs=1, error_score="raise")
    for warning in caught:
        if not issubclass(warning.category, ConvergenceWarning):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    result = {"params": params, "val_accuracy": float(scores["test_score"][0]),
              "fit_time": float(scores["fit_time"][0]), "score_time": float(scores["score_time"][0])}
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        result["converged"] = False
    return result


def grid_search(method: str, dataset, out, *, grid: dict | None = None, n_jobs: int | None = 1,
                refit: bool = True, progress: bool = True, backend: str = "local",
                scheduler: str | None = None) -> dict:
    """Search ``grid`` (default: the original's) on ``dataset``; returns the summary row.

    Results go to ``out/grid_search_<method>.json``, rewritten after every point. Points
    already there for the same dataset (same manifest fingerprint) are not recomputed.
    With ``refit``, the best point is trained on the train split, saved as
    ``out/<method>_<dataset>.npz`` and tested on the test split. ``backend="dask"`` runs the
    points on the Dask scheduler at ``scheduler`` (default: a local cluster); see
    :mod:`tfforensics.baselines.backends`.
    """
    from tfforensics.baselines.backends import open_backend

    with open_backend(backend, scheduler, n_jobs) as opened, session():
        return _grid_search(method, dataset, out, grid=grid, n_jobs=n_jobs, refit=refit, progress=progress,
                            backend=opened)


def _open_search(path: Path, manifest, points, keys, n_train: int, n_val: int, n_jobs, backend):
    """The results file's entry for this dataset (discarded if the dataset changed), a new run record,
    and the grid points still to compute. Returns ``(results, entry, run, todo)``."""
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
            "image_shape": list(manifest.image_shape), "n_train": n_train, "n_val": n_val, "points": {},
        }
    todo = [(k, p) for k, p in zip(keys, points) if k not in entry["points"]]
    run = {"id": uuid.uuid4().hex[:12], "dataset": dataset_key, "started_at": _now(), "pid": os.getpid(),
           "n_jobs": n_jobs, **backend.describe(), "planned": len(todo), "computed": 0,
           "reused": len(points) - len(todo)}
    results["runs"].append(run)
    atomic_write_json(path, results)
    if run["reused"]:
        logger.info("%s: %d of %d grid points already done; computing %d.", manifest.root.name, run["reused"],
                    len(points), len(todo))
    return results, entry, run, todo


def _grid_search(method, dataset, out, *, grid, n_jobs, refit, progress, backend) -> dict:
    import joblib
    from sklearn.exceptions import ConvergenceWarning
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
    results, entry, run, todo = _open_search(path, manifest, points, keys, len(X_train), len(X_val), n_jobs, backend)
    dataset_key, fingerprint = run["dataset"], manifest.source.get("sha256", "")

    estimator = spec.build({}, manifest.image_shape)
    X = np.concatenate([X_train, X_val])
    y = np.concatenate([y_train, y_val])
    cv = PredefinedSplit(np.r_[np.full(len(X_train), -1), np.zeros(len(X_val), dtype=int)])
    by_key = dict(todo)
    svd_key = (dataset_key, fingerprint)
    shared = _SESSIONS[-1]["svd"].setdefault(svd_key, {})
    if spec.jobs is not None:
        jobs = spec.jobs(estimator, list(by_key.values()), X, y, cv, shared)
    else:
        jobs = (joblib.delayed(_evaluate)(estimator, params, X, y, cv) for params in by_key.values())
    bar = tqdm(total=len(points), initial=len(points) - len(todo), desc=f"{method} grid ({manifest.root.name})",
               unit="point", disable=not progress, dynamic_ncols=True)
    not_converged = 0
    try:
        with warnings.catch_warnings(), backend.parallel():  # warnings counted below instead, one line per search
            warnings.simplefilter("ignore", ConvergenceWarning)
            parallel = joblib.Parallel(n_jobs=backend.n_jobs, return_as="generator_unordered", prefer=spec.prefer)
            for result in (each for outcome in parallel(jobs)  # a job scores one point, or a list of them
                           for each in (outcome if isinstance(outcome, list) else [outcome])):
                key = point_key(result["params"])
                if (fitted := result.pop(FITTED, None)) is not None:
                    shared[("svm", key)] = fitted  # the refit of the best point takes it (the same fit)
                entry["points"][key] = dict(result, run=run["id"], finished_at=_now())
                run["computed"] += 1
                not_converged += result.get("converged") is False
                atomic_write_json(path, results)
                bar.update(1)
    finally:
        bar.close()
    if not_converged:
        logger.warning("%s: %d of %d %s points stopped at max_iter before converging.", manifest.root.name,
                       not_converged, len(todo), method)

    params, val_accuracy = best_point(entry, keys)
    entry["best"] = {"params": params, "val_accuracy": val_accuracy}
    run["finished_at"] = _now()
    atomic_write_json(path, results)
    row = {"dataset": manifest.root.name, "method": method, "params": params, "val_accuracy": val_accuracy,
           "test_accuracy": None, "model": None}
    if refit:
        trained = train(method, dataset, out, params=params, n_jobs=n_jobs, _shared=shared)
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
          test_split: str = "test", _shared: dict | None = None) -> dict:
    """Fit ``method`` on the train split, save it to ``out``, and test it; returns the row.

    ``_shared``: the full PCAs of a grid search on this train split (eigenfaces only), so
    the refit cuts the SVD it already has instead of computing it again (same model).
    """
    spec = get_method(method)
    params = resolve_params(method, dataset, out, params)
    with session():
        return _train(spec, method, dataset, out, params, n_jobs, test_split, _shared)


def _train(spec, method, dataset, out, params, n_jobs, test_split, shared) -> dict:
    from sklearn.exceptions import ConvergenceWarning

    X_train, y_train, manifest = load_split(dataset, "train", spec)
    estimator = spec.build(params, manifest.image_shape, n_jobs)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if not (method == "eigenfaces" and shared and _eigenfaces_from_shared(estimator, params, X_train, y_train, shared)):
            estimator.fit(X_train, y_train)
    fit_time = time.perf_counter() - start
    if _converged(estimator) is False:
        logger.warning("%s: the %s fit stopped at max_iter before converging.", manifest.root.name, method)
    path = save_estimator(model_path(out, method, dataset), estimator, {
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
    estimator, info = load_estimator(model)
    if info.get("method", method) != method:
        raise UserError(f"{model}: holds a {info.get('method')} baseline, not {method}; pass the matching method.")
    X, y, manifest = load_split(dataset, split, spec)
    if info.get("encoding") and info["encoding"] != dataclasses.asdict(manifest.encoding):
        logger.warning("%s: encoded as %s, but %s was trained on another encoding.", manifest.root.name,
                       manifest.encoding.describe(), model.name)
    if info.get("class_names") and info["class_names"] != list(manifest.class_names):
        logger.warning("%s: classes %s differ from the %s that %s was trained on; labels are compared by index.",
                       manifest.root.name, manifest.class_names, info["class_names"], model.name)
    n_features = estimator.n_features_in_  # a Pipeline reports its first step's
    if X.shape[1] != n_features:
        raise UserError(
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

    from tfforensics.evaluation.tables import text_table

    return text_table(["dataset", "method", "params", "val acc", "test acc"],
                      [[cell(r.get("dataset")), cell(r.get("method")), cell(r.get("params")),
                        cell(r.get("val_accuracy")), cell(r.get("test_accuracy"))] for r in rows])
