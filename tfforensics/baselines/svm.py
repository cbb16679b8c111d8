"""The eigenfaces' linear SVM, solved by a finite Newton method instead of liblinear's TRON.

:class:`NewtonLinearSVC` minimises exactly what :class:`sklearn.svm.LinearSVC` minimises
with its defaults (L2 penalty, squared hinge loss, one-vs-rest, an intercept that is one
more feature of value ``intercept_scaling`` and so is penalised too)::

    1/2 ||w||^2 + C * sum_i max(0, 1 - y_i (w . x_i + b))^2

That objective is strictly convex and piecewise quadratic, so Newton's method on the
samples inside the margin, with an exact line search along each step, reaches its
minimum in a few iterations (Keerthi & DeCoste, JMLR 2005, "L2-SVM-MFN"). On the
eigenfaces' PCA coordinates (unwhitened, variances spanning five orders of magnitude)
liblinear's trust-region CG needs thousands of iterations at C = 0.1: 212 s against
under a second here on 1 050 x 831 features, for the same minimiser (equal to liblinear
run to a tight tolerance; see tests/baselines/test_baselines.py).
"""

from __future__ import annotations

from numbers import Integral, Real

import joblib
import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data
from threadpoolctl import threadpool_limits


#: Largest samples' Gram matrix (bytes) that :class:`NewtonLinearSVC` keeps for its Woodbury steps.
GRAM_BYTES = 2**30


def _line_search(w, step, margins, deltas, C) -> float:
    """The ``t > 0`` minimising the objective along ``w + t * step`` (exact: piecewise quadratic).

    ``margins[i] = y_i x_i . w`` and ``deltas[i] = y_i x_i . step``. The derivative
    ``w.s + t s.s - 2C sum_{i in S(t)} d_i (1 - o_i - t d_i)`` is increasing and linear
    between the points where a sample enters or leaves the margin set ``S(t)``.
    """
    a, b = float(w @ step), float(step @ step)
    slack = 1.0 - margins
    inside = slack > 0  # S(0)
    P = float(np.sum(deltas[inside] * slack[inside]))
    Q = float(np.sum(deltas[inside] ** 2))
    moving = deltas != 0
    times = np.full(len(deltas), np.inf)
    times[moving] = slack[moving] / deltas[moving]
    # a sample inside with d > 0 leaves at its time; one outside with d < 0 enters at its time
    events = np.flatnonzero(((inside & (deltas > 0)) | (~inside & (deltas < 0))) & (times > 0))
    events = events[np.argsort(times[events], kind="stable")]
    start = 0.0
    for index in events:
        end = times[index]
        if a + b * end - 2.0 * C * (P - end * Q) >= 0:  # the root lies in [start, end]
            break
        sign = -1.0 if inside[index] else 1.0
        P += sign * deltas[index] * slack[index]
        Q += sign * deltas[index] ** 2
        start = end
    t = (2.0 * C * P - a) / (b + 2.0 * C * Q)
    return float(max(t, start))


def _newton_step(X, active, gradient, C, gram, covariance=None):
    """``-(I + 2C X_A^T X_A)^-1 gradient``, the Newton direction on the margin set ``A``.

    With fewer samples in ``A`` than features (and the samples' Gram matrix ``gram`` at
    hand) the same direction comes from an ``|A| x |A|`` system by the Woodbury identity,
    ``g - X_A^T (I / 2C + X_A X_A^T)^-1 X_A g``: on the eigenfaces' PCA coordinates,
    whose dimension nears the number of samples, that is several times fewer operations
    than forming and factoring the ``d x d`` Hessian, and it is read off the one Gram
    matrix that all one-vs-rest problems share. Both systems have the same condition number.
    With more, and the features' ``covariance`` (``X^T X``) at hand, ``X_A^T X_A`` is that
    minus the few samples outside the margin, ``X^T X - X_I^T X_I``: at small C nearly every
    sample is inside, so the Hessian costs ``d^2 |I|`` instead of ``d^2 |A|``.
    """
    XA = X[active]
    if gram is not None and len(XA) < X.shape[1]:
        kernel = gram[np.ix_(active, active)]
        kernel[np.diag_indices_from(kernel)] += 1.0 / (2.0 * C)
        solved = scipy.linalg.cho_solve(scipy.linalg.cho_factor(kernel, lower=True, check_finite=False),
                                        XA @ gradient, check_finite=False)
        return -(gradient - XA.T @ solved)
    if covariance is not None and 2 * len(XA) > len(X):
        outside = np.ones(len(X), dtype=bool)
        outside[active] = False
        XI = X[outside]
        hessian = covariance - XI.T @ XI
    else:
        hessian = XA.T @ XA
    hessian *= 2.0 * C
    hessian[np.diag_indices_from(hessian)] += 1.0
    return -scipy.linalg.cho_solve(scipy.linalg.cho_factor(hessian, lower=True, check_finite=False), gradient,
                                   check_finite=False)


