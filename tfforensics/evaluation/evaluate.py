"""``test``: score a saved model on the records of a prepared split.

The saved model takes raw images; the records are already encoded, so the inner
classifier (:func:`tfforensics.models.wrapped.unwrap`) runs on them directly. Before
that, the model's stored encoding is compared with the dataset's: a DCT model on pixel
records, or a different image size, is an error, not a silent 50 %.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
from pathlib import Path

import numpy as np

from tfforensics.errors import UserError
from tfforensics.io.atomic import atomic_write, atomic_write_json

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
PREDICTIONS_FILE = "predictions.csv"
#: Every file ``test --out`` writes.
TEST_FILES = (METRICS_FILE, PREDICTIONS_FILE, "confusion_matrix.png", "roc.png")


def claim_test_out(out, overwrite: bool = False) -> bool:
    """Check, before any work, that ``test`` may write its files into ``out``.

    Files of a previous ``test`` are replaced only with ``overwrite`` and only when its
    ``metrics.json`` is one tfforensics wrote. Returns True when ``out`` is new or empty (then it
    gets a marker listing the files, see :mod:`tfforensics.io.outputs`).
    """
    from tfforensics.io.outputs import claim_files, read_marker

    out = Path(out)
    claim_files(out, TEST_FILES, record=METRICS_FILE, command="test", previous="test results",
                contents="metrics.json, predictions.csv, plots", instead="--out", overwrite=overwrite)
    marker = read_marker(out) if out.is_dir() else None
    return not out.exists() or not any(out.iterdir()) or (marker is not None and marker.get("command") == "test")


def check_compatible(model, manifest) -> None:
    """Raise if ``model`` was trained on another encoding or shape than ``manifest``'s records."""
    from tfforensics.models.wrapped import metadata_of, unwrap

    _, classifier = unwrap(model)
    info = metadata_of(model)
    expected = tuple(classifier.input_shape[1:])
    if expected != tuple(manifest.image_shape):
        raise UserError(
            f"the model takes encoded images of shape {expected} but {manifest.root} holds "
            f"{tuple(manifest.image_shape)}; prepare the test data like the training data."
        )
    if "encoding" in info and info["encoding"] != dataclasses.asdict(manifest.encoding):
        from tfforensics.data.encodings import Encoding

        trained = Encoding(**info["encoding"]).describe()
        raise UserError(
            f"the model was trained on {trained} records but {manifest.root} is "
            f"{manifest.encoding.describe()}; prepare the test data with the same encoding options."
        )
    trained_stats = info.get("statistics_sha256")
    if trained_stats and manifest.statistics and trained_stats != manifest.statistics.get("sha256"):
        logger.warning(
            "%s was normalised with other train-split statistics than the model's; scores on these records "
            "may differ from scores on raw images (use `classify`, which applies the model's own).",
            manifest.root,
        )


def predict_records(classifier, manifest, split: str = "test", *, batch_size: int = 64, progress: bool = False):
    """``(outputs, labels)`` of ``classifier`` over a split, in stored order."""
    from tqdm.auto import tqdm

    from tfforensics.data.reader import load_dataset, read_errors

    dataset = load_dataset(manifest, split, batch_size=batch_size, shuffle=False)
    outputs, labels = [], []
    with read_errors(manifest, (split,)), tqdm(total=manifest.count(split), desc=f"test ({split})", unit="img",
                                               disable=not progress, dynamic_ncols=True) as bar:
        for images, batch_labels in dataset:
            outputs.append(np.asarray(classifier.predict_on_batch(images)))
            labels.append(batch_labels.numpy())
            bar.update(len(labels[-1]))
    if not outputs:
        raise UserError(f"{manifest.root}: the {split} split is empty; nothing to test.")
    return np.concatenate(outputs), np.concatenate(labels)


def _predictions_csv(labels, probabilities, class_names) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["index", "label", "predicted", *[f"score_{name}" for name in class_names]])
    predicted = probabilities.argmax(axis=1)
    for i, (label, guess, row) in enumerate(zip(labels, predicted, probabilities)):
        writer.writerow([i, class_names[label], class_names[guess], *[f"{p:.6g}" for p in row]])
    return buffer.getvalue()


