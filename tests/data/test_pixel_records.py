"""The ``pixels`` record layout: uint8 records, encoding by the reader or inside the trained model."""

from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pytest

from tfforensics.cli.main import launch
from tfforensics.data import Encoding, prepare
from tfforensics.data.augment import Augmentation
from tfforensics.data.manifest import Manifest
from tfforensics.data.reader import ShardError, _records, as_numpy, check_shards, load_dataset
from tfforensics.data.records import RecordWriter
from tfforensics.errors import UserError
from tfforensics.training.fit import train

ENCODINGS = {"dct_log_normalized": Encoding("dct", log=True, normalize=True), "raw": Encoding("raw")}


@pytest.fixture(scope="module")
def prepared(three_sources, tmp_path_factory):
    """{(encoding, layout): manifest} of the same images."""
    root = tmp_path_factory.mktemp("layouts")
    return {(name, layout): prepare(three_sources, root / f"{name}_{layout}", encoding, layout=layout, workers=1,
                                    progress=False)
            for name, encoding in ENCODINGS.items() for layout in ("original", "pixels")}


@pytest.mark.parametrize("name", list(ENCODINGS))
def test_pixel_records_read_as_the_encoded_values(prepared, name):
    original, pixels = prepared[name, "original"], prepared[name, "pixels"]
    assert pixels.layout == "pixels" and pixels.encoding == original.encoding
    assert (pixels.statistics is None) == (not original.encoding.needs_statistics)
    if pixels.statistics:  # the encoded train split's statistics, as for the other layouts
        for key, value in original.load_statistics().items():
            np.testing.assert_array_equal(pixels.load_statistics()[key], value)
    for split in ("train", "test"):
        x, y = as_numpy(original, split)
        xp, yp = as_numpy(pixels, split)  # encoded by the NumPy encoder: the same values
        np.testing.assert_array_equal(xp, x)
        np.testing.assert_array_equal(yp, y)
        raw, _ = as_numpy(pixels, split, encoded=False)
        assert raw.dtype == np.uint8 and raw.shape == x.shape
    # a quarter of the payload (uint8 vs float32); the framing per record (about 50 bytes) stays
    count, size = pixels.count("train"), int(np.prod(pixels.image_shape))
    framing = pixels.splits["train"]["num_bytes"] - count * size
    assert abs(original.splits["train"]["num_bytes"] - 4 * count * size - framing) <= 2 * count
    assert pixels.splits["train"]["num_bytes"] / original.splits["train"]["num_bytes"] < 0.27  # 32x32 gray
    with pytest.raises(UserError, match="holds original-layout records .* `--layout pixels`"):
        load_dataset(original, "train", encoded=False)


def test_pixel_shards_are_verified(prepared, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(prepared["raw", "pixels"].root, copy)
    manifest = Manifest.load(copy)
    check_shards(manifest, "train")
    data = json.loads((copy / "manifest.json").read_text())
    data["layout"] = "compact"
    (copy / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ShardError, match="holds pixels-layout records but .* says layout 'compact'"):
        check_shards(Manifest.load(copy), "train")
    # one record whose pixel bytes are short (shape and label intact)
    shard = manifest.files("train")[0]
    import tensorflow as tf

    with open(shard, "rb") as handle:
        examples = list(_records(handle, shard))
    example = tf.train.Example.FromString(examples[0])
    example.features.feature["pixels"].bytes_list.value[0] = example.features.feature["pixels"].bytes_list.value[0][:-3]
    with RecordWriter(shard) as writer:
        for data_ in [example.SerializeToString(), *examples[1:]]:
            writer.write(data_)
    with pytest.raises(ShardError, match="record 1 holds 1021 image bytes, not the 1024 of a pixels image"):
        check_shards(manifest, "train")


@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 4, 3), (64, 64, 1), (300, 300, 3)])
def test_pixel_serializer_equals_field_by_field_encoding_and_parses(shape):
    import tensorflow as tf

    from tfforensics.data.records import _serialize_reference, serialize_example

    image = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    for label in (0, 5, 300):
        data = serialize_example(image, label, "pixels")
        assert data == _serialize_reference(image, label, "pixels")
        features = tf.train.Example.FromString(data).features.feature
        assert features["pixels"].bytes_list.value[0] == image.tobytes()
        assert list(features["shape"].int64_list.value) == list(shape) and features["label"].int64_list.value == [label]
    with pytest.raises(ValueError, match="the pixels layout stores uint8 images"):
        serialize_example(image.astype(np.float32), 0, "pixels")


