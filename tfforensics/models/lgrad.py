"""LGrad: StyleGAN-discriminator gradients of images, and the ResNet-50 detector on them.

Tan et al., "Learning on Gradients" (CVPR 2023): every image is resized to the
discriminator's resolution, scaled to [-1, 1], and replaced by the gradient of the
summed discriminator output with respect to the input, min-max scaled per image to
0..255; a binary ResNet-50 (real = 0, fake = 1) is trained on these gradient images with
the CNNDetection recipe and evaluated per GAN family.

On the spine: the gradient is one more stage of the records. ``img2grad`` writes
gradient images as TFRecords + manifest through :mod:`tfforensics.data.writer` (or, as the
original did, as PNGs); the detector is the registry model ``lgrad``
(:func:`build_lgrad`) trained by :func:`tfforensics.training.fit.train` and scored with
:func:`tfforensics.evaluation.evaluate.predict_records` /
:func:`tfforensics.evaluation.classify.classify_images` and
:func:`tfforensics.evaluation.metrics.real_vs_fake`.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import json
import logging
import re
import tempfile
from pathlib import Path

import keras
import numpy as np

from tfforensics.data.augment import Augmentation
from tfforensics.data.encodings import from_unit, to_unit
from tfforensics.errors import MissingInputError, UserError
from tfforensics.io.atomic import INCOMPLETE_PREFIX, atomic_write_json, default_dir_mode, remove_tree
from tfforensics.io.images import RESIZE_FILTERS, BadImageError, list_images, load_image, save_image

logger = logging.getLogger(__name__)

RESAMPLING = tuple(RESIZE_FILTERS)  # the one filter vocabulary of io.images
#: Label folders of the CNNDetection layout (``0_real``, ``1_fake``; a suffix like ``_grad`` is allowed).
LABEL_FOLDER = re.compile(r"^([01])_(real|fake)")
#: Class names of LGrad records, in label order.
CLASS_NAMES = ["0_real", "1_fake"]
#: The eight test families of CNNDetection, in the order the papers print them.
FAMILIES = ("progan", "stylegan", "stylegan2", "biggan", "cyclegan", "stargan", "gaugan", "deepfake")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The metrics of one family, as :func:`tfforensics.evaluation.metrics.real_vs_fake` names them.
METRIC_KEYS = ("accuracy", "real_accuracy", "fake_accuracy", "average_precision")


# --- gradients ------------------------------------------------------------------------------------

def load_discriminator(pkl=None, weights=None):
    """The discriminator of an official StyleGAN ``.pkl`` or of the port's own weights file.

    The minibatch-stddev feature is computed per image (group size 1), so each gradient
    depends only on its own image, as with the original's batch of one.
    """
    from tfforensics.models.stylegan.layers import MinibatchStddev
    from tfforensics.models.stylegan.pkl import build_from_state, find_network, load_network, load_pkl

    if (pkl is None) == (weights is None):
        raise UserError("give exactly one of --pkl (official StyleGAN pickle) or --weights (.keras/.npz of the port).")
    if pkl is not None:
        model = build_from_state(find_network(load_pkl(pkl), "D"), independent_images=True)
    else:
        model = load_network(weights)
    for layer in model.layers:
        if isinstance(layer, MinibatchStddev):
            layer.group_size = 1
    return model


def _input_layout(model) -> tuple[int, bool]:
    """(resolution, channels_first) of a discriminator model."""
    from tfforensics.models.stylegan.layers import ChannelsFirstToLast

    channels_first = any(isinstance(layer, ChannelsFirstToLast) for layer in model.layers)
    shape = model.input_shape
    return int(shape[2] if channels_first else shape[1]), channels_first


def gradient_function(model):
    """A compiled function: uint8 NHWC images -> d(sum D(x))/dx, float32 NHWC.

    Pixels become ``x * 2/255 - 1`` in float32, as in the original.
    """
    import tensorflow as tf

    resolution, channels_first = _input_layout(model)
    scale = np.float32(2.0) / np.float32(255.0)

    @tf.function(input_signature=[tf.TensorSpec([None, resolution, resolution, 3], tf.uint8)], reduce_retracing=True)
    def gradients(images):
        x = tf.cast(images, tf.float32) * scale - 1.0
        with tf.GradientTape() as tape:
            tape.watch(x)
            scores = model(tf.transpose(x, [0, 3, 1, 2]) if channels_first else x, training=False)
            total = tf.reduce_sum(scores)
        return tape.gradient(total, x)

    return gradients


def to_uint8(gradients: np.ndarray) -> np.ndarray:
    """Per-image min-max scaling to 0..255, rounded to the nearest integer (as cv2 writes floats)."""
    g = np.asarray(gradients, dtype=np.float32)
    axes = tuple(range(1, g.ndim))
    g = g - g.min(axis=axes, keepdims=True)
    peak = g.max(axis=axes, keepdims=True)
    g = np.where(peak != 0, g / np.where(peak == 0, 1, peak), g) * np.float32(255.0)
    return np.clip(np.rint(g), 0, 255).astype(np.uint8)


def load_resized(path, size: int, resample: str = "bicubic") -> np.ndarray:
    """RGB uint8 image resized to ``size`` x ``size`` with PIL (the original's PIL ``resize``)."""
    from tfforensics.io.images import resize_image

    image = load_image(path)
    if image.shape[:2] == (size, size):
        return image
    return resize_image(image, (size, size), resample)


def compute_gradients(model, images: np.ndarray, batch_size: int = 16, function=None) -> np.ndarray:
    """uint8 gradient images of a uint8 batch already at the discriminator's resolution, ``batch_size``
    at a time; ``function``: the model's :func:`gradient_function` when the caller keeps one (traced once)."""
    function = function or gradient_function(model)
    out = [to_uint8(function(images[i:i + batch_size]).numpy()) for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0,) + images.shape[1:], np.uint8)


