"""img2grad and the LGrad detector, end to end on small real crops and an official-format pickle."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfforensics.benchmark.photos import load_photos, random_crops, upsampled
from tfforensics.cli.main import launch
from tfforensics.data.reader import as_numpy
from tfforensics.io.images import list_images, load_image
from tfforensics.evaluation.metrics import real_vs_fake
from tfforensics.models.lgrad import load_discriminator, to_uint8
from tfforensics.models.stylegan.pkl import build_from_state, find_network, load_pkl

from test_stylegan import official_pickle

SIZE = 32


def _write(directory, images, suffix=".png"):
    directory.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(directory / f"img{i:03d}{suffix}")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """CNNDetection-like tree: <family>/[<class>/]0_real|1_fake with real crops and up-sampled 'fakes'."""
    root = tmp_path_factory.mktemp("lgrad")
    crops, _ = random_crops(load_photos(), 48, SIZE, seed=0)
    fakes = upsampled(crops[::-1], "nearest")
    images = root / "images"
    _write(images / "progan" / "horse" / "0_real", crops[:12])
    _write(images / "progan" / "horse" / "1_fake", fakes[:12])
    _write(images / "progan" / "car" / "0_real", crops[12:24], ".jpg")
    _write(images / "progan" / "car" / "1_fake", fakes[12:24])
    _write(images / "biggan" / "0_real", crops[24:36])
    _write(images / "biggan" / "1_fake", fakes[24:36])
    pkl = root / "karras2019stylegan-test-32x32.pkl"
    pkl.write_bytes(official_pickle(seed=3))
    return {"root": root, "images": images, "pkl": pkl}


def test_img2grad_png_tree(tree):
    out = tree["root"] / "grads"
    assert launch(["img2grad", str(tree["images"]), str(out), "--pkl", str(tree["pkl"]), "--batch-size", "5", "-q"]) == 0
    sources = list_images(tree["images"], recursive=True)
    written = list_images(out, recursive=True)
    assert [p.relative_to(out) for p in written] == sorted(
        p.relative_to(tree["images"]).with_suffix(".png") for p in sources)
    for path in written[::7]:
        grad = load_image(path)
        assert grad.shape == (SIZE, SIZE, 3) and grad.min() == 0 and grad.max() == 255

    # one image alone through a discriminator with the pickle's own mbstd settings (batch of one,
    # as the original ran it) gives the same PNG as the batched run
    d = build_from_state(find_network(load_pkl(tree["pkl"]), "D"))
    source = tree["images"] / "biggan" / "1_fake" / "img004.png"
    x = tf.constant(load_image(source)[None].astype(np.float32) * np.float32(2 / 255) - 1)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(d(x))
    alone = to_uint8(tape.gradient(total, x).numpy())[0]
    batched = load_image(out / "biggan" / "1_fake" / "img004.png")
    assert np.abs(alone.astype(int) - batched).max() <= 1

    # a second run keeps what is there
    stamp = written[0].stat().st_mtime_ns
    assert launch(["img2grad", str(tree["images"]), str(out), "--pkl", str(tree["pkl"]), "-q"]) == 0
    assert written[0].stat().st_mtime_ns == stamp


def test_img2grad_resizes_to_discriminator(tree, tmp_path):
    big = tmp_path / "big" / "0_real"
    _write(big, [np.asarray(Image.fromarray(load_image(p)).resize((50, 40)))
                 for p in list_images(tree["images"] / "biggan" / "0_real")[:3]])
    out = tmp_path / "out"
    assert launch(["img2grad", str(tmp_path / "big"), str(out), "--pkl", str(tree["pkl"]), "-q"]) == 0
    assert {load_image(p).shape for p in list_images(out, recursive=True)} == {(SIZE, SIZE, 3)}


@pytest.fixture(scope="module")
def records(tree):
    out = tree["root"] / "records"
    assert launch(["img2grad", str(tree["images"] / "progan"), str(out), "--pkl", str(tree["pkl"]),
                   "--format", "tfrecords", "--split", "0.5", "0", "0.5", "-q", "--workers", "1"]) == 0
    return out


def test_img2grad_tfrecords(tree, records):
    out = records
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["class_names"] == ["0_real", "1_fake"]
    assert manifest["image_shape"] == [SIZE, SIZE, 3]
    x, y = as_numpy(out, "train")
    assert len(x) == 24 and sorted(set(y.tolist())) == [0, 1]
    assert x.min() == -1.0 and x.max() == 1.0  # gradient images 0..255 as raw pixels in [-1, 1]
    assert not list(out.parent.glob(".img2grad-*"))
    # the records hold exactly the PNGs that the PNG mode writes
    png = tree["root"] / "png_progan"
    assert launch(["img2grad", str(tree["images"] / "progan"), str(png), "--pkl", str(tree["pkl"]), "-q"]) == 0
    pngs = np.stack([load_image(p) for p in list_images(png, recursive=True)]).astype(np.float64) / 127.5 - 1
    x_all = np.concatenate([x, as_numpy(out, "test")[0]]).astype(np.float64).reshape(len(pngs), -1)
    # Each record is one of the PNGs, in another order. The two runs batch the images differently, and
    # oneDNN's float sums then differ in the last bits, which can move a gradient pixel across a rounding
    # edge: allow one 8-bit level, on at most 1 % of the values.
    distance = np.abs(x_all[:, None, :] - pngs.reshape(len(pngs), -1)[None, :, :])
    match = (distance <= 2 / 255 + 1e-6).all(axis=2) & ((distance > 1e-5).mean(axis=2) <= 0.01)
    assert sorted(match.argmax(axis=1).tolist()) == list(range(len(pngs))) and match.any(axis=1).all()


def test_lgrad_on_records(records, tmp_path, capsys):
    run = tmp_path / "run"
    assert launch(["lgrad", "train", str(records), str(run), "--arch", "small", "--epochs", "2",
                   "--batch-size", "8", "--load-size", str(SIZE), "--crop-size", "24", "-q"]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["counts"] == {"real": 12, "fake": 12} and len(info["history"]["loss"]) == 2
    capsys.readouterr()
    assert launch(["lgrad", "test", str(run / "model.keras"), str(records), "--split", "test", "-q"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.strip().splitlines()]
    assert [r[0] for r in rows[1:]] == ["records", "mean"] and rows[1][1] == "24"


def test_img2grad_refuses_unsafe_pickle(tmp_path, capsys):
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"cos\nsystem\n(S'touch " + str(tmp_path / "owned").encode() + b"'\ntR.")
    (tmp_path / "src").mkdir()
    assert launch(["img2grad", str(tmp_path / "src"), str(tmp_path / "out"), "--pkl", str(evil), "-q"]) == 2
    assert "os.system" in capsys.readouterr().err
    assert not (tmp_path / "owned").exists()


def test_load_discriminator_needs_one_source():
    with pytest.raises(ValueError, match="exactly one of --pkl"):
        load_discriminator()


def test_family_metrics_match_definitions():
    y = np.array([0, 0, 0, 1, 1, 1])
    s = np.array([0.1, 0.7, 0.2, 0.9, 0.4, 0.8])
    m = real_vs_fake(y, s)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["real_accuracy"] == pytest.approx(2 / 3) and m["fake_accuracy"] == pytest.approx(2 / 3)
    assert m["average_precision"] == pytest.approx((1 + 1 + 0.75) / 3)


def test_lgrad_train_and_test_end_to_end(tree, tmp_path, capsys):
    grads = tree["root"] / "grads_e2e"
    assert launch(["img2grad", str(tree["images"]), str(grads), "--pkl", str(tree["pkl"]), "-q"]) == 0
    run = tmp_path / "run"
    assert launch(["lgrad", "train", str(grads / "progan"), str(run), "--classes", "horse,car", "--arch", "small",
                   "--epochs", "2", "--batch-size", "8", "--load-size", str(SIZE), "--crop-size", "28", "-q"]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["counts"] == {"real": 24, "fake": 24} and len(info["history"]["loss"]) == 2
    capsys.readouterr()
    metrics = tmp_path / "metrics.json"
    assert launch(["lgrad", "test", str(run), str(grads), "--output", str(metrics), "-q"]) == 0
    table = capsys.readouterr().out
    lines = table.strip().splitlines()
    assert lines[0].split() == ["family", "n", "ACC", "real", "fake", "AP"]
    assert [line.split()[0] for line in lines[1:]] == ["progan", "biggan", "mean"]
    results = json.loads(metrics.read_text())
    assert results["progan"]["count"] == 48 and results["biggan"]["count"] == 24
    assert results["mean"]["accuracy"] == pytest.approx(
        (results["progan"]["accuracy"] + results["biggan"]["accuracy"]) / 2)
    assert 0 <= results["biggan"]["average_precision"] <= 1


def test_lgrad_train_tests_the_families_at_each_decay(tree, tmp_path):
    """As LGrad's train.py: the family test runs after every epoch at whose end the rate decays
    (every 2 epochs with the original's timing: after epochs 3 and 5, counted from 1), on the
    weights being trained; the row after the last epoch equals `lgrad test` of the saved model."""
    from tfforensics.models.lgrad import TrainConfig, evaluate_detector, learning_rate_at, load_detector

    grads = tree["root"] / "grads_decay"
    assert launch(["img2grad", str(tree["images"]), str(grads), "--pkl", str(tree["pkl"]), "-q"]) == 0
    run = tmp_path / "run"
    assert launch(["lgrad", "train", str(grads / "progan"), str(run), "--arch", "small", "--epochs", "5",
                   "--batch-size", "8", "--load-size", str(SIZE), "--crop-size", "28", "--decay-every", "2",
                   "--test", str(grads), "-q"]) == 0
    info = json.loads((run / "run.json").read_text())
    config = TrainConfig(epochs=5, decay_every=2)
    decays = [e + 1 for e in range(5) if learning_rate_at(e + 1, config) < learning_rate_at(e, config)]
    assert decays == [3, 5]  # epochs 1-3 at the first rate, 4-5 at the second, then the next decay
    rows = info["decay_tests"]
    assert [r["epoch"] for r in rows] == decays and info["test"] == str(grads)
    assert rows[0]["next_learning_rate"] == pytest.approx(0.8 * rows[0]["learning_rate"])
    assert set(rows[-1]["families"]) == {"progan", "biggan", "mean"}
    assert rows[-1]["families"]["progan"]["count"] == 48
    saved = evaluate_detector(load_detector(run), grads, progress=False)
    for family in ("progan", "biggan"):
        assert rows[-1]["families"][family]["accuracy"] == pytest.approx(saved[family]["accuracy"], abs=1e-6)


@pytest.mark.slow
def test_lgrad_resnet50_one_epoch(tree, tmp_path, capsys):
    """The default architecture (torchvision's ResNet-50 v1.5, random init) trains and tests end to end."""
    grads = tree["root"] / "grads_resnet"
    assert launch(["img2grad", str(tree["images"]), str(grads), "--pkl", str(tree["pkl"]), "-q"]) == 0
    run = tmp_path / "run"
    assert launch(["lgrad", "train", str(grads / "progan"), str(run), "--epochs", "1", "--batch-size", "16",
                   "--load-size", str(SIZE), "--crop-size", "32", "-q"]) == 0
    capsys.readouterr()
    assert launch(["lgrad", "test", str(run), str(grads), "-q"]) == 0
    rows = [line.split()[0] for line in capsys.readouterr().out.strip().splitlines()]
    assert rows == ["family", "progan", "biggan", "mean"]


def test_img2grad_with_own_weights_and_bad_images(tree, tmp_path, capsys):
    from tfforensics.models.stylegan.pkl import save_network

    src = tmp_path / "src" / "0_real"
    src.mkdir(parents=True)
    for path in list_images(tree["images"] / "biggan" / "0_real")[:4]:
        (src / path.name).write_bytes(path.read_bytes())
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    by_pkl = tmp_path / "by_pkl"
    assert launch(["img2grad", str(tmp_path / "src"), str(by_pkl), "--pkl", str(tree["pkl"]), "-q"]) == 2
    assert "broken.png" in capsys.readouterr().err
    assert launch(["img2grad", str(tmp_path / "src"), str(by_pkl), "--pkl", str(tree["pkl"]), "--skip-bad", "-q"]) == 0
    weights = save_network(build_from_state(find_network(load_pkl(tree["pkl"]), "D")), tmp_path / "d.npz")
    by_weights = tmp_path / "by_weights"
    assert launch(["img2grad", str(tmp_path / "src"), str(by_weights), "--weights", str(weights), "--skip-bad",
                   "-q"]) == 0
    names = [p.name for p in list_images(by_pkl, recursive=True)]
    assert len(names) == 4 and names == [p.name for p in list_images(by_weights, recursive=True)]
    for name in names:
        np.testing.assert_array_equal(load_image(by_pkl / "0_real" / name), load_image(by_weights / "0_real" / name))
    assert launch(["img2grad", str(tmp_path / "src"), str(tmp_path / "src" / "out"), "--weights", str(weights)]) == 2
    assert "inside the source" in capsys.readouterr().err


def test_detector_preprocessing_follows_the_weights(tmp_path):
    """Random init: ImageNet mean/std (the original's torchvision pipeline); the Keras ImageNet
    weights get the BGR mean-subtracted input they were trained with. Both reload in safe mode."""
    import keras

    from tfforensics.models.lgrad import build_detector

    model = build_detector("small")
    x = np.full((1, 8, 8, 3), 255.0, np.float32)
    norm = keras.Model(model.input, model.get_layer("imagenet_norm").output)
    np.testing.assert_allclose(norm(x).numpy()[0, 0, 0], (1 - np.array([0.485, 0.456, 0.406])) / [0.229, 0.224, 0.225],
                               rtol=1e-5)
    from tfforensics.models.lgrad import CaffePreprocess

    out = CaffePreprocess()(np.array([[[[10.0, 20.0, 30.0]]]], np.float32)).numpy().ravel()
    np.testing.assert_allclose(out, [30 - 103.939, 20 - 116.779, 10 - 123.68], rtol=1e-6)
    caffe = keras.Sequential([keras.Input((None, None, 3)), CaffePreprocess()])
    caffe.save(tmp_path / "caffe.keras")
    np.testing.assert_allclose(keras.saving.load_model(tmp_path / "caffe.keras", safe_mode=True)(x).numpy(),
                               caffe(x).numpy())
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_allclose(again.predict_on_batch(x), model.predict_on_batch(x), rtol=1e-5)
    with pytest.raises(ValueError, match="no pretrained weights"):
        build_detector("small", "imagenet")


def _batches(records, **config):
    from tfforensics.data.manifest import Manifest
    from tfforensics.models.lgrad import TrainConfig, augmented_batches

    dataset = augmented_batches(Manifest.load(records), TrainConfig(batch_size=8, load_size=SIZE, crop_size=24,
                                                                    **config))
    return [np.concatenate([x.numpy() for x, _ in dataset]) for _ in range(2)]  # two epochs


def test_lgrad_augmentation_is_seeded_and_off_is_untouched(records):
    """CNNDetection's blur + JPEG on the gradient images before the crop and flip: the same seed
    gives the same batches, another seed others; an identity augmentation (blur with sigma 0,
    always) takes every image through uint8 and back and gives the batches without augmentation
    bit for bit, so the conversion is exact and augmentation off leaves the records as they are."""
    from tfforensics.data.augment import Augmentation
    from tfforensics.models.lgrad import pixels_to_unit, unit_to_pixels

    x, _ = as_numpy(records, "train")
    back, _ = pixels_to_unit(*unit_to_pixels(tf.constant(x), None))
    np.testing.assert_array_equal(back.numpy(), x)  # 8-bit images stored as k / 127.5 - 1

    off = _batches(records)
    np.testing.assert_array_equal(_batches(records, augmentation=Augmentation(blur_prob=1.0, blur_sigma=(0.0, 0.0)))[0],
                                  off[0])
    robust = Augmentation.parse("blur_jpg_prob=0.5")
    on = _batches(records, augmentation=robust)
    again = _batches(records, augmentation=robust)
    for epoch in range(2):
        np.testing.assert_array_equal(on[epoch], again[epoch])
        assert on[epoch].shape == off[epoch].shape and not np.array_equal(on[epoch], off[epoch])
    assert not np.array_equal(on[0], on[1])  # new draws each epoch
    assert not np.array_equal(on[0], _batches(records, augmentation=robust, seed=1)[0])
    changed = np.abs(on[0] - off[0]).reshape(len(off[0]), -1).max(axis=1) > 0
    assert 0 < changed.mean() < 1  # p = 0.5 for each of two steps: some images untouched, some not


def test_lgrad_train_with_augment(records, tmp_path, capsys):
    from tfforensics.models.lgrad import load_detector
    from tfforensics.models.wrapped import metadata_of

    run = tmp_path / "run"
    assert launch(["lgrad", "train", str(records), str(run), "--arch", "small", "--epochs", "2", "--batch-size", "8",
                   "--load-size", str(SIZE), "--crop-size", "24", "--augment", "blur_jpg_prob=0.5", "-q"]) == 0
    info = json.loads((run / "run.json").read_text())
    assert info["arguments"]["augmentation"]["blur_prob"] == 0.5 and info["arguments"]["augmentation"]["jpeg_prob"] == 0.5
    assert info["recipe"]["augmentation"]["jpeg_quality"] == [30, 100]
    model = load_detector(run)
    assert metadata_of(model)["augmentation"] == "blur_prob=0.5,blur_sigma=0:3,jpeg_prob=0.5,jpeg_quality=30:100"
    scores = model.predict(np.zeros((2, SIZE, SIZE, 3), np.float32), verbose=0)
    assert scores.shape[0] == 2 and np.isfinite(scores).all()
    # a bad spec is one line, before any work
    assert launch(["lgrad", "train", str(records), str(tmp_path / "bad"), "--augment", "blur_prob=2", "-q"]) != 0
    assert capsys.readouterr().err.strip().startswith("tfforensics: error: augmentation: blur_prob")
    assert not (tmp_path / "bad").exists()
