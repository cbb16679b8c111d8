"""Classifiers: builders, training on records, saved models on raw images, test and classify."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from conftest import write_folder
import tfforensics.layers  # noqa: F401  (registers the custom layers for safe_mode loading)
from tfforensics.benchmark.photos import load_photos, random_crops, upsampled
from tfforensics.cli.main import launch
from tfforensics.data import Encoding, prepare
from tfforensics.data.splits import scan_classes, split_classes
from tfforensics.evaluation.evaluate import evaluate_model
from tfforensics.evaluation.metrics import classification_report, real_vs_fake, resolve_real_class
from tfforensics.io.images import load_image
from tfforensics.models.classifiers import MODELS, build_model
from tfforensics.models.names import MODEL_NAMES
from tfforensics.models.wrapped import class_names_of, unwrap
from tfforensics.training.fit import train

ROOT = Path(__file__).resolve().parents[2]
SPLIT = (0.6, 0.2, 0.2)
PER_CLASS = 150
#: Crops whose bilinear down/up-sampled version differs by less than this (mean grey levels)
#: are left out: they carry no detail above half the band, so the "real" crop and its
#: "bilinear" copy are the same image and no detector can tell them apart.
MIN_DETAIL = 1.0


def make_detailed_three_sources(root, count=PER_CLASS, size=32, seed=0):
    """Like ``conftest.make_three_sources``, without flat crops that equal their up-sampled copy."""
    crops, _ = random_crops(load_photos(), 3 * count, size, seed=seed)
    detail = np.abs(crops.astype(np.int16) - upsampled(crops, "bilinear")).mean(axis=(1, 2, 3))
    crops = crops[detail >= MIN_DETAIL][:count]
    assert len(crops) == count, "not enough detailed crops; raise the oversampling"
    write_folder(root / "a_real", crops)
    write_folder(root / "b_nearest", upsampled(crops[::-1], "nearest"))
    write_folder(root / "c_bilinear", upsampled(crops, "bilinear"))
    return root


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return make_detailed_three_sources(tmp_path_factory.mktemp("detailed_sources"))


@pytest.fixture(scope="module")
def dct_data(sources, tmp_path_factory):
    encoding = Encoding("dct", log=True, normalize=True)
    return prepare(sources, tmp_path_factory.mktemp("dct") / "data", encoding, fractions=SPLIT, workers=2,
                   progress=False)


@pytest.fixture(scope="module")
def pixel_data(sources, tmp_path_factory):
    return prepare(sources, tmp_path_factory.mktemp("raw") / "data", Encoding("raw"), fractions=SPLIT, workers=2,
                   progress=False)


def _test_items(source):
    return split_classes(scan_classes(source), fractions=SPLIT, seed=0)["test"]


def _fit(name, manifest, out, **kwargs):
    options = dict(epochs=30, early_stopping=5, seed=0, deterministic=False, verbose=0)
    return train(name, manifest, out=out, **{**options, **kwargs})


# -- builders ---------------------------------------------------------------------------

def test_registry_names_match_builders():
    assert tuple(MODELS) == MODEL_NAMES


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_builders_heads_and_names(name):
    binary = build_model(name, (32, 32, 1), 2)
    multi = build_model(name, (32, 32, 3), 5)
    assert binary.output_shape == (None, 1) and multi.output_shape == (None, 5)
    assert binary.get_layer("predictions").activation.__name__ == "sigmoid"
    assert multi.get_layer("predictions").activation.__name__ == "softmax"
    assert build_model(name, (32, 32, 1), 1).output_shape == (None, 1)
    assert binary.name == name and binary.input_shape == (None, 32, 32, 1)
    again = build_model(name, (32, 32, 1), 2)
    assert [layer.name for layer in again.layers] == [layer.name for layer in binary.layers]


def test_builder_defaults_follow_the_originals():
    assert build_model("log", (8, 8, 1), 3).get_layer("predictions").kernel_regularizer is None
    l1 = build_model("log1", (8, 8, 1), 3, l1=0.5).get_layer("predictions").kernel_regularizer
    assert isinstance(l1, keras.regularizers.L1) and np.isclose(l1.l1, 0.5)
    l2 = build_model("log2", (8, 8, 1), 3).get_layer("predictions").kernel_regularizer
    assert isinstance(l2, keras.regularizers.L2) and np.isclose(l2.l2, 0.01)
    both = build_model("log3", (8, 8, 1), 3).get_layer("predictions").kernel_regularizer
    assert np.isclose(both.l1, 0.01) and np.isclose(both.l2, 0.01)
    nn = build_model("nn", (8, 8, 1), 3)
    assert nn.get_layer("hidden").units == 128 and np.isclose(nn.get_layer("hidden").kernel_regularizer.l2, 0.01)
    cnn = build_model("cnn", (32, 32, 1), 3)
    assert [cnn.get_layer(f"conv{i}").filters for i in range(1, 5)] == [3, 8, 16, 32]
    resnet = build_model("resnet", (32, 32, 3), 3)
    assert sum(layer.name.endswith("_add") for layer in resnet.layers) == 10
    assert resnet.get_layer("dropout").rate == 0.5 and resnet.get_layer("dense").units == 256
    cnn004 = build_model("cnn004", (64, 64, 3), 2)
    assert [cnn004.get_layer(f"conv{i}").filters for i in range(1, 4)] == [32, 64, 64]
    assert cnn004.get_layer("dense").units == 512


def test_builder_errors():
    with pytest.raises(ValueError, match="unknown model 'svm'"):
        build_model("svm", (8, 8, 1), 2)
    with pytest.raises(ValueError, match="num_classes"):
        build_model("log", (8, 8, 1), 0)
    with pytest.raises(ValueError, match="at least 18x18"):
        build_model("cnn004", (16, 16, 1), 2)


# -- metrics ----------------------------------------------------------------------------

def test_metrics_by_hand():
    labels = np.array([0, 0, 1, 1, 2, 2])
    scores = np.array([[.9, .05, .05], [.4, .5, .1], [.1, .8, .1], [.2, .7, .1], [.1, .1, .8], [.6, .1, .3]])
    report = classification_report(labels, scores, ["real", "gan1", "gan2"])
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert report["per_class"]["gan1"]["precision"] == pytest.approx(2 / 3)
    assert report["per_class"]["real"]["recall"] == pytest.approx(1 / 2)
    # real vs fake: fake score = 1 - P(real) = [.1, .6, .9, .8, .9, .4]; one fake (.4) below one real (.6)
    binary = report["real_vs_fake"]
    assert binary["accuracy"] == pytest.approx(4 / 6) and binary["roc_auc"] == pytest.approx(7 / 8)
    assert report["per_source"]["gan1"]["roc_auc"] == 1.0 and report["per_source"]["gan2"]["roc_auc"] == 0.75
    sigmoid = real_vs_fake(np.array([0, 1, 1]), np.array([[0.2], [0.7], [0.4]]))
    assert sigmoid["accuracy"] == pytest.approx(2 / 3) and sigmoid["average_precision"] == 1.0
    assert resolve_real_class(["fake", "real"], "real") == 1 and resolve_real_class(["a", "b"], "1") == 1
    with pytest.raises(ValueError, match="not one of the classes"):
        resolve_real_class(["a", "b"], "c")


# -- training on the 3-source set ---------------------------------------------------------

def test_log2_on_dct_beats_log2_on_pixels(dct_data, pixel_data, tmp_path):
    dct = evaluate_model(_fit("log2", dct_data, tmp_path / "dct").model, dct_data)
    pixels = evaluate_model(_fit("log2", pixel_data, tmp_path / "raw").model, pixel_data)
    print(f"log2 test accuracy: DCT {dct['accuracy']:.3f}, pixels {pixels['accuracy']:.3f}")
    assert dct["accuracy"] >= 0.95
    assert dct["accuracy"] - pixels["accuracy"] >= 0.2
    assert dct["real_vs_fake"]["roc_auc"] >= 0.98


def test_cnn_on_dct(dct_data, tmp_path):
    result = _fit("cnn", dct_data, tmp_path / "cnn")
    report = evaluate_model(result.model, dct_data, out=tmp_path / "test")
    print(f"cnn test accuracy: DCT {report['accuracy']:.3f}")
    assert report["accuracy"] >= 0.95
    assert {"metrics.json", "predictions.csv", "confusion_matrix.png", "roc.png"} <= set(os.listdir(tmp_path / "test"))


def test_train_rejects_bad_input(dct_data, tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        train("svm", dct_data, out=tmp_path / "x")
    with pytest.raises(ValueError, match="does not match the records"):
        train("log", dct_data, out=tmp_path / "x", image_size=64)
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        train("log", tmp_path / "missing", out=tmp_path / "x")


# -- the saved model, in a fresh process, and the commands ----------------------------------

_FRESH_PROCESS = """
import json, sys
import numpy as np, keras
import tfforensics.layers  # registers the custom layers for safe_mode loading
from tfforensics.io.images import load_image
model = keras.saving.load_model(sys.argv[1], safe_mode=True)
paths = json.loads(sys.argv[2])
images = np.stack([load_image(p, grayscale=model.input_shape[-1] == 1) for p in paths]).astype("float32")
print(json.dumps(np.asarray(model.predict(images, verbose=0)).tolist()))
"""


def _run(argv):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_saved_model_test_and_classify_agree(dct_data, sources, tmp_path, capsys):
    run_dir = tmp_path / "run"
    _run(["-m", "tfforensics", "train", "log2", str(dct_data.root), "--epochs", "30", "--out", str(run_dir), "-q"])
    run = json.loads((run_dir / "run.json").read_text())
    assert run["class_names"] == ["a_real", "b_nearest", "c_bilinear"] and run["arguments"]["deterministic"]
    assert len(run["history"]["loss"]) == run["epochs_run"] and run["val_metrics"]["accuracy"] > 0.9
    assert (run_dir / "checkpoints" / "best.weights.h5").is_file() and any((run_dir / "logs").rglob("*.tfevents*"))

    assert launch(["test", str(run_dir / "model.keras"), str(dct_data.root), "--out", str(tmp_path / "test")]) == 0
    metrics = json.loads((tmp_path / "test" / "metrics.json").read_text())
    with open(tmp_path / "test" / "predictions.csv") as handle:
        on_records = [row["predicted"] for row in csv.DictReader(handle)]
    with capsys.disabled():
        print(f"saved log2 (CLI): test accuracy {metrics['accuracy']:.3f}")
    assert metrics["accuracy"] >= 0.95

    # The saved model on the raw PNGs, loaded in a fresh process with safe_mode.
    assert len(dct_data.splits["test"]["shards"]) == 1  # one shard: records keep the planned order
    items = _test_items(sources)
    scores = json.loads(_run(["-c", _FRESH_PROCESS, str(run_dir / "model.keras"),
                              json.dumps([str(p) for p, _ in items])]))
    on_images = [metrics["class_names"][i] for i in np.argmax(scores, axis=1)]
    agreement = np.mean(np.array(on_images) == np.array(on_records))
    with capsys.disabled():
        print(f"agreement raw images vs records: {agreement:.4f}")
    assert agreement >= 0.99

    # classify on a folder holding the test images: shares as `test` predicted them.
    folder = tmp_path / "test_images"
    folder.mkdir()
    for i, (path, _) in enumerate(items):
        shutil.copy(path, folder / f"{i:04d}.png")
    capsys.readouterr()
    assert launch(["classify", str(run_dir), str(folder), "--csv", str(tmp_path / "scores.csv"), "-q"]) == 0
    printed = capsys.readouterr().out
    for name in metrics["class_names"]:
        predicted = metrics["per_class"][name]["predicted"]
        assert f"of the images are from class {name} ({predicted})" in printed
        true_share = metrics["per_class"][name]["support"] / metrics["count"]
        assert abs(predicted / metrics["count"] - true_share) <= 1 - metrics["accuracy"] + 1e-9
    with open(tmp_path / "scores.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(items) and [row["predicted"] for row in rows] == on_images


def test_test_refuses_other_encoding(dct_data, pixel_data, tmp_path, capsys):
    result = _fit("log", pixel_data, tmp_path / "raw", epochs=1)
    assert launch(["test", str(result.model_path), str(dct_data.root)]) == 2
    assert "trained on gray_raw records" in capsys.readouterr().err


def test_classify_errors(dct_data, tmp_path, capsys):
    result = _fit("log", dct_data, tmp_path / "run", epochs=1)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert launch(["classify", str(result.model_path), str(empty)]) == 2
    assert "contains no images" in capsys.readouterr().err
    big = tmp_path / "big"
    write_folder(big, np.zeros((2, 40, 40, 3), np.uint8))
    assert launch(["classify", str(result.model_path), str(big)]) == 2
    assert "is 40x40 pixels but the model's inputs are 32x32" in capsys.readouterr().err
    assert launch(["classify", str(result.model_path), str(big), "--skip-bad", "-q"]) == 2  # nothing left


def test_training_repeats_with_the_same_seed(dct_data, tmp_path):
    weights = []
    for run in ("a", "b"):
        _run(["-m", "tfforensics", "train", "nn", str(dct_data.root), "-e", "2", "--seed", "7",
              "--out", str(tmp_path / run), "-q"])
        model = keras.saving.load_model(tmp_path / run / "model.keras", safe_mode=True)
        weights.append(model.get_weights())
    for first, second in zip(*weights):
        np.testing.assert_array_equal(first, second)


def test_checkpoints_hold_the_best_and_the_last_epoch(small_data, tmp_path):
    """best.weights.h5 is the epoch of the lowest val loss (what early stopping restores), last.weights.h5
    the last epoch run (the run's own weights when training ran every epoch without a better later one)."""
    from tfforensics.models.classifiers import MODELS
    from tfforensics.training.fit import train

    result = train("log1", small_data, out=tmp_path / "run", epochs=12, early_stopping=2, seed=1, verbose=0)
    history = result.run["history"]["val_loss"]
    assert result.run["best_epoch"] == int(np.argmin(history)) + 1 < len(history)  # stopped after the best
    shape = tuple(small_data.image_shape)
    best = MODELS["log1"](shape, small_data.num_classes)
    best.load_weights(str(tmp_path / "run" / "checkpoints" / "best.weights.h5"))
    for restored, saved in zip(result.classifier.get_weights(), best.get_weights()):
        np.testing.assert_array_equal(restored, saved)
    last = MODELS["log1"](shape, small_data.num_classes)
    last.load_weights(str(tmp_path / "run" / "checkpoints" / "last.weights.h5"))
    assert any(not np.array_equal(a, b) for a, b in zip(last.get_weights(), best.get_weights()))


@pytest.fixture(scope="module")
def small_data(three_sources, tmp_path_factory):
    encoding = Encoding("dct", log=True, normalize=True)
    return prepare(three_sources, tmp_path_factory.mktemp("small") / "data", encoding, workers=1, progress=False)


#: Full-width ProGAN-style networks and the ResNet-50s (LGrad's, the published one): a minute or
#: more per epoch on 2 CPU cores; their fast training tests live in tests/evaluation/test_attribution.py,
#: tests/models/test_lgrad.py and tests/models/test_published.py.
_HEAVY = {"attribution", "attribution_predown", "visnet", "resnet50", "lgrad"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in _HEAVY else n for n in MODEL_NAMES])
def test_every_model_trains_saves_and_loads(small_data, three_sources, tmp_path, name):
    result = _fit(name, small_data, tmp_path / name, epochs=1, early_stopping=0)
    loaded = keras.saving.load_model(result.model_path, safe_mode=True)
    images = np.stack([load_image(p, grayscale=True) for p, _ in _test_items(three_sources)[:4]]).astype("float32")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), result.model.predict(images, verbose=0), atol=1e-6)
    assert result.run["epochs_run"] == 1 and class_names_of(loaded) == ["a_real", "b_nearest", "c_bilinear"]