def test_bare_pixel_records_need_their_manifest(prepared):
    with pytest.raises(UserError, match="holds pixel records, whose encoding is in the dataset's manifest.json"):
        as_numpy(prepared["raw", "pixels"].files("train")[0])


def test_prepare_pixels_refuses_npy(three_sources, tmp_path):
    with pytest.raises(UserError, match="--layout pixels writes TFRecord shards"):
        prepare(three_sources, tmp_path / "x", Encoding("raw"), layout="pixels", format="npy", progress=False)


def _predict(result, images):
    return result.model.predict(images.astype("float32"), verbose=0)


@pytest.mark.parametrize("name", list(ENCODINGS))
def test_training_on_pixels_matches_training_on_encoded_records(prepared, tmp_path, name):
    """Same seed, same data: the classifier learns the same function from pixels (encoded inside
    the model) as from the encoded records, up to float noise; the statistics stay constants."""
    options = dict(epochs=4, early_stopping=0, seed=3, deterministic=True, verbose=0, batch_size=16)
    encoded = train("log2", prepared[name, "original"], out=tmp_path / "encoded", **options)
    pixels = train("log2", prepared[name, "pixels"], out=tmp_path / "pixels", **options)
    test_images, labels = as_numpy(prepared[name, "pixels"], "test", encoded=False)
    a, b = _predict(encoded, test_images), _predict(pixels, test_images)
    np.testing.assert_allclose(b, a, atol=5e-4)  # measured: at most 1.1e-4 (log-DCT), after 4 epochs
    np.testing.assert_array_equal(a.argmax(1), b.argmax(1))
    # inputs agree to ~1e-6; Adam's first steps turn such noise in near-zero gradients into lr-sized updates
    np.testing.assert_allclose(pixels.run["history"]["loss"], encoded.run["history"]["loss"], rtol=1e-3)
    assert pixels.run["layout"] == "pixels" and pixels.run["arguments"]["augmentation"] is None
    loaded = keras.saving.load_model(pixels.model_path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(test_images.astype("float32"), verbose=0), b, atol=1e-6)
    if prepared[name, "pixels"].statistics:
        stats = prepared[name, "pixels"].load_statistics()
        layer = loaded.get_layer("preprocessing").get_layer("standardize")
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.mean), stats["mean"])
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.std), stats["std"])
    # the saved model scores the encoded records through its inner classifier as before
    from tfforensics.evaluation.evaluate import evaluate_model

    report = evaluate_model(pixels.model_path, prepared[name, "pixels"])
    assert report["accuracy"] == pytest.approx((b.argmax(1) == labels).mean())


def test_training_with_augmentation_repeats_and_is_recorded(prepared, tmp_path):
    augmentation = Augmentation.parse("blur_jpg_prob=0.5")
    options = dict(epochs=2, early_stopping=0, seed=5, deterministic=True, verbose=0, augmentation=augmentation)
    first = train("log2", prepared["dct_log_normalized", "pixels"], out=tmp_path / "a", **options)
    second = train("log2", prepared["dct_log_normalized", "pixels"], out=tmp_path / "b", **options)
    for x, y in zip(first.model.get_weights(), second.model.get_weights()):
        np.testing.assert_array_equal(x, y)
    plain = train("log2", prepared["dct_log_normalized", "pixels"], out=tmp_path / "c",
                  **{**options, "augmentation": None})
    assert not all(np.array_equal(x, y) for x, y in zip(first.model.get_weights(), plain.model.get_weights()))
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run["arguments"]["augmentation"] == augmentation.to_dict()
    with pytest.raises(UserError, match="--augment works on pixel records.*`--layout pixels`"):
        train("log2", prepared["dct_log_normalized", "original"], out=tmp_path / "d", **options)