def _output_name(relative: Path) -> Path:
    return relative.with_name(relative.stem + ".png")


def label_of(relative: Path) -> str | None:
    """The CNNDetection label folder (``0_real``/``1_fake``) on a relative path, if any."""
    for part in reversed(relative.parts[:-1]):
        if LABEL_FOLDER.match(part):
            return part
    return None


def img2grad(source, output, model, *, batch_size: int = 16, resample: str = "bicubic", format: str = "png",
             overwrite: bool = False, skip_bad: bool = False, fractions=None, layout: str = "original",
             workers: int | None = None, seed: int = 0, command: str = "", progress: bool = True) -> dict:
    """Write the gradient image of every image under ``source`` (recursively) to ``output``.

    ``format="tfrecords"``: records + ``manifest.json`` like every prepared dataset (encoding
    raw RGB, pixels 0..255 scaled to [-1, 1]), written shard by shard through
    :mod:`tfforensics.data.writer`; classes are the ``0_real``/``1_fake`` folders if the tree
    has them, else its top-level folders; ``fractions`` (default: all in train) and ``seed``
    split them as ``prepare`` does. ``format="png"`` (the original's output): one PNG per
    image at the same relative path and base name.

    Either output is built in a hidden ``.<output>.incomplete-<fingerprint>`` folder next to
    ``output`` and renamed into place when complete; the fingerprint covers the
    discriminator's weights, the resampling filter, the source files (names, sizes, times)
    and the record options, so an interrupted run with the same inputs and options continues
    there, and results of other options are never mixed in. An ``output`` written with the
    same fingerprint is reused; another one of ours is replaced only with ``overwrite`` (see
    :mod:`tfforensics.io.outputs`). Returns a summary dict.
    """
    from tfforensics.io.images import RESIZE_FILTERS
    from tfforensics.io.outputs import check_sources, claim_output, clean_stale, read_marker
    from tfforensics.preprocess._folder import check_source_dir

    if format not in ("png", "tfrecords"):
        raise ValueError(f"`format` must be 'png' or 'tfrecords'. Received: format={format!r}")
    if resample not in RESAMPLING or resample not in RESIZE_FILTERS:
        raise ValueError(f"`resample` must be one of {sorted(RESAMPLING)}. Received: resample={resample!r}")
    source, output = Path(source), Path(output)
    check_source_dir(source)
    check_sources(output, [source])
    files = list_images(source, recursive=True)
    if not files:
        raise UserError(f"{source}: no images found (searched recursively for {', '.join(('.png', '.jpg', '...'))}).")
    relatives = [f.relative_to(source) for f in files]
    targets = collections.defaultdict(list)
    for rel in relatives:
        targets[_output_name(rel)].append(rel)
    clashes = [names for names in targets.values() if len(names) > 1]
    if clashes:
        raise UserError(f"{source}: {clashes[0][0]} and {clashes[0][1]} would both become "
                         f"{_output_name(clashes[0][0])}; rename one of them.")

    resolution, _ = _input_layout(model)
    options = {"format": format} if format == "png" else {
        "format": format, "fractions": list(fractions or (1.0, 0.0, 0.0)), "layout": layout, "seed": seed}
    fingerprint = _gradient_fingerprint(model, source, relatives, resample, options)

    def same(marker):
        return marker.get("command") == "img2grad" and marker.get("fingerprint") == fingerprint

    output = claim_output(output, overwrite=overwrite, sources=[source], command="img2grad", reuse=same)
    summary = {"images": len(relatives), "written": 0, "kept_existing": 0, "skipped": [], "resolution": resolution,
               "output": str(output), "fingerprint": fingerprint}
    marker = read_marker(output) if output.is_dir() else None
    if marker is not None and same(marker):
        logger.info("Reusing %s: same images, discriminator and options.", output)
        return {**summary, "kept_existing": len(relatives), **_records_summary(output, format)}
    work = output.parent / f".{output.name}{INCOMPLETE_PREFIX}{fingerprint[:12]}"
    clean_stale(output, keep=work)
    work.mkdir(parents=True, exist_ok=True)
    gradients = _GradientProducer(model, source, resolution, resample, skip_bad, batch_size, workers)
    write = _write_pngs if format == "png" else _write_records
    with gradients:
        summary.update(write(work, relatives, gradients, fractions=fractions, layout=layout, seed=seed,
                             fingerprint=fingerprint, source=source, command=command, progress=progress))
    _finish(work, output, source, fingerprint, resolution, resample, summary["skipped"])
    return {**summary, **_records_summary(output, format)}