@pytest.mark.parametrize("batch_size", [4, 64])  # more and fewer batches per epoch than one execution runs
def test_an_epoch_is_one_pass_over_the_train_split(small_data, tmp_path, monkeypatch, batch_size):
    """fit gets steps_per_epoch (one tf.data iterator per epoch): each epoch still trains on every
    batch once, also when the epoch's last execution of STEPS_PER_EXECUTION steps runs short."""
    import tfforensics.training.fit as fit

    monkeypatch.setattr(fit, "STEPS_PER_EXECUTION", 5)
    epochs, steps = 3, -(-small_data.count("train") // batch_size)
    assert (steps > 5 and steps % 5) if batch_size == 4 else steps < 5
    result = _fit("log2", small_data, tmp_path / "run", epochs=epochs, early_stopping=0, batch_size=batch_size)
    assert int(result.classifier.optimizer.iterations) == epochs * steps
    assert result.run["epochs_run"] == epochs


def test_steps_per_epoch_only_where_keras_sees_the_length():
    """A distributed dataset has no length (Keras would run out of data after one epoch), nor has a
    filtered one: then fit finds the end of each pass itself."""
    import tensorflow as tf

    import tfforensics.training.fit as fit

    batches = tf.data.Dataset.range(10).batch(3)
    assert fit._steps_per_epoch(batches, fit.distribution_strategy()) == 4
    assert fit._steps_per_epoch(batches, tf.distribute.MirroredStrategy(["/cpu:0"])) is None
    assert fit._steps_per_epoch(batches.filter(lambda x: True), fit.distribution_strategy()) is None


@pytest.mark.parametrize("ratio, backed_up", [(0, [1, 2, 3]), (1e9, [1, 1, 1])])
def test_backups_are_skipped_while_the_last_one_is_recent(small_data, tmp_path, monkeypatch, ratio, backed_up):
    """An epoch is backed up when the last backup is older than BACKUP_COST_RATIO times its cost
    (0: every epoch; huge: only the first, which is always backed up)."""
    import json

    import tfforensics.training.fit as fit

    monkeypatch.setattr(fit, "BACKUP_COST_RATIO", ratio)
    seen = []

    class Probe(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch:  # the backup of the epochs before this one
                (metadata,) = (tmp_path / "run" / "backup").glob("*/training_metadata.json")
                seen.append(json.loads(metadata.read_text())["epoch"])

    _fit("log2", small_data, tmp_path / "run", epochs=4, early_stopping=0, callbacks=[Probe()])
    assert seen == backed_up
    assert not (tmp_path / "run" / "backup").exists()  # removed when training ends


@pytest.mark.parametrize("name", ["log2", pytest.param("visnet", marks=pytest.mark.slow)])
def test_a_resumed_run_continues_with_the_optimizer_state(small_data, tmp_path, name):
    """Killed after two epochs and run again, training starts from the backup with Adam's step
    count and moments, also VisNet's two optimizers (an optimizer not built on the variables it
    trains skips the saved ones, and Adam would start again from zero moments)."""
    steps = -(-small_data.count("train") // 32)
    options = {"model_options": {"fmap_max": 4}} if name == "visnet" else {}

    class Killed(Exception):
        pass

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:  # before this epoch's backup: the run resumes at epoch 1
                raise Killed

    with pytest.raises(Killed):
        _fit(name, small_data, tmp_path / "run", epochs=4, early_stopping=0, callbacks=[Kill()], **options)
    resumed = []

    class Probe(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            resumed.append((epoch, int(self.model.optimizer.iterations)))

    result = _fit(name, small_data, tmp_path / "run", epochs=4, early_stopping=0, callbacks=[Probe()], **options)
    assert resumed[0] == (1, steps) and result.run["resumed_at_epoch"] == 1
    optimizers = [result.classifier.optimizer] + ([result.classifier.d_optimizer] if name == "visnet" else [])
    assert [int(optimizer.iterations) for optimizer in optimizers] == [4 * steps] * len(optimizers)


@pytest.mark.parametrize("name", ["log2", pytest.param("visnet", marks=pytest.mark.slow)])
def test_the_train_step_is_traced_once(small_data, tmp_path, monkeypatch, name):
    """Optimizer slots created inside the first traced step would make tf.function trace it twice."""
    from tfforensics.models.visnet import VisNet

    traces = []
    owner = VisNet if name == "visnet" else keras.Model
    step = owner.train_step
    monkeypatch.setattr(owner, "train_step", lambda self, data: traces.append(1) or step(self, data))
    options = {"model_options": {"fmap_max": 4}} if name == "visnet" else {}
    _fit(name, small_data, tmp_path / "run", epochs=2, early_stopping=0, **options)
    assert len(traces) == 1


def test_training_under_mirrored_strategy(small_data, tmp_path, monkeypatch):
    """The GPU path: MirroredStrategy (here over the CPU, as no GPU is needed for the test)."""
    import tensorflow as tf

    import tfforensics.training.fit as fit

    monkeypatch.setattr(fit, "distribution_strategy", lambda: tf.distribute.MirroredStrategy(["/cpu:0"]))
    result = _fit("cnn", small_data, tmp_path / "run", epochs=2, early_stopping=0)
    assert result.run["strategy"] == {"name": "MirroredStrategy", "replicas": 1}
    assert int(result.classifier.optimizer.iterations.numpy()) == 2 * -(-small_data.count("train") // 32)
    assert keras.saving.load_model(result.model_path, safe_mode=True).output_shape == (None, 3)


def test_weights_heat_map_of_a_linear_model(small_data, tmp_path, capsys):
    result = _fit("log", small_data, tmp_path / "log", epochs=1, early_stopping=0)
    out = tmp_path / "weights"
    assert launch(["weights", str(result.model_path), "--out", str(out), "--format", "png", "-q"]) == 0
    maps = np.load(out / "weights.npy")
    _, classifier = unwrap(keras.saving.load_model(result.model_path, safe_mode=True))
    kernel = np.asarray(next(layer for layer in classifier.layers if getattr(layer, "kernel", None) is not None).kernel)
    assert maps.shape == (32, 32, 3)  # one map per class
    np.testing.assert_allclose(maps, np.abs(kernel.reshape(32, 32, 1, 3).mean(axis=2)), rtol=1e-6)
    assert sorted(p.name for p in out.glob("*.png")) == ["weights_a_real.png", "weights_b_nearest.png",
                                                          "weights_c_bilinear.png"]
    assert launch(["weights", str(result.model_path), "--out", str(out), "-q"]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert launch(["weights", str(result.model_path), "--out", str(out), "--overwrite", "-q"]) == 0
    cnn = _fit("cnn", small_data, tmp_path / "cnn", epochs=1, early_stopping=0)
    assert launch(["weights", str(cnn.model_path), "--out", str(tmp_path / "w2"), "-q"]) == 2
    assert "is not a dense layer over the 32x32x1 input" in capsys.readouterr().err


def test_004_conveniences_hidden_units_and_cnn004_defaults(small_data, tmp_path, capsys):
    assert launch(["train", "nn", str(small_data.root), "--hidden-units", "7", "-e", "1", "--out",
                   str(tmp_path / "nn"), "-q"]) == 0
    nn = keras.saving.load_model(tmp_path / "nn" / "model.keras", safe_mode=True)
    assert unwrap(nn)[1].get_layer("hidden").units == 7
    assert json.loads((tmp_path / "nn" / "run.json").read_text())["arguments"]["model_options"] == {"hidden_units": 7}
    assert launch(["train", "log2", str(small_data.root), "--hidden_layer", "7", "--out", str(tmp_path / "x"), "-q"]) == 2
    assert "--hidden-units sets the hidden layer of `nn`" in capsys.readouterr().err
    from tfforensics.models.classifiers import MODELS

    assert MODELS["cnn004"].train_defaults == {"epochs": 10, "early_stopping": 0}
    assert MODELS["npr"].train_defaults == {"learning_rate": 2e-4}


@pytest.mark.parametrize("binary", [False, True])
def test_streamed_and_cached_training_input_hold_the_same_examples(dct_data, binary):
    """The two branches of ``records_dataset``: streaming from the shards (``cache=False``, for
    splits too large for memory) and the in-memory tensor gathered by shuffled index give every
    train example exactly once per epoch, with labels shaped for the loss, and reshuffle each epoch."""
    from tfforensics.data.reader import as_numpy
    from tfforensics.training.fit import records_dataset

    images, labels = as_numpy(dct_data, "train")
    order = np.lexsort(images.reshape(len(images), -1).T[:8])
    for cache in (False, True):
        dataset = records_dataset(dct_data, "train", batch_size=7, binary=binary, shuffle=True, seed=5, cache=cache)
        assert dataset.cardinality().numpy() == -(-len(images) // 7)
        epochs = [[(x.numpy(), y.numpy()) for x, y in dataset] for _ in range(2)]
        for batches in epochs:
            x = np.concatenate([b[0] for b in batches])
            y = np.concatenate([b[1] for b in batches])
            assert y.shape == ((len(images), 1) if binary else (len(images),))
            seen = np.lexsort(x.reshape(len(x), -1).T[:8])
            np.testing.assert_allclose(x[seen], images[order], rtol=1e-6)
            np.testing.assert_array_equal(y.reshape(-1)[seen], labels[order])
        assert not np.array_equal(np.concatenate([b[0] for b in epochs[0]]),
                                  np.concatenate([b[0] for b in epochs[1]]))  # a new order each epoch
