"""Baselines speed and size: today's plain grid search vs tfforensics' shared-SVD search, in one run.

On the same prepared datasets (pixels and log-DCT records), for each one:

* **eigenfaces grid search** — the baseline is scikit-learn's ``GridSearchCV`` over the
  plain ``SubsetPCA -> LinearSVC`` pipeline (one SVD per grid point, one process, as
  ``reproduce`` ran it before), followed by the refit of the best point on the train split;
  against it, ``tfforensics.baselines.search.grid_search`` (one SVD per fold, cut per
  variance level, SVMs on ``--n-jobs`` threads, refit from the same SVD, model saved and
  tested). Prints both times, their ratio, and checks that every point's val accuracy
  and the best point are equal;
* **kNN grid search** — ``GridSearchCV`` over plain ``KNeighborsClassifier`` fits (one
  neighbour search per k) vs ``grid_search`` (one search at the largest k, a vote per k);
  prints both times, the ratio, and checks that every point's val accuracy is equal;
* **kNN model file** — bytes of the float32 training rows (format 1) vs the file written
  now (uint8 value codes or float16), and how many test predictions agree;
* **split decoding** — five ``load_split`` calls (what the five baseline searches of
  ``reproduce`` made per input) vs the same calls inside one ``search.session()``.

Without ``--dataset`` a small mini benchmark is built first (``--per-source`` images per
source, the shipped GANs), in a temporary folder::

    python benchmarks/baselines.py                              # build 200/source, both inputs
    python benchmarks/baselines.py --dataset out/records/dct    # records of `tfforensics reproduce`
    python benchmarks/baselines.py --blas-threads 1             # on a loaded machine
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tfforensics.baselines import load_estimator, make_eigenfaces, make_knn, save_estimator, search  # noqa: E402

#: reproduce's default kNN grid.
KNN_GRID = {"n_neighbors": [1, 3, 5, 9, 17, 33, 65]}
#: reproduce's default eigenfaces grid (also the original's).
EIGEN_GRID = {"pca__n_components": [0.25, 0.5, 0.75, 0.95], "svm__C": [1e-4, 1e-3, 1e-2, 1e-1]}


def build_datasets(root: Path, per_source: int, seed: int = 0) -> list[Path]:
    """A mini benchmark (real crops + shipped GAN samples) prepared as pixels and log-DCT."""
    from tfforensics.benchmark.build import build_benchmark
    from tfforensics.benchmark.reproduce import gan_sources
    from tfforensics.data import Encoding, prepare

    sources, size = gan_sources()
    build_benchmark(root / "benchmark", sources, per_source=per_source, size=size, seed=seed, overwrite=True,
                    progress=False)
    encodings = {"pixels": Encoding(transform="raw", color=True), "dct": Encoding(log=True, color=True, normalize=True)}
    return [prepare(root / "benchmark", root / "records" / name, encoding, presplit=True, seed=seed, overwrite=True,
                    progress=False).root for name, encoding in encodings.items()]


def plain_eigenfaces(X_train, y_train, X_val, y_val, X_test, y_test, grid) -> tuple[dict, dict, float]:
    """Today's search: GridSearchCV over the plain pipeline, then the refit; ``(scores, best, test acc)``."""
    from sklearn.model_selection import GridSearchCV, PredefinedSplit

    split = PredefinedSplit(np.r_[np.full(len(X_train), -1), np.zeros(len(X_val), dtype=int)])
    searched = GridSearchCV(make_eigenfaces(), grid, cv=split, refit=False, n_jobs=1).fit(
        np.concatenate([X_train, X_val]), np.concatenate([y_train, y_val]))
    scores = {search.point_key(p): float(s)
              for p, s in zip(searched.cv_results_["params"], searched.cv_results_["mean_test_score"])}
    model = make_eigenfaces().set_params(**searched.best_params_).fit(X_train, y_train)
    return scores, searched.best_params_, float(model.score(X_test, y_test))


