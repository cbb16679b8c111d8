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
                skip_bad: bool = False, overwrite: bool = False, progress: bool = True, command: str = "",
                layout: str = "original"):
    """The manifest of ``source``: prepared records as they are, or an image folder prepared into
    ``run_dir/data`` (in ``layout``; ``"pixels"`` for training with augmentation)."""
    from tfforensics.data.manifest import MANIFEST_NAME, Manifest
    from tfforensics.data.prepare import prepare

    if isinstance(source, Manifest):
        manifest = source
    elif Path(source).name == MANIFEST_NAME or (Path(source) / MANIFEST_NAME).is_file():
        manifest = Manifest.load(source)
    elif Path(source).is_dir():
        source = Path(source)
        logger.info("%s: image folders; preparing pixel records into %s", source, run_dir / DATA_DIR)
        manifest = prepare(source, run_dir / DATA_DIR, pixel_encoding(), fractions=fractions, workers=workers or 1,
                           layout=layout, seed=seed, skip_bad=skip_bad, overwrite=overwrite, progress=progress, command=command)
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
                      command: str = "", augmentation=None):
    """Train Yu et al.'s attribution network (or its visNet) on records or image folders.

    Args:
        source: a dataset written by ``prepare --raw --color``, or a folder with one
            sub-folder per source (prepared into ``out/data`` first, split 0.7/0.2/0.1).
        out: run directory (default ``runs/<model>-<source>-<time>``).
        model: ``attribution``, ``attribution_predown`` or ``visnet``.
        epochs, batch_size, learning_rate, early_stopping, seed: as ``tfforensics train``;
            Adam uses the original's beta1 0, beta2 0.99.
        model_options: builder options (``switching_res``, ``fmap_max``, ...).
        augmentation: a :class:`tfforensics.data.augment.Augmentation` of the train pixels;
            image folders are then prepared as ``pixels`` records (records given must be so).

    Returns:
        The :class:`tfforensics.training.fit.TrainResult`; ``out/model.keras`` takes raw
        0..255 images.
    """
    from tfforensics.training.fit import train

    if model not in ATTRIBUTION_MODELS:
        raise UserError(f"--model must be one of {', '.join(ATTRIBUTION_MODELS)}. Received: {model!r}")
    from tfforensics.training.fit import MODEL_FILE, RUN_FILE, claim_run_dir

    run_dir = Path(out) if out is not None else default_run_dir(model, getattr(source, "root", source))
    if not overwrite and any((run_dir / name).exists() for name in (RUN_FILE, MODEL_FILE)):
        raise UserError(f"{run_dir}: holds a finished run; pass --overwrite or choose another --out.")
    # Claimed first (an unfinished train run from here on), so the records of image folders can
    # live inside it as RUN/data and train continues in it; --overwrite replaces a finished run whole.
    claim_run_dir(run_dir, overwrite)
    augment = augmentation is not None and augmentation.active
    manifest = records_for(source, run_dir, fractions=fractions, workers=workers, seed=seed, skip_bad=skip_bad,
                           progress=progress, command=command, layout="pixels" if augment else "original")
    return train(model, manifest, out=run_dir, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                 early_stopping=early_stopping, seed=seed, verbose=verbose, command=command,
                 model_options=model_options, augmentation=augmentation)


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
                     out=None, progress: bool = False, overwrite: bool = False):
    """Attribute a dataset split (records), a folder or one image; ``(report or None, Attribution or None)``.

    ``out`` receives metrics.json; a previous one is replaced only with ``overwrite`` (and only ours).
    """
    from tfforensics.data.manifest import MANIFEST_NAME
    from tfforensics.evaluation.evaluate import evaluate_model
    from tfforensics.models.attribution import load_any

    model = load_any(model, class_names=class_names) if isinstance(model, (str, Path)) else model
    source = Path(source)
    if source.name == MANIFEST_NAME or (source.is_dir() and (source / MANIFEST_NAME).is_file()):
        report = evaluate_model(model, source, split=split, batch_size=batch_size, out=out, progress=progress,
                                overwrite=overwrite)
        return report, None
    from tfforensics.io.outputs import PRODUCER, claim_files

    if out is not None:  # before the work
        claim_files(out, ["metrics.json"], record="metrics.json", command="attribute test",
                    previous="attribution metrics", contents="metrics.json", instead="--out", overwrite=overwrite)
    result = attribute_images(model, source, batch_size=batch_size, progress=progress)
    if out is not None and result.report is not None:
        from tfforensics.io.atomic import atomic_write_json

        Path(out).mkdir(parents=True, exist_ok=True)
        atomic_write_json(Path(out) / "metrics.json",
                          {"producer": PRODUCER, **result.report, "dataset": str(source)})
    return result.report, result


