"""Eigenfaces baseline: PCA to a target explained variance, then a linear SVM.

As in Frank et al., the PCA is fitted on a class-balanced subset of the training set
(10 000 images by default: the SVD of the full set is the expensive part) and the SVM
on the projection of all training images.

The SVD does not depend on the explained-variance target: a PCA fitted once with all
components and cut with :meth:`SubsetPCA.truncate` is, array for array, the PCA fitted
with that target. The grid search uses this to fit one SVD per training fold instead of
one per grid point.
"""

from __future__ import annotations

import copy
from numbers import Integral, Real

import numpy as np
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import _num_samples, check_array

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
    defaults to ``"full"`` as in the original.
    """

    _parameter_constraints = {
        **PCA._parameter_constraints,
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

    def truncate(self, n_components):
        """A copy cut to ``n_components``, equal to a fit with that ``n_components``.

        This PCA must have been fitted with ``n_components=None`` (all components) and
        ``svd_solver="full"``: the full solver computes the same SVD for any target and
        only then keeps the leading components, so cutting here repeats exactly what
        :meth:`fit` would do (same rule for a variance fraction, same ``noise_variance_``).
        """
        if self.n_components is not None or self._fit_svd_solver != "full":
            raise ValueError("`truncate` needs a PCA fitted with n_components=None and svd_solver='full'. "
                             f"Received: n_components={self.n_components!r}, svd_solver={self.svd_solver!r}")
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
        ("pca", SubsetPCA(n_components=pca_variance, fit_size=pca_fit_size)),
        ("svm", svm),
    ])
