"""The eigenfaces SVM: the Newton solver as it was vs as it is, on the same PCA coordinates, in one run.

* **before**: the one-vs-rest problems one after another, each Newton step from the
  ``d x d`` Hessian, BLAS on its default threads (the solver up to 2026-12-02);
* **after**: :class:`tfforensics.baselines.svm.NewtonLinearSVC` — steps on margin sets
  smaller than ``d`` by the Woodbury identity from one shared Gram matrix, and the
  one-vs-rest problems on threads, each on one BLAS thread.

Both minimise the same objective from the same start; the script prints each side's time,
the ratio, the Newton iterations and the largest weight difference, and stops with an error
if the weights differ by more than 1e-8 of their scale. Without ``--dataset`` it builds a
mini benchmark first (``--per-source`` images per source, the shipped GANs)::

    python benchmarks/svm.py                                   # 400/source, colour log-DCT, 0.95 variance, C 0.1
    python benchmarks/svm.py --dataset reports/reproduce/records/dct --C 0.01 0.1
    python benchmarks/svm.py --dataset reports/reproduce/records/dct --C 1e-4 1e-3 1e-2 0.1   # and the C path

With more than one C it also fits them as the grid search does, along growing C, each
warm-started from the solution before, against cold fits (seconds, Newton iterations).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tfforensics.baselines import make_eigenfaces, search  # noqa: E402
from tfforensics.baselines.svm import NewtonLinearSVC, _fit_binary  # noqa: E402


def before(Z, y, C: float) -> tuple[np.ndarray, int]:
    """The solver as it was: primal Newton steps, classes in turn, BLAS threads as they come."""
    features = np.hstack([Z, np.ones((len(Z), 1))])
    classes = np.unique(y)
    positives = classes[1:] if len(classes) == 2 else classes
    fitted = [_fit_binary(features, np.where(y == positive, 1.0, -1.0), C, 1e-10, 100) for positive in positives]
    return np.asarray([w for w, _ in fitted]), max(n for _, n in fitted)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--dataset", help="records of `tfforensics prepare` (default: build a mini benchmark)")
    parser.add_argument("--per-source", type=int, default=400, help="images per source when building (default: 400)")
    parser.add_argument("--variance", type=float, default=0.95, help="PCA variance kept (default: 0.95)")
    parser.add_argument("--C", type=float, nargs="+", default=[0.1], help="SVM C values (default: 0.1)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        if args.dataset:
            dataset = Path(args.dataset)
        else:
            from baselines import build_datasets

            dataset = build_datasets(Path(tmp), args.per_source)[1]
        X, y, _ = search.load_split(dataset, "train", search.METHODS["eigenfaces"])
        pca = make_eigenfaces().named_steps["pca"].set_params(n_components=args.variance)
        Z = pca.fit_transform(X)
    print(f"{dataset}: {len(Z)} training images, {Z.shape[1]} PCA components ({args.variance:g} of the variance), "
          f"{len(np.unique(y))} classes")
    print("| C | before (s) | after (s) | ratio | Newton iterations | max weight difference |")
    print("|---|---|---|---|---|---|")
    for C in args.C:
        start = time.perf_counter()
        old, old_iterations = before(Z, y, C)
        old_time = time.perf_counter() - start
        start = time.perf_counter()
        new = NewtonLinearSVC(C=C).fit(Z, y)
        new_time = time.perf_counter() - start
        weights = np.hstack([new.coef_, new.intercept_[:, None]])
        difference = float(np.abs(weights - old).max() / np.abs(old).max())
        print(f"| {C:g} | {old_time:.1f} | {new_time:.1f} | {old_time / new_time:.1f}× | "
              f"{old_iterations} / {new.n_iter_} | {difference:.1e} |")
        if difference > 1e-8:
            raise SystemExit(f"the two solvers disagree at C={C:g}: {difference:.2e}")
    if len(args.C) > 1:
        path(Z, y, sorted(args.C))


def path(Z, y, values) -> None:
    """The grid's C values fitted cold, each from 0, vs along a path of growing C, each
    warm-started from the last solution (what the grid search does): seconds, ratio,
    Newton iterations and the largest weight difference."""
    cold_time = warm_time = 0.0
    cold_iterations, warm_iterations, difference = [], [], 0.0
    warm = NewtonLinearSVC(warm_start=True)
    for C in values:
        start = time.perf_counter()
        cold = NewtonLinearSVC(C=C).fit(Z, y)
        cold_time += time.perf_counter() - start
        start = time.perf_counter()
        warm.set_params(C=C).fit(Z, y)
        warm_time += time.perf_counter() - start
        cold_iterations.append(cold.n_iter_)
        warm_iterations.append(warm.n_iter_)
        difference = max(difference, float(np.abs(warm.coef_ - cold.coef_).max() / np.abs(cold.coef_).max()))
    print(f"\nC path {', '.join(f'{C:g}' for C in values)}: cold fits {cold_time:.1f} s "
          f"(iterations {cold_iterations}), warm-started along C {warm_time:.1f} s (iterations {warm_iterations}), "
          f"{cold_time / warm_time:.1f}×, max weight difference {difference:.1e}")
    if difference > 1e-8:
        raise SystemExit(f"the warm path disagrees with the cold fits: {difference:.2e}")


if __name__ == "__main__":
    main()
