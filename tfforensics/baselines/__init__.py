"""Baselines of Frank et al. on prepared datasets: PRNU, eigenfaces (PCA + linear SVM), kNN.

All three are scikit-learn estimators; :mod:`tfforensics.baselines.search` grid-searches,
trains and tests them on datasets written by ``tfforensics prepare``.
"""

from tfforensics.baselines.eigenfaces import SubsetPCA, make_eigenfaces
from tfforensics.baselines.knn import knn_grid, make_knn
from tfforensics.baselines.persist import load_estimator, save_estimator
from tfforensics.baselines.prnu import PRNUClassifier, fingerprint, residuals

__all__ = [
    "PRNUClassifier",
    "SubsetPCA",
    "fingerprint",
    "knn_grid",
    "load_estimator",
    "make_eigenfaces",
    "make_knn",
    "residuals",
    "save_estimator",
]
