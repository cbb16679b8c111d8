"""Training a registered classifier on prepared records, and the run directory it leaves.

The classifier trains on the records as ``prepare`` encoded them (no per-step DCT), or,
on ``pixels`` records, behind the manifest's frozen preprocessing layers, end to end on the
(optionally augmented, :mod:`tfforensics.data.augment`) pixels. What is saved is the trained
classifier behind the preprocessing layers, so ``model.keras`` takes raw 0..255 images. A
run directory holds::

    model.keras          the wrapped model (raw images in, class scores out)
    run.json             arguments, history, validation metrics, timings
    checkpoints/         best.weights.h5 (lowest val loss), last.weights.h5 (the model fit trains:
                         the classifier, or preprocessing + classifier on pixel records), written
                         when training ends
    logs/                TensorBoard event files
    backup/              while training: a recent finished epoch (Keras BackupAndRestore; see
                         BACKUP_COST_RATIO), so a re-run of an interrupted run, or a restarted
                         worker, continues from it

Across machines, ``TF_CONFIG`` naming a cluster of two or more workers selects
``MultiWorkerMirroredStrategy`` (see :func:`distribution_strategy`): every worker reads the
whole train split and keeps its share of each global batch (DATA auto-sharding), the chief
(task ``chief``, else ``worker`` 0) writes the run directory, the other workers write theirs to
temporary folders that are removed at the end, and all of them restore from the chief's
``backup/`` after a restart (so OUT must be on a file system every worker mounts).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from tfforensics.errors import UserError
from tfforensics.io.atomic import atomic_write_json, save_keras
from tfforensics.training.run_files import RUN_FILES, write_run_files

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
#: Splits smaller than this (bytes of float32 images) are kept in memory after the first epoch.
CACHE_LIMIT = 1 << 30
#: ``backup/`` is written at the end of an epoch when the last backup is older than this many
#: times what writing it took (the first epoch is always backed up): backups cost at most about
#: 1/BACKUP_COST_RATIO of the training time, and an interrupted run loses at most one epoch or that
#: many backups' time (a few seconds for the benchmark's small models; every epoch of a large one).
BACKUP_COST_RATIO = 20
#: Training steps run by one call into the compiled step function (Keras' ``steps_per_execution``):
#: the same steps in the same order, with the Python work between steps (iterator, callbacks,
#: metrics) done once per call instead of once per step. Batch-level callbacks see every
#: STEPS_PER_EXECUTION-th step; the epoch-level ones (all of ours) are unchanged. Across workers
#: (MultiWorkerMirroredStrategy) Keras 3's multi-step loop fails, so there it is one step per call.
STEPS_PER_EXECUTION = 32


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns: the saved model, its classifier and the run record."""

    model: object  # keras.Model taking raw images
    classifier: object  # keras.Model taking encoded records
    run_dir: Path
    run: dict

    @property
    def model_path(self) -> Path:
        return self.run_dir / MODEL_FILE


def configure_determinism(seed: int, deterministic: bool | None = None) -> bool:
    """Seed Python, NumPy and TensorFlow; make ops deterministic where that is cheap.

    ``deterministic=None`` turns TensorFlow's op determinism on only without GPUs (on
    CPU it costs little; on GPU some kernels become slower). It stays on for the
    process. Returns whether op determinism is on.
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic is None:
        deterministic = not tf.config.list_physical_devices("GPU")
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    return bool(deterministic)


def cluster_task() -> tuple[str, int] | None:
    """``(task type, index)`` of this process when ``TF_CONFIG`` names a cluster of 2+ workers, else None."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        config = json.loads(raw)
        cluster, task = config.get("cluster") or {}, config.get("task") or {}
        workers = sum(len(cluster.get(kind) or []) for kind in ("chief", "worker"))
        kind, index = task.get("type"), int(task.get("index", 0))
    except (ValueError, TypeError, AttributeError) as error:
        raise UserError(f"TF_CONFIG is not a cluster description ({error}); set it to JSON such as "
                        '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", '
                        '"index": 0}} or unset it.') from error
    if workers < 2:
        return None
    if kind not in ("chief", "worker") or index >= len(cluster.get(kind) or []):
        raise UserError(f"TF_CONFIG: task {task} is not one of the cluster's chief/worker tasks {cluster}; fix "
                        "task.type / task.index.")
    return kind, index


