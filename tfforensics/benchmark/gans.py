"""The small GANs of the mini benchmark: their shipped weights, loading and sampling.

The fake classes of the embedded benchmark come from generators that tfforensics trains
itself (:mod:`tfforensics.training.gan`, the adversarial loop) on the shipped real crops of
the train-split photos (:func:`training_crops`), one per up-sampling family of
:mod:`tfforensics.models.gans`. Weights trained with ``tfforensics gan train`` ship in
``tfforensics/benchmark/weights/`` (see the README there).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from tfforensics.errors import MissingInputError, UserError
from tfforensics.models.gans import GAN_FAMILIES, family
from tfforensics.training.gan import DISCRIMINATOR_FILE, GENERATOR_FILE

logger = logging.getLogger(__name__)

#: Folder of the generators that ship with the package (``<family>.keras``).
WEIGHTS_DIR = Path(__file__).parent / "weights"


def shipped_weights(family_name: str) -> Path:
    """Path of the generator of ``family_name`` that ships with the package."""
    path = WEIGHTS_DIR / f"{family(family_name).name}.keras"
    if not path.is_file():
        raise MissingInputError(f"{path}: the shipped weights of {family_name!r} are missing; reinstall tfforensics "
                                f"or train them with `tfforensics gan train {family_name} OUT`.")
    return path


def load_generator(family_name: str, weights=None):
    """The generator of ``family_name``: the shipped one, or ``weights`` (a ``.keras`` file or a run folder)."""
    from tfforensics.models.wrapped import load_keras

    entry = family(family_name)
    path = shipped_weights(entry.name) if weights is None else Path(weights)
    model = load_keras(path, default_file=GENERATOR_FILE,
                       missing="generator weights not found; pass a .keras file written by `tfforensics gan train` "
                               "or its output folder.",
                       not_keras="generators are stored as .keras files (written by `tfforensics gan train`)")
    if len(model.input_shape) != 2 or len(model.output_shape) != 4 or model.output_shape[-1] != 3:
        raise UserError(f"{path}: not a generator (input {model.input_shape}, output {model.output_shape}).")
    expected = "G_style" if entry.upsampling == "stylegan" else f"{entry.upsampling}_generator"
    if model.name != expected:
        raise UserError(f"{path}: holds the generator {model.name!r}, not one of family {entry.name!r}; "
                         f"pass the family it was trained as.")
    return model


def load_gan_discriminator(family_name: str = "stylegan", weights=None):
    """The discriminator trained with a family's generator: the shipped one
    (``<family>_discriminator.keras``) or ``weights`` (a ``.keras`` file or a ``gan train`` folder).

    Not :func:`tfforensics.models.lgrad.load_discriminator`, which reads an official StyleGAN
    ``.pkl`` (or the port's weights) and sets it up for gradients.
    """
    from tfforensics.models.wrapped import load_keras

    path = WEIGHTS_DIR / f"{family(family_name).name}_discriminator.keras" if weights is None else Path(weights)
    return load_keras(path, default_file=DISCRIMINATOR_FILE, missing="discriminator weights not found.",
                      not_keras="discriminators are stored as .keras files (written by `tfforensics gan train`)")


#: The former name, kept while ``regularization`` still imports it; use :func:`load_gan_discriminator`.


def sample_images(generator, count: int, seed: int = 0, batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """``count`` uint8 images (N, H, W, 3) from ``generator``; the same ``seed`` gives the same images."""
    import keras

    from tfforensics.data.encodings import unit_to_uint8

    if count < 0:
        raise ValueError(f"`count` must be >= 0. Received: count={count}")
    latent_dim = int(generator.input_shape[-1])
    height, width = generator.output_shape[1:3]
    out = np.empty((count, height, width, 3), dtype=np.uint8)
    latents = np.random.default_rng(seed).standard_normal((count, latent_dim)).astype(np.float32)
    keras.utils.set_random_seed(seed)  # the StyleGAN family draws per-pixel noise from the global seed
    from tqdm.auto import tqdm

    for start in tqdm(range(0, count, batch_size), desc="sampling", disable=not progress, unit="batch"):
        images = np.asarray(generator(latents[start:start + batch_size], training=False))
        out[start:start + batch_size] = unit_to_uint8(images)
    return out


def write_samples(images: np.ndarray, out_dir, start: int = 0) -> list[Path]:
    """Write ``images`` as ``000000.png``, ``000001.png``, ... under ``out_dir``."""
    from tfforensics.io.images import save_image

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, image in enumerate(images, start):
        path = out_dir / f"{index:06d}.png"
        save_image(image, path)
        paths.append(path)
    return paths


def training_crops(count: int | None = None, size: int = 64, seed: int = 0) -> np.ndarray:
    """``count`` real crops of the **train** photos of the shipped split (all 1 494 when ``None``).

    The benchmark's GANs learn from these only, so the photos of its val and test splits stay
    unseen by generators and detectors alike (:func:`~tfforensics.benchmark.photos.draw_shipped`:
    spread over the photos, repeated when ``count`` is larger, shrunk when ``size`` < 64).
    """
    from tfforensics.benchmark.photos import draw_shipped

    return draw_shipped("train", count, size, seed=seed, repeat=True)[0]


__all__ = ["GAN_FAMILIES", "load_gan_discriminator", "load_generator", "sample_images", "shipped_weights",
           "training_crops", "write_samples"]
