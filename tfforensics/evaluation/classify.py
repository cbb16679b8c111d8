"""``classify``: run a saved model on a folder of raw images.

The model carries its preprocessing and class names, so this needs only the folder:
images are decoded by :func:`tfforensics.io.images.load_image` (as luma when the model
takes one channel), batched, scored, and counted per predicted class.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tfforensics.errors import UserError
from tfforensics.io.atomic import atomic_write
from tfforensics.io.images import BadImageError, list_images, load_image
from tfforensics.io.parallel import thread_count


@dataclasses.dataclass
class Classification:
    """Scores per image and the counts per predicted class."""

    paths: list[Path]
    scores: np.ndarray  # (N, K) per-class probabilities
    class_names: list[str]
    skipped: list = dataclasses.field(default_factory=list)  # [{"path", "reason"}]

    @property
    def predictions(self) -> np.ndarray:
        return self.scores.argmax(axis=1) if len(self.scores) else np.empty(0, dtype=np.int64)

    @property
    def counts(self) -> dict[str, int]:
        counts = np.bincount(self.predictions, minlength=len(self.class_names))
        return {name: int(counts[i]) for i, name in enumerate(self.class_names)}

    @property
    def shares(self) -> dict[str, float]:
        total = max(len(self.paths), 1)
        return {name: count / total for name, count in self.counts.items()}

    def summary(self) -> str:
        """One line per class, like the original ``run_classifier.py``."""
        return "\n".join(
            f"{self.shares[name]:7.2%} of the images are from class {name} ({count})"
            for name, count in self.counts.items()
        )

    def to_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["path", "predicted", *[f"score_{name}" for name in self.class_names]])
        for path, guess, row in zip(self.paths, self.predictions, self.scores):
            writer.writerow([str(path), self.class_names[guess], *[f"{p:.6g}" for p in row]])
        return buffer.getvalue()


def _loader(shape, skip_bad: bool, transform=None):
    height, width, channels = shape
    size = None if height is None or width is None else (height, width)  # any size: fully convolutional

    def load(path):
        try:
            image = load_image(path, grayscale=channels == 1, size=size, size_of="the model's inputs")
        except BadImageError as error:
            if not skip_bad:
                raise
            return error
        return image if transform is None else transform(image)

    return load


def model_image_shape(model) -> tuple:
    """``(height, width, channels)`` of the images ``model`` takes (``None`` sides: any size)."""
    shape = tuple(model.input_shape[1:])
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise UserError(f"the model takes inputs of shape {shape}, not images; use a model saved by "
                        "`tfforensics train` or `tfforensics convert`.")
    from tfforensics.models.wrapped import metadata_of

    if (metadata_of(model).get("encoding") or {}).get("transform") == "unknown":
        raise UserError(f"model {model.name!r} was trained on arrays without a manifest (the original "
                        "prepare_dataset.py output), so it takes those encoded arrays, not images; score records "
                        "with `tfforensics test`, or prepare the images with `tfforensics prepare` and train again.")
    return shape


def emits_logits(model) -> bool:
    """True when the model ends in one unit without activation (a logit, as LGrad's detector).

    Its outputs then go through a sigmoid before they count as P(fake); the detectors
    tfforensics saves end in a sigmoid or softmax (behind the identity ``ClassNames``).
    """
    import keras

    from tfforensics.layers import ClassNames

    layer = model
    while isinstance(layer, keras.Model):
        inner = [item for item in layer.layers if not isinstance(item, ClassNames)]
        if not inner:
            break
        layer = inner[-1]
    activation = getattr(getattr(layer, "activation", None), "__name__", None)
    return getattr(layer, "units", None) == 1 and activation == "linear"


def _runs(images):
    """Consecutive images of one shape, as ``[(start, stop)]`` (one batch each)."""
    if not images:
        return []
    bounds = [0] + [i for i in range(1, len(images)) if images[i].shape != images[i - 1].shape] + [len(images)]
    return list(zip(bounds[:-1], bounds[1:]))


def score_paths(model, paths, *, batch_size: int = 32, skip_bad: bool = False, transform=None,
                progress: bool = True, desc: str = "classify"):
    """``(kept paths, (N, K) scores, skipped)`` of ``model`` on image files, in order.

    Images are decoded by :func:`load_image` at the model's size (luma for one channel;
    at their own size for a model of any input size, batched by runs of one shape, as
    CNNDetection tests without resizing), then ``transform`` (e.g. a JPEG or blur
    perturbation) is applied; unreadable or mis-sized files stop the run, or with
    ``skip_bad`` are listed in ``skipped``. A model ending in a logit
    (:func:`emits_logits`) gets a sigmoid.
    """
    from tqdm.auto import tqdm

    load = _loader(model_image_shape(model), skip_bad, transform)
    logits = emits_logits(model)
    kept, scores, skipped = [], [], []
    with ThreadPoolExecutor(max_workers=thread_count()) as pool, \
            tqdm(total=len(paths), desc=desc, unit="img", disable=not progress, dynamic_ncols=True) as bar:
        for start in range(0, len(paths), batch_size):
            chunk = paths[start:start + batch_size]
            images = []
            for path, image in zip(chunk, pool.map(load, chunk)):
                if isinstance(image, BadImageError):
                    skipped.append({"path": image.path, "reason": image.reason})
                    continue
                kept.append(path)
                images.append(image)
            for start_run, stop_run in _runs(images):  # images of any size: one batch per run of one shape
                scores.append(_predict(model, np.stack(images[start_run:stop_run]), logits))
            bar.update(len(chunk))
    return kept, (np.concatenate(scores) if scores else np.empty((0, 2))), skipped


def _predict(model, batch, logits: bool) -> np.ndarray:
    """``(N, K)`` probabilities of one batch of raw images (a sigmoid after a logit)."""
    from tfforensics.evaluation.metrics import as_probabilities

    outputs = np.asarray(model.predict_on_batch(np.asarray(batch).astype(np.float32)))
    if logits:
        outputs = 1.0 / (1.0 + np.exp(-outputs.astype(np.float64)))
    return as_probabilities(outputs)


def score_arrays(model, images, *, batch_size: int = 64) -> np.ndarray:
    """``(N, K)`` probabilities of ``model`` on uint8 images already in memory (N, H, W, C), as
    :func:`score_paths` gives them for files (the images must have the model's size and channels)."""
    images = np.asarray(images)
    shape = model_image_shape(model)
    if images.ndim != 4 or any(want not in (None, got) for want, got in zip(shape, images.shape[1:])):
        raise UserError(f"the model takes images of shape {shape}; these are {images.shape[1:]}.")
    logits = emits_logits(model)
    batches = [_predict(model, images[start:start + batch_size], logits) for start in range(0, len(images), batch_size)]
    return np.concatenate(batches) if batches else np.empty((0, 2))


def classify_images(model, image_dir, *, size: int | None = None, batch_size: int = 32, skip_bad: bool = False,
                    recursive: bool = False, progress: bool = True) -> Classification:
    """Score the images of ``image_dir`` (sorted; the first ``size`` when given), or one image file.

    Args:
        model: a ``.keras`` path (or run directory) written by ``train``, or a model
            that takes raw 0..255 images.
        image_dir: folder of images, or one image file.
        size: only the first ``size`` images (sorted by name), as the original ``-s``.
        batch_size: images per forward pass.
        skip_bad: skip unreadable or mis-sized images (listed in ``skipped``).
        recursive: include sub-folders.
    """
    from tfforensics.models.wrapped import class_names_of, load_model

    if isinstance(model, (str, Path)):
        model = load_model(model)
    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1. Received: batch_size={batch_size}")
    if size is not None and size < 1:
        raise UserError(f"--size must be a whole number >= 1 (the first N images). Received: --size {size}")
    folder = Path(image_dir)
    if folder.is_file():  # one image
        paths = [folder]
    else:
        if not folder.is_dir():
            raise UserError(f"{image_dir}: not found; give a folder of images or one image file.")
        if not os.access(folder, os.R_OK | os.X_OK):
            raise UserError(f"{image_dir}: cannot be read (permission denied); fix its permissions (chmod u+rx).")
        paths = list_images(image_dir, recursive=recursive)
    if size is not None:
        paths = paths[:size]
    if not paths:
        raise UserError(f"{image_dir}: contains no images ({'recursively' if recursive else 'add --recursive for sub-folders'}).")
    class_names = class_names_of(model)
    kept, scores, skipped = score_paths(model, paths, batch_size=batch_size, skip_bad=skip_bad, progress=progress)
    if not kept:
        raise UserError(f"{image_dir}: none of the {len(paths)} images could be classified "
                         f"(first: {skipped[0]['path']} {skipped[0]['reason']}).")
    return Classification(paths=kept, scores=scores, class_names=class_names, skipped=skipped)


CSV_HEADER = "path,predicted,"


def csv_is_ours(path) -> bool:
    """True when ``path`` starts with the header that :func:`write_csv` writes."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(CSV_HEADER)) == CSV_HEADER.encode()
    except OSError:
        return False


def claim_csv(path, overwrite: bool = False) -> Path:
    """Check, before any work, that the CSV ``path`` may be written (see :func:`tfforensics.io.outputs.claim_file`)."""
    from tfforensics.io.outputs import claim_file

    return claim_file(path, overwrite=overwrite, ours=csv_is_ours, what="classify CSV")


def write_csv(result: Classification, path) -> Path:
    """One row per image: path, predicted class, score per class.

    File names that are not valid UTF-8 are written with their undecodable bytes escaped
    (``\\xff``), so every row stays readable text.
    """
    atomic_write(path, result.to_csv().encode("utf-8", "backslashreplace"))
    return Path(path)
