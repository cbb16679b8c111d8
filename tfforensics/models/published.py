"""Keras ports of the field's PyTorch detectors, with their released weights mapped by name.

- ``resnet50``: torchvision's ResNet-50 v1.5 (the stride sits in the 3x3 convolution of a
  bottleneck; batch norm epsilon 1e-5) with a single-logit ``fc``: the detector of
  CNNDetection (Wang et al., CVPR 2020) and of LGrad (Tan et al., CVPR 2023).
- ``npr``: NPR (Tan et al., CVPR 2024): the neighbouring-pixel residual
  (:class:`~tfforensics.layers.NeighbourResidual`, ``(x - up(down(x))) * 2/3``), then
  a truncated ResNet: a 3x3 stride-2 ``conv1``, batch norm, ReLU, 3x3 stride-2 max
  pooling, ``layer1`` (3 bottlenecks, 256 channels out) and ``layer2`` (4 bottlenecks,
  stride 2, 512 out), global average pooling and the one-logit ``fc1``.

Layer names are the torch module names with ``.`` replaced by ``_`` (``layer1_0_conv2``),
and the head is ``predictions`` as in every registry model, so :func:`assign_state_dict`
is a name-to-name copy: convolution kernels OIHW -> HWIO, dense kernels transposed, batch
norm ``weight``/``bias``/``running_mean``/``running_var`` -> gamma/beta/moving mean/variance.
torch pads symmetrically, so each strided layer gets an explicit ``ZeroPadding2D`` (zero
padding before the max pooling is exact: it follows a ReLU).

:func:`detector_on_images` wraps a port with the originals' test-time preprocessing
(pixels / 255, ImageNet mean and std; no resize, no crop) and the class names
``real``/``fake``, so the saved ``.keras`` takes raw 0..255 images like every other
tfforensics detector.

GANDCTAnalysis' released classifiers (TF2 Keras SavedModels) are read from their
variables checkpoint only (:func:`read_saved_model_weights`) and copied into the registry
architecture they fit, behind the DCT / log / standardisation layers built from the
``mean_var`` files (:func:`port_gandct`).
"""

from __future__ import annotations

import re
from pathlib import Path

import keras
import numpy as np
from keras import layers

from tfforensics.errors import MissingInputError, UserError
from tfforensics.layers.normalization import FusedBatchNormalization

# The registry (models.classifiers) imports this module, so its helpers are imported in the
# builders; these are its penalty defaults, which the ports accept and ignore.
DEFAULT_L1 = DEFAULT_L2 = 0.01

#: torchvision's batch-norm epsilon (Keras' default is 1e-3).
BN_EPSILON = 1e-5
#: ImageNet statistics of torchvision's ``Normalize`` (RGB).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Bottlenecks per stage of ResNet-50.
RESNET50_BLOCKS = (3, 4, 6, 3)
#: Head name of the torch models -> ours.
TORCH_HEADS = {"resnet50": "fc", "npr": "fc1"}


def _conv(x, filters, kernel, stride, name):
    pad = kernel // 2
    if pad:
        x = layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
    return layers.Conv2D(filters, kernel, strides=stride, use_bias=False, name=name)(x)


def _bn(x, name):
    return FusedBatchNormalization(epsilon=BN_EPSILON, momentum=0.9, name=name)(x)


def bottleneck(x, planes: int, stride: int, *, downsample: bool, name: str):
    """torchvision's ``Bottleneck`` (expansion 4; the stride in ``conv2``, v1.5)."""
    shortcut = x
    y = layers.ReLU(name=f"{name}_relu1")(_bn(_conv(x, planes, 1, 1, f"{name}_conv1"), f"{name}_bn1"))
    y = layers.ReLU(name=f"{name}_relu2")(_bn(_conv(y, planes, 3, stride, f"{name}_conv2"), f"{name}_bn2"))
    y = _bn(_conv(y, planes * 4, 1, 1, f"{name}_conv3"), f"{name}_bn3")
    if downsample:
        shortcut = _bn(_conv(x, planes * 4, 1, stride, f"{name}_downsample_0"), f"{name}_downsample_1")
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def _stage(x, planes: int, blocks: int, stride: int, in_channels: int, name: str):
    for index in range(blocks):
        first = index == 0
        x = bottleneck(x, planes, stride if first else 1, downsample=first and (stride != 1 or in_channels != planes * 4),
                       name=f"{name}_{index}")
    return x


