"""StyleGAN (v1) networks as Keras functional models with TF1 variable names.

Builders mirror the TF1 build functions of the official ``networks_stylegan.py``
(``G_mapping``, ``G_synthesis``, ``G_style``, ``D_basic``) and take the same keyword
arguments, so the ``static_kwargs`` of an official ``.pkl`` build the right model.
Only the fully grown network (``lod = 0``) is built: it is what the recursive and the
linear TF1 structures compute at ``lod = 0``.

Images are NHWC in [-1, 1]; ``data_format="channels_first"`` gives the TF1 NCHW
interface (input of D, output of the synthesis network) instead.
"""

from __future__ import annotations

import logging

import numpy as np
import keras

from tfforensics.models.stylegan.layers import (
    Bias, Blur2D, ChannelsFirstToLast, ChannelsLastToFirst, ConstInput, DlatentSlice, EqualizedConv2D,
    EqualizedDense, FromNCHW, InstanceNorm, MinibatchStddev, NoiseInput, PixelNorm, ScopedLayer, StyleMod,
    Truncation,
)

logger = logging.getLogger(__name__)
GAIN = float(np.sqrt(2))
DATA_FORMATS = ("channels_last", "channels_first")


def _layer_name(scope: str) -> str:
    return scope.replace("/", ".")  # Keras names cannot contain "/"


def _nf(fmap_base, fmap_decay, fmap_max):
    return lambda stage: min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def _check_common(resolution, nonlinearity, dtype, data_format, label_size=0):
    log2 = int(np.log2(resolution)) if resolution and resolution > 0 else 0
    if not isinstance(resolution, (int, np.integer)) or resolution < 4 or 2 ** log2 != resolution:
        raise ValueError(f"`resolution` must be a power of two >= 4. Received: resolution={resolution!r}")
    if nonlinearity not in ("lrelu", "relu"):
        raise ValueError(f"`nonlinearity` must be 'lrelu' or 'relu'. Received: nonlinearity={nonlinearity!r}")
    if dtype != "float32":
        raise ValueError(f"only float32 networks are supported. Received: dtype={dtype!r}")
    if data_format not in DATA_FORMATS:
        raise ValueError(f"`data_format` must be one of {DATA_FORMATS}. Received: data_format={data_format!r}")
    if label_size:
        raise ValueError(f"conditional StyleGAN networks (label_size > 0) are not supported. "
                         f"Received: label_size={label_size!r}")
    return log2


def _fused(fused_scale, size: int) -> bool:
    if fused_scale == "auto":
        return size >= 128
    if fused_scale not in (True, False):
        raise ValueError(f"`fused_scale` must be True, False or 'auto'. Received: fused_scale={fused_scale!r}")
    return bool(fused_scale)


def build_mapping(
    latent_size=512, label_size=0, dlatent_size=512, dlatent_broadcast=None, mapping_layers=8, mapping_fmaps=512,
    mapping_lrmul=0.01, mapping_nonlinearity="lrelu", use_wscale=True, normalize_latents=True, dtype="float32",
    name="G_mapping", **ignored,
) -> keras.Model:
    """Mapping network: latents ``(N, latent_size)`` -> dlatents ``(N, dlatent_broadcast, dlatent_size)``."""
    _check_common(4, mapping_nonlinearity, dtype, "channels_last", label_size)
    _log_ignored(name, ignored)
    latents = keras.Input((latent_size,), name="latents_in")
    x = PixelNorm(name="PixelNorm")(latents) if normalize_latents else latents
    for index in range(mapping_layers):
        scope = f"Dense{index}"
        units = dlatent_size if index == mapping_layers - 1 else mapping_fmaps
        x = EqualizedDense(units, gain=GAIN, use_wscale=use_wscale, lrmul=mapping_lrmul,
                           activation=mapping_nonlinearity, scope=scope, name=scope)(x)
    if dlatent_broadcast is not None:
        x = keras.layers.RepeatVector(int(dlatent_broadcast), name="Broadcast")(x)
    return keras.Model(latents, x, name=name)