def is_chief() -> bool:
    """True unless this process is a non-chief worker of a ``TF_CONFIG`` cluster."""
    task = cluster_task()
    if task is None:
        return True
    cluster = json.loads(os.environ["TF_CONFIG"])["cluster"]
    return task[0] == "chief" or (task == ("worker", 0) and not cluster.get("chief"))


def distribution_strategy():
    """MultiWorkerMirroredStrategy when ``TF_CONFIG`` names a cluster of 2+ workers; else
    MirroredStrategy over the visible GPUs; the default strategy when there are none."""
    import tensorflow as tf

    if cluster_task() is not None:
        return tf.distribute.MultiWorkerMirroredStrategy()
    if tf.config.list_logical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _shard_per_worker(dataset, strategy):
    """Under MultiWorkerMirroredStrategy, each worker keeps its share of every batch (DATA sharding:
    the cached, seeded pipeline is the same on every worker, so the shares partition each batch)."""
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


@contextlib.contextmanager
def _multi_worker_fit(classifier, strategy, element_spec):
    """Make Keras 3's ``fit`` / ``evaluate`` work across workers (a no-op otherwise).

    Keras 3 (up to 3.15 at least) fails under a multi-worker MultiWorkerMirroredStrategy
    (keras-team/keras#20585): its pre-fit symbolic build averages a distributed data batch
    with ``strategy.reduce`` (which raises), and its per-step reduction averages the scalar
    logs over ``axis=0`` (which raises). So the model is built here from the batch's spec,
    the pre-fit build is skipped, and scalar logs are averaged over the replicas with
    ``axis=None``; the training step itself (gradients all-reduced by the strategy) is
    Keras' own.
    """
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer

    if not (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and trainer._collective_all_reduce_multi_worker(strategy)):
        yield
        return
    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tf.nest.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None) if isinstance(v, tf.distribute.DistributedValues)
                else v, values)
        return original(values, strategy, reduction)

    sample = tf.nest.map_structure(lambda spec: tf.zeros([1 if d is None else d for d in spec.shape], spec.dtype),
                                   element_spec)
    with strategy.scope():
        classifier._symbolic_build(data_batch=sample)
    classifier._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        trainer.reduce_per_replica = original
        del classifier._maybe_symbolic_build


def _backup_callback(run_dir: Path, chief: bool, arguments: dict):
    """Keras BackupAndRestore in ``run_dir/backup/<fingerprint of the arguments>``: a re-run with other
    arguments starts afresh. Every worker restores from the chief's backup; only the chief writes it."""
    import keras

    fingerprint = hashlib.sha256(json.dumps(arguments, sort_keys=True, default=str).encode()).hexdigest()[:12]
    root = run_dir / "backup"
    if chief and root.is_dir():
        for stale in root.iterdir():
            if stale.name != fingerprint:
                shutil.rmtree(stale, ignore_errors=True)

    class ChiefBackup(keras.callbacks.BackupAndRestore):
        saved_at, save_seconds = None, 0.0

        def _save_model(self):
            """Only on the chief, and not while the last backup is younger than BACKUP_COST_RATIO times
            its own cost: a small model's epoch takes less time than saving it."""
            recent = self.saved_at is not None and time.monotonic() - self.saved_at < BACKUP_COST_RATIO * self.save_seconds
            if chief and not recent:
                started = time.monotonic()
                super()._save_model()
                self.saved_at = time.monotonic()
                self.save_seconds = self.saved_at - started

        def on_train_end(self, logs=None):
            if chief:
                super().on_train_end(logs)
                if root.is_dir() and not any(root.iterdir()):
                    root.rmdir()

    return ChiefBackup(str(root / fingerprint))