def bench_eigenfaces(dataset: Path, out: Path, n_jobs: int) -> dict:
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    spec = search.METHODS["eigenfaces"]
    with search.session():  # decoding is measured separately: both sides start from decoded arrays
        splits = [search.load_split(dataset, split, spec)[:2] for split in ("train", "val", "test")]
        (X_train, y_train), (X_val, y_val), (X_test, y_test) = splits
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            scores, best, test_accuracy = plain_eigenfaces(X_train, y_train, X_val, y_val, X_test, y_test, EIGEN_GRID)
        plain_time = time.perf_counter() - start
        timings = {}
        for jobs in sorted({1, n_jobs}):
            start = time.perf_counter()
            row = search.grid_search("eigenfaces", dataset, out / f"eigen_{dataset.name}_{jobs}", grid=EIGEN_GRID,
                                     n_jobs=jobs, progress=False)
            timings[jobs] = time.perf_counter() - start
    (entry,) = json.loads(search.results_path(out / f"eigen_{dataset.name}_{n_jobs}", "eigenfaces").read_text())[
        "datasets"].values()
    same = all(entry["points"][key]["val_accuracy"] == score for key, score in scores.items())
    same = same and row["params"] == best and row["test_accuracy"] == test_accuracy
    svd = max(p.get("shared_svd_time", 0.0) for p in entry["points"].values())
    return {"n_train": len(X_train), "n_features": X_train.shape[1], "points": len(scores), "plain_s": plain_time,
            "shared_s": timings, "svd_s": svd, "same_results": same,
            "not_converged": sum(p.get("converged") is False for p in entry["points"].values())}


def bench_knn_search(dataset: Path, out: Path) -> dict:
    from sklearn.model_selection import GridSearchCV, PredefinedSplit

    spec = search.METHODS["knn"]
    with search.session():  # both sides start from decoded arrays
        (X_train, y_train), (X_val, y_val) = [search.load_split(dataset, split, spec)[:2] for split in ("train", "val")]
        grid = {"n_neighbors": [k for k in KNN_GRID["n_neighbors"] if k <= len(X_train)]}
        split = PredefinedSplit(np.r_[np.full(len(X_train), -1), np.zeros(len(X_val), dtype=int)])
        start = time.perf_counter()
        plain = GridSearchCV(make_knn(), grid, cv=split, refit=False, n_jobs=1).fit(
            np.concatenate([X_train, X_val]), np.concatenate([y_train, y_val]))
        plain_time = time.perf_counter() - start
        folder = out / f"knn_{dataset.name}"
        start = time.perf_counter()
        search.grid_search("knn", dataset, folder, grid=grid, n_jobs=1, refit=False, progress=False)
        shared_time = time.perf_counter() - start
    (entry,) = json.loads(search.results_path(folder, "knn").read_text())["datasets"].values()
    same = all(entry["points"][search.point_key(p)]["val_accuracy"] == float(score)
               for p, score in zip(plain.cv_results_["params"], plain.cv_results_["mean_test_score"]))
    return {"points": len(grid["n_neighbors"]), "plain_s": plain_time, "shared_s": shared_time, "same_results": same}


def bench_knn_file(dataset: Path, out: Path) -> dict:
    spec = search.METHODS["knn"]
    with search.session():
        X_train, y_train, _ = search.load_split(dataset, "train", spec)
        X_test, _, _ = search.load_split(dataset, "test", spec)
        model = make_knn(1).fit(X_train, y_train)
        path = save_estimator(out / f"knn_{dataset.name}.npz", model)
        loaded, _ = load_estimator(path)
        agree = float(np.mean(loaded.predict(X_test) == model.predict(X_test)))
    float32_bytes = np.asarray(X_train, dtype=np.float32).nbytes + np.asarray(y_train).nbytes
    with np.load(path, allow_pickle=False) as data:
        stored = str(data["fit_X"].dtype)
    return {"float32_bytes": float32_bytes, "file_bytes": path.stat().st_size, "stored_as": stored,
            "test_agreement": agree, "n_test": len(X_test)}