def build_synthesis(
    dlatent_size=512, num_channels=3, resolution=1024, fmap_base=8192, fmap_decay=1.0, fmap_max=512,
    use_styles=True, const_input_layer=True, use_noise=True, randomize_noise=True, nonlinearity="lrelu",
    use_wscale=True, use_pixel_norm=False, use_instance_norm=True, dtype="float32", fused_scale="auto",
    blur_filter=(1, 2, 1), data_format="channels_last", name="G_synthesis", **ignored,
) -> keras.Model:
    """Synthesis network: dlatents ``(N, num_layers, dlatent_size)`` -> images in [-1, 1]."""
    log2 = _check_common(resolution, nonlinearity, dtype, data_format)
    _log_ignored(name, ignored)
    nf = _nf(fmap_base, fmap_decay, fmap_max)
    num_layers = log2 * 2 - 2
    num_styles = num_layers if use_styles else 1
    dlatents = keras.Input((num_styles, dlatent_size), name="dlatents_in")

    def epilogue(x, layer_index, scope):
        if use_noise:
            x = NoiseInput(noise_name=f"noise{layer_index}", randomize_noise=randomize_noise,
                           scope=f"{scope}/Noise", name=_layer_name(f"{scope}/Noise"))(x)
        x = Bias(activation=nonlinearity, scope=scope, name=_layer_name(scope) + ".bias")(x)
        if use_pixel_norm:
            x = PixelNorm(name=_layer_name(scope) + ".PixelNorm")(x)
        if use_instance_norm:
            x = InstanceNorm(name=_layer_name(scope) + ".InstanceNorm")(x)
        if use_styles:
            x = StyleMod(layer_index, use_wscale=use_wscale, scope=f"{scope}/StyleMod",
                         name=_layer_name(f"{scope}/StyleMod"))([x, dlatents])
        return x

    def conv(x, filters, kernel, scope, resample=None, fused=False, gain=GAIN, use_bias=False):
        return EqualizedConv2D(filters, kernel, gain=gain, use_wscale=use_wscale, resample=resample, fused=fused,
                               use_bias=use_bias, scope=scope, name=_layer_name(scope))(x)

    if const_input_layer:
        x = ConstInput(nf(1), scope="4x4/Const", name="4x4.Const")(dlatents)
        x = epilogue(x, 0, "4x4/Const")
    else:
        first = DlatentSlice(0, name="4x4.Dense.slice")(dlatents)
        x = EqualizedDense(nf(1) * 16, gain=GAIN / 4, use_wscale=use_wscale, use_bias=False,
                           scope="4x4/Dense", name="4x4.Dense")(first)
        x = epilogue(FromNCHW(nf(1), name="4x4.Dense.reshape")(x), 0, "4x4/Dense")
    x = epilogue(conv(x, nf(1), 3, "4x4/Conv"), 1, "4x4/Conv")
    for res in range(3, log2 + 1):
        size = 2 ** res
        scope = f"{size}x{size}"
        x = conv(x, nf(res - 1), 3, f"{scope}/Conv0_up", resample="up", fused=_fused(fused_scale, size))
        if blur_filter:
            x = Blur2D(blur_filter, name=f"{scope}.Conv0_up.Blur2D")(x)
        x = epilogue(x, res * 2 - 4, f"{scope}/Conv0_up")
        x = epilogue(conv(x, nf(res - 1), 3, f"{scope}/Conv1"), res * 2 - 3, f"{scope}/Conv1")
    images = conv(x, num_channels, 1, "ToRGB_lod0", gain=1.0, use_bias=True)
    if data_format == "channels_first":
        images = ChannelsLastToFirst(name="to_nchw")(images)
    return keras.Model(dlatents, images, name=name)


