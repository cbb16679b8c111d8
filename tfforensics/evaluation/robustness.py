"""Robustness: several detectors on one test set, clean and after each perturbation.

Real images reach an analyst JPEG-compressed, resized, blurred and noisy, so a detector's
clean score says little on its own (CNNDetection's and Frank et al.'s robustness tables).
:func:`robustness_table` perturbs the test images once per condition (the named conditions
of :func:`tfforensics.preprocess.perturb.conditions`) and lets every detector score the same
perturbed images: ACC and AP per condition, pooled and per fake source, by the rules of
:func:`tfforensics.evaluation.metrics.real_vs_fake` (fake score ``1 - P(real)`` for AP; called
fake when the most likely class is not the real one, i.e. ``P(fake) > 0.5`` for a detector),
so the clean column repeats the real-vs-fake numbers of ``test``.

A detector is a :class:`Detector` entry: a saved model that takes raw images (any ``train``,
``convert`` or LGrad model), a name, and how it was trained, so "the same model trained with
augmentation" is one more entry in the list.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from tfforensics.errors import UserError
from tfforensics.preprocess.perturb import ROBUSTNESS_CONDITIONS


@dataclasses.dataclass(frozen=True)
class Detector:
    """One row of the table: ``model`` (a ``.keras`` file or run folder taking raw images)."""

    name: str
    model: str
    #: how it was trained, shown beside the name (e.g. ``"blur+JPEG p=0.1"``)
    training: str = "no augmentation"
    #: an LGrad detector: it scores the discriminator's gradient image of each (perturbed) image
    gradients: bool = False


def load_split(root, split: str, class_names) -> tuple[np.ndarray, np.ndarray]:
    """``(uint8 images (N, H, W, 3), label (N,))`` of ``root/split/<class>/*`` (``prepare --presplit`` layout)."""
    from tfforensics.io.images import list_images, load_image

    images, labels = [], []
    for label, name in enumerate(class_names):
        paths = list_images(Path(root) / split / name)
        images += [load_image(path) for path in paths]
        labels += [label] * len(paths)
    if not images:
        raise UserError(f"{root}/{split}: holds no images of {list(class_names)}; nothing to score.")
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def perturbed_sets(images: np.ndarray, conditions=ROBUSTNESS_CONDITIONS) -> dict[str, np.ndarray]:
    """``{condition: images}``: ``clean`` and each named condition applied once to every image."""
    from tfforensics.preprocess.perturb import conditions as named

    return {name: images if transform is None else np.stack([transform(image) for image in images])
            for name, transform in named(conditions).items()}


def _metrics(labels, scores, class_names, real: int) -> dict:
    """:func:`~tfforensics.evaluation.metrics.real_vs_fake` pooled and per fake source (ACC and AP)."""
    from tfforensics.evaluation.metrics import real_vs_fake

    keys = ("accuracy", "real_accuracy", "fake_accuracy", "average_precision")
    pooled = real_vs_fake(labels, scores, real)
    per_source = {}
    for i, name in enumerate(class_names):
        subset = (labels == real) | (labels == i)
        if i != real and (labels == i).any():
            row = real_vs_fake(labels[subset], scores[subset], real)
            per_source[name] = {"accuracy": row["accuracy"], "average_precision": row["average_precision"]}
    return {**{key: pooled[key] for key in keys}, "per_source": per_source}


def score_detector(detector: Detector, sets: dict, *, discriminator=None,
                   batch_size: int = 64) -> dict[str, np.ndarray]:
    """``{condition: (N, K) class probabilities}`` of one detector on the perturbed sets."""
    from tfforensics.evaluation.classify import score_arrays
    from tfforensics.evaluation.evaluate import on_gradients
    from tfforensics.models.wrapped import load_model

    model = load_model(detector.model)
    if detector.gradients:
        if discriminator is None:
            raise UserError(f"{detector.name}: an LGrad detector needs the discriminator it was trained with.")
        gradients = on_gradients(discriminator)
        sets = {name: gradients(images) for name, images in sets.items()}
    return {name: score_arrays(model, images, batch_size=batch_size) for name, images in sets.items()}


def robustness_table(detectors, images, labels, class_names, *, conditions=ROBUSTNESS_CONDITIONS,
                     discriminator=None, batch_size: int = 64) -> dict:
    """Every detector on ``images`` clean and under each condition; label 0 is real.

    Args:
        detectors: :class:`Detector` entries.
        images, labels: the test set, uint8 (N, H, W, 3) and source labels (0 = real).
        class_names: source names in label order (for the per-source rows).
        conditions: perturbation names (``jpeg75``, ``blur1``, ``resize0.5``, ``noise5``, ...).
        discriminator: for LGrad entries, the StyleGAN discriminator of their gradients
            (:func:`tfforensics.models.lgrad.load_discriminator`).

    Returns:
        ``{"conditions": [...], "count", "real", "fake", "detectors": [{"name", "training",
        "conditions": {condition: {accuracy, real_accuracy, fake_accuracy, average_precision,
        per_source}}}]}``.
    """
    labels = np.asarray(labels)
    sets = perturbed_sets(np.asarray(images), conditions)
    rows = [detector_row(detector, sets, labels, class_names, discriminator=discriminator, batch_size=batch_size)
            for detector in detectors]
    return assemble_table(rows, list(sets), labels)


def detector_row(detector: Detector, sets: dict, labels, class_names, *, discriminator=None,
                 batch_size: int = 64) -> dict:
    """One detector's entry of :func:`robustness_table` on the perturbed ``sets`` (label 0 is real);
    rows scored in separate processes are put together with :func:`assemble_table`."""
    scores = score_detector(detector, sets, discriminator=discriminator, batch_size=batch_size)
    return {"name": detector.name, "training": detector.training,
            "conditions": {name: _metrics(np.asarray(labels), score, list(class_names), 0)
                           for name, score in scores.items()}}


def assemble_table(rows: list, conditions: list, labels) -> dict:
    """The table of :func:`robustness_table` from its :func:`detector_row` entries, in table order."""
    labels = np.asarray(labels)
    return {"conditions": list(conditions), "count": int(len(labels)), "real": int((labels == 0).sum()),
            "fake": int((labels != 0).sum()), "threshold": 0.5, "detectors": list(rows)}
