"""GAN-fingerprint attribution (Yu, Davis & Fritz, ICCV 2019): the classifier and its TF1 port.

The attribution network of GANFingerprints is the ProGAN discriminator turned into a
classifier. On a square RGB image in [-1, 1] (no fromRGB layer), per resolution from the
input's down to 8x8: two 3x3 convolutions (reflect padding, equalised learning rate, bias,
LeakyReLU 0.2, no normalisation), then 2x box down-sampling; feature maps
``min(fmap_base / 2**stage, fmap_max)`` (16, 32, ..., 512 at 128x128). At 4x4: one 3x3
convolution, a dense layer of 512 (LeakyReLU) and a linear dense layer with one unit per
source. It trains with softmax cross-entropy, Adam (beta1 0, beta2 0.99, epsilon 1e-8),
learning rate 1e-3, batch 32 and left-right mirroring.

The "pre-downscale" variant (``mode="predownscale"``) of the paper's frequency analysis
first blurs and sub-samples the image (5x5 binomial filter, reflect padding, stride 2)
down to ``switching_res`` and only then applies the convolution blocks.

Every layer carries its TF1 scope (``"128x128/Conv0"``, ``"4x4/Dense1"``), so a pickled
``tfutil.Network`` from GANFingerprints (:func:`load_released`) loads by variable name
through the restricted unpickler of :mod:`tfforensics.models.stylegan.pkl`; nothing in the
file is executed.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfforensics.errors import UserError
from tfforensics.models.names import ATTRIBUTION_FRONT_ENDS
from tfforensics.models.stylegan.layers import Downscale2D, EqualizedConv2D, EqualizedDense
import tfforensics.models.visnet  # noqa: F401,E402  (registers VisNet for loading saved models)

logger = logging.getLogger(__name__)

PACKAGE = "tfforensics.attribution"
MODES = ("postpool", "predownscale")
#: Fixed input front ends (``front_end``), inside the model after the mirroring, before the first
#: convolution (measured in docs/attribution.md); named in :mod:`tfforensics.models.names`.
FRONT_ENDS = ATTRIBUTION_FRONT_ENDS
#: ``dct``: ``log(|DCT| + 1e-6)`` of [-1, 1] images spans about -14..4; this affine brings it near [-1, 1].
_LOG_DCT_SCALE, _LOG_DCT_OFFSET = 0.2, 1.0
#: Adam options of the original (``config.C_opt``); :mod:`tfforensics.training.fit` reads them.
ADAM_OPTIONS = {"beta_1": 0.0, "beta_2": 0.99, "epsilon": 1e-8}
#: Class names of the released classifiers (``util_scripts.classify``), by number of sources.
RELEASED_CLASS_NAMES = {
    5: ["real", "ProGAN", "SNGAN", "CramerGAN", "MMDGAN"],
    11: ["real"] + [f"ProGAN_seed_{i}" for i in range(10)],
}
#: The ``C_patch`` options the port understands (others in a pickle are refused).
_PORT_KWARGS = ("num_channels", "resolution", "label_size", "fmap_base", "fmap_decay", "fmap_max", "latent_res",
                "mode", "switching_res", "use_wscale", "mbstd_group_size", "dtype", "fused_scale")

_BINOMIAL = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float32) / 256.0


@keras.saving.register_keras_serializable(package=PACKAGE)
class GaussianDownscale(keras.layers.Layer):
    """2x down-sampling after a 5x5 binomial blur with reflect padding (the pre-downscale step).

    Equals GANFingerprints' ``downscale2d_rgb_Gaussian`` for a factor of 2: each channel
    is padded by 2 (reflect), filtered by ``outer([1,4,6,4,1])/256`` and sampled at every
    other pixel. ``factor`` must be a power of two; the step is repeated.

    Input shape:
        ``(batch, height, width, channels)``.

    Output shape:
        ``(batch, height / factor, width / factor, channels)``.
    """

    def __init__(self, factor: int = 2, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(factor, int) or factor < 1 or factor & (factor - 1):
            raise ValueError(f"`factor` must be a power of two. Received: factor={factor!r}")
        self.factor = factor

    def call(self, x):
        channels = x.shape[-1]
        kernel = tf.constant(np.repeat(_BINOMIAL[:, :, None, None], channels, axis=2), dtype=x.dtype)
        for _ in range(int(round(math.log2(self.factor)))):
            x = tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]], mode="REFLECT")
            x = tf.nn.depthwise_conv2d(x, kernel, strides=[1, 2, 2, 1], padding="VALID")
        return x

    def compute_output_shape(self, s):
        return (s[0], None if s[1] is None else s[1] // self.factor, None if s[2] is None else s[2] // self.factor, s[3])

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def feature_maps(stage: int, fmap_base: int = 1024, fmap_decay: float = 1.0, fmap_max: int = 512) -> int:
    """``nf(stage)`` of ProGAN: ``min(fmap_base / 2**(stage * decay), fmap_max)``."""
    return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def front_end_layers(front_end: str) -> list:
    """The fixed layers of ``front_end`` (one of :data:`FRONT_ENDS`); none for ``pixels``."""
    from tfforensics.layers import DCT2D, LogScale, NeighbourResidual

    if front_end == "pixels":
        return []
    if front_end == "residual":
        return [NeighbourResidual(2, 2.0 / 3.0, name="npr")]
    if front_end == "dct":
        return [DCT2D("float32", name="dct"), LogScale(1e-6, name="log"),
                keras.layers.Rescaling(_LOG_DCT_SCALE, _LOG_DCT_OFFSET, name="log_dct_scale")]
    raise UserError(f"--input must be one of {', '.join(FRONT_ENDS)}. Received: {front_end!r}")


def _check_shape(input_shape, mode, switching_res):
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or shape[0] != shape[1] or shape[0] < 8 or shape[0] & (shape[0] - 1):
        raise UserError(f"the attribution network takes square images whose side is a power of two >= 8 "
                        f"(e.g. 64x64 or 128x128); crop or resize the images. Received: input_shape={shape}")
    if mode not in MODES:
        raise UserError(f"`mode` must be one of {MODES}. Received: mode={mode!r}")
    if mode == "predownscale":
        if switching_res is None or switching_res < 4 or switching_res > shape[0] or switching_res & (switching_res - 1):
            raise UserError(f"--switching-res must be a power of two from 4 to the image side {shape[0]}. "
                            f"Received: switching_res={switching_res!r}")
    return shape


def build_attribution(input_shape, num_classes: int, *, l1=None, l2=None, mode: str = "postpool",
                      switching_res: int | None = None, fmap_base: int = 1024, fmap_decay: float = 1.0,
                      fmap_max: int = 512, mirror: bool = True, fused_scale: bool = False, use_wscale: bool = True,
                      units: int | None = None, front_end: str = "pixels", name: str | None = None) -> keras.Model:
    """Yu et al.'s attribution classifier (the registry's ``attribution``).

    Args:
        input_shape: ``(R, R, C)`` with ``R`` a power of two >= 8 (128 as published; 64 and
            32 have fewer levels).
        num_classes: sources; 2 gives one sigmoid unit like the other registered models.
        l1, l2: accepted for the registry's common signature; unused.
        mode: ``"postpool"`` (the classifier) or ``"predownscale"``.
        switching_res: for ``predownscale``, the resolution the image is blurred and
            sub-sampled to before the first convolution.
        fmap_base, fmap_decay, fmap_max: feature maps per stage (``feature_maps``).
        mirror: random left-right flips while training (a no-op at inference).
        fused_scale: ProGAN's fused conv + down-sampling (``Conv1_down``).
        use_wscale: equalised learning rate.
        units: output units (default: from ``num_classes``); the port sets the pickle's.
        front_end: ``"pixels"`` (the published network), ``"residual"`` or ``"dct"``: a
            fixed transform after the mirroring (:data:`FRONT_ENDS`, :func:`front_end_layers`),
            saved with the model; the network trains on it, so it still takes pixels.

    Returns:
        A functional model from ``(batch, R, R, C)`` in [-1, 1] to probabilities; its
        layer ``"logits"`` holds the scores before the softmax (or sigmoid).
    """
    from tfforensics.models.classifiers import output_units

    shape = _check_shape(input_shape, mode, switching_res)
    units = output_units(num_classes) if units is None else int(units)
    resolution_log2 = int(math.log2(shape[0]))
    switching_log2 = int(math.log2(switching_res)) if mode == "predownscale" else 2

    def nf(stage):
        return feature_maps(stage, fmap_base, fmap_decay, fmap_max)

    inputs = keras.Input(shape, name="encoded")
    x = keras.layers.RandomFlip("horizontal", name="mirror")(inputs) if mirror else inputs
    if front_end != "pixels" and mode != "postpool":
        raise UserError(f"--input {front_end} is for the attribution network (postpool); the pre-downscale "
                        "variant reads pixels.")
    for layer in front_end_layers(front_end):
        x = layer(x)
    for res in range(resolution_log2, 2, -1):
        scope = f"{2 ** res}x{2 ** res}"
        if mode == "postpool" or res <= switching_log2:
            x = EqualizedConv2D(nf(res - 1), 3, use_wscale=use_wscale, activation="lrelu", padding="reflect",
                                scope=f"{scope}/Conv0", name=f"{scope}_conv0")(x)
            if fused_scale:
                x = EqualizedConv2D(nf(res - 2), 3, use_wscale=use_wscale, activation="lrelu", resample="down",
                                    fused=True, scope=f"{scope}/Conv1_down", name=f"{scope}_conv1_down")(x)
            else:
                x = EqualizedConv2D(nf(res - 2), 3, use_wscale=use_wscale, activation="lrelu", padding="reflect",
                                    scope=f"{scope}/Conv1", name=f"{scope}_conv1")(x)
                x = Downscale2D(name=f"{scope}_down")(x)
        else:
            x = GaussianDownscale(name=f"{scope}_gaussian_down")(x)
    x = EqualizedConv2D(nf(1), 3, use_wscale=use_wscale, activation="lrelu", padding="reflect",
                        scope="4x4/Conv0", name="4x4_conv0")(x)
    x = EqualizedDense(max(nf(1), units), use_wscale=use_wscale, activation="lrelu", scope="4x4/Dense1",
                       name="4x4_dense1")(x)
    logits = EqualizedDense(units, gain=1.0, use_wscale=use_wscale, scope="4x4/Dense2", name="logits")(x)
    outputs = keras.layers.Activation("sigmoid" if units == 1 else "softmax", name="predictions")(logits)
    default_name = "attribution" if mode == "postpool" else "attribution_predown"
    return keras.Model(inputs, outputs, name=name or default_name)


def build_attribution_predown(input_shape, num_classes: int, *, switching_res: int | None = None, **kwargs):
    """The pre-downscale variant (registry ``attribution_predown``): blur + sub-sample to half size first."""
    side = int(tuple(input_shape)[0])
    return build_attribution(input_shape, num_classes, mode="predownscale",
                             switching_res=switching_res or max(side // 2, 4), **kwargs)


build_attribution.adam_options = ADAM_OPTIONS
build_attribution_predown.adam_options = ADAM_OPTIONS


def logits_model(model: keras.Model) -> keras.Model:
    """The classifier from its input to the ``logits`` layer (before the softmax)."""
    return keras.Model(model.inputs, model.get_layer("logits").output, name=f"{model.name}_logits")


# --- the released TF1 pickles ---------------------------------------------------------------

def _port_kwargs(network) -> dict:
    source = f"network {network.name!r}"
    if network.build_func_name != "C_patch":
        raise UserError(f"{source}: build function {network.build_func_name!r} is not GANFingerprints' "
                        "classifier (C_patch); load StyleGAN pickles with `tfforensics img2grad --pkl`.")
    kwargs = network.static_kwargs
    unknown = sorted(set(kwargs) - set(_PORT_KWARGS))
    if unknown:
        raise UserError(f"{source}: unknown C_patch option(s) {unknown}; this port knows {list(_PORT_KWARGS)}.")
    if kwargs.get("latent_res", -1) != -1:
        raise UserError(f"{source}: latent_res={kwargs['latent_res']} (the fully convolutional head) is not "
                        "supported; the released classifiers use latent_res=-1 (dense head).")
    if int(kwargs.get("mbstd_group_size", 0)) > 1:
        raise UserError(f"{source}: mbstd_group_size={kwargs['mbstd_group_size']} is not supported "
                        "(its output depends on the batch).")
    if kwargs.get("dtype", "float32") != "float32":
        raise UserError(f"{source}: dtype {kwargs['dtype']!r}; only float32 networks are supported.")
    if not int(kwargs.get("label_size", 0)):
        raise UserError(f"{source}: label_size is 0; an attribution classifier has one output per source.")
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in kwargs.items()}


def build_from_network(network, *, mirror: bool = False) -> keras.Model:
    """The Keras port of a pickled ``C_patch`` network, its variables copied by TF1 name."""
    from tfforensics.models.stylegan.pkl import assign_variables

    kwargs = _port_kwargs(network)
    resolution = int(kwargs.get("resolution", 128))
    model = build_attribution(
        (resolution, resolution, int(kwargs.get("num_channels", 3))), max(int(kwargs["label_size"]), 2),
        mode=kwargs.get("mode", "postpool"), switching_res=int(kwargs.get("switching_res", 4)),
        fmap_base=int(kwargs.get("fmap_base", 8192)), fmap_decay=float(kwargs.get("fmap_decay", 1.0)),
        fmap_max=int(kwargs.get("fmap_max", 512)), fused_scale=bool(kwargs.get("fused_scale", False)),
        use_wscale=bool(kwargs.get("use_wscale", True)), units=int(kwargs["label_size"]), mirror=mirror,
        name=str(network.name or "C_im"),
    )
    assign_variables(model, network)
    return model


def pixel_wrapper(classifier: keras.Model, class_names, metadata: dict | None = None) -> keras.Model:
    """``classifier`` (on [-1, 1] pixels) behind the raw-pixel scaling and its class names.

    The result takes 0..255 images, like the models ``train`` saves, and
    :func:`tfforensics.models.wrapped.unwrap` gives the classifier back.
    """
    from tfforensics import __version__
    from tfforensics.data.encodings import Encoding
    from tfforensics.layers import ClassNames, PixelScale
    from tfforensics.models.wrapped import CLASS_NAMES_NAME, PREPROCESSING_NAME
    import dataclasses

    shape = tuple(classifier.input_shape[1:])
    preprocessing = keras.Sequential([keras.Input(shape, name="image"), PixelScale(name="pixel_scale")],
                                     name=PREPROCESSING_NAME)
    inputs = keras.Input(shape, name="image")
    scores = classifier(preprocessing(inputs))
    info = {"model": classifier.name, "encoding": dataclasses.asdict(Encoding(transform="raw", color=shape[-1] == 3)),
            "image_shape": list(shape), "statistics_sha256": None, "tfforensics_version": __version__,
            **(metadata or {})}
    outputs = ClassNames(list(class_names), info, name=CLASS_NAMES_NAME)(scores)
    return keras.Model(inputs, outputs, name=f"{classifier.name}_on_images")


def load_released(path, *, class_names=None) -> keras.Model:
    """A GANFingerprints classifier pickle as a Keras model on raw 0..255 images.

    The file is read by the restricted unpickler (only ``tfutil.Network`` state and NumPy
    arrays; a file that references any other global is refused before anything runs).

    Args:
        path: the ``.pkl`` (e.g. ``CelebA_ProGAN_SNGAN_CramerGAN_MMDGAN_128.pkl``).
        class_names: source names in label order (default: the original's names for 5 or
            11 sources, else ``source_0 ...``).
    """
    from tfforensics.models.stylegan.pkl import load_pkl

    networks = load_pkl(path)
    candidates = [n for n in networks if n.build_func_name == "C_patch"]
    if not candidates:
        raise UserError(f"{path}: holds no GANFingerprints classifier (networks: "
                        f"{[n.build_func_name for n in networks]}).")
    classifier = build_from_network(candidates[0])
    units = classifier.get_layer("logits").units
    if class_names is None:
        class_names = RELEASED_CLASS_NAMES.get(units, [f"source_{i}" for i in range(units)])
    class_names = list(class_names)
    if len(class_names) != units:
        raise UserError(f"--class-names: {len(class_names)} names given but {path} has {units} sources.")
    return pixel_wrapper(classifier, class_names, {"released_pickle": Path(path).name})


def load_any(path, *, class_names=None) -> keras.Model:
    """A ``.keras`` model (or run directory) or a released ``.pkl``."""
    from tfforensics.models.wrapped import load_model

    if Path(path).suffix == ".pkl":
        return load_released(path, class_names=class_names)
    return load_model(path)
