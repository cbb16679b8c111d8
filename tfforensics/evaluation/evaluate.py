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


def calibrated_detection(model, dataset, *, fit_split: str = "val", split: str = "test", real_class=None,
                         batch_size: int = 64) -> dict:
    """Real-vs-fake ACC on ``split`` at a threshold chosen on ``fit_split`` (max balanced accuracy,
    :func:`tfforensics.evaluation.metrics.select_threshold`), for a model scored on records.

    A threshold of 0.5 suits a detector only when its scores are calibrated on the data at hand;
    an unseen generator shifts them, so the field also reports ACC at a threshold fitted on
    validation images. Returns :func:`~tfforensics.evaluation.metrics.calibrated_accuracy`'s dict.
    """
    from tfforensics.data.manifest import Manifest
    from tfforensics.evaluation.metrics import calibrated_accuracy, fake_scores, resolve_real_class
    from tfforensics.models.wrapped import class_names_of, load_model, unwrap

    model = load_model(model) if isinstance(model, (str, Path)) else model
    manifest = Manifest.load(dataset)
    check_compatible(model, manifest)
    real = resolve_real_class(class_names_of(model), real_class)
    _, classifier = unwrap(model)
    scored = {}
    for name in (fit_split, split):
        outputs, labels = predict_records(classifier, manifest, name, batch_size=batch_size)
        scored[name] = (labels != real, fake_scores(outputs, real))
    return calibrated_accuracy(*scored[fit_split], *scored[split])


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


# --- evaluate: the ForenSynths / CNNDetection protocol on image folders -------------------------

#: The eight test families of CNNDetection's ``eval_test8gan.py``, in its order.
FORENSYNTHS_FAMILIES = ("progan", "stylegan", "stylegan2", "biggan", "cyclegan", "stargan", "gaugan", "deepfake")
REAL_DIR, FAKE_DIR = "0_real", "1_fake"
EVALUATION_JSON, EVALUATION_MD, EVALUATION_CSV = "evaluation.json", "evaluation.md", "evaluation.csv"
EVALUATION_FILES = (EVALUATION_JSON, EVALUATION_MD, EVALUATION_CSV)
#: Columns of the table, in order: report key -> header.
COLUMNS = {"accuracy": "ACC", "real_accuracy": "real ACC", "fake_accuracy": "fake ACC", "average_precision": "AP"}


def _labelled(folder: Path) -> list:
    """``[(path, 0 | 1)]`` of ``folder/0_real`` and ``folder/1_fake`` (either may be missing)."""
    from tfforensics.io.images import list_images

    items = []
    for label, name in enumerate((REAL_DIR, FAKE_DIR)):
        if (folder / name).is_dir():
            items += [(path, label) for path in list_images(folder / name)]
    return items


def _has_split(folder: Path) -> bool:
    return (folder / REAL_DIR).is_dir() or (folder / FAKE_DIR).is_dir()


