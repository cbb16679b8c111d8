"""LGrad: StyleGAN-discriminator gradients of images, and the ResNet-50 detector on them.

Tan et al., "Learning on Gradients" (CVPR 2023): every image is resized to the
discriminator's resolution, scaled to [-1, 1], and replaced by the gradient of the
summed discriminator output with respect to the input, min-max scaled per image to
0..255; a binary ResNet-50 (real = 0, fake = 1) is trained on these gradient images with
the CNNDetection recipe and evaluated per GAN family.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import json
import logging
import os
import re
import tempfile
from pathlib import Path

import keras
import numpy as np
from PIL import Image

from tfforensics.errors import MissingInputError, UserError
from tfforensics.io.atomic import INCOMPLETE_PREFIX, atomic_write_json, default_dir_mode, remove_tree, save_keras
from tfforensics.io.images import BadImageError, list_images, load_image, save_image

logger = logging.getLogger(__name__)

RESAMPLING = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
              "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}
#: Label folders of the CNNDetection layout (``0_real``, ``1_fake``; a suffix like ``_grad`` is allowed).
LABEL_FOLDER = re.compile(r"^([01])_(real|fake)")
#: The eight test families of CNNDetection, in the order the papers print them.
FAMILIES = ("progan", "stylegan", "stylegan2", "biggan", "cyclegan", "stargan", "gaugan", "deepfake")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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
    image = load_image(path)
    if image.shape[:2] == (size, size):
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), RESAMPLING[resample]), dtype=np.uint8)


def compute_gradients(model, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """uint8 gradient images of a uint8 batch already at the discriminator's resolution."""
    function = gradient_function(model)
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

    ``format="png"``: one PNG per image at the same relative path and base name. The tree is
    built in a hidden ``.<output>.incomplete-<fingerprint>`` folder next to ``output`` and renamed
    into place when complete; the fingerprint covers the discriminator's weights, the resampling
    filter and the source files (names, sizes, times), so an interrupted run with the same inputs
    and options continues there, and results of other options are never mixed in. An ``output``
    written with the same fingerprint is reused; another one of ours is replaced only with
    ``overwrite`` (see :mod:`tfforensics.io.outputs`).
    ``format="tfrecords"``: records + manifest via :func:`tfforensics.data.prepare`
    (pixels scaled to [-1, 1]); classes are the ``0_real``/``1_fake`` folders if the tree
    has them, else its top-level folders. Returns a summary dict.
    """
    from tqdm.auto import tqdm

    if format not in ("png", "tfrecords"):
        raise ValueError(f"`format` must be 'png' or 'tfrecords'. Received: format={format!r}")
    if resample not in RESAMPLING:
        raise ValueError(f"`resample` must be one of {sorted(RESAMPLING)}. Received: resample={resample!r}")
    from tfforensics.io.outputs import check_sources
    from tfforensics.preprocess._folder import check_source_dir

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

    if format == "tfrecords":
        from tfforensics.io.outputs import claim_output

        claim_output(output, overwrite=overwrite, sources=[source], command="prepare")  # before the work
        return _img2grad_records(source, output, model, relatives, batch_size=batch_size, resample=resample,
                                 overwrite=overwrite, skip_bad=skip_bad, fractions=fractions, layout=layout,
                                 workers=workers, seed=seed, command=command, progress=progress)

    from tfforensics.io.outputs import claim_output, clean_stale, mark_output, read_marker, replace_output

    resolution, _ = _input_layout(model)
    fingerprint = _gradient_fingerprint(model, source, relatives, resample)

    def same(marker):
        return marker.get("command") == "img2grad" and marker.get("fingerprint") == fingerprint

    output = claim_output(output, overwrite=overwrite, sources=[source], command="img2grad", reuse=same)
    marker = read_marker(output) if output.is_dir() else None
    if marker is not None and same(marker):
        logger.info("Reusing %s: same images, discriminator and options.", output)
        return {"images": len(relatives), "written": 0, "kept_existing": len(relatives), "skipped": [],
                "resolution": resolution, "output": str(output), "fingerprint": fingerprint}
    work = output.parent / f".{output.name}{INCOMPLETE_PREFIX}{fingerprint[:12]}"
    clean_stale(output, keep=work)
    work.mkdir(parents=True, exist_ok=True)
    todo = [r for r in relatives if not (work / _output_name(r)).exists()]
    if len(todo) < len(relatives):
        logger.info("Continuing an interrupted run: %d gradients already written.", len(relatives) - len(todo))
    function = gradient_function(model)
    skipped, written = [], 0
    bar = tqdm(total=len(todo), desc="img2grad", unit="img", disable=not progress, dynamic_ncols=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            images, kept = _load_batch(pool, source, batch, resolution, resample, skip_bad, skipped)
            if kept:
                grads = to_uint8(function(images).numpy())
                for rel, grad in zip(kept, grads):
                    save_image(grad, work / _output_name(rel))
                written += len(kept)
            bar.update(len(batch))
    bar.close()
    for leftover in [p for p in work.rglob(f"{INCOMPLETE_PREFIX}*") if p.is_file()]:
        leftover.unlink()  # a file a killed run was writing (our prefix)
        logger.info("removed %s, left unfinished by an interrupted run", leftover)
    mark_output(work, "img2grad", fingerprint=fingerprint, resolution=resolution, resample=resample,
                skipped=skipped)
    replace_output(work, output, [source])
    summary = {"images": len(relatives), "written": written, "kept_existing": len(relatives) - len(todo),
               "skipped": skipped, "resolution": resolution, "output": str(output), "fingerprint": fingerprint}
    if skipped:
        logger.warning("skipped %d unreadable images:", len(skipped))
        for entry in skipped:
            logger.warning("  %s: %s", entry["path"], entry["reason"])
    return summary


def _gradient_fingerprint(model, source: Path, relatives, resample: str) -> str:
    """What the gradient images depend on: the weights, the resize filter and the source files."""
    import hashlib

    digest = hashlib.sha256(json.dumps({"resample": resample, "input_shape": list(model.input_shape[1:]),
                                        "version": 1}).encode())
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    for rel in relatives:
        stat = (source / rel).stat()
        digest.update(f"{rel.as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _load_batch(pool, source, batch, resolution, resample, skip_bad, skipped):
    def load(rel):
        try:
            return load_resized(source / rel, resolution, resample)
        except BadImageError as error:
            if not skip_bad:
                raise
            skipped.append({"path": error.path, "reason": error.reason})
            return None

    loaded = list(pool.map(load, batch))
    kept = [rel for rel, image in zip(batch, loaded) if image is not None]
    images = np.stack([image for image in loaded if image is not None]) if kept else None
    return images, kept


def _img2grad_records(source, output, model, relatives, *, fractions, layout, workers, seed, command, overwrite,
                      progress, **kwargs):
    from tfforensics.data import Encoding, prepare

    use_labels = all(label_of(rel) is not None for rel in relatives)
    parent = Path(output).resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{INCOMPLETE_PREFIX}img2grad-", dir=parent))
    staging.chmod(default_dir_mode())
    try:
        tree = staging / "classes"
        for rel in relatives:  # one class folder each; names flattened so nothing collides
            klass = label_of(rel) if use_labels else (rel.parts[0] if len(rel.parts) > 1 else "images")
            (tree / klass).mkdir(parents=True, exist_ok=True)
        flat_root = staging / "flat"
        summary = img2grad(source, flat_root, model, format="png", progress=progress, workers=workers, **kwargs)
        for rel in relatives:
            png = flat_root / _output_name(rel)
            if png.exists():
                klass = label_of(rel) if use_labels else (rel.parts[0] if len(rel.parts) > 1 else "images")
                os.replace(png, tree / klass / "__".join(_output_name(rel).parts))
        manifest = prepare(tree, output, Encoding(transform="raw", color=True), fractions=fractions or (1.0, 0.0, 0.0),
                           layout=layout, workers=workers, seed=seed, overwrite=overwrite, command=command,
                           progress=progress)
    finally:
        remove_tree(staging)
    return {**summary, "output": str(output), "classes": manifest.class_names,
            "splits": {s: manifest.count(s) for s in manifest.splits}}


# --- the detector ---------------------------------------------------------------------------------

def _resnet50(inputs, weights=None):
    import keras

    backbone = keras.applications.ResNet50(include_top=False, weights=weights, input_shape=(None, None, 3),
                                           pooling="avg")
    return backbone(inputs)


def _small(inputs, weights=None):
    """A few residual stages: for tests and quick runs on a CPU."""
    import keras
    from keras import layers

    if weights is not None:
        raise UserError("--arch small has no pretrained weights; drop --weights.")
    x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for index, filters in enumerate((16, 32, 64)):
        stride = 1 if index == 0 else 2
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"block{index}_proj")(x)
        y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"block{index}_conv1")(x)
        y = layers.ReLU(name=f"block{index}_relu1")(layers.BatchNormalization(name=f"block{index}_bn1")(y))
        y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{index}_conv2")(y)
        y = layers.BatchNormalization(name=f"block{index}_bn2")(y)
        x = layers.ReLU(name=f"block{index}_out")(layers.Add(name=f"block{index}_add")([shortcut, y]))
    return keras.layers.GlobalAveragePooling2D(name="pool")(x)


ARCHS = {"resnet50": _resnet50, "small": _small}


#: Per-channel BGR means of Keras' ImageNet ResNet-50 ("caffe" preprocessing).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="tfforensics.lgrad")
class CaffePreprocess(keras.layers.Layer):
    """RGB 0..255 to the BGR, mean-subtracted input that Keras' ImageNet ResNet-50 weights expect."""

    def call(self, x):
        return x[..., ::-1] - keras.ops.convert_to_tensor(CAFFE_MEAN_BGR, dtype=x.dtype)