def _stem(x, kernel: int):
    x = _conv(x, 64, kernel, 2, "conv1")
    x = layers.ReLU(name="relu")(_bn(x, "bn1"))
    x = layers.ZeroPadding2D(1, name="maxpool_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name="maxpool")(x)


def resnet50_features(x):
    """torchvision ResNet-50 v1.5 without ``fc``: stem, four stages, global average pool (2048)."""
    x = _stem(x, 7)
    channels = 64
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), RESNET50_BLOCKS)):
        x = _stage(x, planes, blocks, 1 if stage == 0 else 2, channels, f"layer{stage + 1}")
        channels = planes * 4
    return layers.GlobalAveragePooling2D(name="avgpool")(x)


def build_resnet50(input_shape, num_classes, *, l1=DEFAULT_L1, l2=DEFAULT_L2) -> keras.Model:
    """torchvision ResNet-50 v1.5 with a ``num_classes`` head (CNNDetection / LGrad: one logit)."""
    from tfforensics.models.classifiers import _inputs, classification_head

    inputs = _inputs(input_shape)
    return keras.Model(inputs, classification_head(resnet50_features(inputs), num_classes), name="resnet50")


def build_npr(input_shape, num_classes, *, l1=DEFAULT_L1, l2=DEFAULT_L2) -> keras.Model:
    """NPR's detector: the neighbouring-pixel residual, then ``conv1`` (3x3/2), ``layer1``, ``layer2``, ``fc1``."""
    from tfforensics.layers import NeighbourResidual
    from tfforensics.models.classifiers import _inputs, classification_head

    height, width = tuple(input_shape)[:2]
    if any(side is not None and side % 2 for side in (height, width)):
        raise ValueError(f"`npr` needs an even image height and width. Received: input_shape={tuple(input_shape)}")
    inputs = _inputs(input_shape)
    x = NeighbourResidual(2, 2.0 / 3.0, name="npr")(inputs)
    x = _stem(x, 3)
    x = _stage(x, 64, 3, 1, 64, "layer1")
    x = _stage(x, 128, 4, 2, 256, "layer2")
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    return keras.Model(inputs, classification_head(x, num_classes), name="npr")


# NPR's README: Adam, beta1 0.9, learning rate 2e-4 (pass --lr 2e-4 to train).
build_npr.adam_options = {"beta_1": 0.9, "beta_2": 0.999}
#: NPR's training script: Adam at 2e-4 (``train`` defaults; ``--lr`` overrides).
build_npr.train_defaults = {"learning_rate": 2e-4}
build_resnet50.adam_options = {"beta_1": 0.9, "beta_2": 0.999}

#: ``--arch`` of ``convert torch`` -> builder.
ARCHITECTURES = {"resnet50": build_resnet50, "npr": build_npr}


def _keras_name(module: str, head: str) -> str:
    return "predictions" if module == head else module.replace(".", "_")


def assign_state_dict(model: keras.Model, state: dict, *, head: str, source: str = "the checkpoint") -> None:
    """Copy a torch ``state_dict`` (``{name: array}``) into a port built by this module.

    Every weight of the model must come from the checkpoint and every checkpoint array
    must land in the model (``num_batches_tracked`` aside); names and shapes are checked
    before anything is assigned, and a mismatch is one line naming the tensor.
    """
    plan = {}  # keras variable -> value
    used = set()
    by_layer = {}
    for key, value in state.items():
        module, _, field = key.rpartition(".")
        by_layer.setdefault(_keras_name(module, head), {})[field] = (key, np.asarray(value))
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            fields = {"weight": ("kernel", lambda w: w.transpose(2, 3, 1, 0))}
        elif isinstance(layer, layers.Dense):
            fields = {"weight": ("kernel", lambda w: w.T), "bias": ("bias", lambda b: b)}
        elif isinstance(layer, layers.BatchNormalization):
            fields = {"weight": ("gamma", None), "bias": ("beta", None), "running_mean": ("moving_mean", None),
                      "running_var": ("moving_variance", None)}
        else:
            continue
        found = by_layer.get(layer.name, {})
        for field, (attribute, convert) in fields.items():
            if field not in found:
                raise UserError(f"{source}: has no tensor for layer {layer.name} ({field}); it is not a "
                                f"{model.name} checkpoint (pass the matching --arch).")
            key, value = found[field]
            value = (convert or (lambda v: v))(value.astype(np.float32))
            variable = getattr(layer, attribute)
            if tuple(value.shape) != tuple(variable.shape):
                raise UserError(f"{source}: tensor {key} has shape {tuple(found[field][1].shape)}, which does not fit "
                                f"{layer.name} of the {model.name} port ({tuple(variable.shape)} after the layout "
                                "change); pass the matching --arch and image channels.")
            plan[id(variable)] = (variable, value)
            used.add(key)
    unused = [k for k in state if k not in used and not k.endswith("num_batches_tracked")]
    if unused:
        raise UserError(f"{source}: tensor {unused[0]} (shape {np.shape(state[unused[0]])}) has no place in the "
                        f"{model.name} port" + (f" (and {len(unused) - 1} more)" if len(unused) > 1 else "")
                        + "; pass the matching --arch.")
    for variable, value in plan.values():
        variable.assign(value)