def forensynths_items(root) -> dict:
    """``{family: [(path, label)]}`` of a tree in the ForenSynths layout.

    ``ROOT/<family>/{0_real,1_fake}`` or ``ROOT/<family>/<class>/{0_real,1_fake}`` (the
    classes pooled, as ``eval_test8gan.py`` does for ProGAN, StyleGAN, ...); ``ROOT`` itself
    may be one family (``ROOT/{0_real,1_fake}``) or one image file, whose label is taken
    from a ``0_real``/``1_fake`` parent (else ``None``). Families come in
    :data:`FORENSYNTHS_FAMILIES` order, then any others by name.
    """
    from tfforensics.io.images import display_path

    root = Path(root)
    if root.is_file():
        label = {REAL_DIR: 0, FAKE_DIR: 1}.get(root.parent.name)
        return {root.stem: [(root, label)]}
    if not root.is_dir():
        raise UserError(f"{display_path(root)}: not found; give the test-set folder (ROOT/<family>/0_real, "
                        "1_fake) or one image file.")
    if _has_split(root):
        return {root.name or str(root): _labelled(root)}
    families = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        items = _labelled(folder) if _has_split(folder) else [
            item for sub in sorted(p for p in folder.iterdir() if p.is_dir() and _has_split(p)) for item in _labelled(sub)]
        if items:
            families[folder.name] = items
    if not families:
        raise UserError(f"{display_path(root)}: holds no {REAL_DIR}/{FAKE_DIR} folders; lay the test set out as "
                        f"ROOT/<family>[/<class>]/{{{REAL_DIR},{FAKE_DIR}}}/*.png (the CNNDetection test set).")
    order = {name: i for i, name in enumerate(FORENSYNTHS_FAMILIES)}
    return dict(sorted(families.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def perturbations(jpeg=(), blur=(), perturb=()) -> dict:
    """``{condition name: transform or None}``: clean, then each ``perturb`` name (``jpeg75``,
    ``blur1``, ``resize0.5``, ``noise5``; :func:`tfforensics.preprocess.perturb.condition_transform`),
    then JPEG at each quality of ``jpeg`` and blur at each sigma of ``blur`` (``--jpeg Q`` is
    ``--perturb jpegQ``, ``--blur S`` is ``--perturb blurS``); a condition named twice runs once.
    """
    from tfforensics.preprocess.perturb import conditions

    return conditions([*perturb, *(f"jpeg{q}" for q in jpeg), *(f"blur{float(s):g}" for s in blur)])


def on_gradients(discriminator, transform=None, resample: str = "bicubic", batch_size: int = 16):
    """``transform`` (a perturbation or None), then LGrad's input: the image resized to the
    discriminator's resolution and replaced by the gradient image of its output
    (:func:`tfforensics.models.lgrad.compute_gradients`), so an LGrad detector is scored on
    the images themselves, the gradients computed on the fly. ``discriminator`` should come
    from :func:`tfforensics.models.lgrad.load_discriminator` (per-image minibatch stddev, so a
    batch's gradient images are each image's own). The returned function takes one image
    (H, W, C) or a stack (N, H, W, C), whose gradients it computes ``batch_size`` at a time."""
    from tfforensics.io.images import resize_image
    from tfforensics.models.lgrad import _input_layout, compute_gradients, gradient_function

    resolution, _ = _input_layout(discriminator)
    function = gradient_function(discriminator)  # traced once, called per batch

    def prepared(image):
        image = transform(image) if transform is not None else image
        if image.ndim == 2 or image.shape[-1] == 1:
            image = np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=-1)
        if image.shape[:2] != (resolution, resolution):
            image = resize_image(image, (resolution, resolution), resample)
        return image

    def gradient_images(images):
        images = np.asarray(images)
        single = images.ndim < 4  # one image (H, W[, C]); a stack is (N, H, W, C)
        inputs = np.stack([prepared(image) for image in (images[None] if single else images)])
        gradients = compute_gradients(discriminator, inputs, batch_size, function=function)
        return gradients[0] if single else gradients

    return gradient_images


def _mean_row(rows: dict) -> dict:
    out = {}
    for key in COLUMNS:
        values = [row[key] for row in rows.values() if row.get(key) is not None]
        out[key] = float(np.mean(values)) if values else None
    out["count"] = int(sum(row["count"] for row in rows.values()))
    return out


def evaluate_folders(model, root, *, jpeg=(), blur=(), perturb=(), batch_size: int = 32, real_class=None, skip_bad: bool = False,
                     out=None, overwrite: bool = False, progress: bool = False, discriminator=None) -> dict:
    """ACC (threshold 0.5), real ACC, fake ACC and AP per family and their mean, as ``eval_test8gan.py``.

    Args:
        model: any saved detector (``.keras`` or a run directory; it takes raw images), or a Keras model.
        root: the test set (see :func:`forensynths_items`) or one image file.
        perturb: extra conditions by name (``jpeg75 blur1 resize0.5 noise5``, see
            :func:`perturbations`), each scored like the clean images.
        jpeg, blur: more conditions as JPEG qualities and blur sigmas (``--jpeg``, ``--blur``).
        real_class: name or index of the model's real class (default: label 0); P(fake) is
            ``1 - P(real)``, so a multi-class (attribution) model scores as a detector.
        skip_bad: skip unreadable or mis-sized images (listed in the report).
        out: folder for ``evaluation.json``, ``evaluation.md`` and ``evaluation.csv``.
        discriminator: for an LGrad detector, the StyleGAN discriminator it was trained
            with: every (perturbed) image becomes its gradient image first (:func:`on_gradients`).

    Returns:
        ``{"conditions": {name: {"families": {family: row}, "mean": row}}, ...}`` where a row
        holds ``accuracy``, ``real_accuracy``, ``fake_accuracy``, ``average_precision`` (the
        scikit-learn values; ``None`` where a family lacks real or fake images) and counts.
    """
    from tfforensics.evaluation.classify import score_paths
    from tfforensics.evaluation.metrics import real_vs_fake, resolve_real_class
    from tfforensics.io.outputs import claim_files
    from tfforensics.models.wrapped import class_names_of, load_model

    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1. Received: {batch_size}")
    if out is not None:
        claim_files(out, EVALUATION_FILES, record=EVALUATION_JSON, command="evaluate", previous="evaluation",
                    contents=", ".join(EVALUATION_FILES), instead="--out", overwrite=overwrite)
    conditions = perturbations(jpeg, blur, perturb)
    if discriminator is not None:
        conditions = {name: on_gradients(discriminator, transform) for name, transform in conditions.items()}
    model_path = None
    if isinstance(model, (str, Path)):
        model_path = str(model)
        model = load_model(model)
    class_names = class_names_of(model)
    real = resolve_real_class(class_names, real_class)
    families = forensynths_items(root)
    report = {"model": model_path or model.name, "root": str(root), "threshold": 0.5,
              "real_class": class_names[real], "class_names": class_names, "conditions": {}, "skipped": [],
              "images": []}
    single = Path(root).is_file()
    for condition, transform in conditions.items():
        rows = {}
        for family, items in families.items():
            paths = [path for path, _ in items]
            labels = {path: label for path, label in items}
            kept, scores, skipped = score_paths(model, paths, batch_size=batch_size, skip_bad=skip_bad,
                                                transform=transform, progress=progress, desc=f"{family} ({condition})")
            if condition == "clean":
                report["skipped"] += skipped
            if single:
                report["images"] += [{"condition": condition, "path": str(p), "label": labels[p],
                                      "fake_score": float(1.0 - s[real])}
                                     for p, s in zip(kept, scores)]
            known = [i for i, p in enumerate(kept) if labels[p] is not None]
            if not known:
                continue
            # A detector's labels: 0 real, 1 fake; the model's real class is ``real``.
            y = np.array([labels[kept[i]] for i in known])
            model_labels = np.where(y == 0, real, 1 if real == 0 else 0)
            row = real_vs_fake(model_labels, scores[known], real)
            rows[family] = {key: row[key] for key in ("count", "real", "fake", *COLUMNS)}
        report["conditions"][condition] = {"families": rows, "mean": _mean_row(rows) if rows else None}
    if out is not None:
        write_evaluation(report, out)
    return report


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def format_evaluation(report: dict) -> str:
    """The per-family tables (one per condition) as Markdown, percentages with one decimal."""
    lines = [f"# {Path(report['model']).name} on {report['root']}", "",
             f"ACC at threshold {report['threshold']} (fake when P(fake) > {report['threshold']}), AP with fake as "
             "the positive class, in %."]
    for condition, table in report["conditions"].items():
        lines += ["", f"## {condition}", "", "| family | " + " | ".join(COLUMNS.values()) + " | images |",
                  "|---|" + "---:|" * (len(COLUMNS) + 1)]
        rows = {**table["families"], **({"**mean**": table["mean"]} if table["mean"] else {})}
        for family, row in rows.items():
            lines.append(f"| {family} | " + " | ".join(_pct(row[key]) for key in COLUMNS) + f" | {row['count']} |")
    for image in report.get("images", []):
        lines.append(f"\n{image['path']} ({image['condition']}): P(fake) = {image['fake_score']:.4f}")
    return "\n".join(lines) + "\n"


def write_evaluation(report: dict, out) -> list[Path]:
    """``evaluation.json``, ``evaluation.md`` and ``evaluation.csv`` (one row per condition and family)."""
    from tfforensics import __version__
    from tfforensics.io.outputs import PRODUCER

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["condition", "family", *COLUMNS, "count", "real", "fake"])
    for condition, table in report["conditions"].items():
        rows = {**table["families"], **({"mean": table["mean"]} if table["mean"] else {})}
        for family, row in rows.items():
            writer.writerow([condition, family, *["" if row[k] is None else f"{row[k]:.6f}" for k in COLUMNS],
                             row["count"], row.get("real", ""), row.get("fake", "")])
    atomic_write_json(out / EVALUATION_JSON, {"producer": PRODUCER, "tfforensics_version": __version__, **report})
    atomic_write(out / EVALUATION_MD, format_evaluation(report))
    atomic_write(out / EVALUATION_CSV, buffer.getvalue())
    return [out / name for name in EVALUATION_FILES]
