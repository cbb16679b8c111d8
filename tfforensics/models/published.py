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
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from tfforensics.errors import UserError

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
    return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.9, name=name)(x)


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


def build_resnet50(input_shape, num_classes, *, l1=DEFAULT_L1, l2=DEFAULT_L2) -> keras.Model:
    """torchvision ResNet-50 v1.5 with a ``num_classes`` head (CNNDetection / LGrad: one logit)."""
    from tfforensics.models.classifiers import _inputs, classification_head

    inputs = _inputs(input_shape)
    x = _stem(inputs, 7)
    channels = 64
    for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), RESNET50_BLOCKS)):
        x = _stage(x, planes, blocks, 1 if stage == 0 else 2, channels, f"layer{stage + 1}")
        channels = planes * 4
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    return keras.Model(inputs, classification_head(x, num_classes), name="resnet50")


def build_npr(input_shape, num_classes, *, l1=DEFAULT_L1, l2=DEFAULT_L2) -> keras.Model:
    """NPR's detector: the neighbouring-pixel residual, then ``conv1`` (3x3/2), ``layer1``, ``layer2``, ``fc1``."""
    from tfforensics.layers import NeighbourResidual
    from tfforensics.models.classifiers import _inputs, classification_head

    height, width = tuple(input_shape)[:2]
    if height % 2 or width % 2:
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


def detector_on_images(classifier: keras.Model, *, metadata: dict | None = None) -> keras.Model:
    """``image (0..255) -> /255 -> ImageNet mean/std -> classifier -> ClassNames(real, fake)``.

    The test-time pipeline of CNNDetection, LGrad and NPR (``ToTensor`` then
    ``Normalize``; no resize, no crop), inside the model.
    """
    from tfforensics import __version__
    from tfforensics.layers import ClassNames
    from tfforensics.models.wrapped import CLASS_NAMES_NAME, PREPROCESSING_NAME

    shape = tuple(classifier.input_shape[1:])
    std = np.asarray(IMAGENET_STD)
    preprocessing = keras.Sequential([
        keras.Input(shape),
        layers.Rescaling(1.0 / 255.0, name="to_unit"),
        layers.Normalization(mean=list(IMAGENET_MEAN), variance=list(std ** 2), name="imagenet_normalize"),
    ], name=PREPROCESSING_NAME)
    inputs = keras.Input(shape, name="image")
    scores = classifier(preprocessing(inputs))
    info = {"model": classifier.name, "image_shape": list(shape), "preprocessing": "imagenet",
            "tfforensics_version": __version__, **(metadata or {})}
    outputs = ClassNames(["real", "fake"], info, name=CLASS_NAMES_NAME)(scores)
    return keras.Model(inputs, outputs, name=f"{classifier.name}_on_images")


def port_from_state_dict(arch: str, state: dict, *, image_size: int = 256, source: str = "the checkpoint") -> keras.Model:
    """The ``arch`` port with ``state``'s weights, wrapped by :func:`detector_on_images`."""
    if arch not in ARCHITECTURES:
        raise UserError(f"--arch {arch!r} is not one of {', '.join(ARCHITECTURES)}.")
    head = TORCH_HEADS[arch]
    weight = state.get(f"{head}.weight")
    if weight is None or np.ndim(weight) != 2:
        raise UserError(f"{source}: has no {head}.weight, so it is not a {arch} checkpoint (pass the matching --arch).")
    units = int(np.shape(weight)[0])
    try:
        classifier = ARCHITECTURES[arch]((image_size, image_size, 3), 1 if units == 1 else units)
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


def convert_torch(checkpoint, arch: str, out, *, image_size: int = 256, overwrite: bool = False):
    """``convert torch``: a released PyTorch checkpoint -> ``out`` (``.keras``) taking 0..255 images."""
    import os
    from pathlib import Path

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