def on_images(classifier: keras.Model, preprocessing_layers: list, class_names, *, channels: int = 3,
              metadata: dict | None = None) -> keras.Model:
    """``image (0..255) -> preprocessing -> classifier -> ClassNames``, the layout :func:`~tfforensics.models.wrapped.unwrap` reads."""
    from tfforensics import __version__
    from tfforensics.layers import ClassNames
    from tfforensics.models.wrapped import CLASS_NAMES_NAME, PREPROCESSING_NAME

    shape = (*tuple(classifier.input_shape[1:3]), channels)
    preprocessing = keras.Sequential([keras.Input(shape), *preprocessing_layers], name=PREPROCESSING_NAME)
    inputs = keras.Input(shape, name="image")
    scores = classifier(preprocessing(inputs))
    info = {"model": classifier.name, "image_shape": list(classifier.input_shape[1:]),
            "tfforensics_version": __version__, **(metadata or {})}
    outputs = ClassNames(class_names, info, name=CLASS_NAMES_NAME)(scores)
    return keras.Model(inputs, outputs, name=f"{classifier.name}_on_images")


def detector_on_images(classifier: keras.Model, *, metadata: dict | None = None) -> keras.Model:
    """``image (0..255) -> /255 -> ImageNet mean/std -> classifier -> ClassNames(real, fake)``.

    The test-time pipeline of CNNDetection, LGrad and NPR (``ToTensor`` then
    ``Normalize``; no resize, no crop), inside the model.
    """
    std = np.asarray(IMAGENET_STD)
    imagenet = [layers.Rescaling(1.0 / 255.0, name="to_unit"),
                layers.Normalization(mean=list(IMAGENET_MEAN), variance=list(std ** 2), name="imagenet_normalize")]
    return on_images(classifier, imagenet, ["real", "fake"],
                     metadata={"preprocessing": "imagenet", **(metadata or {})})


def port_from_state_dict(arch: str, state: dict, *, image_size: int | None = None,
                         source: str = "the checkpoint") -> keras.Model:
    """The ``arch`` port with ``state``'s weights, wrapped by :func:`detector_on_images`.

    ``image_size`` fixes square inputs of that side; ``None`` takes images of any size, as
    the originals test (no resize, no crop).
    """
    if arch not in ARCHITECTURES:
        raise UserError(f"--arch {arch!r} is not one of {', '.join(ARCHITECTURES)}.")
    head = TORCH_HEADS[arch]
    weight = state.get(f"{head}.weight")
    if weight is None or np.ndim(weight) != 2:
        raise UserError(f"{source}: has no {head}.weight, so it is not a {arch} checkpoint (pass the matching --arch).")
    units = int(np.shape(weight)[0])
    try:
        classifier = ARCHITECTURES[arch]((image_size, image_size, 3), 1 if units == 1 else units)  # None: any size
    except ValueError as error:
        raise UserError(f"--image-size {image_size}: {error}") from error
    assign_state_dict(classifier, state, head=head, source=source)
    return detector_on_images(classifier, metadata={"converted_from": source, "arch": arch})