def test_cli_train_augment(prepared, tmp_path, capsys):
    data = str(prepared["raw", "pixels"].root)
    assert launch(["train", "log2", data, "-e", "1", "--augment", "blur_jpg_prob=0.1", "--out",
                   str(tmp_path / "run"), "-q"]) == 0
    assert json.loads((tmp_path / "run" / "run.json").read_text())["arguments"]["augmentation"]["jpeg_prob"] == 0.1
    assert launch(["train", "log2", data, "--augment", "blur_prob=2", "--out", str(tmp_path / "bad"), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert "blur_prob must be a probability" in err and len(err.splitlines()) == 1
    assert launch(["train", "log2", str(prepared["raw", "original"].root), "--augment", "blur_jpg_prob=0.1",
                   "--out", str(tmp_path / "bad2"), "-q"]) == 2
    assert "prepare the dataset again with `--layout pixels`" in capsys.readouterr().err


@pytest.fixture(scope="module")
def augmented_attribution(tmp_path_factory):
    """`attribute train --augment` on image folders: they are prepared as pixel records."""
    from conftest import make_three_sources

    root = tmp_path_factory.mktemp("attribution_pixels")
    sources = make_three_sources(root / "sources", count=12, size=16)
    out = root / "run"
    assert launch(["attribute", "train", str(sources), "--out", str(out), "--fmap-max", "16", "-e", "1",
                   "--early-stopping", "0", "-q", "--workers", "1", "--augment", "blur_jpg_prob=0.5"]) == 0
    return out


def test_attribute_train_augments_pixel_records(augmented_attribution):
    manifest = Manifest.load(augmented_attribution / "data")
    assert manifest.layout == "pixels" and manifest.encoding.transform == "raw"
    run = json.loads((augmented_attribution / "run.json").read_text())
    assert run["arguments"]["augmentation"]["blur_prob"] == 0.5 and run["layout"] == "pixels"


@pytest.mark.slow
def test_visnet_on_pixel_records(augmented_attribution, tmp_path):
    """VisNet has its own train_step: the preprocessing runs in the data pipeline instead."""
    from tfforensics.models.visnet import find_visnet
    from tfforensics.models.wrapped import load_model

    run = tmp_path / "vis"
    assert launch(["attribute", "train", str(augmented_attribution / "data"), "--model", "visnet", "--out", str(run),
                   "--fmap-max", "8", "-e", "1", "--early-stopping", "0", "-q", "--augment", "noise_prob=1"]) == 0
    assert find_visnet(load_model(run)).model_fingerprints().shape == (3, 16, 16, 3)


@pytest.mark.parametrize("method, name, params", [("prnu", "raw", {"levels": 2, "sigma": 0.5}),
                                                  ("knn", "dct_log_normalized", {"n_neighbors": 1})])
def test_baselines_on_pixel_records_equal_those_on_encoded_records(prepared, tmp_path, method, name, params):
    from tfforensics.baselines import load_estimator, search

    rows = [search.train(method, prepared[name, layout].root, tmp_path / layout, params=params)
            for layout in ("original", "pixels")]
    assert rows[0]["test_accuracy"] == rows[1]["test_accuracy"]
    models = [load_estimator(next((tmp_path / layout).glob("*.npz")))[0] for layout in ("original", "pixels")]
    state = "fingerprints_" if method == "prnu" else "_fit_X"
    np.testing.assert_array_equal(getattr(models[0], state), getattr(models[1], state))


def test_beam_runner_writes_the_same_pixel_records(three_sources, tmp_path):
    encoding = Encoding(log=True, normalize=True)
    local = prepare(three_sources, tmp_path / "local", encoding, layout="pixels", workers=1, progress=False)
    beam = prepare(three_sources, tmp_path / "beam", encoding, layout="pixels", progress=False, runner="beam")
    assert beam.layout == "pixels" and beam.splits == local.splits
    for split in ("train", "test"):
        for encoded in (False, True):
            np.testing.assert_array_equal(as_numpy(beam, split, encoded=encoded)[0],
                                          as_numpy(local, split, encoded=encoded)[0])