# --------------------------------------------------------------------------- fingerprints (visNet)

def _display(array, *, symmetric: bool = True) -> np.ndarray:
    """A float map as a uint8 image: symmetric around 0 (grey = 0) or min-max."""
    array = np.asarray(array, dtype=np.float64)
    if symmetric:
        scale = max(float(np.abs(array).max()), 1e-12)
        out = 127.5 + 127.5 * array / scale
    else:
        low, high = float(array.min()), float(array.max())
        out = 255.0 * (array - low) / max(high - low, 1e-12)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _visnet_of(model):
    from tfforensics.models.visnet import find_visnet

    visnet = find_visnet(model)
    if visnet is None:
        raise UserError("the model has no fingerprint-visualisation network; train one with "
                        "`tfforensics attribute train SOURCE --arch visnet`.")
    return visnet


def decompose_images(model, images: np.ndarray) -> dict:
    """Reconstruction, image fingerprint, responses and logits of raw 0..255 ``images`` ``(N, R, R, C)``."""
    from tfforensics.models.wrapped import unwrap

    visnet = _visnet_of(model)
    preprocessing, _ = unwrap(model)
    x = images.astype(np.float32)
    x = preprocessing.predict_on_batch(x) if preprocessing is not None else x
    reconstruction, fingerprint, logits = (np.asarray(t) for t in visnet.decompose(x))
    fingerprints = visnet.model_fingerprints()  # (K, R, R, C)
    responses = np.einsum("nhwc,khwc->nkhw", fingerprint, fingerprints)
    return {"encoded": np.asarray(x), "reconstruction": reconstruction, "fingerprint": fingerprint,
            "logits": logits, "responses": responses, "model_fingerprints": fingerprints}


def plot_panel(image, parts: dict, index: int, class_names, path, *, truth: int | None = None):
    """The GANFingerprints demo panel of one image, written to ``path`` (.png or .pdf).

    Left: the input and its image fingerprint. Row 1: the model fingerprints (title green
    for the true source). Row 2: the image fingerprint's response to each. Row 3: the
    response intensities (the logits) as bars: green the true source, red a wrong prediction.
    """
    from matplotlib.figure import Figure
    from matplotlib.gridspec import GridSpec

    from tfforensics.evaluation.plots import _save

    k = len(class_names)
    logits = parts["logits"][index]
    predicted = int(np.argmax(logits)) if len(logits) > 1 else int(logits[0] > 0)
    figure = Figure(figsize=(2.0 * (k + 2), 6.4))
    grid = GridSpec(3, k + 2, figure=figure, height_ratios=[1, 1, 1.1])
    gray = image.shape[-1] == 1

    def show(axis, array, title, color="black"):
        axis.imshow(array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array,
                    cmap="gray" if gray or array.ndim == 2 else None, vmin=0, vmax=255)
        axis.set_title(title, fontsize=9, color=color)
        axis.set_xticks([])
        axis.set_yticks([])

    show(figure.add_subplot(grid[0, 0:2]), image, "input")
    show(figure.add_subplot(grid[1, 0:2]), _display(parts["fingerprint"][index]), "image fingerprint")
    fingerprints = parts["model_fingerprints"]
    names = list(class_names) if len(fingerprints) == k else [f"{class_names[-1]} (vs {class_names[0]})"]
    for j, name in enumerate(names):
        color = "green" if truth is not None and (j == truth or len(names) == 1) else "black"
        show(figure.add_subplot(grid[0, 2 + j]), _display(fingerprints[j]), name, color)
        show(figure.add_subplot(grid[1, 2 + j]), _display(parts["responses"][index, j]), f"response {j}")
    bars = figure.add_subplot(grid[2, 2:])
    colors = ["lightgray"] * len(logits)
    if len(logits) > 1:
        if truth is not None:
            colors[truth] = "green"
        if truth is None or predicted != truth:
            colors[predicted] = "red" if truth is not None else "steelblue"
    bars.bar(np.arange(len(logits)), logits, color=colors)
    bars.set_xticks(np.arange(len(logits)))
    bars.set_xticklabels(names if len(logits) == len(names) else [str(i) for i in range(len(logits))],
                         fontsize=8, rotation=20)
    bars.set_ylabel("response (logit)")
    verdict = class_names[predicted] if len(logits) > 1 else class_names[predicted]
    bars.set_title(f"predicted: {verdict}" + (f"  (true: {class_names[truth]})" if truth is not None else ""),
                   fontsize=9, color="green" if truth is None or predicted == truth else "red")
    return _save(figure, path)


