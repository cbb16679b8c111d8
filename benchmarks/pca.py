"""Benchmark: the eigenfaces' PCA by LAPACK's SVD (``svd_solver="full"``) vs the float64 Gram
eigendecomposition (``svd_solver="gram"``), in one run, on the train split of a records set.

Both fit ``SubsetPCA(None)`` (every component, what the grid search cuts per variance level)
on one BLAS thread, as ``reproduce`` computes. Prints both times and their ratio, the number
of components each keeps at 0.25 / 0.5 / 0.75 / 0.95 of the variance, the largest relative
difference of the kept singular values, and the smallest |cosine| between matching kept
components (near-equal singular values may rotate within their pair: a low cosine there is
not an error of either).

    python benchmarks/pca.py --dataset reports/reproduce/records/dct
    python benchmarks/pca.py --dataset reports/reproduce/records/pixels --repeat 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tfforensics.baselines import SubsetPCA  # noqa: E402
from tfforensics.data.reader import as_numpy  # noqa: E402

TARGETS = (0.25, 0.5, 0.75, 0.95)


def fit(X, y, solver: str, repeat: int) -> tuple[SubsetPCA, float]:
    best, pca = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        pca = SubsetPCA(None, svd_solver=solver).fit(X, y)
        best = min(best, time.perf_counter() - start)
    return pca, best


def main(argv=None) -> int:
    from threadpoolctl import threadpool_limits

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="a records folder written by `tfforensics prepare`")
    parser.add_argument("--repeat", type=int, default=1, help="fits per solver; the fastest is reported")
    parser.add_argument("--blas-threads", type=int, default=1)
    args = parser.parse_args(argv)

    X, y = as_numpy(args.dataset, "train")
    X = X.reshape(len(X), -1)
    with threadpool_limits(args.blas_threads, user_api="blas"):
        full, full_s = fit(X, y, "full", args.repeat)
        gram, gram_s = fit(X, y, "gram", args.repeat)
    print(f"{args.dataset}: {X.shape[0]} x {X.shape[1]} {X.dtype}, {args.blas_threads} BLAS thread(s)")
    print(f"  full SVD {full_s:6.1f} s   Gram eigh {gram_s:6.1f} s   ratio {full_s / gram_s:.2f}x")
    for target in TARGETS:
        a, b = full.truncate(target), gram.truncate(target)
        k = min(a.n_components_, b.n_components_)
        rel = np.max(np.abs(a.singular_values_[:k] - b.singular_values_[:k]) / a.singular_values_[:k])
        cosine = np.abs(np.sum(a.components_[:k].astype(np.float64) * b.components_[:k], axis=1))
        print(f"  variance {target}: components {a.n_components_} (full) / {b.n_components_} (gram), "
              f"singular values within {rel:.1e}, |cos| min {cosine.min():.4f} median {np.median(cosine):.6f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