def _records_summary(output: Path, format: str) -> dict:
    if format != "tfrecords":
        return {}
    from tfforensics.data.manifest import Manifest

    manifest = Manifest.load(output)
    return {"classes": manifest.class_names, "splits": {s: manifest.count(s) for s in manifest.splits}}


def _finish(work: Path, output: Path, source: Path, fingerprint: str, resolution: int, resample: str, skipped) -> None:
    from tfforensics.io.outputs import mark_output, replace_output

    for leftover in [p for p in work.rglob(f"{INCOMPLETE_PREFIX}*") if p.is_file()]:
        leftover.unlink()  # a file a killed run was writing (our prefix)
        logger.info("removed %s, left unfinished by an interrupted run", leftover)
    mark_output(work, "img2grad", fingerprint=fingerprint, resolution=resolution, resample=resample, skipped=skipped)
    replace_output(work, output, [source])
    if skipped:
        logger.warning("skipped %d unreadable images:", len(skipped))
        for entry in skipped:
            logger.warning("  %s: %s", entry["path"], entry["reason"])


class _GradientProducer:
    """Relative paths -> ``(kept paths, uint8 gradient images, skipped)``, images read by a thread pool."""

    def __init__(self, model, source: Path, resolution: int, resample: str, skip_bad: bool, batch_size: int,
                 workers: int | None):
        from tfforensics.io.parallel import thread_count

        self.function = gradient_function(model)
        self.source, self.resolution, self.resample, self.skip_bad = source, resolution, resample, skip_bad
        self.batch_size = batch_size
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=thread_count(workers))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.pool.shutdown()

    def _load(self, rel):
        try:
            return load_resized(self.source / rel, self.resolution, self.resample)
        except BadImageError as error:
            if not self.skip_bad:
                raise
            return error

    def __call__(self, batch):
        loaded = list(self.pool.map(self._load, batch))
        skipped = [{"path": e.path, "reason": e.reason} for e in loaded if isinstance(e, BadImageError)]
        kept = [rel for rel, image in zip(batch, loaded) if not isinstance(image, BadImageError)]
        if not kept:
            return kept, np.zeros((0, self.resolution, self.resolution, 3), np.uint8), skipped
        images = np.stack([image for image in loaded if not isinstance(image, BadImageError)])
        return kept, to_uint8(self.function(images).numpy()), skipped


def _write_pngs(work: Path, relatives, gradients: _GradientProducer, *, progress: bool, **_) -> dict:
    """The original's output: ``work/<relative path>.png`` per image; what is there is kept."""
    from tqdm.auto import tqdm

    todo = [r for r in relatives if not (work / _output_name(r)).exists()]
    if len(todo) < len(relatives):
        logger.info("Continuing an interrupted run: %d gradients already written.", len(relatives) - len(todo))
    skipped, written = [], 0
    with tqdm(total=len(todo), desc="img2grad", unit="img", disable=not progress, dynamic_ncols=True) as bar:
        for start in range(0, len(todo), gradients.batch_size):
            batch = todo[start:start + gradients.batch_size]
            kept, grads, bad = gradients(batch)
            skipped += bad
            for rel, grad in zip(kept, grads):
                save_image(grad, work / _output_name(rel))
            written += len(kept)
            bar.update(len(batch))
    return {"written": written, "kept_existing": len(relatives) - len(todo), "skipped": skipped}


def class_of(relative: Path, use_labels: bool) -> str:
    """The class of an image of an img2grad source: its label folder, else its top-level folder."""
    if use_labels:
        return label_of(relative)
    return relative.parts[0] if len(relative.parts) > 1 else "images"


def _write_records(work: Path, relatives, gradients: _GradientProducer, *, fractions, layout: str, seed: int,
                   fingerprint: str, source: Path, command: str, progress: bool) -> dict:
    """Gradient images as records + manifest (the raw RGB encoding of ``prepare``)."""
    from tqdm.auto import tqdm

    from tfforensics.data.encodings import Encoding, encode
    from tfforensics.data.splits import split_classes
    from tfforensics.data.writer import write_dataset

    use_labels = all(label_of(rel) is not None for rel in relatives)
    classes = collections.defaultdict(list)
    for rel in relatives:
        classes[class_of(rel, use_labels)].append(rel)
    classes = {name: classes[name] for name in sorted(classes)}
    items = split_classes(classes, fractions=fractions or (1.0, 0.0, 0.0), seed=seed)
    encoding = Encoding(transform="raw", color=True)
    resolution = gradients.resolution
    with tqdm(total=len(relatives), desc="img2grad", unit="img", disable=not progress, dynamic_ncols=True) as bar:
        def produce(chunk):
            kept, grads, skipped = gradients([Path(rel) for rel, _ in chunk])
            labels_of = {str(rel): label for rel, label in chunk}
            bar.update(len(chunk))
            return encode(grads, encoding), [labels_of[str(rel)] for rel in kept], skipped

        manifest = write_dataset(work, items, produce, class_names=list(classes),
                                 image_shape=[resolution, resolution, 3], encoding=encoding, layout=layout, seed=seed,
                                 command=command, chunk=gradients.batch_size,
                                 source={"root": str(source.resolve()), "files": len(relatives), "sha256": fingerprint})
    return {"written": sum(manifest.count(s) for s in manifest.splits), "skipped": manifest.skipped}


