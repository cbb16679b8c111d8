"""kNN baseline: a plain ``KNeighborsClassifier`` on the flattened encoded images."""

from __future__ import annotations

from sklearn.neighbors import KNeighborsClassifier

from tfforensics.errors import UserError

#: Frank et al.'s grid: 1 and 2^i + 1 for i = 1..10 (3, 5, 9, ..., 1025).
K_GRID = (1,) + tuple(2**i + 1 for i in range(1, 11))


def make_knn(n_neighbors: int = 1, *, n_jobs=None) -> KNeighborsClassifier:
    """A kNN classifier; ``n_jobs`` parallelises the neighbour queries."""
    return KNeighborsClassifier(n_neighbors=n_neighbors, n_jobs=n_jobs)


def knn_grid(n_train: int, ks=K_GRID) -> dict:
    """``{"n_neighbors": [...]}`` with the values of ``ks`` that ``n_train`` samples allow."""
    values = [int(k) for k in ks if int(k) <= n_train]
    if not values:
        raise UserError(f"no k in {list(ks)} fits a training split of {n_train} images; lower --k or add images.")
    return {"n_neighbors": values}