def build_detector(arch: str = "resnet50", weights=None):
    """Binary detector on 0..255 RGB images of any size, preprocessing inside, one logit out.

    Random init: ImageNet mean/std normalisation, as the original's torchvision pipeline.
    ``weights="imagenet"``: the preprocessing Keras' ImageNet weights were trained with
    (BGR, mean subtraction), so the pretrained filters see what they expect.
    """
    import keras

    if arch not in ARCHS:
        raise ValueError(f"`arch` must be one of {sorted(ARCHS)}. Received: arch={arch!r}")
    if weights not in (None, "imagenet"):
        raise ValueError(f"`weights` must be None or 'imagenet'. Received: weights={weights!r}")
    inputs = keras.Input((None, None, 3), name="pixels")
    if weights == "imagenet":
        x = CaffePreprocess(name="caffe_preprocess")(inputs)
    else:
        x = keras.layers.Rescaling(1.0 / 255.0, name="to_unit")(inputs)
        x = keras.layers.Normalization(mean=IMAGENET_MEAN, variance=np.square(IMAGENET_STD).tolist(),
                                       name="imagenet_norm")(x)
    logit = keras.layers.Dense(1, name="logit")(ARCHS[arch](x, weights=weights))
    return keras.Model(inputs, logit, name=f"lgrad_{arch}")


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
    """The LGrad / CNNDetection training recipe (defaults: the original schedule)."""

    arch: str = "resnet50"
    weights: str | None = None
    epochs: int = 100
    batch_size: int = 16
    learning_rate: float = 5e-4
    beta_1: float = 0.9
    beta_2: float = 0.999
    decay_every: int = 10
    decay_factor: float = 0.8
    load_size: int = 256
    crop_size: int = 224
    flip: bool = True
    seed: int = 0