def _gradient_fingerprint(model, source: Path, relatives, resample: str, options: dict) -> str:
    """What the gradient images depend on: the weights, the resize filter, the source files and the output options."""
    import hashlib

    options = {"resample": resample, "input_shape": list(model.input_shape[1:]), "version": 1,
               **({} if options.get("format") == "png" else {"records": options})}
    digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    for rel in relatives:
        stat = (source / rel).stat()
        digest.update(f"{rel.as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


# --- the detector ---------------------------------------------------------------------------------

def _resnet50(inputs, weights=None):
    """torchvision's ResNet-50 v1.5 (the stride in the 3x3 conv), layer names as its state_dict
    (``layer2_0_conv2`` = ``layer2.0.conv2``), as LGrad / CNNDetection train it."""
    from tfforensics.models.published import resnet50_features

    if weights is not None:
        raise UserError("--arch resnet50 (torchvision's v1.5) has no downloadable ImageNet weights here; use "
                        "--arch resnet50_keras --weights imagenet (Keras' ResNet-50 v1), or start from random.")
    return resnet50_features(inputs)


def _resnet50_keras(inputs, weights=None):
    """Keras' ResNet-50 (v1: the stride in the first 1x1 conv), for its ImageNet weights."""
    import keras

    backbone = keras.applications.ResNet50(include_top=False, weights=weights, input_shape=(None, None, 3),
                                           pooling="avg")
    return backbone(inputs)


def _small(inputs, weights=None):
    """A few residual stages: for tests and quick runs on a CPU."""
    import keras
    from keras import layers

    from tfforensics.layers.normalization import FusedBatchNormalization

    if weights is not None:
        raise UserError("--arch small has no pretrained weights; drop --weights.")
    x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = FusedBatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for index, filters in enumerate((16, 32, 64)):
        stride = 1 if index == 0 else 2
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"block{index}_proj")(x)
        y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"block{index}_conv1")(x)
        y = layers.ReLU(name=f"block{index}_relu1")(FusedBatchNormalization(name=f"block{index}_bn1")(y))
        y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{index}_conv2")(y)
        y = FusedBatchNormalization(name=f"block{index}_bn2")(y)
        x = layers.ReLU(name=f"block{index}_out")(layers.Add(name=f"block{index}_add")([shortcut, y]))
    return keras.layers.GlobalAveragePooling2D(name="pool")(x)


ARCHS = {"resnet50": _resnet50, "resnet50_keras": _resnet50_keras, "small": _small}

#: LGrad's ``fc`` initialisation (trainer.py: ``normal_(fc.weight, 0.0, init_gain=0.02)``).
FC_INIT_STD = 0.02


def _head(x, num_classes: int):
    """LGrad's ``fc``: weights N(0, 0.02), the bias as torch's ``nn.Linear`` draws it,
    U(+-1/sqrt(fan_in)); sigmoid for two classes (its BCEWithLogitsLoss), softmax otherwise."""
    from tfforensics.models.classifiers import output_units

    units = output_units(num_classes)
    bound = 1.0 / np.sqrt(int(x.shape[-1]))
    return keras.layers.Dense(units, activation="sigmoid" if units == 1 else "softmax",
                              kernel_initializer=keras.initializers.RandomNormal(0.0, FC_INIT_STD),
                              bias_initializer=keras.initializers.RandomUniform(-bound, bound),
                              name="predictions")(x)


#: Per-channel BGR means of Keras' ImageNet ResNet-50 ("caffe" preprocessing).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="tfforensics.lgrad")
class CaffePreprocess(keras.layers.Layer):
    """RGB 0..255 to the BGR, mean-subtracted input that Keras' ImageNet ResNet-50 weights expect."""

    def call(self, x):
        return x[..., ::-1] - keras.ops.convert_to_tensor(CAFFE_MEAN_BGR, dtype=x.dtype)