def _checkpoint_callback(checkpoints: Path, monitor: str):
    """``last.weights.h5`` (the last epoch) and ``best.weights.h5`` (the epoch of the lowest
    ``monitor``), the files two ``ModelCheckpoint`` callbacks leave, written once when training
    ends from weights kept in memory: a Keras save of even a small model costs tens of
    milliseconds, an epoch of the benchmark's models not much more. While training, ``backup/``
    holds a recent finished epoch (a killed run continues from it; see :data:`BACKUP_COST_RATIO`)."""
    import keras

    class Checkpoints(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.best, self.best_weights = np.inf, None

        def on_epoch_end(self, epoch, logs=None):
            current = (logs or {}).get(monitor)
            if current is not None and np.less(current, self.best):  # as ModelCheckpoint's mode "min"
                self.best, self.best_weights = current, self.model.get_weights()

        def on_train_end(self, logs=None):  # before EarlyStopping restores the best weights
            self.model.save_weights(str(checkpoints / "last.weights.h5"))
            if self.best_weights is not None:
                last = self.model.get_weights()
                self.model.set_weights(self.best_weights)
                self.model.save_weights(str(checkpoints / "best.weights.h5"))
                self.model.set_weights(last)

    return Checkpoints()


def records_dataset(manifest, split: str, *, batch_size: int, binary: bool, shuffle: bool = False,
                    seed: int = 0, cache: bool | None = None, encoded: bool = True, augmentation=None):
    """Batches of ``(images, labels)``, labels shaped for the model's loss.

    Images are the encoded float32 arrays (``encoded``, any layout), or the pixels of a
    ``pixels``-layout split as float32 0..255 (``encoded=False``, for a model that carries its
    preprocessing), optionally augmented first (:func:`tfforensics.data.augment.augment_dataset`,
    seeded by ``seed``). With ``cache`` (default: when the split's images take at most 1 GiB)
    the records are parsed once and kept in memory as one tensor (as stored: uint8 for
    pixels), then shuffled over the whole split each epoch; training then runs as fast as from
    NumPy arrays. Larger splits stream from the shards (shuffled files and a 10 000-record buffer).

    In memory, the shuffle permutes indices and each batch is gathered from the tensor:
    the same batches, in the same order, as shuffling the cached records themselves with
    the same seed and buffer (the shuffle's random draws do not depend on the elements),
    without copying every image into a shuffle buffer at the start of each epoch. A cached
    split that is not shuffled (the val split) is batched straight from the tensors, with no
    function for each new iterator to instantiate (Keras makes new iterators every validation).
    """
    import tensorflow as tf

    from tfforensics.data.augment import augment_dataset
    from tfforensics.data.reader import as_numpy, load_dataset

    count = manifest.count(split)
    pixels = not encoded
    if cache is None:
        cache = count * int(np.prod(manifest.image_shape)) * (1 if pixels else 4) <= CACHE_LIMIT
    augment = augmentation is not None and augmentation.active

    def shaped_labels(labels):
        return tf.cast(tf.reshape(labels, [-1, 1]), tf.float32) if binary else labels

    def as_float(images):
        return tf.cast(images, tf.float32) if pixels else images

    def images_as_float(images, labels):
        return as_float(images), labels

    if cache:
        images, labels = as_numpy(manifest, split, encoded=encoded)
        images, labels = tf.convert_to_tensor(images), shaped_labels(tf.convert_to_tensor(labels))
        if augment:  # per image: augmentation is keyed on each element's position in the pass
            dataset = tf.data.Dataset.range(count)
            if shuffle:
                dataset = dataset.shuffle(max(count, 1), seed=seed, reshuffle_each_iteration=True)
            dataset = dataset.map(lambda index: (tf.gather(images, index), tf.gather(labels, index)),
                                  num_parallel_calls=tf.data.AUTOTUNE)
            dataset = augment_dataset(dataset, augmentation, seed).batch(batch_size)
            dataset = dataset.map(images_as_float, num_parallel_calls=tf.data.AUTOTUNE)
        elif shuffle:
            dataset = tf.data.Dataset.range(count).shuffle(max(count, 1), seed=seed, reshuffle_each_iteration=True)
            dataset = dataset.batch(batch_size).map(
                lambda index: (as_float(tf.gather(images, index)), tf.gather(labels, index)),
                num_parallel_calls=tf.data.AUTOTUNE)
        else:  # no function to instantiate for each new iterator (Keras makes one per validation)
            dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)
            if pixels:
                dataset = dataset.map(images_as_float, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        dataset = load_dataset(manifest, split, batch_size=batch_size, shuffle=shuffle, seed=seed, encoded=encoded)
        if augment:
            dataset = augment_dataset(dataset.unbatch(), augmentation, seed).batch(batch_size)
        if binary or pixels:
            dataset = dataset.map(lambda images, labels: (as_float(images), shaped_labels(labels)),
                                  num_parallel_calls=tf.data.AUTOTUNE)
    # Record files have unknown length; telling tf.data lets Keras size its progress bar and epochs.
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(-(-count // batch_size)))
    return dataset.prefetch(tf.data.AUTOTUNE)


def compile_classifier(model, num_classes: int, learning_rate: float, adam_options: dict | None = None,
                       steps_per_execution: int = STEPS_PER_EXECUTION):
    """Adam, cross-entropy (binary for one sigmoid unit, sparse categorical otherwise).

    ``adam_options`` (``beta_1``, ``beta_2``, ``epsilon``) default to Keras'; a builder in
    the registry may declare its own as ``builder.adam_options`` (the attribution network
    uses the original's beta1 0, beta2 0.99).
    """
    import keras

    from tfforensics.models.classifiers import is_binary

    if is_binary(num_classes):
        loss, accuracy = keras.losses.BinaryCrossentropy(), keras.metrics.BinaryAccuracy(name="accuracy")
    else:
        loss, accuracy = keras.losses.SparseCategoricalCrossentropy(), keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, **(adam_options or {}))
    model.compile(optimizer=optimizer, loss=loss, metrics=[accuracy], steps_per_execution=steps_per_execution)
    return model


def default_run_dir(model_name: str, manifest) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{model_name}-{Path(manifest.root).name}-{stamp}"


def claim_run_dir(out: Path, overwrite: bool) -> None:
    """Check the run folder before training (see :mod:`tfforensics.io.outputs`) and mark it as ours.

    A folder left by an interrupted ``train`` is used again; a finished run is replaced only
    with ``overwrite`` and only when it holds nothing but what ``train`` wrote.
    """
    from tfforensics.io.outputs import claim_output, read_marker, remove_output

    def unfinished(marker):
        return marker.get("command") == "train" and not marker.get("complete", True)

    claim_output(out, overwrite=overwrite, command="train", reuse=unfinished)
    marker = read_marker(out) if out.is_dir() else None
    if marker is not None and not unfinished(marker):
        remove_output(out)  # --overwrite of a finished run of ours (checked above)
    out.mkdir(parents=True, exist_ok=True)
    _mark_run_dir(out, complete=False)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)


def _mark_run_dir(out: Path, complete: bool) -> None:
    from tfforensics.io.outputs import mark_output

    mark_output(out, "train", files=[RUN_FILE, MODEL_FILE, *RUN_FILES], dirs=["checkpoints", "logs", "backup"],
                complete=complete)


def save_model(model, path) -> Path:
    """Save ``model`` atomically (see :func:`tfforensics.io.atomic.save_keras`)."""
    return save_keras(model, path)


def _history_lists(history: dict) -> dict:
    return {key: [float(v) for v in values] for key, values in history.items()}


@dataclasses.dataclass
class _Setup:
    """What the stages of :func:`train` share: the checked request and where the run goes."""

    manifest: object
    num_classes: int
    has_val: bool
    run_dir: Path  # where this process writes (a temporary folder on a non-chief worker)
    shared_dir: Path  # the run directory of the chief
    strategy: object
    chief: bool


def _check_request(model_name, manifest, *, image_size, num_classes, epochs, batch_size, learning_rate,
                   early_stopping, augmentation) -> tuple[int, bool]:
    """Refuse what cannot train (one line each); returns ``(num_classes, has_val)``."""
    if manifest.format != "tfrecords":
        logger.warning("%s: .npy datasets are read one file per image; TFRecords train faster.", manifest.root)
    shape = tuple(manifest.image_shape)
    if image_size is not None:
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if tuple(size) != shape[:2]:
            raise UserError(
                f"--image-size {size} does not match the records of {manifest.root} ({shape[0]}x{shape[1]}); "
                "prepare the data at that size instead."
            )
    if manifest.num_classes < 2:
        raise UserError(f"{manifest.root}: has one class ({manifest.class_names}); a classifier needs two or more.")
    num_classes = manifest.num_classes if num_classes is None else int(num_classes)
    if max(num_classes, 2) < manifest.num_classes:  # 1 or 2: one sigmoid unit for two classes
        raise UserError(f"--classes {num_classes} is fewer than the {manifest.num_classes} classes of {manifest.root}.")
    if manifest.count("train") == 0:
        raise UserError(f"{manifest.root}: the train split is empty; prepare it with a larger train fraction.")
    if epochs < 1 or batch_size < 1 or learning_rate <= 0:
        raise UserError(
            f"epochs and batch size must be >= 1 and the learning rate > 0. "
            f"Received: epochs={epochs}, batch_size={batch_size}, lr={learning_rate}"
        )
    if augmentation is not None and augmentation.active and manifest.layout != "pixels":
        raise UserError(f"{manifest.path}: --augment works on pixel records, these are {manifest.layout}-layout "
                        "(encoded values); prepare the dataset again with `--layout pixels`.")
    has_val = manifest.count("val") > 0
    if early_stopping and not has_val:
        logger.warning("%s: no val split, so no early stopping; all %d epochs run.", manifest.root, epochs)
    return num_classes, has_val


def _run_context(model_name, manifest, out, overwrite) -> tuple[Path, Path, object, bool]:
    """``(run_dir, shared_dir, strategy, chief)``: the strategy first, then the claimed run folder."""
    if out is None and cluster_task() is not None:
        raise UserError("TF_CONFIG names a cluster: give every worker the same --out (on a file system all of "
                        "them mount), so that they share the chief's run directory and backup.")
    run_dir = Path(out) if out is not None else default_run_dir(model_name, manifest)
    strategy = distribution_strategy()  # first: MultiWorkerMirroredStrategy must precede other TensorFlow work
    chief = is_chief()
    shared_dir = run_dir
    if not chief:  # the chief writes the run directory; this worker writes to a folder of its own
        run_dir = Path(tempfile.mkdtemp(prefix="tfforensics-worker-"))
        atexit.register(shutil.rmtree, run_dir, True)  # also when training fails
    claim_run_dir(run_dir, overwrite if chief else True)
    return run_dir, shared_dir, strategy, chief


def _datasets(setup: _Setup, *, batch_size, binary, seed, cache, train_dataset, augmentation):
    """Stage 1: the train and val pipelines (pixels for a ``pixels`` layout, else the encoded records)."""
    manifest = setup.manifest
    encoded = manifest.layout != "pixels"
    if train_dataset is not None:
        train_data = train_dataset
    else:
        train_data = records_dataset(manifest, "train", batch_size=batch_size, binary=binary, shuffle=True,
                                     seed=seed, cache=cache, encoded=encoded, augmentation=augmentation)
    val_data = records_dataset(manifest, "val", batch_size=batch_size, binary=binary, cache=cache,
                               encoded=encoded) if setup.has_val else None
    train_data = _shard_per_worker(train_data, setup.strategy)
    val_data = _shard_per_worker(val_data, setup.strategy) if val_data is not None else None
    return train_data, val_data


def _build(setup: _Setup, model_name, *, l1, l2, learning_rate, model_options, initial_weights):
    """Stage 2: ``(classifier, fitted)``, the compiled model that ``fit`` trains.

    On encoded records ``fitted`` is the classifier. On pixel records it is the manifest's
    preprocessing (frozen: its statistics are constants) in front of the classifier, trained
    end to end on the pixels; a classifier with its own ``train_step`` (VisNet) keeps it
    and gets the preprocessing applied in the data pipeline instead (see :func:`_encode_in_pipeline`).
    """
    import keras

    from tfforensics.layers import preprocessing_from_manifest
    from tfforensics.models.classifiers import MODELS

    manifest = setup.manifest
    with setup.strategy.scope():
        builder = MODELS[model_name]
        classifier = builder(tuple(manifest.image_shape), setup.num_classes, l1=l1, l2=l2, **(model_options or {}))
        if initial_weights is not None:
            if isinstance(initial_weights, (str, Path)):
                classifier.load_weights(str(initial_weights))
            else:
                classifier.set_weights(initial_weights.get_weights())
        fitted = classifier
        if manifest.layout == "pixels" and not _own_train_step(classifier):
            preprocessing = preprocessing_from_manifest(manifest, name="preprocessing")
            preprocessing.trainable = False
            inputs = keras.Input(preprocessing.input_shape[1:], name="image")
            fitted = keras.Model(inputs, classifier(preprocessing(inputs)), name=f"{classifier.name}_on_pixels")
        steps = 1 if cluster_task() is not None else STEPS_PER_EXECUTION  # Keras' multi-step loop fails across workers
        compile_classifier(fitted, setup.num_classes, learning_rate, getattr(builder, "adam_options", None), steps)
        build_optimizer_state(fitted)
    return classifier, fitted


def build_optimizer_state(model) -> None:
    """Create the optimizers' slot variables now, eagerly, on the variables each one trains.

    Left to Keras (without a distribution strategy) they are created inside the first traced
    train step, and a ``tf.function`` that creates variables is traced twice (once creating
    them, once more without): ~0.4 s of a small model's run, more for a deep one. A model with
    its own ``train_step`` and optimizers (VisNet) builds each on the variables it trains; Keras'
    ``BackupAndRestore`` would build only ``model.optimizer``, on every trainable variable, and the
    restore then skipped the saved slots of both (their counts differ).
    """
    own = getattr(model, "build_optimizer_state", None)
    if own is not None:
        own()
    elif model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)  # what Keras' train_step would build on