def is_records(root) -> bool:
    """Whether ``root`` is a dataset written by ``prepare`` / ``img2grad --format tfrecords``."""
    from tfforensics.data.manifest import MANIFEST_NAME

    return (Path(root) / MANIFEST_NAME).is_file()


def _check_records(root):
    from tfforensics.data.manifest import Manifest

    manifest = Manifest.load(root)
    encoding = manifest.encoding
    if encoding.transform != "raw" or not encoding.color or encoding.needs_statistics:
        raise UserError(f"{root}: records must hold RGB pixels scaled to [-1, 1] (as written by "
                         f"`img2grad --format tfrecords`); this dataset has encoding {encoding.describe()}.")
    if manifest.class_names != ["0_real", "1_fake"]:
        raise UserError(f"{root}: classes must be ['0_real', '1_fake'] (real = 0, fake = 1); "
                         f"this dataset has {manifest.class_names}.")
    return manifest


def _records_pixels(root, split, batch_size, shuffle, seed):
    """Unbatched ``(pixels 0..255 float32, label)`` from a records dataset."""
    from tfforensics.data.reader import load_dataset

    _check_records(root)
    dataset = load_dataset(root, split, batch_size=batch_size, shuffle=shuffle, seed=seed)
    return dataset.map(lambda x, y: ((x + 1.0) * 127.5, y))


def _augment(dataset, config: TrainConfig):
    """Resize to ``load_size`` (bilinear), random crop, flip, batch: the CNNDetection train transform."""
    import tensorflow as tf

    size = config.load_size

    def transform(image, label):
        image = tf.image.resize(image, [size, size], antialias=True) if image.shape[0] != size else image
        image = tf.ensure_shape(image, [size, size, 3])
        image = tf.image.random_crop(image, [config.crop_size, config.crop_size, 3], seed=config.seed)
        if config.flip:
            image = tf.image.random_flip_left_right(image, seed=config.seed)
        return image, tf.cast(label, tf.float32)[None]

    dataset = dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(config.batch_size).prefetch(tf.data.AUTOTUNE)


