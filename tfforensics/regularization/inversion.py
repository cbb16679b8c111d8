"""GAN inversion of the StyleGAN port: real images -> latents in W, saved as (real image, latent) pairs.

The artifact regularisation fine-tunes a generator on pairs of a real image and a latent whose
synthesis reproduces it, so that the Fourier term compares each generated image with "its" real
image. The original obtained them with in-domain GAN inversion (Zhu et al., idinvert): Adam at
learning rate 0.01 on the latent, 200 steps, loss = pixel MSE + 5e-5 x MSE of VGG features (+ an
encoder term), keeping the pairs whose loss ended below 0.3.

Here the latent is one ``w`` of the mapping network's output space, broadcast to every
synthesis layer (``space="w"``; ``"wplus"`` optimises one ``w`` per layer, as idinvert's
codes), started from the mean ``w``; the feature term uses an intermediate layer of the
StyleGAN discriminator trained with the generator (no downloaded VGG weights; the layer is
before the minibatch-stddev, so each image's loss depends on that image only). Images are
optimised as one batch; with a per-image loss and Adam's element-wise update that is the
same as inverting them one at a time.

Output folder (written to a hidden temporary folder, renamed into place when complete)::

    OUT/real/000000.png ...      the kept real images (uint8, the generator's size)
    OUT/latents.npy              (K, dim) float32 for "w", (K, layers, dim) for "wplus"
    OUT/manifest.json            config, per-image losses, kept / rejected, command
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np

from tfforensics.errors import UserError

logger = logging.getLogger(__name__)

PAIRS_KIND = "tfforensics-inversion-pairs"
MANIFEST = "manifest.json"
LATENTS = "latents.npy"
REAL_DIR = "real"
SPACES = ("w", "wplus")


@dataclasses.dataclass(frozen=True)
class InversionConfig:
    """Settings of :func:`invert_images` (defaults: the original's steps, learning rate and keep rule)."""

    steps: int = 200
    learning_rate: float = 0.01
    pixel_weight: float = 1.0
    feature_weight: float = 1.0
    feature_layer: str = "16x16.Conv1_down"
    keep_below: float = 0.3
    space: str = "w"
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1:
            raise UserError(f"--steps and --batch-size must be >= 1. Received: {self.steps}, {self.batch_size}")
        if self.space not in SPACES:
            raise UserError(f"--space must be one of {', '.join(SPACES)}. Received: {self.space!r}")
        if self.pixel_weight <= 0 or self.feature_weight < 0 or self.learning_rate <= 0:
            raise UserError("--pixel-weight and --learning-rate must be > 0 and --feature-weight >= 0.")


def split_generator(generator):
    """``(mapping, synthesis)`` sub-networks of a StyleGAN port generator (``G_style``)."""
    from tfforensics.models.stylegan import sub_model

    try:
        return sub_model(generator, "G_mapping"), sub_model(generator, "G_synthesis")
    except KeyError:
        raise UserError(f"generator {generator.name!r} is not a StyleGAN (no G_mapping / G_synthesis); "
                        f"inversion and regularisation need the StyleGAN port (family 'stylegan').") from None


def mean_w(mapping, count: int = 4096, seed: int = 0) -> np.ndarray:
    """The mean output ``w`` of the mapping network over ``count`` Gaussian latents, ``(dim,)``."""
    z = np.random.default_rng(seed).standard_normal((count, int(mapping.input_shape[-1]))).astype(np.float32)
    return np.asarray(mapping(z, training=False))[:, 0].mean(axis=0)


def feature_model(discriminator, layer: str):
    """The sub-network of ``discriminator`` from its input to ``layer``'s output."""
    import keras

    names = [l.name for l in discriminator.layers]
    if layer not in names:
        raise UserError(f"--feature-layer {layer!r} is not a layer of the discriminator; choose one of "
                        f"{', '.join(n for n in names[1:] if 'Stddev' not in n)}.")
    if names.index(layer) >= next((i for i, n in enumerate(names) if "MinibatchStddev" in n), len(names)):
        raise UserError(f"--feature-layer {layer!r} comes after the minibatch-stddev layer, so an image's "
                        f"features would depend on its batch; choose an earlier layer.")
    return keras.Model(discriminator.input, discriminator.get_layer(layer).output, name="inversion_features")


def broadcast(latents, num_layers: int):
    """``(N, dim)`` W latents -> ``(N, layers, dim)`` dlatents; ``(N, layers, dim)`` passes through."""
    import tensorflow as tf

    if latents.shape.rank == 3:
        return latents
    return tf.repeat(latents[:, None, :], num_layers, axis=1)


def invert_images(generator, images: np.ndarray, discriminator=None, config: InversionConfig = InversionConfig(),
                  progress: bool = True) -> dict:
    """Invert uint8 ``images`` (N, S, S, 3); returns ``{"latents", "loss", "pixel", "feature",
    "initial_loss", "kept"}`` (``initial_loss``: the loss at the mean ``w``, before the first step).

    ``loss`` is the final total (pixel MSE in [-1, 1] times ``pixel_weight`` plus the feature
    MSE times ``feature_weight``) of each image; ``kept`` is ``loss < keep_below``.
    """
    import keras
    import tensorflow as tf
    from tqdm.auto import tqdm

    images = np.asarray(images)
    mapping, synthesis = split_generator(generator)
    num_layers, dim = int(synthesis.input_shape[1]), int(synthesis.input_shape[2])
    size = int(synthesis.output_shape[1])
    if images.ndim != 4 or images.shape[1:] != (size, size, 3) or images.dtype != np.uint8:
        raise UserError(f"images to invert must be uint8 ({size}, {size}, 3), the generator's size. "
                        f"Received: {images.dtype} {images.shape[1:]}")
    features = None
    if config.feature_weight > 0:
        if discriminator is None:
            raise UserError("the feature term of the inversion needs a discriminator (or --feature-weight 0).")
        features = feature_model(discriminator, config.feature_layer)
    keras.utils.set_random_seed(config.seed)
    start_w = mean_w(mapping, seed=config.seed)
    out = {key: [] for key in ("latents", "loss", "pixel", "feature", "initial_loss")}

    def losses(w, target, target_features):
        fake = synthesis(broadcast(w, num_layers), training=False)
        pixel = tf.reduce_mean(tf.square(fake - target), axis=[1, 2, 3])
        feature = tf.zeros_like(pixel)
        if features is not None:
            feature = tf.reduce_mean(tf.square(features(fake, training=False) - target_features), axis=[1, 2, 3])
        return config.pixel_weight * pixel + config.feature_weight * feature, pixel, feature

    batches = range(0, len(images), config.batch_size)
    bar = tqdm(total=len(batches) * config.steps, desc="invert", unit="step", disable=not progress)
    for begin in batches:
        target = tf.constant(images[begin:begin + config.batch_size], tf.float32) / 127.5 - 1.0
        target_features = features(target, training=False) if features is not None else None
        shape = (len(target), dim) if config.space == "w" else (len(target), num_layers, dim)
        w = tf.Variable(np.broadcast_to(start_w if config.space == "w" else start_w[None], shape).copy())
        optimizer = keras.optimizers.Adam(config.learning_rate)
        out["initial_loss"].append(np.asarray(losses(w, target, target_features)[0]))

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                total, _, _ = losses(w, target, target_features)
                objective = tf.reduce_sum(total)
            optimizer.apply_gradients([(tape.gradient(objective, w), w)])
            return total

        for _ in range(config.steps):
            total = step()
            bar.update(1)
        bar.set_postfix(loss=f"{float(tf.reduce_mean(total)):.3f}")
        total, pixel, feature = (np.asarray(v) for v in losses(w, target, target_features))
        out["latents"].append(w.numpy())
        out["loss"].append(total)
        out["pixel"].append(pixel)
        out["feature"].append(feature)
    bar.close()
    result = {key: np.concatenate(values) for key, values in out.items()}
    result["kept"] = result["loss"] < config.keep_below
    return result


def _is_pairs(path: Path) -> bool:
    try:
        return json.loads((path / MANIFEST).read_text()).get("kind") == PAIRS_KIND
    except (OSError, ValueError, AttributeError):
        return False


def write_pairs(generator, images: np.ndarray, out, *, discriminator=None, config: InversionConfig = InversionConfig(),
                sources=None, generator_source: str = "", overwrite: bool = False, progress: bool = True,
                command: str = "") -> dict:
    """Invert ``images`` and write the kept (real image, latent) pairs with a manifest into ``out``.

    ``sources`` names each image (file paths or crop ids) in the manifest. An existing ``out``
    is replaced only if it holds pairs written by tfforensics and ``overwrite`` is set.
    """
    import uuid

    from tfforensics import __version__
    from tfforensics.io.atomic import atomic_write_json, remove_tree, replace_dir
    from tfforensics.io.images import save_image

    out = Path(out)
    if (out.is_dir() and any(out.iterdir())) or (out.exists() and not out.is_dir()):
        if not _is_pairs(out):
            raise UserError(f"{out}: exists and is not an inversion output of tfforensics; choose another folder.")
        if not overwrite:
            raise UserError(f"{out}: holds inversion pairs already; pass --overwrite to replace them.")
    began = time.perf_counter()
    result = invert_images(generator, images, discriminator, config, progress=progress)
    kept = np.flatnonzero(result["kept"])
    if not len(kept):
        raise UserError(f"no image was inverted with a loss below {config.keep_below} (best "
                        f"{result['loss'].min():.3f}); raise --keep-below or --steps.")
    sources = [str(s) for s in sources] if sources is not None else [f"image {i}" for i in range(len(images))]
    tmp = out.with_name(f".{out.name}.incomplete-{uuid.uuid4().hex[:8]}")
    try:
        (tmp / REAL_DIR).mkdir(parents=True)
        for number, index in enumerate(kept):
            save_image(images[index], tmp / REAL_DIR / f"{number:06d}.png")
        np.save(tmp / LATENTS, result["latents"][kept].astype(np.float32))
        manifest = {
            "kind": PAIRS_KIND, "tfforensics_version": __version__, "generator": generator_source,
            "size": int(images.shape[1]), "config": dataclasses.asdict(config), "count": int(len(images)),
            "kept": int(len(kept)), "kept_share": round(len(kept) / len(images), 4),
            "seconds": round(time.perf_counter() - began, 1), "command": command,
            "items": [{"source": sources[i], "initial_loss": round(float(result["initial_loss"][i]), 5),
                       "loss": round(float(result["loss"][i]), 5),
                       "pixel": round(float(result["pixel"][i]), 5), "feature": round(float(result["feature"][i]), 5),
                       "pair": f"{REAL_DIR}/{int(np.searchsorted(kept, i)):06d}.png" if result["kept"][i] else None}
                      for i in range(len(images))],
        }
        atomic_write_json(tmp / MANIFEST, manifest)
        if out.exists():
            remove_tree(out)
        replace_dir(tmp, out)
    finally:
        remove_tree(tmp)
    logger.info("%s: %d of %d images kept (loss < %g)", out, len(kept), len(images), config.keep_below)
    return manifest


def load_pairs(folder) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(real uint8 (K, S, S, 3), latents, manifest)`` of a folder written by :func:`write_pairs`,
    checked against its manifest."""
    from tfforensics.io.images import load_image

    folder = Path(folder)
    if not _is_pairs(folder):
        raise UserError(f"{folder}: not an inversion output (no {MANIFEST} of kind {PAIRS_KIND}); "
                        f"make one with `tfforensics regularize invert`.")
    manifest = json.loads((folder / MANIFEST).read_text())
    latents = np.load(folder / LATENTS)
    paths = [folder / item["pair"] for item in manifest["items"] if item["pair"]]
    if len(paths) != manifest["kept"] or len(latents) != manifest["kept"]:
        raise UserError(f"{folder}: the manifest lists {manifest['kept']} pairs but there are {len(latents)} latents "
                        f"and {len(paths)} image entries; re-run the inversion.")
    size = manifest["size"]
    real = np.stack([load_image(p, size=(size, size)) for p in paths])
    return real, latents, manifest


def synthesize(generator, latents, batch_size: int = 64) -> np.ndarray:
    """uint8 images of ``latents`` (W or W+) through the generator's synthesis network."""
    import tensorflow as tf

    _, synthesis = split_generator(generator)
    layers = int(synthesis.input_shape[1])
    images = [np.asarray(synthesis(broadcast(tf.constant(latents[i:i + batch_size]), layers), training=False))
              for i in range(0, len(latents), batch_size)]
    return np.clip(np.rint((np.concatenate(images) + 1.0) * 127.5), 0, 255).astype(np.uint8)


__all__ = ["InversionConfig", "synthesize", "invert_images", "load_pairs", "mean_w", "split_generator", "write_pairs"]
