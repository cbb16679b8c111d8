"""Robustness evaluation: the named perturbations, the calibrated threshold, the robustness table,
and the benchmark's real crops drawn from the shipped photos by split."""

from __future__ import annotations

import numpy as np
import pytest

from tfforensics.errors import UserError
from tfforensics.evaluation.metrics import accuracy_at, calibrated_accuracy, fake_scores, select_threshold
from tfforensics.preprocess.perturb import (ROBUSTNESS_CONDITIONS, condition_name, conditions, down_and_up,
                                           jpeg_compress)


# --- threshold selection ------------------------------------------------------------------------

def _balanced(is_fake, score, threshold):
    predicted = score > threshold
    return (np.mean(~predicted[~is_fake]) + np.mean(predicted[is_fake])) / 2


def test_select_threshold_is_the_best_balanced_accuracy_between_scores():
    rng = np.random.default_rng(0)
    for trial in range(20):
        n = int(rng.integers(4, 60))
        is_fake = rng.random(n) < rng.uniform(0.1, 0.9)
        is_fake[:2] = [False, True]
        score = np.round(rng.random(n) + 0.4 * is_fake, 2)  # ties on purpose
        threshold = select_threshold(is_fake, score)
        grid = np.linspace(-0.1, 1.5, 3201)
        best = max(_balanced(is_fake, score, t) for t in grid)
        assert _balanced(is_fake, score, threshold) == pytest.approx(best, abs=1e-12), trial
        assert not np.any(score == threshold)  # between images, never on one


