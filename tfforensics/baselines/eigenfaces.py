"""Eigenfaces baseline: PCA to a target explained variance, then a linear SVM.

As in Frank et al., the PCA is fitted on a class-balanced subset of the training set
(10 000 images by default: the SVD of the full set is the expensive part) and the SVM
on the projection of all training images.

The SVD does not depend on the explained-variance target: a PCA fitted once with all
components and cut with :meth:`SubsetPCA.truncate` is, array for array, the PCA fitted
with that target. The grid search uses this to fit one SVD per training fold instead of
one per grid point.

The eigenfaces take the SVD from the eigendecomposition of the smaller Gram matrix in
float64 (``svd_solver="gram"``): for 3 500 x 12 288 float32 images that is 15 s against
29 s for LAPACK's float32 SVD, with singular values that agree to 2e-5 relative (the
float32 SVD is itself the less exact of the two).
"""

from __future__ import annotations

import copy
from numbers import Integral, Real

import numpy as np
import scipy.linalg
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.extmath import svd_flip
from sklearn.utils.validation import _num_samples, check_array, validate_data

VARIANCE_GRID = (0.25, 0.5, 0.75, 0.95)
C_GRID = (1e-4, 1e-3, 1e-2, 1e-1)
#: Images the original fits its PCA on.
PCA_FIT_SIZE = 10_000


class SubsetPCA(PCA):
    """PCA fitted on the first ``fit_size`` rows (per class when ``y`` is given).

    With labels, ``fit`` keeps the first ``fit_size // n_classes`` rows of every class in
    their stored order, the balanced subset the original baseline reads; ``transform``
    then projects any number of rows. ``fit_size=None`` uses all rows (plain PCA).
    All other parameters are those of :class:`sklearn.decomposition.PCA`; ``svd_solver``
    defaults to ``"full"`` as in the original, and takes one more value, ``"gram"``: the
    eigendecomposition of the smaller of ``Xc Xc^T`` and ``Xc^T Xc`` (``Xc`` the centred
    rows), in float64. That is the same SVD to float rounding, about twice as fast as the
    float32 SVD when the rows are many fewer than the features; components whose singular
    value is below ``1e-6`` of the largest cannot be recovered from the squared values and
    are zero vectors (their variance is zero to that precision; a variance target never
    keeps them).
    """

    _parameter_constraints = {
        **PCA._parameter_constraints,
        "svd_solver": [StrOptions({"auto", "full", "covariance_eigh", "arpack", "randomized", "gram"})],
        "fit_size": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, n_components=None, *, fit_size=PCA_FIT_SIZE, copy=True, whiten=False, svd_solver="full",
                 tol=0.0, iterated_power="auto", n_oversamples=10, power_iteration_normalizer="auto",
                 random_state=None):
        super().__init__(
            n_components=n_components, copy=copy, whiten=whiten, svd_solver=svd_solver, tol=tol,
            iterated_power=iterated_power, n_oversamples=n_oversamples,
            power_iteration_normalizer=power_iteration_normalizer, random_state=random_state,
        )
        self.fit_size = fit_size

    def _subset(self, X, y):
        if self.fit_size is None or _num_samples(X) <= self.fit_size:
            return X
        X = check_array(X, accept_sparse=("csr", "csc"), dtype=None)
        if y is None:
            return _safe_indexing(X, np.arange(self.fit_size))
        y = np.asarray(y)
        classes = np.unique(y)
        per_class = max(1, self.fit_size // len(classes))
        rows = np.sort(np.concatenate([np.flatnonzero(y == c)[:per_class] for c in classes]))
        return _safe_indexing(X, rows)

    def fit(self, X, y=None):
        """Fit the PCA on the subset of ``X`` (see the class docstring)."""
        return super().fit(self._subset(X, y))

    def fit_transform(self, X, y=None):
        """Fit on the subset, then project all of ``X``."""
        return self.fit(X, y).transform(X)

    def _fit(self, X):
        if self.svd_solver != "gram":
            return super()._fit(X)
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2, ensure_min_features=1)
        n_samples, n_features = X.shape
        limit = min(n_samples, n_features)
        target = self.n_components
        if isinstance(target, Integral) and not 0 <= target <= limit:
            raise ValueError(f"n_components={target} must be between 0 and min(n_samples, n_features)={limit} "
                             "with svd_solver='gram'")
        if isinstance(target, Real) and not isinstance(target, Integral) and not 0 < target < 1:
            raise ValueError(f"n_components={target} must be an int or a float in (0, 1) with svd_solver='gram'")
        if target == "mle":
            raise ValueError("n_components='mle' is not supported with svd_solver='gram'")
        self._fit_svd_solver = "gram"
        mean = X.mean(axis=0, dtype=np.float64)
        centred = np.asarray(X, dtype=np.float64) - mean
        wide = n_samples <= n_features
        # the upper triangle of the smaller product (BLAS syrk: half the multiply-adds of a matmul)
        product = scipy.linalg.blas.dsyrk(1.0, centred, trans=0 if wide else 1)
        values, vectors = scipy.linalg.eigh(product, lower=False, driver="evd", overwrite_a=True, check_finite=False)
        values, vectors = np.maximum(values[::-1], 0.0), vectors[:, ::-1]
        singular = np.sqrt(values)
        if wide:  # V^T = (U / S)^T Xc for the singular values the squares resolve
            kept = int(np.count_nonzero(singular > 1e-6 * singular[0])) if singular[0] > 0 else 0
            components = np.zeros((n_samples, n_features))
            components[:kept] = (vectors[:, :kept] / singular[:kept]).T @ centred
        else:
            components = np.ascontiguousarray(vectors.T)
        _, components = svd_flip(None, components, u_based_decision=False)
        variance = values / (n_samples - 1)
        self.mean_ = mean.astype(X.dtype)
        self.n_samples_ = n_samples
        self.components_ = components.astype(X.dtype)
        self.explained_variance_ = variance.astype(X.dtype)
        total = variance.sum()
        self.explained_variance_ratio_ = (variance / total if total > 0 else np.zeros_like(variance)).astype(X.dtype)
        self.singular_values_ = singular.astype(X.dtype)
        self.n_components_ = limit
        self.noise_variance_ = 0.0
        if target is not None:  # the same cut as sklearn's full solver (and truncate)
            self.__dict__.update(vars(self._cut(target)))
        return None, singular, components, X, False, np

    def truncate(self, n_components):
        """A copy cut to ``n_components``, equal to a fit with that ``n_components``.

        This PCA must have been fitted with ``n_components=None`` (all components) and
        ``svd_solver="full"``: the full solver computes the same SVD for any target and
        only then keeps the leading components, so cutting here repeats exactly what
        :meth:`fit` would do (same rule for a variance fraction, same ``noise_variance_``).
        """
        if self.n_components is not None or self._fit_svd_solver not in ("full", "gram"):
            raise ValueError("`truncate` needs a PCA fitted with n_components=None and svd_solver='full' or 'gram'. "
                             f"Received: n_components={self.n_components!r}, svd_solver={self.svd_solver!r}")
        return self._cut(n_components)

    def _cut(self, n_components):
        """A copy of this all-component fit keeping what ``n_components`` selects (sklearn's rule)."""
        n_samples, n_features = self.n_samples_, self.n_features_in_
        limit = min(n_samples, n_features)
        if isinstance(n_components, Real) and not isinstance(n_components, Integral) and 0 < n_components < 1:
            ratio_cumsum = np.cumulative_sum(self.explained_variance_ratio_)
            keep = np.searchsorted(ratio_cumsum, np.asarray(n_components), side="right") + 1
        elif n_components is None:
            keep = limit
        elif isinstance(n_components, Integral) and 0 <= n_components <= limit:
            keep = n_components
        else:
            raise ValueError(f"`n_components` must be None, an int in [0, {limit}] or a float in (0, 1). "
                             f"Received: n_components={n_components!r}")
        cut = copy.copy(self)
        cut.n_components = n_components
        cut.n_components_ = keep
        cut.noise_variance_ = np.mean(self.explained_variance_[keep:]) if keep < limit else 0.0
        for name in ("components_", "explained_variance_", "explained_variance_ratio_", "singular_values_"):
            setattr(cut, name, np.asarray(getattr(self, name)[:keep], copy=True))
        return cut


