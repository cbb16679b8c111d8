"""The ``attribute`` workflow of Yu et al.: train, attribute images, immunize, report rows.

Everything runs on the spine: pixel records from ``prepare`` (``--raw --color``, values in
[-1, 1]), :func:`tfforensics.training.fit.train` for fitting, the one reader for records,
:func:`tfforensics.evaluation.metrics.classification_report` for the numbers. An image
folder given to :func:`train_attribution` is first prepared into ``<run>/data``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path

import numpy as np

from tfforensics.errors import UserError

logger = logging.getLogger(__name__)

DATA_DIR = "data"
ATTRIBUTION_MODELS = ("attribution", "attribution_predown", "visnet")
#: Perturbations of the immunizability experiment (Yu et al. Sec. 5.4), from ``perturb``.
IMMUNIZE_KINDS = ("noise", "blur", "jpeg", "crop", "relight")


# --------------------------------------------------------------------------- training

def pixel_encoding():
    from tfforensics.data.encodings import Encoding

    return Encoding(transform="raw", color=True)


def records_for(source, run_dir: Path, *, fractions=None, workers: int | None = None, seed: int = 0,
                skip_bad: bool = False, progress: bool = True, command: str = ""):
    """The manifest of ``source``: prepared records as they are, or an image folder prepared into ``run_dir/data``."""
    from tfforensics.data.manifest import MANIFEST_NAME, Manifest
    from tfforensics.data.prepare import prepare

    source = Path(source)
    if source.name == MANIFEST_NAME or (source / MANIFEST_NAME).is_file():
        manifest = Manifest.load(source)
    elif source.is_dir():
        logger.info("%s: image folders; preparing pixel records into %s", source, run_dir / DATA_DIR)
        manifest = prepare(source, run_dir / DATA_DIR, pixel_encoding(), fractions=fractions, workers=workers or 1,
                           seed=seed, skip_bad=skip_bad, progress=progress, command=command)
    else:
        raise UserError(f"{source}: neither a dataset written by `tfforensics prepare` nor a folder of "
                        "class sub-folders; pass one of them.")
    if manifest.encoding.transform != "raw":
        raise UserError(f"{manifest.root}: holds {manifest.encoding.describe()} records; the attribution network "
                        "reads pixels: prepare with `tfforensics prepare SRC OUT --raw --color`, or pass the "
                        "image folders themselves.")
    return manifest


def default_run_dir(model: str, source) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{model}-{Path(source).resolve().name}-{stamp}"


def train_attribution(source, out=None, *, model: str = "attribution", epochs: int = 30, batch_size: int = 32,
                      learning_rate: float = 1e-3, early_stopping: int | None = 5, seed: int = 0,
                      model_options: dict | None = None, fractions=None, workers: int | None = None,
                      skip_bad: bool = False, overwrite: bool = False, progress: bool = True, verbose="auto",
                      command: str = ""):
    """Train Yu et al.'s attribution network (or its visNet) on records or image folders.

    Args:
        source: a dataset written by ``prepare --raw --color``, or a folder with one
            sub-folder per source (prepared into ``out/data`` first, split 0.7/0.2/0.1).
        out: run directory (default ``runs/<model>-<source>-<time>``).
        model: ``attribution``, ``attribution_predown`` or ``visnet``.
        epochs, batch_size, learning_rate, early_stopping, seed: as ``tfforensics train``;
            Adam uses the original's beta1 0, beta2 0.99.
        model_options: builder options (``switching_res``, ``fmap_max``, ...).

    Returns:
        The :class:`tfforensics.training.fit.TrainResult`; ``out/model.keras`` takes raw
        0..255 images.
    """
    from tfforensics.training.fit import train

    if model not in ATTRIBUTION_MODELS:
        raise UserError(f"--model must be one of {', '.join(ATTRIBUTION_MODELS)}. Received: {model!r}")
    run_dir = Path(out) if out is not None else default_run_dir(model, source)
    manifest = records_for(source, run_dir, fractions=fractions, workers=workers, seed=seed, skip_bad=skip_bad,
                           progress=progress, command=command)
    return train(model, manifest, out=run_dir, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                 early_stopping=early_stopping, seed=seed, overwrite=overwrite, verbose=verbose, command=command,
                 model_options=model_options)


# --------------------------------------------------------------------------- attributing images

@dataclasses.dataclass
class Attribution:
    """Scores of a model on images, and the metrics when the true sources are known."""

    paths: list
    scores: np.ndarray  # (N, K) probabilities
    class_names: list
    labels: np.ndarray | None = None  # true labels, when known
    resized: int = 0
    report: dict | None = None

    @property
    def predictions(self) -> np.ndarray:
        return self.scores.argmax(axis=1)

    @property
    def shares(self) -> dict:
        counts = np.bincount(self.predictions, minlength=len(self.class_names))
        return {name: float(counts[i]) / max(len(self.paths), 1) for i, name in enumerate(self.class_names)}

    def lines(self) -> list[str]:
        """Per image, then the share per source, then accuracy and the confusion matrix."""
        out = []
        for i, (path, guess) in enumerate(zip(self.paths, self.predictions)):
            truth = f" (true: {self.class_names[self.labels[i]]})" if self.labels is not None else ""
            out.append(f"{path}: {self.class_names[guess]} {self.scores[i, guess]:.3f}{truth}")
        counts = np.bincount(self.predictions, minlength=len(self.class_names))
        for name, count in zip(self.class_names, counts):
            out.append(f"{count / max(len(self.paths), 1):7.2%} of the images are from {name} ({count}/{len(self.paths)})")
        if self.report is not None:
            out.extend(format_confusion(self.report))
        return out


def format_confusion(report: dict) -> list[str]:
    """Accuracy and the confusion matrix (rows: true source, columns: predicted) as text lines."""
    names = report["class_names"]
    corner = "true \\ predicted"
    width = max(len(n) for n in names + [corner])
    cell = max(6, *(len(n) for n in names))
    lines = [f"accuracy {report['accuracy']:.2%} on {report['count']} images"]
    lines.append(f"{corner:<{width}}  " + "  ".join(f"{n:>{cell}}" for n in names))
    for name, row in zip(names, report["confusion_matrix"]):
        lines.append(f"{name:<{width}}  " + "  ".join(f"{v:>{cell}d}" for v in row))
    return lines


def _model_input(model):
    shape = tuple(model.input_shape[1:])
    if len(shape) != 3 or shape[-1] not in (1, 3) or shape[0] is None:
        raise UserError(f"the model takes inputs of shape {shape}, not images; use a model saved by "
                        "`tfforensics attribute train` or a released .pkl.")
    return shape


def load_resized(path, shape) -> tuple[np.ndarray, bool]:
    """``path`` as a uint8 image of ``shape``; resized (PIL bicubic, antialiased) when its size differs."""
    from PIL import Image

    from tfforensics.io.images import load_image

    image = load_image(path, grayscale=shape[-1] == 1)
    if image.shape[:2] == tuple(shape[:2]):
        return image, False
    pil = Image.fromarray(image[..., 0] if shape[-1] == 1 else image)
    resized = np.asarray(pil.resize((shape[1], shape[0]), Image.Resampling.BICUBIC), dtype=np.uint8)
    return resized.reshape(shape), True


def _image_items(source, class_names):
    """``(paths, labels or None)`` of one image file, a flat folder, or a folder of class folders."""
    from tfforensics.io.images import IMAGE_EXTENSIONS, list_images

    source = Path(source)
    if source.is_file():
        if source.suffix.lower() not in IMAGE_EXTENSIONS:
            raise UserError(f"{source}: not an image file ({', '.join(sorted(IMAGE_EXTENSIONS))}).")
        return [source], None
    if not source.is_dir():
        raise UserError(f"{source}: not found; pass an image, a folder of images or a dataset.")
    flat = list_images(source)
    folders = sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith(".") and list_images(p))
    if folders and not flat:
        unknown = [f.name for f in folders if f.name not in class_names]
        if not unknown:
            paths, labels = [], []
            for folder in folders:
                files = list_images(folder)
                paths += files
                labels += [class_names.index(folder.name)] * len(files)
            return paths, np.asarray(labels, dtype=np.int64)
        logger.warning("%s: sub-folders %s are not sources of the model (%s); attributing without labels.",
                       source, unknown, ", ".join(class_names))
        return list_images(source, recursive=True), None
    if not flat:
        raise UserError(f"{source}: contains no images.")
    return flat, None


def attribute_images(model, source, *, batch_size: int = 32, class_names=None, progress: bool = False) -> Attribution:
    """Attribute one image, a folder, or a folder of source folders (labels from their names).

    Images of another size than the model's input are resized (bicubic) with one
    warning, as the original resized every test image to 128x128.
    """
    from tfforensics.evaluation.metrics import as_probabilities, classification_report
    from tfforensics.models.attribution import load_any
    from tfforensics.models.wrapped import class_names_of

    if isinstance(model, (str, Path)):
        model = load_any(model, class_names=class_names)
    shape = _model_input(model)
    names = class_names_of(model)
    paths, labels = _image_items(source, names)
    scores, resized = [], 0
    for start in range(0, len(paths), batch_size):
        batch = []
        for path in paths[start:start + batch_size]:
            image, was_resized = load_resized(path, shape)
            resized += was_resized
            batch.append(image)
        scores.append(as_probabilities(model.predict_on_batch(np.stack(batch).astype(np.float32))))
    if resized:
        logger.warning("%d of %d images were not %dx%d and were resized to it (bicubic); attribution of resized "
                       "images is less reliable.", resized, len(paths), shape[1], shape[0])
    scores = np.concatenate(scores)
    report = classification_report(labels, scores, names) if labels is not None else None
    return Attribution(paths=paths, scores=scores, class_names=names, labels=labels, resized=resized, report=report)


def evaluate_attribution(model, source, *, split: str = "test", batch_size: int = 32, class_names=None,
                     out=None, progress: bool = False):
    """Attribute a dataset split (records), a folder or one image; ``(report or None, Attribution or None)``."""
    from tfforensics.data.manifest import MANIFEST_NAME
    from tfforensics.evaluation.evaluate import evaluate_model
    from tfforensics.models.attribution import load_any

    model = load_any(model, class_names=class_names) if isinstance(model, (str, Path)) else model
    source = Path(source)
    if source.name == MANIFEST_NAME or (source.is_dir() and (source / MANIFEST_NAME).is_file()):
        report = evaluate_model(model, source, split=split, batch_size=batch_size, out=out, progress=progress)
        return report, None
    result = attribute_images(model, source, batch_size=batch_size, progress=progress)
    if out is not None and result.report is not None:
        from tfforensics.io.atomic import atomic_write_json

        Path(out).mkdir(parents=True, exist_ok=True)
        atomic_write_json(Path(out) / "metrics.json", {**result.report, "dataset": str(source)})
    return result.report, result