def bench_decoding(dataset: Path) -> dict:
    calls = [("knn", "train"), ("knn", "val"), ("eigenfaces", "train"), ("eigenfaces", "val"), ("knn", "test")]
    start = time.perf_counter()
    for method, split in calls:
        search.load_split(dataset, split, search.METHODS[method])
    each = time.perf_counter() - start
    start = time.perf_counter()
    with search.session():
        for method, split in calls:
            search.load_split(dataset, split, search.METHODS[method])
    return {"calls": len(calls), "uncached_s": each, "session_s": time.perf_counter() - start}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, nargs="+", help="prepared datasets (default: build a mini benchmark)")
    parser.add_argument("--per-source", type=int, default=200, help="images per source when building (default: 200)")
    parser.add_argument("--n-jobs", type=int, default=os.cpu_count(), help="grid-point workers (default: all cores)")
    parser.add_argument("--blas-threads", type=int, default=None, help="limit BLAS threads (default: as configured)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["eigenfaces", "knn", "decoding"])
    args = parser.parse_args(argv)

    from threadpoolctl import threadpool_limits

    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(args.blas_threads):
        tmp = Path(tmp)
        if args.dataset:
            datasets = args.dataset
        else:
            start = time.perf_counter()
            datasets = build_datasets(tmp / "data", args.per_source)
            print(f"built a mini benchmark, {args.per_source} images per source, in {time.perf_counter() - start:.0f} s")
        print(f"cores {os.cpu_count()}, n_jobs {args.n_jobs}, BLAS threads {args.blas_threads or 'default'}")
        for dataset in datasets:
            name = dataset.name
            if "decoding" not in args.skip:
                d = bench_decoding(dataset)
                print(f"{name:>8} decoding   {d['calls']} load_split calls: {d['uncached_s']:6.1f} s, in one session "
                      f"{d['session_s']:5.1f} s   ratio {d['uncached_s'] / d['session_s']:5.1f}x")
            if "knn" not in args.skip:
                k = bench_knn_search(dataset, tmp)
                print(f"{name:>8} kNN grid   {k['points']} points: plain GridSearchCV {k['plain_s']:6.1f} s, one "
                      f"neighbour search {k['shared_s']:6.1f} s   ratio {k['plain_s'] / k['shared_s']:5.1f}x   "
                      f"same results: {k['same_results']}")
                if not k["same_results"]:
                    print("  MISMATCH: the shared-neighbour search differs from the plain grid search")
                    return 1
                k = bench_knn_file(dataset, tmp)
                print(f"{name:>8} kNN file   float32 rows {k['float32_bytes'] / 1e6:7.1f} MB, file {k['file_bytes'] / 1e6:6.1f} MB "
                      f"({k['stored_as']})   ratio {k['float32_bytes'] / k['file_bytes']:5.1f}x   "
                      f"test predictions agreeing {k['test_agreement']:.4f} of {k['n_test']}")
            if "eigenfaces" not in args.skip:
                e = bench_eigenfaces(dataset, tmp, args.n_jobs)
                shared = "  ".join(f"n_jobs={j}: {t:6.1f} s ({e['plain_s'] / t:4.1f}x)" for j, t in e["shared_s"].items())
                print(f"{name:>8} eigenfaces {e['points']} points, {e['n_train']} x {e['n_features']}: plain GridSearchCV "
                      f"{e['plain_s']:6.1f} s   shared SVD {shared}   (one SVD {e['svd_s']:.1f} s)   "
                      f"same results: {e['same_results']}   not converged: {e['not_converged']}")
                if not e["same_results"]:
                    print("  MISMATCH: the shared-SVD search differs from the plain grid search")
                    return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
