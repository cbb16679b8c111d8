"""Data written by the original prepare_dataset.py trains and tests without a manifest."""

from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pytest

from tfforensics.cli.main import launch
from tfforensics.data import Encoding, prepare
from tfforensics.data.manifest import Manifest
from tfforensics.data.reader import as_numpy
from tfforensics.models.wrapped import unwrap


@pytest.fixture(scope="module")
def prepared(three_sources, tmp_path_factory):
    return prepare(three_sources, tmp_path_factory.mktemp("ours") / "data", Encoding("dct", log=True),
                   fractions=(0.6, 0.2, 0.2), shards=1, workers=1, progress=False)


@pytest.fixture(scope="module")
def original_records(prepared, tmp_path_factory):
    """The original's TFRecords tree: <stem>_<split>_tf/data.tfrecords (same record layout)."""
    root = tmp_path_factory.mktemp("original_tf")
    for split in ("train", "val", "test"):
        (root / f"mini_dct_log_scaled_{split}_tf").mkdir()
        shutil.copy(prepared.files(split)[0], root / f"mini_dct_log_scaled_{split}_tf" / "data.tfrecords")
    return root


@pytest.fixture(scope="module")
def original_npy(prepared, tmp_path_factory):
    """The original's .npy tree: <stem>_<split>/000000.npy ... labels.npy, float64 as it saved them."""
    root = tmp_path_factory.mktemp("original_npy")
    for split in ("train", "val", "test"):
        images, labels = as_numpy(prepared, split)
        folder = root / f"mini_dct_log_scaled_{split}"
        folder.mkdir()
        for i, image in enumerate(images):
            np.save(folder / f"{i:06}.npy", image.astype(np.float64))
        np.save(folder / "labels.npy", labels)
    return root


def test_records_without_manifest_are_inferred(original_records, prepared):
    manifest = Manifest.load(original_records / "mini_dct_log_scaled_val_tf")
    assert manifest.encoding.transform == "unknown" and manifest.image_shape == [32, 32, 1]
    assert manifest.class_names == ["0", "1", "2"]
    assert {s: manifest.count(s) for s in manifest.splits} == {s: prepared.count(s) for s in prepared.splits}
    ours, theirs = as_numpy(prepared, "test"), as_numpy(manifest, "test")
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_array_equal(ours[1], theirs[1])


def test_train_and_test_on_the_original_records(original_records, three_sources, tmp_path, capsys):
    train_file = original_records / "mini_dct_log_scaled_train_tf" / "data.tfrecords"
    val_file = original_records / "mini_dct_log_scaled_val_tf" / "data.tfrecords"
    run = tmp_path / "run"
    # the original's command line: positional TRAIN VAL, underscore flags
    assert launch(["train", "log2", str(train_file), str(val_file), "--out", str(run), "-e", "3",
                   "--batch_size", "16", "--early_stopping", "2", "--image_size", "32",
                   "--class-names", "real", "nearest", "bilinear", "-q"]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["encoding"] == "gray_unknown" and info["class_names"] == ["real", "nearest", "bilinear"]
    model = keras.saving.load_model(run / "model.keras", safe_mode=True)
    assert model.input_shape == (None, 32, 32, 1) and [layer.name for layer in unwrap(model)[0].layers] == ["as_stored"]
    capsys.readouterr()
    assert launch(["test", str(run / "model.keras"), str(original_records / "mini_dct_log_scaled_test_tf"),
                   "--out", str(tmp_path / "test"), "--no-plots", "-q"]) == 0
    metrics = json.loads((tmp_path / "test" / "metrics.json").read_text())
    images, labels = as_numpy(original_records / "mini_dct_log_scaled_test_tf" / "data.tfrecords")
    predicted = model.predict(images, verbose=0).argmax(axis=1)
    assert metrics["accuracy"] == pytest.approx(np.mean(predicted == labels))
    assert launch(["classify", str(run / "model.keras"), str(three_sources / "a_real")]) == 2
    assert "takes those encoded arrays, not images" in capsys.readouterr().err


def test_npy_folders_train_and_feed_the_baselines(original_npy, tmp_path, capsys):
    run = tmp_path / "npy_run"
    assert launch(["train", "log2", str(original_npy / "mini_dct_log_scaled_train"), "--out", str(run), "-e", "2",
                   "-q"]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["val_metrics"] is not None  # the val folder beside it was found
    assert launch(["mean-var", str(original_npy / "mini_dct_log_scaled_train"), "-o", str(tmp_path / "mv"), "-q"]) == 0
    assert np.load(tmp_path / "mv" / "mean.npy").shape == (32, 32, 1)
    assert launch(["baselines", "grid-search", "knn", "--dataset", str(original_npy / "mini_dct_log_scaled_train"),
                   "--out", str(tmp_path / "knn"), "--k", "1", "3", "-q"]) == 0


def test_val_and_class_names_are_for_original_data_only(prepared, tmp_path, capsys):
    assert launch(["train", "log2", str(prepared.root), str(prepared.root), "--out", str(tmp_path / "r"), "-q"]) == 2
    assert "are for the original prepare_dataset.py output" in capsys.readouterr().err