def _detector(pixels, arch: str, weights, num_classes: int):
    """ImageNet preprocessing, the backbone and the classification head on 0..255 RGB ``pixels``.

    Random init: ImageNet mean/std normalisation, as the original's torchvision pipeline.
    ``weights="imagenet"``: the preprocessing Keras' ImageNet weights were trained with
    (BGR, mean subtraction), so the pretrained filters see what they expect.
    """
    if arch not in ARCHS:
        raise ValueError(f"`arch` must be one of {sorted(ARCHS)}. Received: arch={arch!r}")
    if weights not in (None, "imagenet"):
        raise ValueError(f"`weights` must be None or 'imagenet'. Received: weights={weights!r}")
    if weights == "imagenet":
        x = CaffePreprocess(name="caffe_preprocess")(pixels)
    else:
        x = keras.layers.Rescaling(1.0 / 255.0, name="to_unit")(pixels)
        x = keras.layers.Normalization(mean=IMAGENET_MEAN, variance=np.square(IMAGENET_STD).tolist(),
                                       name="imagenet_norm")(x)
    features = ARCHS[arch](x, weights=weights)
    if arch == "small":  # not the original's network: Keras' default head, as before
        from tfforensics.models.classifiers import classification_head

        return classification_head(features, num_classes)
    return _head(features, num_classes)


def build_detector(arch: str = "resnet50", weights=None):
    """Binary detector on 0..255 RGB images of any size, preprocessing inside, P(fake) out
    (the network of :func:`build_lgrad` without the records' scaling)."""
    inputs = keras.Input((None, None, 3), name="pixels")
    return keras.Model(inputs, _detector(inputs, arch, weights, 2), name=f"lgrad_{arch}")


def build_lgrad(input_shape, num_classes: int = 2, *, l1=None, l2=None, arch: str = "resnet50", weights=None,
                any_size: bool = False):
    """The registry model ``lgrad``: the LGrad detector on records of gradient images.

    Takes the records' raw encoding (pixels scaled to [-1, 1]; a gray channel is repeated
    to RGB), one sigmoid unit out for two classes (real = 0, fake = 1), a softmax otherwise.
    ``any_size``: any height and width (LGrad trains on random crops and tests whole
    images). ``l1``/``l2`` are accepted like every builder's and unused (the LGrad recipe
    has no kernel penalty).
    """
    height, width, channels = input_shape
    inputs = keras.Input((None, None, channels) if any_size else (height, width, channels), name="encoded")
    x = keras.layers.Concatenate(name="gray_to_rgb")([inputs] * 3) if channels == 1 else inputs
    pixels = keras.layers.Rescaling(127.5, offset=127.5, name="to_pixels")(x)  # [-1, 1] -> 0..255
    return keras.Model(inputs, _detector(pixels, arch, weights, num_classes), name="lgrad")


#: Adam of the CNNDetection recipe (the Keras defaults, stated).
build_lgrad.adam_options = {"beta_1": 0.9, "beta_2": 0.999}


def find_labelled_images(root, classes=None) -> list[tuple[Path, int]]:
    """``[(path, label)]`` under ``root`` (or under ``root/<class>`` for each of ``classes``)
    for images inside ``0_real`` (label 0) / ``1_fake`` (label 1) folders."""
    root = Path(root)
    roots = [root / c for c in classes] if classes else [root]
    items = []
    for base in roots:
        if not base.is_dir():
            raise MissingInputError(f"{base}: not a directory; check the path and --classes.")
        for path in list_images(base, recursive=True):
            label = label_of(path.relative_to(root))
            if label is not None:
                items.append((path, int(LABEL_FOLDER.match(label).group(1))))
    if not items:
        raise UserError(f"{root}: no images in 0_real/1_fake folders; lay the data out as "
                         "<root>/[<class>/]0_real|1_fake (CNNDetection layout).")
    return items


@dataclasses.dataclass
class TrainConfig:
    """The LGrad / CNNDetection training recipe (defaults: the original schedule).

    ``early_stopping``: patience in epochs on the val split's loss (``None``: the original's
    fixed schedule); it needs records with a val split. ``class_balance``: the original's
    ``--class_bal`` (each draw takes a real or a fake image with equal probability).
    ``original_timing``: decay when the original does (see :func:`learning_rate_at`).
    ``augmentation``: CNNDetection's blur + JPEG (or any :class:`~tfforensics.data.augment.Augmentation`)
    on each gradient image before the resize, crop and flip (see :func:`augmented_batches`).
    """

    arch: str = "resnet50"
    weights: str | None = None
    epochs: int = 100
    batch_size: int = 16
    learning_rate: float = 5e-4
    decay_every: int = 10
    decay_factor: float = 0.8
    load_size: int = 256
    crop_size: int = 224
    flip: bool = True
    seed: int = 0
    early_stopping: int | None = None
    class_balance: bool = False
    original_timing: bool = True
    augmentation: Augmentation | None = None


def learning_rate_at(epoch: int, config: TrainConfig) -> float:
    """The learning rate of epoch ``epoch`` (counted from 0).

    LGrad's train.py multiplies it by 0.8 at the end of every epoch ``e`` with
    ``e % delr_freq == 0 and e != 0``, so with ``delr_freq`` 10 epochs 0..10 run at the initial
    rate, 11..20 at 0.8 times it, and so on. Its ``adjust_learning_rate(min_lr=1e-6)`` checks the
    floor after multiplying and train.py ignores the answer, so the rate goes on decaying (5e-4
    would pass 1e-6 only after 28 decays, 280 epochs). ``original_timing=False`` decays one epoch
    earlier (``0.8 ** (epoch // every)``), as tfforensics did before (``reproduce`` keeps that).
    """
    every = config.decay_every
    decays = epoch // every if not config.original_timing else max(0, (epoch - 1) // every)
    return config.learning_rate * config.decay_factor ** decays


