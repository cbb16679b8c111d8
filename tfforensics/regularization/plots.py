"""Figures of regularize runs side by side (the original's ``visualize.py``), and of a band sweep.

:func:`plot_runs` writes, for runs given as ``RUN`` or ``RUN:EPOCH`` (the epoch to show; default
the last):

- ``losses.png``: Fourier and adversarial loss per step of each run;
- ``detection.png``: detection rate per epoch of each detector (epoch 0 = before fine-tuning),
  and the quality proxy per epoch;
- ``spectra.png``: mean log|DFT| (gray, centred) before and at the chosen epoch, and their difference;
- ``samples.png``: the same latents before and at the chosen epoch, one column per run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tfforensics.errors import UserError


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: Path) -> Path:
    from tfforensics.io.atomic import atomic_open

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as handle:
        figure.savefig(handle, format="png", dpi=110, bbox_inches="tight")
    return path


def parse_run(spec) -> tuple[Path, int | None]:
    """``RUN`` or ``RUN:EPOCH`` -> (folder, epoch or None)."""
    text = str(spec)
    folder, _, epoch = text.rpartition(":") if ":" in text and text.rpartition(":")[2].isdigit() else (text, "", "")
    return Path(folder), int(epoch) if epoch else None


def load_run(folder) -> dict:
    from tfforensics.regularization.finetune import RUN_FILE, RUN_KIND

    folder = Path(folder)
    try:
        record = json.loads((folder / RUN_FILE).read_text())
    except (OSError, ValueError):
        record = {}
    if record.get("kind") != RUN_KIND:
        raise UserError(f"{folder}: not a regularize run (no {RUN_FILE}); make one with `tfforensics regularize train`.")
    return record


def _label(record: dict, folder: Path) -> str:
    c = record["config"]
    return f"{folder.name}: adv {c['adv_weight']:g}, λ {c['fourier_weight']:g}, {c['kind']}, lr {c['learning_rate']:g}"


def plot_runs(runs, out) -> list[Path]:
    """Draw the figures of several runs into ``out``; returns the paths."""
    from tfforensics.io.images import load_image

    items = []
    for spec in runs:
        folder, epoch = parse_run(spec)
        record = load_run(folder)
        last = record["epoch"]
        epoch = last if epoch is None else epoch
        if not 0 <= epoch <= last:
            raise UserError(f"{folder}: epoch {epoch} is not in the run (0..{last}).")
        items.append((folder, record, epoch))
    if not items:
        raise UserError("give at least one run folder.")
    out = Path(out)
    paths = []

    figure = _figure(11, 3.6)
    ax_f, ax_a = figure.subplots(1, 2)
    for folder, record, _ in items:
        history = record.get("history", [])
        if history:
            steps = np.arange(1, len(history) + 1)
            ax_f.plot(steps, [h["fourier"] for h in history], label=_label(record, folder))
            ax_a.plot(steps, [h["adversarial"] for h in history], label=_label(record, folder))
    ax_f.set_title("Fourier dissimilarity (unweighted)")
    ax_a.set_title("adversarial loss softplus(−D(G(w)))")
    for ax in (ax_f, ax_a):
        ax.set_xlabel("logged step (10 per epoch)")
    ax_f.legend(fontsize=7)
    paths.append(_save(figure, out / "losses.png"))

    rate_keys = sorted({k for _, r, _ in items for row in r["epochs"] for k in row if k.endswith("_detection_rate")})
    figure = _figure(5 * (len(rate_keys) + 2), 3.6)
    axes = figure.subplots(1, len(rate_keys) + 2, squeeze=False)[0]
    for folder, record, _ in items:
        epochs = [row["epoch"] for row in record["epochs"]]
        for ax, key in zip(axes, rate_keys):
            ax.plot(epochs, [row.get(key) for row in record["epochs"]], marker="o", label=_label(record, folder))
            ax.set_title(key.replace("_", " "))
            ax.set_ylim(-0.02, 1.02)
        for ax, key in zip(axes[len(rate_keys):], ("kid", "spectral_distance")):
            ax.plot(epochs, [row.get(key) for row in record["epochs"]], marker="o")
            ax.set_title(key.replace("_", " ") + (" (D features)" if key == "kid" else ""))
    for ax in axes:
        ax.set_xlabel("epoch (0 = before fine-tuning)")
    axes[0].legend(fontsize=7)
    paths.append(_save(figure, out / "detection.png"))

    figure = _figure(3.2 * len(items), 9.0)
    axes = figure.subplots(3, len(items), squeeze=False)
    for column, (folder, record, epoch) in enumerate(items):
        spectra = np.load(folder / "spectra.npz")
        before, after = spectra["dft_000"], spectra[f"dft_{epoch:03d}"]
        axes[0, column].imshow(before, cmap="inferno")
        axes[0, column].set_title(f"{folder.name}: before", fontsize=8)
        axes[1, column].imshow(after, cmap="inferno")
        axes[1, column].set_title(f"epoch {epoch}", fontsize=8)
        spread = float(np.abs(after - before).max()) or 1.0
        axes[2, column].imshow(after - before, cmap="coolwarm", vmin=-spread, vmax=spread)
        axes[2, column].set_title("difference", fontsize=8)
        for ax in axes[:, column]:
            ax.set_xticks([])
            ax.set_yticks([])
    figure.suptitle("mean log|DFT| of the gray samples (centred)", fontsize=10)
    paths.append(_save(figure, out / "spectra.png"))

    figure = _figure(4.5 * len(items), 2.8)
    axes = figure.subplots(2, len(items), squeeze=False)
    for column, (folder, record, epoch) in enumerate(items):
        for row, shown in enumerate((0, epoch)):
            axes[row, column].imshow(load_image(folder / "samples" / f"epoch_{shown:03d}.png"))
            axes[row, column].set_title(f"{folder.name}, epoch {shown}", fontsize=8)
            axes[row, column].axis("off")
    paths.append(_save(figure, out / "samples.png"))
    return paths


def plot_sweep(sweep: dict, path) -> Path:
    """The spectral gap per band threshold (the original's Fourier-dissimilarity sweep)."""
    kinds = [k for k in ("l1", "frobenius", "cos") if k in sweep]
    figure = _figure(6, 2.4 * len(kinds))
    axes = figure.subplots(len(kinds), 1, squeeze=False)[:, 0]
    for ax, kind in zip(axes, kinds):
        ax.plot(sweep["thresholds"], sweep[kind], marker=".")
        ax.set_ylabel(kind + (" (unscaled)" if kind != "cos" else ""))
    axes[-1].set_xlabel(f"band threshold t (rows [t:-t], columns [t:] of the {sweep.get('spectrum', 'dft')} spectrum)")
    return _save(figure, Path(path))


__all__ = ["load_run", "parse_run", "plot_runs", "plot_sweep"]
