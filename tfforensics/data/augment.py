"""Training-time augmentation on the pixels, before the encoding (CNNDetection's recipe and more).

Detectors trained on clean images lose much of their precision once the test images are
JPEG-compressed, blurred or resized on their way to an analyst. Wang et al. (CNNDetection,
CVPR 2020) blur (σ ~ U[0, 3]) and JPEG-compress (quality ~ U[30, 100]) each training image
with probability p (``blur_jpg_prob`` 0.1 or 0.5). Here the same happens on the fly in
``tf.data`` on uint8 pixel records (``prepare --layout pixels``), before the model's own
preprocessing layers encode them, so a DCT detector sees the DCT of the augmented image.

Per image, in this order, each step with its own probability: down-and-up resize
(bilinear, scale ~ U[lo, hi]), Gaussian blur (separable, reflected borders, σ ~ U[lo, hi];
σ 0 is the identity), Gaussian noise (σ in 0..255 units), JPEG (quality ~ U[lo, hi],
integer). Every random draw is a stateless op keyed on the seed and the element's position,
so a run repeats exactly, whatever else used TensorFlow's random state; in training the
split is reshuffled before this step every epoch, so each image gets new draws each epoch.

Example:
    >>> Augmentation.parse("blur_jpg_prob=0.1")  # doctest: +ELLIPSIS
    Augmentation(blur_prob=0.1, blur_sigma=(0.0, 3.0), jpeg_prob=0.1, jpeg_quality=(30, 100), ...)
"""

from __future__ import annotations

import dataclasses
import math

from tfforensics.errors import UserError