def _own_train_step(model) -> bool:
    import keras

    return type(model).train_step is not keras.Model.train_step


def _encode_in_pipeline(dataset, manifest):
    """Batches of pixels through the manifest's preprocessing layers, in ``tf.data`` (for VisNet)."""
    import tensorflow as tf

    from tfforensics.layers import preprocessing_from_manifest

    preprocessing = preprocessing_from_manifest(manifest, name="preprocessing")
    return dataset.map(lambda images, labels: (preprocessing(images, training=False), labels),
                       num_parallel_calls=tf.data.AUTOTUNE)


def _callbacks(setup: _Setup, *, early_stopping, extra, arguments):
    """Stage 3: TensorBoard, checkpoints, early stopping, the caller's, and BackupAndRestore
    (when ``arguments`` fingerprint a resumable run). Returns ``(callbacks, stopper)``."""
    import keras

    monitor = "val_loss" if setup.has_val else "loss"
    checkpoints = setup.run_dir / "checkpoints"
    run_callbacks = [
        keras.callbacks.TensorBoard(log_dir=str(setup.run_dir / "logs")),
        _checkpoint_callback(checkpoints, monitor),
    ]
    stopper = None
    if early_stopping and setup.has_val:
        stopper = keras.callbacks.EarlyStopping(monitor="val_loss", patience=int(early_stopping),
                                                restore_best_weights=True)
        run_callbacks.append(stopper)
    run_callbacks += list(extra)
    if arguments is not None:
        run_callbacks.append(_backup_callback(setup.shared_dir, setup.chief, arguments))
    return run_callbacks, stopper


