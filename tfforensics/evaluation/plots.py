"""The figures of tfforensics as PNG files: confusion matrices, ROC curves, per-family bar
charts and mean-spectrum grids (the report of ``reproduce`` shows them all).

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


def plot_family_bars(families, series: dict, path, *, title: str, ylabel: str = "%") -> Path:
    """Grouped bars: one group per family, one bar per series (values in [0, 1], drawn in %),
    with the value on each bar and a dashed line at 50 % (chance for real vs fake).

    Args:
        families: the group labels (e.g. held-out GAN families), in drawing order.
        series: ``{name: [value per family]}``; ``None`` or NaN draws no bar.
        path: the PNG to write.
    """
    from matplotlib.figure import Figure

    families = list(families)
    if not families or not series:
        raise ValueError(f"plot_family_bars needs at least one family and one series. Received: "
                         f"families={families}, series={list(series)}")
    bad = {name: len(values) for name, values in series.items() if len(values) != len(families)}
    if bad:
        raise ValueError(f"every series needs one value per family ({len(families)}). Received lengths: {bad}")
    width = 0.8 / len(series)
    figure = Figure(figsize=(max(5.0, 1.1 * len(families) * max(1, len(series) / 2) + 2), 3.8))
    axes = figure.add_subplot()
    positions = np.arange(len(families))
    for index, (name, values) in enumerate(series.items()):
        heights = np.array([np.nan if v is None else 100.0 * float(v) for v in values])
        bars = axes.bar(positions + (index - (len(series) - 1) / 2) * width, np.nan_to_num(heights), width,
                        label=name)
        for bar, height in zip(bars, heights):  # a missing value: no bar, "n/a" where it would be
            axes.text(bar.get_x() + bar.get_width() / 2, 1 if np.isnan(height) else height + 1,
                      "n/a" if np.isnan(height) else f"{height:.0f}", ha="center", va="bottom", fontsize=7)
    axes.axhline(50, color="gray", linestyle="--", linewidth=0.8)
    axes.set_xticks(positions, families, rotation=20, ha="right")
    axes.set_ylim(0, 112)
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8, ncols=min(4, len(series)), loc="upper center", bbox_to_anchor=(0.5, -0.25))
    return _save(figure, path)


def plot_mean_spectra(means: dict, path, *, reference=None, title: str | None = None, label: str = "mean") -> Path:
    """Mean spectra per source (top row, one shared scale) and their difference to the
    ``reference`` source (bottom row, one shared diverging scale), each row with a colour bar.

    Args:
        means: ``{source: 2-D array}`` (e.g. mean log|DCT|, channels averaged), drawn in order.
        reference: the source subtracted in the bottom row (default: the first).
        label: what the top row shows, for its colour bar.
    """
    from matplotlib.figure import Figure

    names = list(means)
    if not names:
        raise ValueError("plot_mean_spectra needs at least one source. Received: means={}")
    reference = names[0] if reference is None else reference
    if reference not in means:
        raise ValueError(f"`reference` must be one of {names}. Received: reference={reference!r}")
    base = np.asarray(means[reference], dtype=np.float64)
    figure = Figure(figsize=(2.4 * len(names) + 1.2, 5.2))
    axes = figure.subplots(2, len(names), squeeze=False)
    low, high = np.percentile(np.stack([np.asarray(m, dtype=np.float64) for m in means.values()]), [1, 99])
    spread = max(float(np.abs(np.asarray(means[name]) - base).max()) for name in names) or 1.0
    for column, name in enumerate(names):
        top = axes[0, column].imshow(means[name], cmap="inferno", vmin=low, vmax=high)
        axes[0, column].set_title(name, fontsize=9)
        bottom = axes[1, column].imshow(np.asarray(means[name]) - base, cmap="coolwarm", vmin=-spread, vmax=spread)
        axes[1, column].set_title(f"{name} − {reference}", fontsize=9)
        for ax in axes[:, column]:
            ax.set_xticks([])
            ax.set_yticks([])
    figure.colorbar(top, ax=list(axes[0]), fraction=0.03, pad=0.02, label=label)
    figure.colorbar(bottom, ax=list(axes[1]), fraction=0.03, pad=0.02, label=f"difference to {reference}")
    if title:
        figure.suptitle(title, fontsize=10)
    return _save(figure, path)


def plot_history(history: dict, metric: str, path, *, title: str | None = None) -> Path | None:
    """One training curve per epoch: ``metric`` and ``val_<metric>`` of a Keras history (the 004
    project's accuracy / loss plots). Returns None when the history has no such metric."""
    from matplotlib.figure import Figure

    series = {name: history[name] for name in (metric, f"val_{metric}") if history.get(name)}
    if not series:
        return None
    figure = Figure(figsize=(5, 3.5))
    axes = figure.add_subplot()
    for name, values in series.items():
        epochs = np.arange(1, len(values) + 1)
        axes.plot(epochs, values, marker="o" if len(values) < 30 else None,
                  label="val" if name.startswith("val_") else "train")
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epoch")
    axes.set_ylabel(metric)
    axes.set_title(title or metric)
    axes.legend()
    axes.grid(alpha=0.3)
    return _save(figure, path)
