"""Small GAN generators that differ only in their up-sampling operator, and their discriminators.

Frank et al. show that a generator's up-sampling operator leaves its own pattern in the
image spectrum. The families here mirror their experiment at toy scale: every
convolutional generator maps a latent through a dense layer to 4x4 features and then
doubles the resolution with the same block, in which only the up-sampling changes
(``nearest`` + 3x3 conv as ProGAN, a stride-2 transposed conv as DCGAN, ``bilinear`` +
3x3 conv). ``stylegan`` is the project's StyleGAN (v1) port at small width. All images
are NHWC in [-1, 1].
"""

from __future__ import annotations

import numpy as np
import keras

from tfforensics.errors import UserError
from tfforensics.models.names import GAN_FAMILIES, GanFamily  # noqa: F401  (re-exported)
from tfforensics.models.stylegan.layers import MinibatchStddev, PixelNorm


#: Latent size of every family (the StyleGAN mapping network maps it to styles of the same size).
LATENT_DIM = 64


def family(name: str) -> GanFamily:
    """The registry entry, or a ValueError listing the families."""
    if name not in GAN_FAMILIES:
        raise UserError(f"unknown GAN family {name!r}; choose one of {', '.join(GAN_FAMILIES)}.")
    return GAN_FAMILIES[name]


def _log2_size(size) -> int:
    log2 = int(np.log2(size)) if isinstance(size, (int, np.integer)) and size > 0 else 0
    if log2 < 3 or 2 ** log2 != size:
        raise ValueError(f"`size` must be a power of two >= 8. Received: size={size!r}")
    return log2


def _width(resolution: int, base: int) -> int:
    """Channels at a resolution: ``base`` up to 8x8, halving per doubling after 16x16, at least 8."""
    return max(8, min(base, base * 16 // resolution))


def _upsample(x, kind: str, filters: int, name: str):
    if kind == "transposed":
        return keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same", name=f"{name}_convT")(x)
    x = keras.layers.UpSampling2D(2, interpolation=kind, name=f"{name}_up")(x)
    return keras.layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv")(x)


def build_conv_generator(upsampling: str, size: int = 64, latent_dim: int = LATENT_DIM, base: int = 64,
                         name: str | None = None) -> keras.Model:
    """Latent ``(N, latent_dim)`` -> image ``(N, size, size, 3)`` in [-1, 1] (unbounded linear output).

    Per doubling: the up-sampling operator (with its conv), pixel norm, leaky ReLU; at the end
    a 1x1 conv to RGB, so the last spatial operation of the network is the up-sampling block.
    """
    if upsampling not in ("nearest", "transposed", "bilinear"):
        raise ValueError(f"`upsampling` must be 'nearest', 'transposed' or 'bilinear'. Received: {upsampling!r}")
    log2 = _log2_size(size)
    latents = keras.Input((latent_dim,), name="latents")
    x = PixelNorm(name="latent_norm")(latents)
    x = keras.layers.Dense(4 * 4 * _width(4, base), name="dense")(x)
    x = keras.layers.Reshape((4, 4, _width(4, base)), name="to_4x4")(x)
    x = keras.layers.LeakyReLU(0.2, name="4x4_act")(PixelNorm(name="4x4_norm")(x))
    for res in range(3, log2 + 1):
        scope = f"{2 ** res}x{2 ** res}"
        x = _upsample(x, upsampling, _width(2 ** res, base), scope)
        x = keras.layers.LeakyReLU(0.2, name=f"{scope}_act")(PixelNorm(name=f"{scope}_norm")(x))
    images = keras.layers.Conv2D(3, 1, name="to_rgb")(x)
    return keras.Model(latents, images, name=name or f"{upsampling}_generator")


def stylegan_kwargs(size: int = 64, latent_dim: int = LATENT_DIM) -> dict:
    """Builder kwargs of the small StyleGAN: 2 mapping layers, 64 channels at most, halving from 16x16."""
    _log2_size(size)
    return dict(latent_size=latent_dim, dlatent_size=latent_dim, mapping_layers=2, mapping_fmaps=latent_dim,
                num_channels=3, resolution=size, fmap_base=16 * size // 4, fmap_max=64)


def build_stylegan_generator(size: int = 64, latent_dim: int = LATENT_DIM) -> keras.Model:
    """The port's generator (mapping + synthesis), no truncation, random per-pixel noise."""
    from tfforensics.models.stylegan import build_generator

    return build_generator(truncation_psi=None, **stylegan_kwargs(size, latent_dim))


def build_dcgan_discriminator(size: int = 64, base: int = 32, name: str = "dcgan_discriminator") -> keras.Model:
    """Images ``(N, size, size, 3)`` -> logits ``(N, 1)``: 4x4 stride-2 convs down to 4x4, then dense.

    A minibatch-stddev feature (ProGAN) before the dense layer lets D see a collapsed batch,
    which keeps these short runs from generating one image for every latent.
    """
    log2 = _log2_size(size)
    images = keras.Input((size, size, 3), name="images")
    x = images
    for index, res in enumerate(range(log2 - 1, 1, -1)):
        filters = min(base * 2 ** index, 4 * base)
        x = keras.layers.Conv2D(filters, 4, strides=2, padding="same", name=f"down{2 ** res}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"act{2 ** res}")(x)
    x = MinibatchStddev(4, 1, name="minibatch_stddev")(x)
    x = keras.layers.Conv2D(4 * base, 3, padding="same", name="conv_final")(x)
    x = keras.layers.LeakyReLU(0.2, name="act_final")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(images, keras.layers.Dense(1, name="logit")(x), name=name)


def build_stylegan_discriminator(size: int = 64) -> keras.Model:
    """The port's discriminator at the small StyleGAN's widths (minibatch stddev over groups of 4)."""
    from tfforensics.models.stylegan import build_discriminator

    kwargs = stylegan_kwargs(size)
    return build_discriminator(num_channels=3, resolution=size, fmap_base=kwargs["fmap_base"],
                               fmap_max=kwargs["fmap_max"], mbstd_group_size=4)


def build_generator(name: str, size: int = 64, latent_dim: int = LATENT_DIM) -> keras.Model:
    """The generator of family ``name`` (see :data:`GAN_FAMILIES`)."""
    entry = family(name)
    if entry.upsampling == "stylegan":
        return build_stylegan_generator(size, latent_dim)
    return build_conv_generator(entry.upsampling, size, latent_dim)


def build_discriminator(name: str, size: int = 64) -> keras.Model:
    """The discriminator that trains family ``name``."""
    entry = family(name)
    return build_stylegan_discriminator(size) if entry.discriminator == "stylegan" else build_dcgan_discriminator(size)