def evaluate_model(model, dataset, *, split: str = "test", batch_size: int = 64, real_class=None, out=None,
                   plots: bool = True, progress: bool = False, overwrite: bool = False) -> dict:
    """Metrics of ``model`` (a path or a loaded model) on ``split`` of ``dataset``.

    Args:
        model: ``model.keras`` (or a run directory) written by ``train``, or a Keras model.
        dataset: a directory written by ``prepare`` (or its manifest, or a Manifest).
        split: which split to score (default ``test``).
        real_class: name or index of the real class (default: label 0).
        out: directory for ``metrics.json``, ``predictions.csv`` and the PNG plots.
        plots: write ``confusion_matrix.png`` and ``roc.png`` into ``out``.
        progress: show a progress bar.
        overwrite: replace the files of a previous ``test`` in ``out``.

    Returns:
        The report of :func:`tfforensics.evaluation.metrics.classification_report`
        plus the model, dataset and split.
    """
    from tfforensics.data.manifest import Manifest
    from tfforensics.evaluation.metrics import as_probabilities, classification_report, resolve_real_class, roc_curves
    from tfforensics.models.wrapped import class_names_of, load_model, unwrap

    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1. Received: {batch_size}")
    own_folder = claim_test_out(out, overwrite) if out is not None else False
    model_path = None
    if isinstance(model, (str, Path)):
        model_path = str(model)
        model = load_model(model)
    manifest = Manifest.load(dataset)
    check_compatible(model, manifest)
    class_names = class_names_of(model)
    if len(class_names) < manifest.num_classes:
        raise UserError(
            f"{manifest.root} has {manifest.num_classes} classes {manifest.class_names} but the model knows "
            f"{len(class_names)} {class_names}."
        )
    if class_names[: manifest.num_classes] != manifest.class_names:
        logger.warning("class names differ: model %s, dataset %s; labels are matched by index.",
                       class_names, manifest.class_names)
    real = resolve_real_class(class_names, real_class)
    _, classifier = unwrap(model)
    outputs, labels = predict_records(classifier, manifest, split, batch_size=batch_size, progress=progress)
    probabilities = as_probabilities(outputs)
    report = classification_report(labels, probabilities, class_names, real_class=real)
    report = {"model": model_path or model.name, "model_name": classifier.name, "dataset": str(manifest.root),
              "split": split, **report}

    if out is not None:
        from tfforensics import __version__
        from tfforensics.io.outputs import PRODUCER, mark_output

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / METRICS_FILE, {"producer": PRODUCER, "tfforensics_version": __version__, **report})
        atomic_write(out / PREDICTIONS_FILE, _predictions_csv(labels, probabilities, class_names))
        if plots:
            from tfforensics.evaluation.plots import plot_confusion_matrix, plot_roc

            plot_confusion_matrix(report["confusion_matrix"], class_names, out / "confusion_matrix.png",
                                  title=f"{classifier.name} on {Path(report['dataset']).name}/{split}")
            curves = roc_curves(labels, probabilities, class_names, real)
            if curves:
                plot_roc(curves, out / "roc.png", title=f"{classifier.name}: ROC of {class_names[real]} vs fake")
        if own_folder:
            mark_output(out, "test", files=[name for name in TEST_FILES if (out / name).exists()])
    return report


def format_report(report: dict) -> str:
    """A short plain-text summary of a :func:`evaluate_model` report."""
    lines = [f"{report['split']}: {report['count']} images, accuracy {report['accuracy']:.2%}"]
    width = max(len(name) for name in report["class_names"])
    lines.append(f"  {'class':<{width}}  precision  recall  support")
    for name, row in report["per_class"].items():
        lines.append(f"  {name:<{width}}  {row['precision']:9.2%}  {row['recall']:6.2%}  {row['support']:7d}")
    binary = report["real_vs_fake"]

    def pct(value):
        return "n/a" if value is None else f"{value:.2%}"

    lines.append(
        f"real ({report['real_class']}) vs fake: accuracy {pct(binary['accuracy'])}, "
        f"AP {pct(binary['average_precision'])}, ROC AUC {pct(binary['roc_auc'])}"
    )
    for name, row in report["per_source"].items():
        lines.append(f"  {name:<{width}}  accuracy {pct(row['accuracy'])}, AP {pct(row['average_precision'])}, "
                     f"AUC {pct(row['roc_auc'])}")
    return "\n".join(lines)