#: ``newton``: :class:`~tfforensics.baselines.svm.NewtonLinearSVC` (the same minimiser, found
#: in tens of Newton steps); ``liblinear``: scikit-learn's ``LinearSVC`` as the original ran it.
SVM_SOLVERS = ("newton", "liblinear")


def make_eigenfaces(pca_variance: float = 0.95, C: float = 1e-2, *, pca_fit_size=PCA_FIT_SIZE,
                    max_iter: int = 10_000, random_state=0, solver: str = "newton") -> Pipeline:
    """``SubsetPCA(n_components=pca_variance) -> linear SVM(C)`` as a scikit-learn Pipeline.

    The SVM is the squared-hinge, L2-penalised one-vs-rest ``LinearSVC`` of the original;
    ``solver`` picks how it is solved (:data:`SVM_SOLVERS`). On the unwhitened PCA
    coordinates liblinear's primal solver needs thousands of iterations at C = 0.1 (and
    its dual stops at ``max_iter`` unconverged); the Newton solver reaches the same
    minimum to a tighter tolerance (``max_iter`` applies to liblinear only).
    Grid-search names: ``pca__n_components`` and ``svm__C``.
    """
    from tfforensics.baselines.svm import NewtonLinearSVC

    if solver not in SVM_SOLVERS:
        raise ValueError(f"`solver` must be one of {SVM_SOLVERS}. Received: solver={solver!r}")
    svm = (NewtonLinearSVC(C=C) if solver == "newton"
           else LinearSVC(C=C, max_iter=max_iter, random_state=random_state))
    return Pipeline([
        ("pca", SubsetPCA(n_components=pca_variance, fit_size=pca_fit_size, svd_solver="gram")),
        ("svm", svm),
    ])