def _fit_binary(X, y, C, tol, max_iter, gram=None, covariance=None, start=None):
    """``(w, iterations)`` of the squared-hinge SVM with labels ``y`` in {-1, +1} (bias column in ``X``);
    ``gram`` (``X X^T``) and ``covariance`` (``X^T X``), both optional, let :func:`_newton_step`
    take its cheaper forms. Newton's steps start at ``start`` (default 0); the stopping rule is
    relative to the gradient at 0 either way, so a warm start stops at the same tolerance."""
    w = np.zeros(X.shape[1]) if start is None else np.array(start, dtype=np.float64)
    # at w = 0 every sample is inside the margin: the gradient is -2C X^T y (what iteration 1 computes cold)
    gradient_0 = None if start is None else float(np.linalg.norm(-2.0 * C * (X.T @ y)))
    for iteration in range(1, max_iter + 1):
        margins = y * (X @ w)
        active = np.flatnonzero(margins < 1)
        gradient = w - 2.0 * C * (X[active].T @ (y[active] * (1.0 - margins[active])))
        norm = float(np.linalg.norm(gradient))
        gradient_0 = norm if gradient_0 is None else gradient_0
        if norm <= tol * max(gradient_0, 1e-300):
            return w, iteration - 1
        step = _newton_step(X, active, gradient, C, gram, covariance)
        t = _line_search(w, step, margins, y * (X @ step), C)
        w = w + t * step
    return w, max_iter


class NewtonLinearSVC(LinearClassifierMixin, BaseEstimator):
    """``LinearSVC`` (squared hinge, L2, one-vs-rest, penalised intercept) by finite Newton steps.

    Args:
        C: inverse regularisation strength, as ``LinearSVC``.
        tol: stop when the gradient norm falls below ``tol`` times its value at ``w = 0``.
        max_iter: Newton iterations per binary problem (a handful are usual).
        intercept_scaling: value of the bias feature, as ``LinearSVC``.
        n_jobs: threads for the one-vs-rest problems (joblib's convention; default all
            cores). Each runs its linear algebra on one BLAS thread: on a machine whose
            cores are busy, OpenBLAS's own threads spin and made the same fit 18-30x slower.
        warm_start: start from the previous ``fit``'s solution (same classes and features;
            scikit-learn's convention). The minimiser is unique, so only the path to it
            changes: along a grid of growing C each solution is a few Newton steps from the
            last (on the eigenfaces' coordinates at C = 0.1, 2 instead of about 40), and the
            weights agree with a cold start's to about 1e-15 of their scale.

    Attributes:
        coef_, intercept_, classes_, n_iter_: as ``LinearSVC`` (``n_iter_`` the largest
        Newton iteration count of the one-vs-rest problems).
    """

    _parameter_constraints = {
        "C": [Interval(Real, 0.0, None, closed="neither")],
        "tol": [Interval(Real, 0.0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "intercept_scaling": [Interval(Real, 0.0, None, closed="neither")],
        "n_jobs": [Integral, None],
        "warm_start": ["boolean"],
    }

    def __init__(self, C: float = 1.0, *, tol: float = 1e-10, max_iter: int = 100, intercept_scaling: float = 1.0,
                 n_jobs: int | None = -1, warm_start: bool = False):
        self.C = C
        self.tol = tol
        self.max_iter = max_iter
        self.intercept_scaling = intercept_scaling
        self.n_jobs = n_jobs
        self.warm_start = warm_start

    def fit(self, X, y):
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float64, order="C")
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(f"NewtonLinearSVC needs samples of at least 2 classes; got {len(classes)}.")
        starts = self._warm_starts(classes, X.shape[1])
        self.classes_ = classes
        features = np.hstack([X, np.full((len(X), 1), float(self.intercept_scaling))])
        positives = self.classes_[1:] if len(self.classes_) == 2 else self.classes_
        # shared by every one-vs-rest problem; worth it only where margin sets can be smaller
        # than d, and kept to GRAM_BYTES
        n, d = features.shape
        gram = features @ features.T if n < 4 * d and n * n * 8 <= GRAM_BYTES else None
        # X^T X: for margin sets larger than d (small C), where n > d and it fits GRAM_BYTES
        covariance = features.T @ features if n > d and d * d * 8 <= GRAM_BYTES else None
        with threadpool_limits(1, user_api="blas"):
            fitted = joblib.Parallel(n_jobs=self.n_jobs, prefer="threads")(
                joblib.delayed(_fit_binary)(features, np.where(y == positive, 1.0, -1.0), float(self.C), self.tol,
                                            self.max_iter, gram, covariance, start)
                for positive, start in zip(positives, starts))
        weights = np.asarray([w for w, _ in fitted])
        iterations = [n for _, n in fitted]
        self.coef_ = weights[:, :-1]
        self.intercept_ = weights[:, -1] * float(self.intercept_scaling)
        self.n_iter_ = int(max(iterations))
        return self

    def _warm_starts(self, classes, features: int) -> list:
        """Per one-vs-rest problem, its weights from the previous fit (bias last), or None (cold)."""
        problems = 1 if len(classes) == 2 else len(classes)
        coef = getattr(self, "coef_", None)
        if (not self.warm_start or coef is None or coef.shape != (problems, features)
                or not np.array_equal(getattr(self, "classes_", None), classes)):
            return [None] * problems
        return list(np.hstack([coef, (self.intercept_ / float(self.intercept_scaling))[:, None]]))