def _steps_per_epoch(dataset, strategy) -> int | None:
    """The batches of one pass over ``dataset``, for ``fit(steps_per_epoch=...)``; None where Keras
    must find the end itself (unknown length, or a distribution strategy, whose distributed
    dataset has no length).

    Without it Keras' ``fit`` makes two ``tf.data`` iterators per epoch of a finite dataset, one of
    them thrown away unused (10-25 ms each on 2 cores, seconds over a small model's run); with it, one.
    The dataset stays finite: a multi-step execution (``steps_per_execution``) ends at the end of the
    pass, so an epoch is exactly one pass.
    """
    import tensorflow as tf

    batches = int(dataset.cardinality())
    with strategy.scope():
        distributed = tf.distribute.has_strategy()  # False only for the default (no-op) strategy
    return None if batches <= 0 or distributed else batches


def _fit(setup: _Setup, fitted, train_data, val_data, *, epochs, callbacks, verbose) -> dict:
    """Stage 4: ``fit`` (resuming a backup), then the val metrics; TF data errors become one line."""
    from tfforensics.data.reader import read_errors

    with read_errors(setup.manifest, ("train", "val")), _multi_worker_fit(fitted, setup.strategy,
                                                                          train_data.element_spec):
        started = time.perf_counter()
        history = fitted.fit(train_data, epochs=epochs, steps_per_epoch=_steps_per_epoch(train_data, setup.strategy),
                             validation_data=val_data, callbacks=callbacks, shuffle=False,
                             verbose=verbose)  # the records are shuffled by tf.data
        train_seconds = time.perf_counter() - started
        # history.epoch counts from the epoch a restored backup resumed at
        epochs_run = history.epoch[-1] + 1 if history.epoch else epochs  # empty: the backup had them all
        resumed_at = history.epoch[0] if history.epoch else epochs_run
        val_metrics = None
        if val_data is not None:
            values = fitted.evaluate(val_data, verbose=0, return_dict=True)
            val_metrics = {key: float(value) for key, value in values.items()}
    return {"history": history.history, "train_seconds": train_seconds, "epochs_run": epochs_run,
            "resumed_at": resumed_at, "val_metrics": val_metrics}


