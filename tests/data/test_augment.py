"""Training-time augmentation on uint8 pixels (tfforensics.data.augment)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import tensorflow as tf

from tfforensics.data.augment import Augmentation, augment_dataset, gaussian_blur
from tfforensics.errors import UserError


@pytest.fixture(scope="module")
def images():
    from tfforensics.benchmark.photos import load_photos, random_crops

    crops, _ = random_crops(load_photos(), 12, 32, seed=3)
    return crops  # (12, 32, 32, 3) uint8 photo crops


def _dataset(images):
    return tf.data.Dataset.from_tensor_slices((images, np.arange(len(images))))


def _collect(dataset):
    pairs = list(dataset.as_numpy_iterator())
    return np.stack([image for image, _ in pairs]), np.array([label for _, label in pairs])


def test_parse_cnndetection_spelling_and_fields():
    assert Augmentation.parse("blur_jpg_prob=0.1") == Augmentation(blur_prob=0.1, jpeg_prob=0.1)
    spec = Augmentation.parse("blur_prob=0.5, blur_sig=1:2, jpg_qual=60:90, noise_prob=1, noise_sigma=4")
    assert spec == Augmentation(blur_prob=0.5, blur_sigma=(1.0, 2.0), jpeg_quality=(60, 90), noise_prob=1.0,
                                noise_sigma=(4.0, 4.0))
    assert Augmentation.parse(spec.describe()) == Augmentation(blur_prob=0.5, blur_sigma=(1.0, 2.0), noise_prob=1.0,
                                                               noise_sigma=(4.0, 4.0))  # jpeg off: not described
    assert Augmentation.parse("none") == Augmentation() and not Augmentation().active
    assert Augmentation.parse("resize_prob=0.2,resize_scale=0.5:0.75").resize_scale == (0.5, 0.75)


@pytest.mark.parametrize("spec, words", [
    ("blur_jpg_prob", "is not KEY=VALUE"),
    ("sharpen_prob=0.5", "is not KEY=VALUE"),
    ("blur_prob=often", "is not a number"),
    ("blur_prob=1.5", "must be a probability in [0, 1]"),
    ("jpeg_quality=90:30", "must be LO:HI with LO <= HI"),
    ("jpeg_quality=30.5:90", "(integers)"),
    ("resize_scale=0:1", "must be LO:HI"),
    ("noise_sigma=1:2:3", "is not a number or LO:HI"),
    ("", "--augment is empty"),
])
def test_parse_errors_are_one_line(spec, words):
    with pytest.raises(UserError) as error:
        Augmentation.parse(spec)
    assert words in str(error.value) and "\n" not in str(error.value)


def test_same_seed_same_images_whatever_the_global_seed(images):
    augmentation = Augmentation.parse("blur_jpg_prob=0.5,resize_prob=0.5,noise_prob=0.5")
    tf.random.set_seed(1)
    first = augment_dataset(_dataset(images), augmentation, seed=11)
    a, labels = _collect(first)
    tf.random.set_seed(2)  # other global random state: the same draws
    np.testing.assert_array_equal(a, _collect(augment_dataset(_dataset(images), augmentation, seed=11))[0])
    np.testing.assert_array_equal(a, _collect(first)[0])  # each pass: the same draws per position
    np.testing.assert_array_equal(labels, np.arange(len(images)))
    assert not np.array_equal(a, _collect(augment_dataset(_dataset(images), augmentation, seed=12))[0])


def test_draws_follow_the_position_so_a_reshuffle_redraws(images):
    blur = Augmentation(blur_prob=0.5, blur_sigma=(1.0, 3.0))
    out, _ = _collect(augment_dataset(_dataset(images), blur, seed=0))
    changed = (out != images).any(axis=(1, 2, 3))
    assert 0 < changed.sum() < len(images)  # p = 0.5: some images blurred, not all
    order = np.random.default_rng(0).permutation(len(images))
    shuffled, labels = _collect(augment_dataset(_dataset(images[order]), blur, seed=0))
    np.testing.assert_array_equal((shuffled != images[order]).any(axis=(1, 2, 3)), changed)  # per position
    np.testing.assert_array_equal(labels, np.arange(len(images)))


def test_probability_zero_is_the_identity(images):
    out, _ = _collect(augment_dataset(_dataset(images), Augmentation(blur_sigma=(1.0, 2.0)), seed=0))
    np.testing.assert_array_equal(out, images)
    # every step on, but at sigma / noise 0, scale 1: the image comes back unchanged
    still = Augmentation(blur_prob=1, blur_sigma=(0.0, 0.0), noise_prob=1, noise_sigma=(0.0, 0.0), resize_prob=1,
                         resize_scale=(1.0, 1.0))
    np.testing.assert_array_equal(_collect(augment_dataset(_dataset(images), still, seed=0))[0], images)


def test_blur_changes_images_keeps_dtype_and_shape_and_matches_scipy(images):
    out, _ = _collect(augment_dataset(_dataset(images), Augmentation(blur_prob=1.0, blur_sigma=(1.0, 3.0)), seed=0))
    assert out.dtype == np.uint8 and out.shape == images.shape
    assert (out != images).any(axis=(1, 2, 3)).all()
    # blurring lowers the high-frequency energy of every image
    assert (np.abs(np.diff(out.astype(float), axis=2)).mean(axis=(1, 2, 3))
            < np.abs(np.diff(images.astype(float), axis=2)).mean(axis=(1, 2, 3))).all()
    x = images[0].astype(np.float32)
    for sigma in (0.5, 1.3, 3.0):
        ours = gaussian_blur(tf.constant(x), tf.constant(sigma), 12).numpy()
        reference = scipy.ndimage.gaussian_filter(x, (sigma, sigma, 0), mode="reflect", truncate=12 / sigma)
        np.testing.assert_allclose(ours, reference, atol=2e-3)


def test_jpeg_quality_range_is_respected(images):
    low, high = 40, 45
    out, _ = _collect(augment_dataset(_dataset(images), Augmentation(jpeg_prob=1.0, jpeg_quality=(low, high)), seed=5))
    used = set()
    for image, result in zip(images, out):
        matches = [q for q in range(20, 101) if np.array_equal(tf.image.adjust_jpeg_quality(image, q).numpy(), result)]
        assert matches and all(low <= q <= high for q in matches), matches
        used.update(matches)
    assert len(used) > 1  # a quality per image, not one for all


def test_noise_and_resize_stay_in_range(images):
    out, _ = _collect(augment_dataset(_dataset(images), Augmentation(noise_prob=1, noise_sigma=(5.0, 5.0)), seed=1))
    residual = out.astype(float) - images
    assert 3.5 < residual.std() < 5.5  # sigma 5 in 0..255 units (less where clipped)
    out, _ = _collect(augment_dataset(_dataset(images), Augmentation(resize_prob=1, resize_scale=(0.5, 0.5)), seed=1))
    assert out.shape == images.shape and (out != images).any(axis=(1, 2, 3)).all()


def test_refuses_float_images():
    with pytest.raises(ValueError, match="uint8 image"):
        augment_dataset(tf.data.Dataset.from_tensor_slices((np.zeros((2, 8, 8, 1), np.float32), [0, 1])),
                        Augmentation(blur_prob=1), seed=0)
