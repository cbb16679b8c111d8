"""Where a linear detector looks: its weights over the input spectrum (GANDCTAnalysis' ``extract_weights.py``).

A ridge-regression classifier on log-DCT coefficients (``log``, ``nn``) has one weight per
coefficient and channel. The original plots ``|mean over channels|`` of the first kernel as
a heat map; large values mark the frequencies the detector relies on (for GAN images: the
high frequencies where up-sampling leaves its peaks).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from tfforensics.errors import UserError

logger = logging.getLogger(__name__)

WEIGHTS_RECORD = "weights.json"
#: The colour-scale maximum of the original's figure (``plt.matshow(..., vmax=0.04)``).
ORIGINAL_VMAX = 0.04


def weight_maps(model) -> np.ndarray:
    """``(H, W, units)``: ``|mean over channels|`` of the first kernel, per output unit.

    Raises a :class:`UserError` when the first layer with weights is not a dense layer over
    the whole (encoded) image, i.e. when the model is not linear in its input coefficients.
    """
    from tfforensics.models.wrapped import unwrap

    _, classifier = unwrap(model)
    shape = tuple(int(s) for s in classifier.input_shape[1:])
    first = next((layer for layer in classifier.layers if getattr(layer, "kernel", None) is not None), None)
    if first is None:
        raise UserError(f"model {model.name!r} has no layer with weights.")
    kernel = np.asarray(first.kernel)
    if kernel.ndim != 2 or kernel.shape[0] != int(np.prod(shape)):
        raise UserError(f"model {model.name!r}: the first layer with weights ({first.__class__.__name__} "
                        f"{first.name!r}) is not a dense layer over the {'x'.join(map(str, shape))} input, so "
                        "there is no weight per coefficient; use a linear model (log, log1..log3, nn).")
    return np.abs(kernel.reshape(*shape, kernel.shape[1]).mean(axis=2))


def plot_weight_maps(model_path, out, *, vmax: float | None = None, cmap: str = "inferno", formats=("png", "pdf"),
                     overwrite: bool = False) -> dict:
    """Write ``out/weights.npy``, one heat map per output unit and ``out/weights.json``."""
    from tfforensics import __version__
    from tfforensics.analysis.spectra import heatmap
    from tfforensics.io.atomic import atomic_open, atomic_write_json
    from tfforensics.io.outputs import PRODUCER, claim_files
    from tfforensics.models.wrapped import class_names_of, load_model

    out = Path(out)
    model = load_model(model_path)
    maps = weight_maps(model)
    units = maps.shape[-1]
    names = class_names_of(model)
    labels = ["fake"] if units == 1 else [names[i] if i < len(names) else str(i) for i in range(units)]
    stems = [f"weights_{label}" if units > 1 else "weights" for label in labels]
    files = [WEIGHTS_RECORD, "weights.npy"] + [f"{stem}.{ext}" for stem in stems for ext in formats]
    claim_files(out, files, record=WEIGHTS_RECORD, command="weights", previous="weight maps",
                contents="weights.npy and heat maps", instead="--out", overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "weights.npy", "wb") as handle:
        np.save(handle, maps.astype(np.float32))
    written = []
    for unit, stem in enumerate(stems):
        written += heatmap(out / stem, maps[..., unit], cmap=cmap, formats=formats, vmin=0.0, vmax=vmax)
    info = {"producer": PRODUCER, "version": __version__, "model": str(Path(model_path).resolve()),
            "shape": list(maps.shape), "units": labels, "vmax": vmax,
            "max": float(maps.max()), "mean": float(maps.mean()),
            "files": [p.name for p in written] + ["weights.npy"]}
    atomic_write_json(out / WEIGHTS_RECORD, info)
    return info