def _save(setup: _Setup, classifier, *, channels, seed, augmentation):
    """Stage 5: the classifier behind fresh preprocessing layers and its class names, saved as ``model.keras``."""
    from tfforensics.models.wrapped import wrap_with_preprocessing

    manifest = setup.manifest
    class_names = list(manifest.class_names) + [f"class_{i}" for i in range(manifest.num_classes, setup.num_classes)]
    metadata = {"seed": seed}
    if augmentation is not None and augmentation.active:
        metadata["augmentation"] = augmentation.describe()
    with setup.strategy.scope():
        model = wrap_with_preprocessing(classifier, manifest, channels=channels, class_names=class_names,
                                        metadata=metadata)
    save_model(model, setup.run_dir / MODEL_FILE)
    return model, class_names


def train(
    model_name: str,
    dataset,
    *,
    out=None,
    epochs: int = 50,
    batch_size: int = 32,
    l1: float = 0.01,
    l2: float = 0.01,
    learning_rate: float = 1e-3,
    early_stopping: int | None = 5,
    seed: int = 0,
    deterministic: bool | None = None,
    num_classes: int | None = None,
    image_size=None,
    channels: int | None = None,
    cache: bool | None = None,
    overwrite: bool = False,
    verbose="auto",
    command: str = "",
    model_options: dict | None = None,
    initial_weights=None,
    train_dataset=None,
    callbacks=(),
    augmentation=None,
) -> TrainResult:
    """Train ``model_name`` on the train split of ``dataset`` and save a run directory.

    Args:
        model_name: a key of :data:`tfforensics.models.classifiers.MODELS`.
        dataset: a dataset directory written by ``prepare``, its manifest, or a Manifest.
            On encoded records (layouts ``original``, ``compact``, ``npy``) the classifier
            trains on them as stored; on ``pixels`` records the manifest's preprocessing
            layers (frozen) encode the pixels inside the model being trained.
        out: run directory (default ``runs/<model>-<dataset>-<time>``).
        epochs, batch_size, learning_rate: as the original (50, 32, 1e-3); ``batch_size``
            is the global batch, split over the GPUs.
        l1, l2: kernel penalties of ``log1``/``log2``/``log3``/``nn`` (0.01 each).
        early_stopping: patience in epochs on the validation loss (the best weights are
            restored); ``None`` or 0 trains all epochs. Needs a non-empty val split.
        seed, deterministic: see :func:`configure_determinism`.
        num_classes: override of the manifest's class count (``1`` or ``2``: one
            sigmoid unit; labels must stay below it).
        image_size: ``(height, width)`` or one int; must match the records (checked).
        channels: channels of the saved model's raw input (default: the encoding's;
            3 on a gray dataset adds PIL's luma conversion inside the model).
        cache: keep the parsed records in memory (default: when the split is < 1 GiB).
        verbose: Keras ``fit`` verbosity.
        model_options: extra keyword arguments of the builder (e.g. ``mode``,
            ``switching_res``, ``fmap_max`` of ``attribution``); recorded in run.json.
        initial_weights: a classifier (or ``.weights.h5`` path) to start from instead of a
            fresh initialisation, for fine-tuning (same builder and options).
        train_dataset: a ``tf.data`` pipeline of ``(images, labels)`` batches to train on
            instead of the manifest's train split (e.g. perturbed copies): encoded arrays,
            or float32 0..255 pixels for a ``pixels`` manifest; the manifest still gives
            shapes, classes and the val split.
        callbacks: extra Keras callbacks of a model's recipe (e.g. LGrad's step decay
            of the learning rate), after the checkpoints and early stopping.
        augmentation: a :class:`tfforensics.data.augment.Augmentation` applied to the train
            split's pixels on the fly (``pixels`` records only); recorded in run.json and the
            model's metadata. With ``train_dataset`` the caller's pipeline applies it (e.g.
            LGrad's, on gradient records), and it is only recorded.
    """
    from tfforensics.data.manifest import Manifest
    from tfforensics.models.classifiers import MODELS, is_binary

    if model_name not in MODELS:
        raise UserError(f"unknown model {model_name!r}; choose one of {', '.join(MODELS)}.")
    manifest = Manifest.load(dataset)
    num_classes, has_val = _check_request(
        model_name, manifest, image_size=image_size, num_classes=num_classes, epochs=epochs, batch_size=batch_size,
        learning_rate=learning_rate, early_stopping=early_stopping,
        augmentation=augmentation if train_dataset is None else None)  # a given pipeline is the caller's
    setup = _Setup(manifest, num_classes, has_val, *_run_context(model_name, manifest, out, overwrite))
    deterministic = configure_determinism(seed, deterministic)
    binary = is_binary(num_classes)
    augmentation = augmentation if augmentation is not None and augmentation.active else None

    train_data, val_data = _datasets(setup, batch_size=batch_size, binary=binary, seed=seed, cache=cache,
                                     train_dataset=train_dataset, augmentation=augmentation)
    classifier, fitted = _build(setup, model_name, l1=l1, l2=l2, learning_rate=learning_rate,
                                model_options=model_options, initial_weights=initial_weights)
    if fitted is classifier and manifest.layout == "pixels":
        train_data = _encode_in_pipeline(train_data, manifest)
        val_data = _encode_in_pipeline(val_data, manifest) if val_data is not None else None
    arguments = None
    if train_dataset is None:  # a pipeline given by the caller may differ on a re-run: no resume then
        arguments = {"model": model_name, "dataset": manifest.source.get("sha256", str(manifest.root)),
                     "epochs": epochs, "batch_size": batch_size, "l1": l1, "l2": l2, "learning_rate": learning_rate,
                     "early_stopping": early_stopping, "seed": seed, "num_classes": num_classes,
                     "model_options": model_options, "fine_tuned": initial_weights is not None,
                     "replicas": setup.strategy.num_replicas_in_sync,
                     **({"augmentation": augmentation.describe()} if augmentation else {})}
    run_callbacks, stopper = _callbacks(setup, early_stopping=early_stopping, extra=callbacks, arguments=arguments)
    fitted_info = _fit(setup, fitted, train_data, val_data, epochs=epochs, callbacks=run_callbacks, verbose=verbose)
    model, class_names = _save(setup, classifier, channels=channels, seed=seed, augmentation=augmentation)

    run = _run_record(setup, model_name, model, class_names, fitted_info, stopper, command=command, arguments={
        "epochs": epochs, "batch_size": batch_size, "l1": l1, "l2": l2, "learning_rate": learning_rate,
        "early_stopping": early_stopping, "seed": seed, "deterministic": deterministic,
        "num_classes": num_classes, "model_options": dict(model_options or {}),
        "fine_tuned": initial_weights is not None,
        "augmentation": augmentation.to_dict() if augmentation else None})
    run_dir = _finish(setup, classifier, run)
    return TrainResult(model=model, classifier=classifier, run_dir=run_dir, run=run)