#: Gaussian kernel half-width in σ (scipy.ndimage.gaussian_filter's default ``truncate``).
TRUNCATE = 4.0
#: CNNDetection's spellings, accepted by :meth:`Augmentation.parse`.
ALIASES = {"blur_sig": "blur_sigma", "jpg_prob": "jpeg_prob", "jpg_qual": "jpeg_quality"}
_EXAMPLE = "e.g. --augment blur_jpg_prob=0.1 or --augment blur_prob=0.5,jpeg_quality=60:100,noise_prob=0.2"


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """What to do to each training image; all probabilities 0 (the default) is no augmentation.

    Attributes:
        blur_prob / blur_sigma: probability of a Gaussian blur and the range of its σ (pixels).
        jpeg_prob / jpeg_quality: probability of a JPEG round trip and the range of its quality (1..100).
        resize_prob / resize_scale: probability of a down-and-up resize and the range of its scale (0..1].
        noise_prob / noise_sigma: probability of additive Gaussian noise and the range of its σ (0..255 units).
    """

    blur_prob: float = 0.0
    blur_sigma: tuple[float, float] = (0.0, 3.0)
    jpeg_prob: float = 0.0
    jpeg_quality: tuple[int, int] = (30, 100)
    resize_prob: float = 0.0
    resize_scale: tuple[float, float] = (0.5, 1.0)
    noise_prob: float = 0.0
    noise_sigma: tuple[float, float] = (0.0, 10.0)

    def __post_init__(self):
        for name in ("blur_prob", "jpeg_prob", "resize_prob", "noise_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise UserError(f"augmentation: {name} must be a probability in [0, 1]. Received: {name}={value}")
        limits = {"blur_sigma": (0.0, 50.0), "jpeg_quality": (1, 100), "resize_scale": (0.0, 1.0),
                  "noise_sigma": (0.0, 255.0)}
        for name, (low, high) in limits.items():
            lo, hi = getattr(self, name)
            ok = low <= lo <= hi <= high and (name != "resize_scale" or lo > 0)
            if name == "jpeg_quality":
                ok = ok and float(lo).is_integer() and float(hi).is_integer()
            if not ok:
                bound = f"({low}, {high}]" if name == "resize_scale" else f"[{low}, {high}]"
                raise UserError(f"augmentation: {name} must be LO:HI with LO <= HI in {bound}"
                                f"{' (integers)' if name == 'jpeg_quality' else ''}. Received: {name}={lo}:{hi}")

    @property
    def active(self) -> bool:
        """True when some step has a probability above 0."""
        return any(p > 0 for p in (self.blur_prob, self.jpeg_prob, self.resize_prob, self.noise_prob))

    @classmethod
    def parse(cls, spec: str) -> "Augmentation":
        """``key=value,...`` as ``train --augment`` takes it.

        Keys are the field names (ranges as ``LO:HI``, or one value for a fixed one), plus
        CNNDetection's ``blur_jpg_prob=P`` (both probabilities P) and its ``blur_sig``,
        ``jpg_prob``, ``jpg_qual``. ``none`` is no augmentation.
        """
        fields = {field.name: field for field in dataclasses.fields(cls)}
        values: dict = {}
        text = (spec or "").strip()
        if text.lower() == "none":
            return cls()
        if not text:
            raise UserError(f"--augment is empty; {_EXAMPLE}.")
        for part in text.split(","):
            key, sep, value = (s.strip() for s in part.partition("="))
            key = ALIASES.get(key, key)
            if not sep or not value or (key not in fields and key != "blur_jpg_prob"):
                known = ", ".join(["blur_jpg_prob", *fields])
                raise UserError(f"--augment: {part.strip()!r} is not KEY=VALUE with KEY one of {known}; {_EXAMPLE}.")
            try:
                if key.endswith("_prob"):
                    number = float(value)
                    values.update({"blur_prob": number, "jpeg_prob": number} if key == "blur_jpg_prob"
                                  else {key: number})
                else:
                    bounds = [float(v) for v in value.split(":")]
                    if len(bounds) not in (1, 2):
                        raise ValueError(value)
                    lo, hi = bounds[0], bounds[-1]
                    values[key] = (int(lo), int(hi)) if key == "jpeg_quality" and lo.is_integer() and hi.is_integer() \
                        else (lo, hi)
            except ValueError:
                raise UserError(f"--augment: {key}={value} is not a number{'' if key.endswith('_prob') else ' or LO:HI'}"
                                f"; {_EXAMPLE}.") from None
        return cls(**values)

    def to_dict(self) -> dict:
        """JSON facts for run.json."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items()}

    def describe(self) -> str:
        """A spec that :meth:`parse` reads back to this augmentation (the steps that are on)."""
        parts = []
        for step, range_name in (("blur", "blur_sigma"), ("jpeg", "jpeg_quality"), ("resize", "resize_scale"),
                                 ("noise", "noise_sigma")):
            prob = getattr(self, f"{step}_prob")
            if prob > 0:
                lo, hi = getattr(self, range_name)
                parts += [f"{step}_prob={prob:g}", f"{range_name}={lo:g}:{hi:g}"]
        return ",".join(parts) or "none"


# --- the steps: one image (H, W, C) float32 in 0..255 each ----------------------------------

def _uniform(seed, low, high):
    import tensorflow as tf

    return tf.random.stateless_uniform([], seed, minval=float(low), maxval=float(high)) if high > low \
        else tf.constant(float(low))


def gaussian_blur(image, sigma, radius: int):
    """Separable Gaussian blur of one image ``(H, W, C)`` with σ ``sigma`` (a scalar tensor; 0 is the identity).

    Borders are reflected as ``scipy.ndimage.gaussian_filter`` does (``mode="reflect"``);
    the kernel spans ``radius`` pixels each side and is normalised to sum 1.
    """
    import tensorflow as tf

    taps = tf.range(-radius, radius + 1, dtype=tf.float32)
    safe = tf.maximum(sigma, 1e-3)
    kernel = tf.exp(-0.5 * tf.square(taps / safe))
    kernel = tf.where(sigma > 1e-3, kernel, tf.cast(tf.equal(taps, 0.0), tf.float32))
    kernel = kernel / tf.reduce_sum(kernel)
    channels = tf.shape(image)[-1]
    x = tf.pad(image[None], [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="SYMMETRIC")
    rows = tf.tile(tf.reshape(kernel, [-1, 1, 1, 1]), [1, 1, channels, 1])
    cols = tf.tile(tf.reshape(kernel, [1, -1, 1, 1]), [1, 1, channels, 1])
    x = tf.nn.depthwise_conv2d(x, rows, strides=[1, 1, 1, 1], padding="VALID")
    x = tf.nn.depthwise_conv2d(x, cols, strides=[1, 1, 1, 1], padding="VALID")
    return x[0]


def _maybe(seed, prob, apply, image):
    """``apply(image)`` with probability ``prob`` (a stateless draw), else ``image``."""
    import tensorflow as tf

    if prob <= 0:
        return image
    if prob >= 1:
        return apply(image)
    return tf.cond(tf.random.stateless_uniform([], seed) < prob, lambda: apply(image), lambda: image)


def _augment_one(image, key, augmentation: Augmentation, radius: int):
    """One uint8 image ``(H, W, C)``, its stateless key ``[2]``: the augmented uint8 image."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(key, num=9)
    a = augmentation
    shape = tf.shape(image)
    x = tf.cast(image, tf.float32)

    def resize(x):
        scale = _uniform(seeds[1], *a.resize_scale)
        small = tf.maximum(tf.cast(tf.round(tf.cast(shape[:2], tf.float32) * scale), tf.int32), 1)
        down = tf.image.resize(x, small, method="bilinear", antialias=True)
        return tf.clip_by_value(tf.image.resize(down, shape[:2], method="bilinear"), 0.0, 255.0)

    def blur(x):
        return gaussian_blur(x, _uniform(seeds[3], *a.blur_sigma), radius)

    def noise(x):
        sigma = _uniform(seeds[5], *a.noise_sigma)
        return tf.clip_by_value(x + sigma * tf.random.stateless_normal(shape, seeds[6]), 0.0, 255.0)

    def jpeg(x):
        low, high = a.jpeg_quality
        quality = tf.random.stateless_uniform([], seeds[7], minval=int(low), maxval=int(high) + 1, dtype=tf.int32)
        pixels = tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)
        return tf.cast(tf.image.adjust_jpeg_quality(pixels, quality), tf.float32)

    x = _maybe(seeds[0], a.resize_prob, resize, x)
    x = _maybe(seeds[2], a.blur_prob, blur, x)
    x = _maybe(seeds[4], a.noise_prob, noise, x)
    x = _maybe(seeds[8], a.jpeg_prob, jpeg, x)
    out = tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)
    return tf.ensure_shape(out, image.shape)