def build_discriminator(
    num_channels=1, resolution=32, label_size=0, fmap_base=8192, fmap_decay=1.0, fmap_max=512, nonlinearity="lrelu",
    use_wscale=True, mbstd_group_size=4, mbstd_num_features=1, dtype="float32", fused_scale="auto",
    blur_filter=(1, 2, 1), data_format="channels_last", independent_images=False, name="D", **ignored,
) -> keras.Model:
    """Discriminator: images in [-1, 1] (NHWC, or NCHW with ``data_format``) -> scores ``(N, 1)``.

    ``independent_images=True`` computes the minibatch standard deviation of each image on
    its own (group size 1), so the score and input gradient of an image do not depend on
    the others in its batch: what the original img2grad computes with its batch of one.
    """
    log2 = _check_common(resolution, nonlinearity, dtype, data_format, label_size)
    _log_ignored(name, ignored)
    nf = _nf(fmap_base, fmap_decay, fmap_max)
    if data_format == "channels_first":
        images = keras.Input((num_channels, resolution, resolution), name="images_in")
        x = ChannelsFirstToLast(name="from_nchw")(images)
    else:
        images = keras.Input((resolution, resolution, num_channels), name="images_in")
        x = images

    def conv(x, filters, kernel, scope, resample=None, fused=False):
        return EqualizedConv2D(filters, kernel, gain=GAIN, use_wscale=use_wscale, resample=resample, fused=fused,
                               activation=nonlinearity, scope=scope, name=_layer_name(scope))(x)

    x = conv(x, nf(log2 - 1), 1, "FromRGB_lod0")
    for res in range(log2, 2, -1):
        size = 2 ** res
        scope = f"{size}x{size}"
        x = conv(x, nf(res - 1), 3, f"{scope}/Conv0")
        if blur_filter:
            x = Blur2D(blur_filter, name=f"{scope}.Conv1_down.Blur2D")(x)
        x = conv(x, nf(res - 2), 3, f"{scope}/Conv1_down", resample="down", fused=_fused(fused_scale, size))
    if mbstd_group_size > 1:
        x = MinibatchStddev(1 if independent_images else mbstd_group_size, mbstd_num_features, name="4x4.MinibatchStddev")(x)
    x = conv(x, nf(1), 3, "4x4/Conv")
    x = EqualizedDense(nf(0), gain=GAIN, use_wscale=use_wscale, activation=nonlinearity,
                       scope="4x4/Dense0", name="4x4.Dense0")(x)
    scores = EqualizedDense(max(label_size, 1), gain=1.0, use_wscale=use_wscale, scope="4x4/Dense1",
                            name="4x4.Dense1")(x)
    return keras.Model(images, scores, name=name)


def build_generator(
    truncation_psi=0.7, truncation_cutoff=8, mapping_kwargs=None, synthesis_kwargs=None, name="G_style", **kwargs,
) -> keras.Model:
    """Generator: latents ``(N, latent_size)`` -> images; mapping, truncation, synthesis.

    ``kwargs`` go to both sub-networks (as TF1 ``G_style`` passes them on);
    ``mapping_kwargs`` / ``synthesis_kwargs`` add to one of them.
    """
    synthesis = build_synthesis(**{**kwargs, **(synthesis_kwargs or {})}, name="G_synthesis")
    num_layers, dlatent_size = synthesis.input_shape[1], synthesis.input_shape[2]
    mapping = build_mapping(**{**kwargs, **(mapping_kwargs or {}), "dlatent_broadcast": num_layers,
                               "dlatent_size": dlatent_size}, name="G_mapping")
    latents = keras.Input(mapping.input_shape[1:], name="latents_in")
    dlatents = mapping(latents)
    dlatents = Truncation(truncation_psi, truncation_cutoff, name="Truncation")(dlatents)
    return keras.Model(latents, synthesis(dlatents), name=name)


def _log_ignored(name, ignored):
    ignored = {k: v for k, v in ignored.items() if k not in ("is_template_graph", "structure", "components",
                                                              "force_clean_graph")}
    if ignored:
        logger.debug("%s: ignoring keyword arguments %s", name, sorted(ignored))


def tf1_variables(model, prefix: str = "") -> dict:
    """``{tf1_name: keras.Variable}`` over ``model`` and its nested models.

    Names are local to the network, as in the ``variables`` of a pickled TF1 network;
    a nested model contributes ``"<its name>/<local name>"`` (e.g. ``"G_mapping/Dense0/weight"``),
    as TF1 ``Network.vars`` lists its components.
    """
    out = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.update(tf1_variables(layer, f"{prefix}{layer.name}/"))
        elif isinstance(layer, ScopedLayer):
            for key, variable in layer.tf1_variables().items():
                if prefix + key in out:
                    raise ValueError(f"duplicate TF1 variable name {prefix + key!r} in model {model.name!r}")
                out[prefix + key] = variable
    return out


def sub_model(model, name: str):
    """A nested model by name (``"G_mapping"`` or ``"G_synthesis"`` of a generator)."""
    for layer in model.layers:
        if isinstance(layer, keras.Model) and layer.name == name:
            return layer
    raise KeyError(f"model {model.name!r} has no sub-network {name!r}")


BUILDERS = {
    "G_style": build_generator,
    "G_mapping": build_mapping,
    "G_synthesis": build_synthesis,
    "D_basic": build_discriminator,
}