def _train_dataset(items, config: TrainConfig):
    import tensorflow as tf

    paths = [str(p) for p, _ in items]
    labels = np.array([label for _, label in items], np.float32)
    size = config.load_size

    def load(path):
        image = load_image(path.decode())
        if image.shape[:2] != (size, size):  # torchvision Resize((s, s)) on PIL: bilinear
            image = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
        return image.astype(np.float32)

    def transform(path, label):
        image = tf.numpy_function(load, [path], tf.float32)
        image = tf.ensure_shape(image, [size, size, 3])
        image = tf.image.random_crop(image, [config.crop_size, config.crop_size, 3], seed=config.seed)
        if config.flip:
            image = tf.image.random_flip_left_right(image, seed=config.seed)
        return image, label[None]

    dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
    dataset = dataset.shuffle(len(paths), seed=config.seed, reshuffle_each_iteration=True)
    return dataset.map(transform, num_parallel_calls=tf.data.AUTOTUNE).batch(config.batch_size).prefetch(
        tf.data.AUTOTUNE)


def train_detector(train_root, output, config: TrainConfig = TrainConfig(), *, classes=None, progress: bool = True,
                   command: str = ""):
    """Train the LGrad detector on gradient images laid out as ``<root>/[<class>/]0_real|1_fake``,
    or on the train split of records written by ``img2grad --format tfrecords``.

    Writes ``output/model.keras`` and ``output/run.json`` (config, class counts, history).
    """
    import keras

    if config.crop_size > config.load_size:
        raise UserError(f"--crop-size {config.crop_size} is larger than --load-size {config.load_size}.")
    if is_records(train_root):
        if classes:
            raise UserError(f"{train_root}: --classes selects folders of an image tree, not records; drop it.")
        manifest = _check_records(train_root)
        per_class = manifest.splits["train"]["per_class"]
        counts = collections.Counter({0: per_class["0_real"], 1: per_class["1_fake"]})
        import tensorflow as tf

        images = _records_pixels(train_root, "train", 256, True, config.seed).unbatch()
        images = images.apply(tf.data.experimental.assert_cardinality(manifest.count("train")))  # epochs end cleanly
        dataset = _augment(images, config)
    else:
        items = find_labelled_images(train_root, classes)
        counts = collections.Counter(label for _, label in items)
        dataset = None
    if min(counts.get(0, 0), counts.get(1, 0)) == 0:
        raise UserError(f"{train_root}: training needs both 0_real and 1_fake images; found {dict(counts)} (label: count).")
    keras.utils.set_random_seed(config.seed)
    model = build_detector(config.arch, config.weights)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1, beta_2=config.beta_2),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy")],
    )
    schedule = keras.callbacks.LearningRateScheduler(
        lambda epoch: config.learning_rate * config.decay_factor ** (epoch // config.decay_every))
    if dataset is None:
        dataset = _train_dataset(items, config)
    import contextlib

    from tfforensics.data.manifest import Manifest
    from tfforensics.data.reader import read_errors

    with read_errors(Manifest.load(train_root), ("train",)) if is_records(train_root) else contextlib.nullcontext():
        history = model.fit(dataset, epochs=config.epochs, callbacks=[schedule], shuffle=False,
                            verbose=1 if progress else 0)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    save_keras(model, output / "model.keras")
    atomic_write_json(output / "run.json", {
        "config": dataclasses.asdict(config), "train_root": str(train_root), "classes": classes,
        "counts": {"real": counts[0], "fake": counts[1]},
        "history": {k: [float(v) for v in values] for k, values in history.history.items()}, "command": command,
    })
    return model


def predict_scores(model, paths, batch_size: int = 32, progress: bool = False, desc: str = "predict") -> np.ndarray:
    """Sigmoid scores of images at their own size (no resize, no crop: the CNNDetection test)."""
    from tqdm.auto import tqdm

    scores = np.empty(len(paths), np.float32)
    batch, index = [], []

    def flush():
        if batch:
            logits = np.asarray(model.predict_on_batch(np.stack(batch).astype(np.float32))).reshape(-1)
            scores[index] = 1.0 / (1.0 + np.exp(-logits))
            batch.clear()
            index.clear()

    for i, path in enumerate(tqdm(paths, desc=desc, unit="img", disable=not progress, dynamic_ncols=True)):
        image = load_image(path)
        if batch and (image.shape != batch[0].shape or len(batch) == batch_size):
            flush()
        batch.append(image)
        index.append(i)
    flush()
    return scores


def family_metrics(y_true, scores) -> dict:
    """ACC (threshold 0.5), real ACC, fake ACC and AP, as CNNDetection's ``validate``."""
    from sklearn.metrics import average_precision_score

    y_true = np.asarray(y_true)
    predicted = np.asarray(scores) > 0.5
    real, fake = y_true == 0, y_true == 1
    both = real.any() and fake.any()
    return {
        "n": int(len(y_true)),
        "acc": float(np.mean(predicted == y_true)),
        "real_acc": float(np.mean(~predicted[real])) if real.any() else float("nan"),
        "fake_acc": float(np.mean(predicted[fake])) if fake.any() else float("nan"),
        "ap": float(average_precision_score(y_true, scores)) if both else float("nan"),
    }


def find_families(root, families=None) -> dict[str, list[tuple[Path, int]]]:
    """``{family: [(path, label)]}`` of a CNNDetection-like test tree (sub-classes pooled)."""
    root = Path(root)
    if not root.is_dir():
        raise MissingInputError(f"{root}: test directory not found.")
    if any(LABEL_FOLDER.match(p.name) for p in root.iterdir() if p.is_dir()):
        return {root.name: find_labelled_images(root)}
    names = families or sorted((p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                               key=lambda n: (FAMILIES.index(n) if n in FAMILIES else len(FAMILIES), n))
    if not names:
        raise UserError(f"{root}: has no family folders; expected <root>/<family>/[<class>/]0_real|1_fake.")
    return {name: find_labelled_images(root / name) for name in names}


def evaluate_detector(model, root, *, families=None, batch_size: int = 32, progress: bool = True,
                      split: str = "test") -> dict:
    """Per-family metrics plus their plain mean (the LGrad / CNNDetection table).

    ``root`` is an image tree (families as sub-folders) or a records dataset (one family,
    its ``split``).
    """
    results = {}
    if is_records(root):
        from tfforensics.data.manifest import Manifest
        from tfforensics.data.reader import read_errors

        labels, logits = [], []
        with read_errors(Manifest.load(root), (split,)):
            for pixels, label in _records_pixels(root, split, batch_size, False, None).as_numpy_iterator():
                logits.append(np.asarray(model.predict_on_batch(pixels)).reshape(-1))
                labels.append(label)
        if not labels:
            raise UserError(f"{root}: split {split!r} is empty; choose another with --split.")
        scores = 1.0 / (1.0 + np.exp(-np.concatenate(logits)))
        results[Path(root).name] = family_metrics(np.concatenate(labels), scores)
    else:
        for family, items in find_families(root, families).items():
            scores = predict_scores(model, [p for p, _ in items], batch_size, progress, desc=family)
            results[family] = family_metrics([label for _, label in items], scores)
    keys = ("acc", "real_acc", "fake_acc", "ap")
    results["mean"] = {k: float(np.nanmean([r[k] for r in results.values()])) for k in keys}
    results["mean"]["n"] = int(sum(r["n"] for name, r in results.items() if name != "mean"))
    return results


def format_table(results: dict) -> str:
    """The per-family table in percent."""
    lines = [f"{'family':<14}{'n':>7}{'ACC':>8}{'real':>8}{'fake':>8}{'AP':>8}"]
    for family, r in results.items():
        lines.append(f"{family:<14}{r['n']:>7}" + "".join(f"{100 * r[k]:>8.2f}" for k in ("acc", "real_acc",
                                                                                         "fake_acc", "ap")))
    return "\n".join(lines)


def load_detector(path):
    """A detector saved by :func:`train_detector` (``.keras``, safe mode)."""
    from tfforensics.errors import MissingInputError
    from tfforensics.models.wrapped import load_keras

    path = Path(path)
    if path.is_dir():
        path = path / "model.keras"
    if not path.is_file():
        raise MissingInputError(f"{path}: detector not found; train one with `tfforensics lgrad train`.")
    return load_keras(path)


def save_results(results: dict, path) -> None:
    from tfforensics import __version__
    from tfforensics.io.outputs import PRODUCER

    data = json.loads(json.dumps(results, allow_nan=True))
    if isinstance(data, dict):  # marks the file as ours, so `--overwrite` may replace it
        data = {"producer": PRODUCER, "tfforensics_version": __version__, **data}
    atomic_write_json(path, data)