def test_select_threshold_prefers_the_candidate_nearest_one_half_and_needs_both_kinds():
    is_fake = np.array([False, False, True, True])
    assert select_threshold(is_fake, np.array([0.1, 0.2, 0.8, 0.9])) == pytest.approx(0.5)
    # a detector whose scores all shifted up (an unseen generator, another camera): 0.5 fails, val fixes it
    shifted = np.array([0.7, 0.75, 0.8, 0.9])
    assert accuracy_at(is_fake, shifted)["accuracy"] == 0.5
    assert select_threshold(is_fake, shifted) == pytest.approx(0.775)
    with pytest.raises(ValueError, match="real and fake"):
        select_threshold(np.array([True, True]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="shapes"):
        select_threshold(is_fake, shifted[:3])


def test_accuracy_at_and_calibrated_accuracy_count_by_hand():
    is_fake = np.array([False, False, False, True, True, True])
    score = np.array([0.1, 0.2, 0.6, 0.55, 0.8, 0.9])
    at_half = accuracy_at(is_fake, score)
    assert at_half == {"threshold": 0.5, "accuracy": 5 / 6, "real_accuracy": 2 / 3, "fake_accuracy": 1.0}
    val_fake, val_score = np.array([False, False, True, True]), np.array([0.3, 0.65, 0.7, 0.95])
    result = calibrated_accuracy(val_fake, val_score, is_fake, score)
    assert result["threshold"] == pytest.approx(0.675) and result["val_balanced_accuracy"] == 1.0
    assert result["accuracy"] == pytest.approx(5 / 6) and result["real_accuracy"] == 1.0
    assert result["fake_accuracy"] == pytest.approx(2 / 3)
    assert fake_scores(np.array([[0.9, 0.05, 0.05], [0.2, 0.5, 0.3]])) == pytest.approx([0.1, 0.8])
    assert fake_scores(np.array([0.3, 0.9])) == pytest.approx([0.3, 0.9])  # one sigmoid column is P(fake)


# --- the named perturbations ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def crops():
    from tfforensics.benchmark.photos import draw_shipped

    return draw_shipped("test", 12, 64, seed=5)[0]


def test_condition_names_are_canonical_and_bad_ones_name_the_fix():
    assert list(conditions(["JPEG75", "blur1.0", "blur1", "resize0.50", "noise5", "clean"])) == [
        "clean", "jpeg75", "blur1", "resize0.5", "noise5"]
    assert list(conditions(ROBUSTNESS_CONDITIONS, clean=False)) == list(ROBUSTNESS_CONDITIONS)
    for bad, message in (("jpeg0", "JPEG quality"), ("jpeg101", "JPEG quality"), ("jpeg7.5", "whole number"),
                         ("blur0", "blur sigma"), ("resize1.5", "resize factor"), ("noise-1", "noise"),
                         ("gamma2", "not a condition"), ("jpeg", "not a condition")):
        with pytest.raises(UserError, match=message):
            condition_name(bad)


def test_condition_transforms_are_the_projects_perturbations(crops):
    import cv2

    image = crops[0]
    transforms = conditions(ROBUSTNESS_CONDITIONS)
    assert transforms["clean"] is None
    assert np.array_equal(transforms["jpeg75"](image), jpeg_compress(image, 75))
    assert np.array_equal(transforms["blur2"](image), cv2.GaussianBlur(image, (17, 17), sigmaX=2.0))
    for name in ROBUSTNESS_CONDITIONS:
        out = transforms[name](image)
        assert out.shape == image.shape and out.dtype == np.uint8 and not np.array_equal(out, image), name
    # stronger settings remove more: JPEG 75 / blur 2 differ more from the original than JPEG 95 / blur 1
    diff = {name: np.abs(transforms[name](image).astype(int) - image).mean() for name in ROBUSTNESS_CONDITIONS}
    assert diff["jpeg75"] > diff["jpeg95"] and diff["blur2"] > diff["blur1"]
    # resize 0.5: the top half of the spectrum is gone (bilinear up-sampling of a half-size image)
    spectrum = np.abs(np.fft.fft2(transforms["resize0.5"](image).astype(float).mean(axis=2)))
    original = np.abs(np.fft.fft2(image.astype(float).mean(axis=2)))
    assert spectrum[24:40, 24:40].mean() < 0.5 * original[24:40, 24:40].mean()
    # noise: sigma 5, the same for the same image, different for another
    noise = transforms["noise5"](image).astype(float) - image
    assert 4.0 < noise[(image > 20) & (image < 235)].std() < 6.0
    assert np.array_equal(transforms["noise5"](image), transforms["noise5"](image.copy()))
    assert not np.array_equal(transforms["noise5"](crops[1]) - crops[1].astype(int), noise)


# --- the robustness table ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two saved detectors that take raw 64x64 images (a 3-class attribution model and a
    binary one) and an LGrad detector with its (tiny) discriminator."""
    import keras

    from tfforensics.io.atomic import save_keras
    from tfforensics.models import lgrad
    from tfforensics.models.classifiers import build_model
    from tfforensics.models.gans import build_stylegan_discriminator
    from tfforensics.models.published import detector_on_images

    from tfforensics.benchmark.photos import draw_shipped, upsampled

    folder = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(4)
    real = draw_shipped("train", 16, seed=0)[0]
    images = np.concatenate([real, upsampled(real, "nearest"), upsampled(real, "bilinear")]).astype("float32")
    labels = np.repeat([0, 1, 2], 16)
    for name, classes in (("three", 3), ("two", 2)):  # a few epochs, so that the scores spread (no ties)
        model = detector_on_images(build_model("cnn", (64, 64, 3), classes))
        model.compile("adam", "sparse_categorical_crossentropy" if classes > 2 else "binary_crossentropy")
        model.fit(images, np.minimum(labels, classes - 1), epochs=3, batch_size=16, verbose=0)
        save_keras(model, folder / f"{name}.keras")
    detector = lgrad.build_detector("small")
    detector.compile("adam", keras.losses.BinaryCrossentropy(from_logits=True))
    detector.fit(images[:32], (labels[:32] > 0).astype("float32"), epochs=2, batch_size=16, verbose=0)
    save_keras(detector, folder / "lgrad.keras")
    discriminator = build_stylegan_discriminator(64)
    for layer in discriminator.layers:  # as lgrad.load_discriminator: one gradient per image
        if hasattr(layer, "group_size"):
            layer.group_size = 1
    return folder, discriminator


def test_robustness_table_scores_every_detector_on_the_same_perturbed_images(crops, models):
    from sklearn.metrics import average_precision_score

    from tfforensics.benchmark.photos import upsampled
    from tfforensics.evaluation.evaluate import on_gradients
    from tfforensics.evaluation.robustness import Detector, robustness_table
    from tfforensics.models import lgrad
    from tfforensics.models.wrapped import load_model

    folder, discriminator = models
    images = np.concatenate([crops[:6], upsampled(crops[6:9], "nearest"), upsampled(crops[9:], "bilinear")])
    labels = np.array([0] * 6 + [1] * 3 + [2] * 3)
    detectors = [Detector("three", str(folder / "three.keras")),
                 Detector("two", str(folder / "two.keras"), training="blur+JPEG p=0.1"),
                 Detector("lgrad", str(folder / "lgrad.keras"), gradients=True)]
    table = robustness_table(detectors, images, labels, ["a_real", "b_nearest", "c_bilinear"],
                             conditions=["jpeg75", "resize0.5"], discriminator=discriminator)
    assert table["conditions"] == ["clean", "jpeg75", "resize0.5"]
    assert (table["count"], table["real"], table["fake"]) == (12, 6, 6)
    assert [d["name"] for d in table["detectors"]] == ["three", "two", "lgrad"]
    assert table["detectors"][1]["training"] == "blur+JPEG p=0.1"
    is_fake = labels != 0
    for condition, transform in (("clean", None), ("jpeg75", lambda im: jpeg_compress(im, 75)),
                                 ("resize0.5", lambda im: down_and_up(im, 0.5))):
        inputs = images if transform is None else np.stack([transform(im) for im in images])
        gradient = on_gradients(discriminator)
        predict = {name: np.asarray(load_model(folder / f"{name}.keras").predict(inputs.astype("float32"), verbose=0),
                                    dtype=np.float64) for name in ("three", "two")}
        logits = np.asarray(lgrad.load_detector(folder / "lgrad.keras").predict(
            np.stack([gradient(im) for im in inputs]).astype("float32"), verbose=0), dtype=np.float64)
        expected = {"three": 1.0 - predict["three"][:, 0],  # 1 - P(real)
                    "two": predict["two"][:, 0],  # one sigmoid: P(fake)
                    "lgrad": 1.0 / (1.0 + np.exp(-logits[:, 0]))}
        for row in table["detectors"]:
            cell, score = row["conditions"][condition], expected[row["name"]]
            called_fake = predict["three"].argmax(axis=1) != 0 if row["name"] == "three" else score > 0.5
            assert cell["accuracy"] == pytest.approx(np.mean(called_fake == is_fake), abs=1e-9), \
                (condition, row["name"])
            assert cell["average_precision"] == pytest.approx(average_precision_score(is_fake, score), abs=1e-5)
            nearest = labels != 2
            assert cell["per_source"]["b_nearest"]["average_precision"] == pytest.approx(
                average_precision_score(is_fake[nearest], score[nearest]), abs=1e-5)


def test_robustness_table_refuses_what_it_cannot_score(crops, models):
    from tfforensics.evaluation.robustness import Detector, robustness_table

    folder, _ = models
    labels = np.array([0, 1] * 6)
    with pytest.raises(UserError, match="discriminator"):
        robustness_table([Detector("lgrad", str(folder / "lgrad.keras"), gradients=True)], crops, labels, ["r", "f"])
    with pytest.raises(UserError, match="shape"):
        robustness_table([Detector("two", str(folder / "two.keras"))], crops[:, :32, :32], labels, ["r", "f"])


# --- the benchmark's real crops -----------------------------------------------------------------------

def test_draw_shipped_spreads_over_photos_and_refuses_more_than_the_split_holds():
    from tfforensics.benchmark.photos import draw_shipped, shipped_split

    test, test_photo = shipped_split("test")
    crops, photo = draw_shipped("test", 40, seed=1)
    assert len(np.unique(photo)) == 40  # 40 crops of 42 test photos: one each
    assert set(photo.tolist()) <= set(test_photo.tolist())
    again, _ = draw_shipped("test", 40, seed=1)
    assert np.array_equal(crops, again) and not np.array_equal(crops, draw_shipped("test", 40, seed=2)[0])
    small, _ = draw_shipped("val", 5, 16, seed=0)
    assert small.shape == (5, 16, 16, 3) and small.dtype == np.uint8
    everything, every_photo = draw_shipped("test")
    assert len(everything) == len(test) and np.bincount(every_photo).max() == np.bincount(test_photo).max()
    with pytest.raises(UserError, match=f"holds {len(test)} crops"):
        draw_shipped("test", len(test) + 1)
    more, _ = draw_shipped("test", len(test) + 3, repeat=True)
    assert len(more) == len(test) + 3
    with pytest.raises(UserError, match="size <= 64"):
        draw_shipped("test", 2, 128)


def test_gan_training_crops_come_from_the_train_photos_only():
    from tfforensics.benchmark.gans import training_crops
    from tfforensics.benchmark.photos import shipped_split

    train, _ = shipped_split("train")
    held_out = np.concatenate([shipped_split("val")[0], shipped_split("test")[0]])
    known = {crop.tobytes() for crop in train}
    crops = training_crops(seed=3)
    assert len(crops) == len(train) and {crop.tobytes() for crop in crops} == known
    assert not known & {crop.tobytes() for crop in held_out}


def test_benchmark_takes_its_real_crops_from_the_split_photos(tmp_path):
    import json

    from tfforensics.benchmark.build import build_benchmark
    from tfforensics.benchmark.photos import shipped_split
    from tfforensics.io.images import list_images, load_image

    fakes = {"b_fake": lambda count, seed: np.full((count, 64, 64, 3), seed % 255, np.uint8)}
    info = build_benchmark(tmp_path / "bench", fakes, per_source=60, seed=0, progress=False)
    assert info["counts_per_source"] == {"train": 42, "val": 12, "test": 6}
    for split in ("train", "val", "test"):
        crops, photo = shipped_split(split)
        index = {crop.tobytes(): p for crop, p in zip(crops, photo)}
        written = [load_image(p).tobytes() for p in list_images(tmp_path / "bench" / split / "a_real")]
        assert all(image in index for image in written), split  # the shipped crops of that split's photos
        assert sorted({int(index[image]) for image in written}) == info["real_photo_ids"][split]
        assert len(info["real_photos"][split]) == len(info["real_photo_ids"][split]) == len(written)
    assert json.loads((tmp_path / "bench" / "benchmark.json").read_text())["real_photos"] == info["real_photos"]
    with pytest.raises(UserError, match="at most about"):
        build_benchmark(tmp_path / "big", fakes, per_source=3000, progress=False)
    assert not (tmp_path / "big").exists()
