"""Confusion-matrix and ROC plots as PNG files.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot state, no display), so
the library can plot from worker threads and on headless machines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfforensics.io.atomic import atomic_open


def _save(figure, path) -> Path:
    path = Path(path)
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format=path.suffix.lstrip(".") or "png", dpi=120, bbox_inches="tight")
    return path


def plot_confusion_matrix(matrix, class_names, path, *, title: str = "Confusion matrix") -> Path:
    """Row-normalised confusion matrix (rows: true class) with counts in the cells."""
    from matplotlib.figure import Figure

    matrix = np.asarray(matrix, dtype=np.int64)
    rows = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=np.float64), where=rows > 0)
    k = len(class_names)
    size = max(4.0, 0.6 * k + 2.5)
    figure = Figure(figsize=(size, size))
    axes = figure.add_subplot()
    image = axes.imshow(shares, vmin=0.0, vmax=1.0, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true class")
    axes.set_xticks(range(k), class_names, rotation=45, ha="right")
    axes.set_yticks(range(k), class_names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(title)
    for i in range(k):
        for j in range(k):
            axes.text(j, i, f"{matrix[i, j]}\n{shares[i, j]:.0%}", ha="center", va="center", fontsize=8,
                      color="white" if shares[i, j] > 0.5 else "black")
    return _save(figure, path)


def plot_roc(curves: dict, path, *, title: str = "ROC: real vs fake") -> Path:
    """ROC curves from :func:`tfforensics.evaluation.metrics.roc_curves`."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 5))
    axes = figure.add_subplot()
    for name, (fpr, tpr, auc) in curves.items():
        axes.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})", linewidth=2 if name == "all fakes" else 1)
    axes.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=0.8)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.01)
    axes.set_xlabel("false positive rate (real called fake)")
    axes.set_ylabel("true positive rate (fake called fake)")
    axes.set_title(title)
    axes.legend(loc="lower right", fontsize=8)
    return _save(figure, path)