def write_fingerprints(model, out, *, images=None, class_names=None, overwrite: bool = False,
                       limit: int | None = None) -> dict:
    """Save a visNet's model fingerprints (one PNG per source, a PNG/PDF grid) and per-image panels.

    Args:
        model: a visnet ``model.keras`` / run directory (or loaded model).
        out: output folder (created; existing figures are replaced only with ``overwrite``).
        images: an image, a folder, or a folder of source folders (labels from the names).
        limit: panels for at most this many images.

    Returns:
        ``{"fingerprints": [paths], "grid": [png, pdf], "panels": [paths]}``.
    """
    from matplotlib.figure import Figure

    from tfforensics.evaluation.plots import _save
    from tfforensics.io.images import save_image
    from tfforensics.models.attribution import load_any
    from tfforensics.models.wrapped import class_names_of

    if isinstance(model, (str, Path)):
        model = load_any(model, class_names=class_names)
    visnet = _visnet_of(model)
    names = class_names_of(model)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fingerprints = visnet.model_fingerprints()
    planned = [out / f"fingerprint_{i}_{n}.png" for i, n in enumerate(names[:len(fingerprints)])]
    planned += [out / "model_fingerprints.png", out / "model_fingerprints.pdf"]
    items = None
    if images is not None:
        paths, labels = _image_items(images, names)
        paths = paths[:limit] if limit else paths
        items = (paths, labels)
        planned += [out / f"panel_{i:03d}_{p.stem}.{ext}" for i, p in enumerate(paths) for ext in ("png", "pdf")]
    existing = [p for p in planned if p.exists()]
    if existing and not overwrite:
        raise UserError(f"{existing[0]}: exists; pass --overwrite to replace the figures or choose another --out.")
    written = {"fingerprints": [], "grid": [], "panels": []}
    for path, fingerprint in zip(planned, fingerprints):
        save_image(_display(fingerprint), path)
        written["fingerprints"].append(path)
    figure = Figure(figsize=(2.2 * len(fingerprints), 2.6))
    for j, fingerprint in enumerate(fingerprints):
        axis = figure.add_subplot(1, len(fingerprints), j + 1)
        shown = _display(fingerprint)
        axis.imshow(shown[..., 0] if shown.shape[-1] == 1 else shown, cmap="gray" if shown.shape[-1] == 1 else None)
        axis.set_title(names[j] if len(fingerprints) == len(names) else names[-1], fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
    for ext in ("png", "pdf"):
        written["grid"].append(_save(figure, out / f"model_fingerprints.{ext}"))
    if items is not None:
        paths, labels = items
        shape = _model_input(model)
        for start in range(0, len(paths), 16):
            chunk = paths[start:start + 16]
            batch = np.stack([load_resized(p, shape)[0] for p in chunk])
            parts = decompose_images(model, batch)
            for offset, path in enumerate(chunk):
                i = start + offset
                truth = int(labels[i]) if labels is not None else None
                for ext in ("png", "pdf"):
                    written["panels"].append(plot_panel(batch[offset], parts, offset, names,
                                                        out / f"panel_{i:03d}_{path.stem}.{ext}", truth=truth))
    return written


# --------------------------------------------------------------------------- immunizability

def to_uint8(encoded: np.ndarray) -> np.ndarray:
    """Pixel records in [-1, 1] back to the 0..255 images they were encoded from (exact: float32
    ``p / 127.5 - 1`` and its inverse stay within 1e-4 of an integer, far from a rounding tie)."""
    values = (np.asarray(encoded, dtype=np.float32) + np.float32(1.0)) * np.float32(127.5)
    return np.clip(np.rint(values, out=values), 0, 255, out=values).astype(np.uint8)


def perturbed(images: np.ndarray, kind: str, seed: int, *, clean_share: float = 0.0) -> np.ndarray:
    """``images`` (uint8) each with one random perturbation of ``kind`` (or, for ``"mixed"``,
    of a kind drawn from :data:`IMMUNIZE_KINDS`; ``clean_share`` of them left as they are)."""
    from tfforensics.preprocess.perturb import perturb

    rng = np.random.default_rng(seed)
    out = np.empty_like(images)
    for i, image in enumerate(images):
        if clean_share and rng.random() < clean_share:
            out[i] = image
            continue
        step = IMMUNIZE_KINDS[rng.integers(len(IMMUNIZE_KINDS))] if kind == "mixed" else kind
        out[i] = perturb(image, step, rng).reshape(image.shape)
    return out


def _accuracy(classifier, encoded, labels, class_names) -> float:
    from tfforensics.evaluation.metrics import as_probabilities, classification_report

    scores = as_probabilities(classifier.predict(encoded, batch_size=64, verbose=0))
    return classification_report(labels, scores, class_names)["accuracy"]


def _fine_tuned(images, labels, kind: str, *, run, manifest, out, classifier, binary, epochs, batch_size,
                learning_rate, seed, overwrite, verbose, model_options):
    """The run's network fine-tuned on perturbed train ``images`` (through the one training loop)."""
    import tensorflow as tf

    from tfforensics.training.fit import train

    labels = labels.astype(np.float32).reshape(-1, 1) if binary else labels
    data = (tf.data.Dataset.from_tensor_slices((images, labels))
            .shuffle(len(images), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
            .apply(tf.data.experimental.assert_cardinality(-(-len(images) // batch_size))))
    return train(run["model"], manifest, out=out / f"finetuned_{kind}", epochs=epochs, batch_size=batch_size,
                 learning_rate=learning_rate, early_stopping=0, seed=seed, overwrite=overwrite, verbose=verbose,
                 model_options=model_options, initial_weights=classifier, train_dataset=data).classifier


def immunize(model, dataset=None, out=None, *, kinds=IMMUNIZE_KINDS, per_kind: bool = False, epochs: int = 5,
             batch_size: int = 32, learning_rate: float | None = None, seed: int = 0, overwrite: bool = False,
             verbose=0) -> dict:
    """Accuracy under perturbations before and after fine-tuning on perturbed data (Yu et al. Sec. 5.4).

    The test split is perturbed once per kind (seeded) and scored by the trained model;
    then the model is fine-tuned (through :func:`tfforensics.training.fit.train`, starting
    from its weights) on perturbed copies of the train split and scored again.

    Args:
        model: a run directory written by ``attribute train`` (its run.json names the
            records and the network options).
        dataset: pixel records (default: the run's).
        out: folder for the fine-tuned run(s) and ``immunization.json`` (default:
            ``<run>/immunize``).
        kinds: perturbations of :mod:`tfforensics.preprocess.perturb`.
        per_kind: fine-tune one model per kind, as the paper (default: one model on a
            mixture: each train image clean or perturbed by a random kind).
        epochs, batch_size, learning_rate: of the fine-tuning (default rate: the run's / 10).

    Returns:
        ``{"rows": [{"perturbation", "before", "after"}, ...], ...}``; row ``clean`` holds
        the unperturbed test accuracy.
    """
    import json

    from tfforensics.data.encodings import to_unit
    from tfforensics.data.manifest import Manifest
    from tfforensics.data.reader import as_numpy
    from tfforensics.io.atomic import atomic_write_json
    from tfforensics.models.classifiers import is_binary
    from tfforensics.models.wrapped import load_model, unwrap
    from tfforensics.training.fit import RUN_FILE

    run_dir = Path(model)
    if not (run_dir / RUN_FILE).is_file():
        raise UserError(f"{run_dir}: not a run directory of `tfforensics attribute train` (no {RUN_FILE}); "
                        "immunize fine-tunes the run's network.")
    run = json.loads((run_dir / RUN_FILE).read_text())
    for kind in kinds:
        if kind not in IMMUNIZE_KINDS:
            raise UserError(f"--kinds: unknown perturbation {kind!r}; choose from {', '.join(IMMUNIZE_KINDS)}.")
    manifest = Manifest.load(dataset or run["dataset"])
    if manifest.encoding.transform != "raw":
        raise UserError(f"{manifest.root}: immunize perturbs pixels; it needs raw pixel records.")
    out = Path(out) if out is not None else run_dir / "immunize"
    wrapped = load_model(run_dir)
    _, classifier = unwrap(wrapped)
    names = list(run["class_names"])
    arguments = run.get("arguments", {})
    options = arguments.get("model_options") or {}
    lr = learning_rate or float(arguments.get("learning_rate", 1e-3)) / 10
    x_train, y_train = as_numpy(manifest, "train")
    x_test, y_test = as_numpy(manifest, "test")
    if not len(x_test):
        raise UserError(f"{manifest.root}: the test split is empty; immunize scores the test split.")
    def scale(images):  # the raw encoding
        return to_unit(images.astype(np.float32))

    train_uint8, test_uint8 = to_uint8(x_train), to_uint8(x_test)
    attacked = {kind: scale(perturbed(test_uint8, kind, seed + 1 + i)) for i, kind in enumerate(kinds)}
    before = {"clean": _accuracy(classifier, x_test, y_test, names)}
    before.update({kind: _accuracy(classifier, images, y_test, names) for kind, images in attacked.items()})

    binary = is_binary(int(arguments.get("num_classes") or len(names)))
    tuning = dict(run=run, manifest=manifest, out=out, classifier=classifier, binary=binary, epochs=epochs,
                  batch_size=batch_size, learning_rate=lr, seed=seed, overwrite=overwrite, verbose=verbose,
                  model_options=options)

    def fine_tune(kind, index):
        clean_share = 1.0 / (len(kinds) + 1) if kind == "mixed" else 0.0
        images = scale(perturbed(train_uint8, kind, seed + 100 + index, clean_share=clean_share))
        return _fine_tuned(images, y_train, kind, **tuning)

    after = {}
    if per_kind:
        for index, kind in enumerate(kinds):
            tuned = fine_tune(kind, index)
            after[kind] = _accuracy(tuned, attacked[kind], y_test, names)
            after.setdefault("clean", None)
    else:
        tuned = fine_tune("mixed", 0)
        after["clean"] = _accuracy(tuned, x_test, y_test, names)
        after.update({kind: _accuracy(tuned, images, y_test, names) for kind, images in attacked.items()})
    rows = [{"perturbation": kind, "before": before[kind], "after": after.get(kind)} for kind in ("clean", *kinds)]
    result = {"model": str(run_dir), "dataset": str(manifest.root), "fine_tuning": "per kind" if per_kind else "mixed",
              "epochs": epochs, "learning_rate": lr, "seed": seed, "rows": rows}
    atomic_write_json(out / "immunization.json", result)
    return result


def format_immunization(result: dict) -> list[str]:
    """The immunization table as Markdown lines."""
    def pct(value):
        return "–" if value is None else f"{100 * value:.1f}"

    lines = ["| perturbation | accuracy before (%) | after fine-tuning (%) |", "|---|---|---|"]
    lines += [f"| {r['perturbation']} | {pct(r['before'])} | {pct(r['after'])} |" for r in result["rows"]]
    return lines


# --------------------------------------------------------------------------- for `reproduce`

def attribution_rows(dataset, out, *, epochs: int = 20, seed: int = 0, model_options: dict | None = None,
                     visnet: bool = True, visnet_epochs: int | None = None, panel_images: int = 1,
                     immunize_kinds=IMMUNIZE_KINDS, immunize_epochs: int = 3, early_stopping: int = 5,
                     front_ends=(), report_dir=None) -> dict:
    """Yu et al.'s rows of the attribution table, one fingerprint panel and the immunization table.

    Args:
        dataset: pixel records (``prepare`` with ``Encoding(transform="raw", color=True)``;
            ``reproduce``'s ``datasets["pixels"]``).
        out: folder for the runs (``yu/``, ``yu_visnet/``), the figures and the tables.
        epochs, seed, early_stopping: of both trainings (visnet: ``visnet_epochs``).
        model_options: builder options of both networks (e.g. ``{"fmap_max": 64}`` for a
            quick run on CPU).
        visnet: also train the visNet, add its row and draw ``panel_images`` demo panels.
        immunize_kinds, immunize_epochs: the immunization experiment on the attribution
            network (``()`` skips it).
        front_ends: more ``yu`` rows, the attribution network behind each of these
            ``--input`` front ends (e.g. ``("dct",)``; run ``yu_<front end>``, row ``input``
            the front end) beside the published pixel one.
        report_dir: where the report is written; ``panel`` is then given relative to it.

    Returns:
        ``{"rows": [...], "fingerprints": {...} or None, "panel": path of the first panel
        PNG or None, "immunization": {...} or None}``;
        each row has the keys of ``reproduce``'s classifier rows (``method`` ``yu`` or
        ``yu_visnet``, ``input`` ``pixels`` or the front end, ``attribution_accuracy``,
        ``real_vs_fake_accuracy``, ``real_vs_fake_ap``, ``epochs_run``).
    """
    from tfforensics.data.manifest import Manifest
    from tfforensics.evaluation.evaluate import evaluate_model

    out = Path(out)
    manifest = Manifest.load(dataset)
    runs = [("yu", "attribution", epochs, "pixels")] + [(f"yu_{f}", "attribution", epochs, f) for f in front_ends]
    runs += [("yu_visnet", "visnet", visnet_epochs or epochs, "pixels")] if visnet else []
    rows, results = [], {}
    for run, model, n_epochs, front_end in runs:
        options = {**(model_options or {}), **({"front_end": front_end} if front_end != "pixels" else {})}
        result = train_attribution(manifest, out / run, model=model, epochs=n_epochs, seed=seed,
                                   early_stopping=early_stopping, model_options=options, overwrite=True,
                                   progress=False, verbose=0)
        report = evaluate_model(result.model_path, manifest, out=out / run / "test", plots=False)
        binary = report.get("real_vs_fake") or {}
        method = "yu" if front_end != "pixels" else run
        rows.append({"method": method, "input": front_end, "attribution_accuracy": report["accuracy"],
                     "real_vs_fake_accuracy": binary.get("accuracy"),
                     "real_vs_fake_ap": binary.get("average_precision"), "epochs_run": result.run["epochs_run"]})
        results[run] = result
    fingerprints = None
    if visnet and panel_images:
        images = manifest_images(manifest, out / "panel_images", per_class=1, limit=panel_images)
        fingerprints = write_fingerprints(results["yu_visnet"].model, out / "fingerprints", images=images,
                                          overwrite=True, limit=panel_images)
        fingerprints = {k: [str(p) for p in v] for k, v in fingerprints.items()}
    panel = None
    if fingerprints and fingerprints["panels"]:
        panel = Path(next(p for p in fingerprints["panels"] if p.endswith(".png")))
        if report_dir is not None:
            import os

            panel = Path(os.path.relpath(panel.resolve(), Path(report_dir).resolve()))
        panel = panel.as_posix()
    immunization = None
    if immunize_kinds:
        immunization = immunize(out / "yu", manifest, out / "immunize", kinds=tuple(immunize_kinds),
                                epochs=immunize_epochs, seed=seed, overwrite=True)
    return {"rows": rows, "fingerprints": fingerprints, "panel": panel, "immunization": immunization}


def manifest_images(manifest, folder, *, per_class: int = 1, limit: int | None = None) -> Path:
    """Write ``per_class`` test images of each source of pixel records as PNGs in class folders."""
    from tfforensics.data.reader import load_dataset
    from tfforensics.io.images import save_image

    folder = Path(folder)
    wanted = {name: per_class for name in manifest.class_names}
    written = 0
    for images, labels in load_dataset(manifest, "test", batch_size=64, shuffle=False).as_numpy_iterator():
        for image, label in zip(images, labels):
            name = manifest.class_names[int(label)]
            if wanted[name] and (limit is None or written < limit):
                (folder / name).mkdir(parents=True, exist_ok=True)
                save_image(to_uint8(image), folder / name / f"{wanted[name]:03d}.png")
                wanted[name] -= 1
                written += 1
        if not any(wanted.values()) or (limit is not None and written >= limit):
            break
    return folder