def augment_dataset(dataset, augmentation: Augmentation, seed: int):
    """Map a dataset of ``(uint8 image (H, W, C), label)`` elements to augmented ones (same dtype and shape).

    Each element's random draws are stateless ops keyed on ``[seed, index]``, ``index``
    being its position in the pass: two pipelines with the same seed give identical
    elements, independent of TensorFlow's global seed. Apply it to unbatched elements after
    the shuffle (a reshuffle each epoch moves every image to a new key) and before the batch.
    """
    import tensorflow as tf

    if not augmentation.active:
        return dataset
    height, width = dataset.element_spec[0].shape[:2]
    if dataset.element_spec[0].dtype != tf.uint8 or dataset.element_spec[0].shape.rank != 3:
        raise ValueError(f"augment_dataset takes (uint8 image (H, W, C), label) elements. "
                         f"Received: {dataset.element_spec}")
    # scipy's truncate=4 radius at the largest σ, at most what a reflected pad allows
    radius = max(1, min(int(math.ceil(TRUNCATE * augmentation.blur_sigma[1])), (height or 2) - 1, (width or 2) - 1))

    def apply(index, element):
        image, label = element
        key = tf.stack([tf.constant(int(seed), tf.int64), index])
        return _augment_one(image, key, augmentation, radius), label

    return dataset.enumerate().map(apply, num_parallel_calls=tf.data.AUTOTUNE)