def keras_is_ours(path) -> bool:
    """True for a ``.keras`` archive whose config names a tfforensics layer (a detector we wrote)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return b'"tfforensics>' in archive.read("config.json")[: 1 << 24]
    except (OSError, KeyError, zipfile.BadZipFile):
        return False


def convert_torch(checkpoint, arch: str, out, *, image_size: int | None = None, overwrite: bool = False):
    """``convert torch``: a released PyTorch checkpoint -> ``out`` (``.keras``) taking 0..255 images."""
    import os

    from tfforensics.io.atomic import save_keras
    from tfforensics.io.outputs import claim_file
    from tfforensics.io.torch_checkpoint import load_state_dict

    out = Path(out)
    if out.suffix != ".keras":
        raise UserError(f"--out {out}: the converted detector is saved as a Keras model; give a name ending in .keras.")
    claim_file(out, overwrite=overwrite, ours=keras_is_ours, what="converted detector")
    source = os.fsdecode(checkpoint)
    model = port_from_state_dict(arch, load_state_dict(checkpoint), image_size=image_size, source=source)
    save_keras(model, out)
    return out


# --- GANDCTAnalysis (Frank et al., ICML 2020): Keras SavedModels + mean_var ----------------------

#: Registry architectures a GANDCTAnalysis SavedModel may hold, tried in this order (log1/2/3
#: have the weights of ``log``; their penalties only matter for training).
GANDCT_ARCHITECTURES = ("log", "nn", "cnn", "resnet")
_SAVED_VARIABLE = re.compile(r"^layer_with_weights-(\d+)/(\w+)/\.ATTRIBUTES/VARIABLE_VALUE$")


def read_saved_model_weights(model_dir) -> list[dict]:
    """``[{attribute: array}]`` per weighted layer of a tf.keras SavedModel, in layer order.

    Reads only the variables checkpoint (``variables/variables.index`` + data): no graph or
    function of the SavedModel is loaded or run.
    """
    import os

    import tensorflow as tf

    from tfforensics.io.images import display_path

    model_dir = Path(model_dir)
    name = display_path(model_dir)
    prefix = model_dir / "variables" / "variables"
    if not model_dir.is_dir():
        raise MissingInputError(f"{name}: SavedModel folder not found; download the released classifier "
                                "(see docs/published-models.md).")
    if not prefix.with_suffix(".index").is_file():
        raise UserError(f"{name}: holds no variables/variables.index, so it is not a TF2 Keras SavedModel "
                        "(the folder GANDCTAnalysis' classifer.py saves).")
    try:
        reader = tf.train.load_checkpoint(os.fsdecode(prefix))
        shapes = reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as error:
        raise UserError(f"{name}: its variables checkpoint is damaged ({str(error).splitlines()[0][:160]}); "
                        "download the released classifier again.") from error
    by_layer: dict = {}
    for key in shapes:
        match = _SAVED_VARIABLE.match(key)
        if match:
            by_layer.setdefault(int(match.group(1)), {})[match.group(2)] = key
    if not by_layer or sorted(by_layer) != list(range(len(by_layer))):
        raise UserError(f"{name}: its checkpoint has no layer_with_weights-0..N variables; it is not a Keras "
                        "SavedModel of a GANDCTAnalysis classifier.")
    try:
        return [{attr: np.asarray(reader.get_tensor(key)) for attr, key in by_layer[i].items()}
                for i in range(len(by_layer))]
    except (tf.errors.OpError, ValueError) as error:
        raise UserError(f"{name}: a variable could not be read ({str(error).splitlines()[0][:160]}); download the "
                        "released classifier again.") from error


def _weighted_layers(model):
    return [layer for layer in model.layers if layer.weights]


#: Keras attribute names of a layer's weights, in ``layer.weights`` order.
_ATTRIBUTES = {"Conv2D": ("kernel", "bias"), "Dense": ("kernel", "bias"),
               "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance")}


def _fits(model, saved) -> bool:
    weighted = _weighted_layers(model)
    if len(weighted) != len(saved):
        return False
    for layer, values in zip(weighted, saved):
        names = _ATTRIBUTES.get(type(layer).__name__)
        if names is None or set(names) != set(values):
            return False
        if any(tuple(getattr(layer, n).shape) != values[n].shape for n in names):
            return False
    return True


def load_mean_var(prefix, shape_hint=None):
    """``(mean, std)`` from ``PREFIX/mean.npy`` + ``var.npy`` (or ``PREFIX_mean.npy`` + ``PREFIX_var.npy``).

    Zero variances (constant coefficients) get std 1, as ``prepare`` stores them.
    """
    from tfforensics.io.images import display_path

    prefix = Path(prefix)
    candidates = [(prefix / "mean.npy", prefix / "var.npy"),
                  (prefix.with_name(prefix.name + "_mean.npy"), prefix.with_name(prefix.name + "_var.npy"))]
    files = next(((m, v) for m, v in candidates if m.is_file() and v.is_file()), None)
    if files is None:
        raise MissingInputError(f"--mean-var {display_path(prefix)}: no mean.npy and var.npy there (nor "
                                f"{prefix.name}_mean.npy, {prefix.name}_var.npy); pass the released mean_var folder "
                                "or make one with `tfforensics mean-var`.")
    try:
        mean, var = (np.load(f, allow_pickle=False) for f in files)
    except (ValueError, OSError, EOFError) as error:
        raise UserError(f"{display_path(files[0].parent)}: mean.npy / var.npy are not plain NumPy arrays ({error}); "
                        "make them again with `tfforensics mean-var`.") from error
    if mean.shape != var.shape or mean.ndim not in (2, 3) or mean.dtype.kind != "f" or var.dtype.kind != "f":
        raise UserError(f"{display_path(files[0])}: mean {mean.shape} and var {var.shape} must be float arrays of "
                        "one shape (height, width[, channels]).")
    if mean.ndim == 2:
        mean, var = mean[..., None], var[..., None]
    if not np.all(np.isfinite(var)) or np.any(var < 0):
        raise UserError(f"{display_path(files[1])}: holds negative or non-finite variances; make it again.")
    std = np.sqrt(var)
    return mean.astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32)


def port_gandct(model_dir, mean_var=None, *, arch: str | None = None, image_size: int | None = None,
                class_names=None, log: bool = True) -> keras.Model:
    """A GANDCTAnalysis SavedModel (+ ``mean_var``) as a registry model behind its preprocessing.

    With ``mean_var`` the input is encoded as ``run_classifier.py``'s ``DCTLayer`` does:
    DCT, ``log(|x| + eps)``, minus the mean, over the standard deviation (the DCT, log and
    standardisation layers of :mod:`tfforensics.layers`); without it, pixels scaled to
    [-1, 1] (its ``PixelLayer``). The weights are copied into the architecture of the
    registry (:data:`~tfforensics.models.classifiers.MODELS`) whose layers they fit, so the
    result loads with ``safe_mode``.
    """
    from tfforensics.data.encodings import Encoding
    from tfforensics.io.images import display_path
    from tfforensics.layers import preprocessing_layers
    from tfforensics.models.classifiers import MODELS

    saved = read_saved_model_weights(model_dir)
    source = display_path(model_dir)
    units = int(saved[-1].get("kernel", np.zeros((1, 0))).shape[-1])
    if units < 1 or units == 2:
        raise UserError(f"{source}: its last layer has {units} outputs; the registry models have 1 (binary) or "
                        "3+ (softmax) outputs.")
    if mean_var is not None:
        mean, std = load_mean_var(mean_var)
        shape = mean.shape
        encoding = Encoding("dct", log=log, color=shape[-1] == 3, normalize=True)
        pre = preprocessing_layers(encoding, {"mean": mean, "std": std}, shape, rgb_input=True)
    else:
        if image_size is None:
            raise UserError("--image-size is needed for a pixel classifier (no --mean-var): the SavedModel's "
                            "input size is not stored in its weights.")
        shape = (image_size, image_size, 3)
        pre = preprocessing_layers(Encoding("raw", color=True))
    candidates = [arch] if arch else list(GANDCT_ARCHITECTURES)
    for name in candidates:
        if name not in MODELS:
            raise UserError(f"--arch {name!r} is not a registry model; choose one of {', '.join(GANDCT_ARCHITECTURES)}.")
        try:
            model = MODELS[name](shape, units)
        except ValueError:
            continue
        if _fits(model, saved):
            break
    else:
        raise UserError(f"{source}: its {len(saved)} weighted layers fit none of the architectures "
                        f"{', '.join(candidates)} for inputs of shape {tuple(shape)}; check --mean-var (its shape sets "
                        "the input) and --arch.")
    for layer, values in zip(_weighted_layers(model), saved):
        for attribute in _ATTRIBUTES[type(layer).__name__]:
            getattr(layer, attribute).assign(values[attribute].astype(np.float32))
    names = list(class_names) if class_names else ([str(i) for i in range(units)] if units > 1 else ["real", "fake"])
    if len(names) != max(units, 2):
        raise UserError(f"--class-names gives {len(names)} names but the classifier has {max(units, 2)} classes.")
    return on_images(model, pre, names, metadata={"converted_from": source, "arch": model.name,
                                                   "mean_var": None if mean_var is None else str(mean_var)})


def convert_gandct(model_dir, out, mean_var=None, *, overwrite: bool = False, **kwargs):
    """``convert gandct``: :func:`port_gandct` saved as ``out`` (``.keras``)."""
    from tfforensics.io.atomic import save_keras
    from tfforensics.io.outputs import claim_file

    out = Path(out)
    if out.suffix != ".keras":
        raise UserError(f"--out {out}: the converted classifier is saved as a Keras model; give a name ending in .keras.")
    claim_file(out, overwrite=overwrite, ours=keras_is_ours, what="converted classifier")
    save_keras(port_gandct(model_dir, mean_var, **kwargs), out)
    return out