def _finish(setup: _Setup, classifier, run: dict) -> Path:
    """Stage 6: run.json and the run files, the completion mark; a worker's temporary copy goes.
    Returns the run directory (the chief's)."""
    run_dir = setup.run_dir
    atomic_write_json(run_dir / RUN_FILE, run)
    write_run_files(run_dir, classifier, run)  # model_summary.txt, history_*.png, result.json
    _mark_run_dir(run_dir, complete=True)
    if not setup.chief:
        shutil.rmtree(run_dir, ignore_errors=True)  # this worker's temporary copy; the chief's is the run
        run_dir = setup.shared_dir
    val_metrics = run["val_metrics"]
    logger.info("saved %s (val accuracy %s)", run_dir / MODEL_FILE,
                f"{val_metrics['accuracy']:.2%}" if val_metrics else "n/a")
    return run_dir


def _run_record(setup: _Setup, model_name, model, class_names, fitted: dict, stopper, *, command, arguments) -> dict:
    """The content of run.json."""
    import keras
    import tensorflow as tf

    from tfforensics import __version__

    manifest = setup.manifest
    epochs_run, resumed_at, seconds = fitted["epochs_run"], fitted["resumed_at"], fitted["train_seconds"]
    return {
        "model": model_name,
        "dataset": str(manifest.root),
        "class_names": class_names,
        "image_shape": list(manifest.image_shape),
        "input_shape": list(model.input_shape[1:]),
        "encoding": manifest.encoding.describe(),
        "layout": manifest.layout,
        "arguments": arguments,
        "strategy": {"name": type(setup.strategy).__name__, "replicas": setup.strategy.num_replicas_in_sync},
        "epochs_run": epochs_run,
        "best_epoch": (stopper.best_epoch + 1) if stopper is not None and stopper.best_weights is not None else epochs_run,
        "history": _history_lists(fitted["history"]),
        "val_metrics": fitted["val_metrics"],
        "train_seconds": seconds,
        "resumed_at_epoch": resumed_at or None,
        "train_samples_per_second": (manifest.count("train") * (epochs_run - resumed_at) / seconds
                                     if seconds else None),
        "files": {"model": MODEL_FILE, "checkpoints": "checkpoints", "tensorboard": "logs"},
        "versions": {"tfforensics": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
                     "python": platform.python_version()},
        "command": command,
    }