def is_records(root) -> bool:
    """Whether ``root`` is a dataset written by ``prepare`` / ``img2grad --format tfrecords``."""
    from tfforensics.data.manifest import MANIFEST_NAME

    return (Path(root) / MANIFEST_NAME).is_file()


def check_records(root):
    """The manifest of LGrad records: RGB pixels in [-1, 1], classes ``0_real``/``1_fake``."""
    from tfforensics.data.manifest import Manifest

    manifest = Manifest.load(root)
    encoding = manifest.encoding
    if encoding.transform != "raw" or not encoding.color or encoding.needs_statistics:
        raise UserError(f"{root}: records must hold RGB pixels scaled to [-1, 1] (as written by "
                         f"`img2grad --format tfrecords`); this dataset has encoding {encoding.describe()}.")
    if manifest.class_names != CLASS_NAMES:
        raise UserError(f"{root}: classes must be {CLASS_NAMES} (real = 0, fake = 1); "
                         f"this dataset has {manifest.class_names}.")
    return manifest


def augmented_batches(manifest, config: TrainConfig):
    """The CNNDetection train transform on the train records: ``config.augmentation`` (blur,
    JPEG, ...: CNNDetection's ``data_augment``, applied to the loaded image), then resize to
    ``load_size`` (bilinear), random crop ``crop_size``, horizontal flip, batches of ``batch_size``.

    The crops and flips are stateless random ops seeded per image from one seeded stream
    (a new draw each epoch), and the augmentation is keyed on ``[seed, position]``
    (:func:`tfforensics.data.augment.augment_dataset`), so the same seed gives the same
    batches in every run. Without augmentation the records go to the crop untouched.
    """
    import tensorflow as tf

    from tfforensics.data.augment import augment_dataset
    from tfforensics.training.fit import records_dataset

    size, crop = config.load_size, config.crop_size

    def transform(example, seed):
        image, label = example
        image = tf.image.resize(image, [size, size], antialias=True) if image.shape[0] != size else image
        image = tf.image.stateless_random_crop(tf.ensure_shape(image, [size, size, 3]), [crop, crop, 3], seed=seed[0])
        if config.flip:
            image = tf.image.stateless_random_flip_left_right(image, seed=seed[1])
        return image, label

    count = manifest.count("train")
    images = records_dataset(manifest, "train", batch_size=config.batch_size, binary=True, shuffle=True,
                             seed=config.seed).unbatch()
    if config.class_balance:
        images = _balanced(images, count, config.seed)
    if config.augmentation is not None and config.augmentation.active:
        images = augment_dataset(images.map(unit_to_pixels), config.augmentation, config.seed).map(pixels_to_unit)
    seeds = tf.data.Dataset.random(seed=config.seed, rerandomize_each_iteration=True).batch(2).batch(2)
    dataset = tf.data.Dataset.zip((images, seeds)).map(transform, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(config.batch_size).apply(
        tf.data.experimental.assert_cardinality(-(-count // config.batch_size))).prefetch(tf.data.AUTOTUNE)


def unit_to_pixels(image, label):
    """A record's [-1, 1] float image back to its uint8 pixels, exactly: LGrad records hold 8-bit
    images (img2grad's gradients are min-max scaled and rounded to 0..255 before they are written,
    PNG trees are 8-bit), stored as ``k / 127.5 - 1`` in float32, so rounding recovers ``k``."""
    import tensorflow as tf

    return tf.cast(tf.clip_by_value(tf.round(from_unit(image)), 0.0, 255.0), tf.uint8), label


def pixels_to_unit(image, label):
    """uint8 pixels to the records' [-1, 1] floats, computed as ``prepare`` writes them (float64,
    then float32), so an image left untouched comes back bit-identical."""
    import tensorflow as tf

    return tf.cast(to_unit(tf.cast(image, tf.float64)), tf.float32), label


def _balanced(images, count: int, seed: int):
    """``--class_bal``: ``count`` draws per epoch, each of class 0 or 1 with probability 1/2, as the
    original's WeightedRandomSampler (weights 1 / class count); within a class the images come in a
    reshuffled cycle, where the original draws them with replacement."""
    import tensorflow as tf

    per_class = [images.filter(lambda image, label, c=c: tf.equal(tf.cast(tf.reshape(label, []), tf.int64), c))
                 .repeat() for c in (0, 1)]
    return tf.data.Dataset.sample_from_datasets(per_class, weights=[0.5, 0.5], seed=seed,
                                                rerandomize_each_iteration=True).take(count)


def _image_records(items, root, work: Path, seed: int, val_items=()) -> Path:
    """Gradient images of a CNNDetection tree as a records dataset (train; ``val_items`` in val)."""
    from tfforensics.data.encodings import Encoding, encode
    from tfforensics.data.splits import SPLITS
    from tfforensics.data.writer import write_dataset

    shape = load_image(items[0][0]).shape
    encoding = Encoding(transform="raw", color=True)

    def produce(chunk):
        images = [load_image(path, size=shape[:2], size_of=f"the first image ({items[0][0]})") for path, _ in chunk]
        return encode(np.stack(images), encoding), [label for _, label in chunk], []

    order = np.random.default_rng(seed).permutation(len(items))
    split = {name: [] for name in SPLITS}
    split["train"] = [(str(items[i][0]), items[i][1]) for i in order]
    split["val"] = [(str(path), label) for path, label in val_items]
    write_dataset(work, split, produce, class_names=CLASS_NAMES, image_shape=list(shape), encoding=encoding,
                  layout="original", seed=seed, command="lgrad train", source={"root": str(root), "files": len(items),
                                                                               "sha256": "0" * 64})
    return work


class _DecayTests(keras.callbacks.Callback):
    """The family test (:func:`evaluate_detector` on ``test_root``) after every epoch at whose end
    the learning rate decays, on the weights being trained; one row per test, logged as a table."""

    def __init__(self, test_root, config: TrainConfig, manifest):
        super().__init__()
        self.test_root, self.config, self.manifest, self.rows = test_root, config, manifest, []

    def on_train_begin(self, logs=None):
        from tfforensics.models.wrapped import wrap_with_preprocessing

        self.scorer = wrap_with_preprocessing(self.model, self.manifest)  # shares the trained layers

    def on_epoch_end(self, epoch, logs=None):
        rate, next_rate = learning_rate_at(epoch, self.config), learning_rate_at(epoch + 1, self.config)
        if next_rate >= rate:
            return
        families = evaluate_detector(self.scorer, self.test_root, progress=False)
        self.rows.append({"epoch": epoch + 1, "learning_rate": rate, "next_learning_rate": next_rate,
                          "families": families})
        logger.info("test after epoch %d (learning rate %.3g -> %.3g):\n%s", epoch + 1, rate, next_rate,
                    format_table(families))


def train_detector(train_root, output, config: TrainConfig = TrainConfig(), *, classes=None, progress: bool = True,
                   command: str = "", overwrite: bool = False, val_root=None, test_root=None):
    """Train the LGrad detector on records written by ``img2grad --format tfrecords`` (train
    split; val split, when there is one, scored each epoch), or on gradient images laid out as
    ``<root>/[<class>/]0_real|1_fake`` (written to records first, in a staging folder).

    The one training loop (:func:`tfforensics.training.fit.train`) runs the registry model
    ``lgrad`` with the recipe's step decay of the learning rate; ``output`` is its run
    directory (``model.keras``, ``run.json`` with the recipe and the class counts, checkpoints).
    ``val_root``: gradient images of the val split (same layout and ``classes``), scored each
    epoch as the original's ``<dataroot>/val`` (at their own size; the original resized and
    centre-cropped them). ``test_root``: a tree of test families (as :func:`evaluate_detector`
    takes), scored after every epoch at whose end the learning rate decays, as LGrad's train.py
    tests its eight families at each decay; the rows go to ``run.json`` (``decay_tests``).
    Returns the saved model (0..255 images in, class scores out).
    """
    from tfforensics.io.outputs import MARKER, check_sources, is_output, read_marker
    from tfforensics.training.fit import RUN_FILE, claim_run_dir, train

    if config.crop_size > config.load_size:
        raise UserError(f"--crop-size {config.crop_size} is larger than --load-size {config.load_size}.")
    output = Path(output)
    if output.is_dir() and is_output(output) and not (read_marker(output) or {}).get("files", True) and \
            not any(p.name != MARKER for p in output.iterdir()):
        overwrite = True  # an empty folder of ours (e.g. made for this run by `reproduce`)
    check_sources(output, [train_root] + [root for root in (val_root, test_root) if root])
    if test_root is not None:
        find_families(test_root)  # a missing or empty test tree fails before training
    claim_run_dir(output, overwrite)  # before any work
    staging, val_items = None, []
    if is_records(train_root):
        if classes or val_root:
            raise UserError(f"{train_root}: --classes and --val select folders of an image tree; records carry "
                            "their val split; drop them.")
        manifest = check_records(train_root)
        counts = {"real": manifest.splits["train"]["per_class"]["0_real"],
                  "fake": manifest.splits["train"]["per_class"]["1_fake"]}
    else:
        items = find_labelled_images(train_root, classes)
        counts = {"real": sum(label == 0 for _, label in items), "fake": sum(label == 1 for _, label in items)}
        val_items = find_labelled_images(val_root, classes) if val_root else []
    if min(counts.values()) == 0:
        raise UserError(f"{train_root}: training needs both 0_real and 1_fake images; found {counts}.")
    try:
        if not is_records(train_root):
            from tfforensics.data.manifest import Manifest

            output.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f"{INCOMPLETE_PREFIX}lgrad-", dir=output.resolve().parent))
            staging.chmod(default_dir_mode())
            manifest = Manifest.load(_image_records(items, train_root, staging, config.seed, val_items))
        schedule = keras.callbacks.LearningRateScheduler(lambda epoch: learning_rate_at(epoch, config))
        callbacks = [schedule]
        if test_root is not None:
            callbacks.append(_DecayTests(test_root, config, manifest))
        result = train("lgrad", manifest, out=output, epochs=config.epochs, batch_size=config.batch_size,
                       learning_rate=config.learning_rate, early_stopping=config.early_stopping, seed=config.seed,
                       verbose=1 if progress else 0, command=command, callbacks=callbacks,
                       model_options={"arch": config.arch, "weights": config.weights, "any_size": True},
                       train_dataset=augmented_batches(manifest, config), augmentation=config.augmentation)
    finally:
        if staging is not None:
            remove_tree(staging)
    run = {**result.run, "dataset": str(train_root), "classes": classes, "counts": counts,
           "val": str(val_root) if val_root else None, "val_images": len(val_items),
           "recipe": dataclasses.asdict(config),
           **({"test": str(test_root), "decay_tests": callbacks[-1].rows} if test_root is not None else {})}
    atomic_write_json(output / RUN_FILE, run)
    result.run.update(run)
    return result.model


def _family_scores(model, folder: Path, batch_size: int, progress: bool):
    """``(labels, P(fake))`` of the images in the 0_real/1_fake folders under ``folder``."""
    from tfforensics.evaluation.classify import classify_images

    find_labelled_images(folder)  # one line when the layout is wrong
    scored = classify_images(model, folder, recursive=True, batch_size=batch_size, progress=progress)
    labels = [label_of(Path(p).relative_to(folder)) for p in scored.paths]
    kept = [i for i, label in enumerate(labels) if label is not None]
    return np.array([int(labels[i][0]) for i in kept]), scored.scores[kept]


def find_families(root, families=None) -> dict[str, Path]:
    """``{family: folder}`` of a CNNDetection-like test tree (a tree without family folders is one family)."""
    root = Path(root)
    if not root.is_dir():
        raise MissingInputError(f"{root}: test directory not found.")
    if any(LABEL_FOLDER.match(p.name) for p in root.iterdir() if p.is_dir()):
        return {root.name: root}
    names = families or sorted((p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                               key=lambda n: (FAMILIES.index(n) if n in FAMILIES else len(FAMILIES), n))
    if not names:
        raise UserError(f"{root}: has no family folders; expected <root>/<family>/[<class>/]0_real|1_fake.")
    return {name: root / name for name in names}


def evaluate_detector(model, root, *, families=None, batch_size: int = 32, progress: bool = True,
                      split: str = "test") -> dict:
    """Per-family :func:`~tfforensics.evaluation.metrics.real_vs_fake` plus their plain mean
    (the LGrad / CNNDetection table).

    ``root`` is an image tree (families as sub-folders) or a records dataset (one family,
    its ``split``).
    """
    from tfforensics.evaluation.metrics import real_vs_fake

    results = {}
    if is_records(root):
        from tfforensics.evaluation.evaluate import predict_records
        from tfforensics.models.wrapped import unwrap

        _, classifier = unwrap(model)
        outputs, labels = predict_records(classifier, check_records(root), split, batch_size=batch_size,
                                          progress=progress)
        results[Path(root).name] = real_vs_fake(labels, outputs)
    else:
        for family, folder in find_families(root, families).items():
            results[family] = real_vs_fake(*_family_scores(model, folder, batch_size, progress))
    results["mean"] = mean_row(results.values())
    return results


def mean_row(rows) -> dict:
    """The plain mean of each metric over families (``None`` where no family has it) and the total count."""
    rows = list(rows)
    mean = {"count": int(sum(r["count"] for r in rows))}
    for key in METRIC_KEYS + ("roc_auc",):
        values = [r[key] for r in rows if r.get(key) is not None]
        mean[key] = float(np.mean(values)) if values else None
    return mean


def format_table(results: dict) -> str:
    """The per-family table in percent (see :func:`tfforensics.evaluation.tables.text_table`)."""
    from tfforensics.evaluation.tables import percent, text_table

    return text_table(["family", "n", "ACC", "real", "fake", "AP"],
                      [[family, r["count"], *(percent(r.get(k)) for k in METRIC_KEYS)] for family, r in results.items()],
                      rule=False)


def load_detector(path):
    """A detector saved by :func:`train_detector` (a run directory or its ``model.keras``),
    through the one loader (:func:`tfforensics.models.wrapped.load_keras`)."""
    from tfforensics.models.wrapped import load_model

    return load_model(path)


def save_results(results: dict, path) -> None:
    from tfforensics import __version__
    from tfforensics.io.outputs import PRODUCER

    atomic_write_json(path, {"producer": PRODUCER, "tfforensics_version": __version__, **results})
